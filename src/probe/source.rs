//! Step 6: does the server accept a data connection from another address than the control
//! connection's? Accepting one lets anyone who guesses the port steal or inject the data
//! ("port theft"); refusing it breaks clients behind NAT pools that spread connections over
//! several public addresses.
//!
//! Only testable on loopback, where 127.0.0.1 and 127.0.0.2 are both ours: the control
//! connection comes from the first, the data connection from the second. Servers refuse in
//! different ways: libunftp closes the data connection at once, pyftpdlib closes it and sends
//! an unsolicited 425, vsftpd keeps quiet until the transfer command and then answers 425.

use super::link::{ask_port, connect_from, quit_and_wait, Link};
use crate::ftp::{ControlConnection, Phase};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const CONTROL_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const DATA_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How long the server gets to react to the data connection before we send a command.
const REACTION: Duration = Duration::from_millis(500);
/// Longest wait for a listing over the foreign connection.
const LISTING_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForeignVerdict {
    Refused,
    Accepted,
    Undetermined,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForeignSource {
    pub verdict: ForeignVerdict,
    /// Control and data source addresses, when tested.
    pub control_from: Option<IpAddr>,
    pub data_from: Option<IpAddr>,
    pub detail: String,
}

impl ForeignSource {
    pub(crate) fn result(verdict: ForeignVerdict, detail: impl Into<String>) -> ForeignSource {
        let tested = verdict != ForeignVerdict::Skipped;
        ForeignSource {
            verdict,
            control_from: tested.then_some(IpAddr::V4(CONTROL_SOURCE)),
            data_from: tested.then_some(IpAddr::V4(DATA_SOURCE)),
            detail: detail.into(),
        }
    }
}

/// Why the test cannot run here, if it cannot.
fn unavailable(link: &Link) -> Option<String> {
    let ip = link.addr.ip();
    if !ip.is_loopback() {
        return Some(format!(
            "the target {ip} is not on loopback, where a second source address is available"
        ));
    }
    if !ip.is_ipv4() {
        return Some("the target is on IPv6 loopback, which has no second address".into());
    }
    if let Err(e) = std::net::TcpListener::bind((DATA_SOURCE, 0)) {
        return Some(format!("cannot bind {DATA_SOURCE} on this host: {e}"));
    }
    None
}

pub(crate) async fn measure(link: &Link) -> ForeignSource {
    if let Some(reason) = unavailable(link) {
        return ForeignSource::result(ForeignVerdict::Skipped, reason);
    }
    let mut conn = match link.open_from(Some(IpAddr::V4(CONTROL_SOURCE))).await {
        Ok(c) => c,
        Err(e) => return ForeignSource::result(ForeignVerdict::Undetermined, format!("could not log in: {e}")),
    };
    let (outcome, grant) = ask_port(&mut conn, None, link.reply_timeout()).await;
    let Some(grant) = grant else {
        drop(conn);
        return ForeignSource::result(
            ForeignVerdict::Undetermined,
            format!("no port granted: {}", outcome.describe()),
        );
    };
    let result = match connect_from(
        IpAddr::V4(DATA_SOURCE),
        grant.data_addr,
        link.config.timeouts.data_connect,
    )
    .await
    {
        Ok(data) => judge(&mut conn, data).await,
        Err(e) => ForeignSource::result(
            ForeignVerdict::Refused,
            format!("the data connection from {DATA_SOURCE} was not accepted by TCP: {e}"),
        ),
    };
    quit_and_wait(conn).await;
    result
}

enum Reaction {
    DataClosed(String),
    DataSent,
    Reply(String),
    ControlLost(String),
}

async fn judge(conn: &mut ControlConnection, mut data: TcpStream) -> ForeignSource {
    let mut buf = [0u8; 4096];
    // First, does the server react to the connection by itself?
    let reaction = tokio::time::timeout(REACTION, async {
        tokio::select! {
            r = data.read(&mut buf) => match r {
                Ok(0) => Reaction::DataClosed("closed".into()),
                Ok(_) => Reaction::DataSent,
                Err(e) => Reaction::DataClosed(e.to_string()),
            },
            r = conn.read_reply(Phase::DataConnect) => match r {
                Ok(reply) => Reaction::Reply(format!("{} {}", reply.code, reply.short_text())),
                Err(e) => Reaction::ControlLost(e.to_string()),
            },
        }
    })
    .await;
    use ForeignVerdict::*;
    match reaction {
        Ok(Reaction::DataClosed(how)) => {
            // pyftpdlib follows the close with an unsolicited 425; collect it for the record.
            let said = tokio::time::timeout(REACTION, conn.read_reply(Phase::DataConnect))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|r| format!(" and said {} {}", r.code, r.short_text()))
                .unwrap_or_default();
            ForeignSource::result(
                Refused,
                format!("the server closed the data connection from {DATA_SOURCE} ({how}){said}"),
            )
        }
        Ok(Reaction::Reply(reply)) => ForeignSource::result(
            Refused,
            format!("the server answered the data connection from {DATA_SOURCE} with {reply}"),
        ),
        Ok(Reaction::ControlLost(e)) => ForeignSource::result(
            Refused,
            format!("the server dropped the session after the data connection from {DATA_SOURCE}: {e}"),
        ),
        Ok(Reaction::DataSent) => ForeignSource::result(
            Undetermined,
            "the server sent data on the connection unasked".to_string(),
        ),
        Err(_) => list_over(conn, data).await,
    }
}

/// The server said nothing: ask for a listing over the foreign connection and see whether it
/// gets through.
async fn list_over(conn: &mut ControlConnection, mut data: TcpStream) -> ForeignSource {
    use ForeignVerdict::*;
    let prelim = match conn.command("LIST", Phase::TransferStart).await {
        Ok(r) => r,
        Err(e) => return ForeignSource::result(Refused, format!("LIST over a foreign data connection: {e}")),
    };
    if prelim.is_negative() {
        return ForeignSource::result(
            Refused,
            format!(
                "LIST over the data connection from {DATA_SOURCE}: {} {}",
                prelim.code,
                prelim.short_text()
            ),
        );
    }
    if !prelim.is_preliminary() {
        return ForeignSource::result(
            Undetermined,
            format!("unexpected reply to LIST: {} {}", prelim.code, prelim.short_text()),
        );
    }
    let mut sink = Vec::new();
    let read = tokio::time::timeout(LISTING_LIMIT, data.read_to_end(&mut sink)).await;
    drop(data);
    let fin = conn.read_reply(Phase::FinalReply).await;
    match (read, fin) {
        (Ok(Ok(_)), Ok(r)) if r.is_completion() => ForeignSource::result(
            Accepted,
            format!(
                "LIST over the data connection from {DATA_SOURCE} completed ({} bytes, {} {})",
                sink.len(),
                r.code,
                r.short_text()
            ),
        ),
        (_, Ok(r)) => ForeignSource::result(
            Refused,
            format!(
                "LIST over the data connection from {DATA_SOURCE} ended with {} {}",
                r.code,
                r.short_text()
            ),
        ),
        (_, Err(e)) => ForeignSource::result(
            Undetermined,
            format!("LIST over the data connection from {DATA_SOURCE}: {e}"),
        ),
    }
}
