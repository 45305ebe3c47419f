//! FTPS only: does the server let data connections go unencrypted (`PROT C`), and does it
//! refuse a data connection that does not resume the control connection's TLS session (as
//! vsftpd's `require_ssl_reuse=YES` and ProFTPD's mod_tls do by default)? A client without
//! session resumption fails every transfer against such a server.

use super::link::{quit_and_wait, Link};
use crate::ftp::transfer::SecuredData;
use crate::ftp::{ControlConnection, Phase};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TlsFacts {
    /// `PROT C` answered with success: plain data connections are allowed.
    pub prot_c_accepted: Option<bool>,
    /// The reply to `PROT C`.
    pub prot_c_reply: String,
    /// A data connection on a new TLS session was refused while one resuming the control
    /// connection's session worked.
    pub session_reuse_required: Option<bool>,
    pub reuse_detail: String,
}

pub(crate) async fn measure(link: &Link) -> TlsFacts {
    let (prot_c_accepted, prot_c_reply) = match link.open().await {
        Ok(mut conn) => {
            let r = match conn.command("PROT C", Phase::Tls).await {
                Ok(r) => (Some(r.is_completion()), format!("{} {}", r.code, r.short_text())),
                Err(e) => (None, e.to_string()),
            };
            quit_and_wait(conn).await;
            r
        }
        Err(e) => (None, format!("could not log in: {e}")),
    };
    let (session_reuse_required, reuse_detail) = match link.open().await {
        Ok(mut conn) => {
            let resumed = list(&mut conn, false).await;
            let fresh = match &resumed {
                Ok(()) => Some(list(&mut conn, true).await),
                Err(_) => None,
            };
            quit_and_wait(conn).await;
            match (resumed, fresh) {
                (Ok(()), Some(Ok(()))) => (Some(false), "a data connection on a new TLS session was accepted".into()),
                (Ok(()), Some(Err(e))) => (
                    Some(true),
                    format!("a data connection on a new TLS session was refused ({e}); one resuming the control connection's session worked"),
                ),
                (Err(e), _) => (None, format!("a LIST on a resumed session failed: {e}")),
                (Ok(()), None) => (None, "not tried".into()),
            }
        }
        Err(e) => (None, format!("could not log in: {e}")),
    };
    TlsFacts {
        prot_c_accepted,
        prot_c_reply,
        session_reuse_required,
        reuse_detail,
    }
}

/// One LIST, its data connection secured with the control connection's session cache or, if
/// `fresh`, a new empty one (a full handshake).
async fn list(conn: &mut ControlConnection, fresh: bool) -> Result<(), String> {
    let grant = conn.request_passive().await.map_err(|e| e.to_string())?;
    let tcp = conn.connect_data(&grant).await.map_err(|e| e.to_string())?;
    conn.send("LIST", Phase::TransferStart)
        .await
        .map_err(|e| e.to_string())?;
    let mut secured = SecuredData::default();
    let started = match (fresh, conn.tls_client()) {
        (true, Some(tls)) => {
            let connector = tls.for_session();
            conn.secure_data(&tls, &connector, tcp, &mut secured).await
        }
        _ => conn.preliminary_reply_and_data(tcp, &mut secured).await,
    };
    let (prelim, data) = started.map_err(|e| e.to_string())?;
    if !prelim.is_preliminary() {
        return match prelim.is_completion() {
            true => Ok(()),
            false => Err(format!("{} {}", prelim.code, prelim.short_text())),
        };
    }
    if let Some(mut data) = data {
        let mut sink = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), data.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
    let end = conn.read_reply(Phase::FinalReply).await.map_err(|e| e.to_string())?;
    match end.is_completion() {
        true => Ok(()),
        false => Err(format!("{} {}", end.code, end.short_text())),
    }
}
