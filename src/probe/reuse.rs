//! Step 4: is a port free again once its data connection is accepted, or only when the
//! transfer ends?
//!
//! One upload is kept open (a STOR trickling a few bytes at a time; an upload, because the
//! server reads it until our last byte, whereas for a download the server may finish writing
//! into socket buffers and close its side long before we have read it), while another
//! connection asks for ports, releasing each. If the upload's port is handed out again, the
//! server freed it at accept; if it never is in enough requests that a uniform picker would
//! almost surely have hit it, the server holds it until the transfer ends. The uploaded file
//! is deleted afterwards.

use super::link::{ask_port, quit_and_wait, release, GrantOutcome, Link};
use crate::ftp::stream::DataStream;
use crate::ftp::transfer::SecuredData;
use crate::ftp::{ControlConnection, Phase};
use crate::port_range::PortRange;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Widest range tested: beyond it, enough requests to be sure take too long.
pub const MAX_WIDTH: u32 = 64;
/// Accepted chance that a release-at-accept server never hands the port out again in our
/// requests, which sets how many we make.
const MISS_PROBABILITY: f64 = 1e-4;
/// The upload sends this much every [`TRICKLE_EVERY`]: enough to keep every idle timer quiet.
const TRICKLE_BYTES: usize = 256;
const TRICKLE_EVERY: Duration = Duration::from_millis(50);
/// Refusals on the asking connection after which the step gives up.
const MAX_REFUSALS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReuseVerdict {
    /// The port of an open transfer was handed out again: the server frees a port when it
    /// accepts the data connection.
    ReleasedAtAccept,
    /// Never handed out again while the transfer was open.
    HeldUntilTransferEnds,
    Undetermined,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reuse {
    pub verdict: ReuseVerdict,
    /// The port of the open upload.
    pub held_port: Option<u16>,
    /// Ports granted to the other connection while the upload was open.
    pub grants: u32,
    /// Grant number that handed the upload's port out again.
    pub regranted_at: Option<u32>,
    /// Bytes the upload had sent when the check ended.
    pub uploaded_bytes: u64,
    pub detail: String,
}

impl Reuse {
    pub(crate) fn skipped(detail: impl Into<String>) -> Reuse {
        Reuse {
            verdict: ReuseVerdict::Skipped,
            held_port: None,
            grants: 0,
            regranted_at: None,
            uploaded_bytes: 0,
            detail: detail.into(),
        }
    }
}

/// Requests needed so that uniform picks over `w` ports miss one given port with probability
/// at most [`MISS_PROBABILITY`]; never fewer than 5·W.
pub(crate) fn grants_needed(w: u32) -> u32 {
    if w <= 1 {
        return 5;
    }
    let miss_per_pick = 1.0 - 1.0 / f64::from(w);
    let n = (MISS_PROBABILITY.ln() / miss_per_pick.ln()).ceil() as u32;
    n.max(5 * w)
}

pub(crate) async fn measure(link: &Link, range: PortRange, max_pending: u32, deadline: Instant) -> Reuse {
    let w = range.width();
    if w > MAX_WIDTH {
        return Reuse::skipped(format!(
            "range of {w} ports: more than {MAX_WIDTH} takes too many requests to test"
        ));
    }
    if max_pending < 2 {
        return Reuse::skipped("needs 2 pending ports (--max-pending)");
    }
    let mut uploader = match link.open().await {
        Ok(c) => c,
        Err(e) => return Reuse::skipped(format!("could not log in: {e}")),
    };
    let name = scratch_name();
    let upload = match start_upload(&mut uploader, range, &name, link.reply_timeout()).await {
        Ok(u) => u,
        Err(skip) => {
            quit_and_wait(uploader).await;
            return skip;
        }
    };
    let held = upload.port;
    let mut result = ask_around(link, range, held, grants_needed(w), deadline, &upload.writer).await;
    let (bytes, upload_error) = finish_upload(&mut uploader, upload, &name).await;
    quit_and_wait(uploader).await;
    result.uploaded_bytes = bytes;
    if let Some(e) = upload_error {
        result.detail = format!("{}; {e}", result.detail);
    }
    result
}

struct Upload {
    port: u16,
    writer: JoinHandle<(DataStream, u64, Option<String>)>,
    stop: CancellationToken,
}

/// `ftpswarm-probe-<pid>-<random>.tmp` in the login directory: unique, and recognisable if
/// it is ever left behind.
fn scratch_name() -> String {
    format!(
        "ftpswarm-probe-{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    )
}

async fn start_upload(
    conn: &mut ControlConnection,
    range: PortRange,
    name: &str,
    reply_timeout: Duration,
) -> Result<Upload, Reuse> {
    let (outcome, grant) = ask_port(conn, Some(range), reply_timeout).await;
    let (GrantOutcome::InRange { port }, Some(grant)) = (&outcome, grant) else {
        let mut r = Reuse::skipped(format!("no port from the range for the upload: {}", outcome.describe()));
        r.verdict = ReuseVerdict::Undetermined;
        return Err(r);
    };
    let port = *port;
    let tcp = conn
        .connect_data(&grant)
        .await
        .map_err(|e| Reuse::skipped(format!("could not open the upload's data connection: {e}")))?;
    // Under FTPS the data connection is secured as every transfer's is.
    let (prelim, data) = async {
        conn.send(&format!("STOR {name}"), Phase::TransferStart).await?;
        conn.preliminary_reply_and_data(tcp, &mut SecuredData::default()).await
    }
    .await
    .map_err(|e| Reuse::skipped(format!("STOR failed: {e}")))?;
    if prelim.is_negative() {
        return Err(Reuse::skipped(format!(
            "STOR not permitted: {} {}",
            prelim.code,
            prelim.short_text()
        )));
    }
    if !prelim.is_preliminary() {
        return Err(Reuse::skipped(format!(
            "unexpected reply to STOR: {} {}",
            prelim.code,
            prelim.short_text()
        )));
    }
    let Some(data) = data else {
        return Err(Reuse::skipped("no data connection after STOR's preliminary reply"));
    };
    let stop = CancellationToken::new();
    let writer = tokio::spawn(trickle(data, stop.clone()));
    Ok(Upload { port, writer, stop })
}

/// Keeps the upload alive until told to stop; returns the stream, bytes sent and the error
/// that ended it early, if one did.
async fn trickle(mut data: DataStream, stop: CancellationToken) -> (DataStream, u64, Option<String>) {
    let chunk = [0x5a_u8; TRICKLE_BYTES];
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return (data, sent, None),
            _ = tokio::time::sleep(TRICKLE_EVERY) => {}
        }
        match tokio::time::timeout(Duration::from_secs(5), data.write_all(&chunk)).await {
            Ok(Ok(())) => sent += TRICKLE_BYTES as u64,
            Ok(Err(e)) => return (data, sent, Some(format!("the upload ended early: {e}"))),
            Err(_) => return (data, sent, Some("the upload stalled".into())),
        }
    }
}

/// Asks for ports on another connection until the held one comes back or `needed` grants
/// were made.
async fn ask_around(
    link: &Link,
    range: PortRange,
    held: u16,
    needed: u32,
    deadline: Instant,
    writer: &JoinHandle<(DataStream, u64, Option<String>)>,
) -> Reuse {
    let mut r = Reuse {
        verdict: ReuseVerdict::Undetermined,
        held_port: Some(held),
        grants: 0,
        regranted_at: None,
        uploaded_bytes: 0,
        detail: String::new(),
    };
    let mut asker = match link.open().await {
        Ok(c) => c,
        Err(e) => {
            r.detail = format!("could not log in a second connection: {e}");
            return r;
        }
    };
    let mut refusals = 0;
    let mut problem = None;
    while r.grants < needed && Instant::now() < deadline {
        let (outcome, grant) = ask_port(&mut asker, Some(range), link.reply_timeout()).await;
        match (outcome, grant) {
            (GrantOutcome::InRange { port } | GrantOutcome::OutOfRange { port }, Some(g)) => {
                r.grants += 1;
                let hit = port == held;
                // Only evidence while the upload is still going.
                let live = !writer.is_finished();
                if let Err(e) = release(&mut asker, &g).await {
                    problem = Some(format!("releasing a port failed: {e}"));
                    break;
                }
                if hit && live {
                    r.regranted_at = Some(r.grants);
                    break;
                }
            }
            (
                GrantOutcome::Refused {
                    session_dropped: false, ..
                },
                _,
            ) if refusals < MAX_REFUSALS => refusals += 1,
            (other, _) => {
                problem = Some(other.describe());
                break;
            }
        }
    }
    quit_and_wait(asker).await;
    let transfer_open = !writer.is_finished();
    (r.verdict, r.detail) = match (r.regranted_at, problem) {
        (Some(n), _) => (
            ReuseVerdict::ReleasedAtAccept,
            format!("port {held} of an open upload was granted again after {n} grants"),
        ),
        (None, Some(p)) => (
            ReuseVerdict::Undetermined,
            format!("stopped after {} grants: {p}", r.grants),
        ),
        (None, None) if r.grants >= needed && transfer_open => (
            ReuseVerdict::HeldUntilTransferEnds,
            format!(
                "port {held} of an open upload was not granted again in {} grants (a server freeing it at accept \
                 would have, with probability {:.4})",
                r.grants,
                1.0 - MISS_PROBABILITY
            ),
        ),
        (None, None) if !transfer_open => (
            ReuseVerdict::Undetermined,
            format!("the upload ended after {} grants, before the check was done", r.grants),
        ),
        (None, None) => (
            ReuseVerdict::Undetermined,
            format!("out of time after {} of {needed} grants", r.grants),
        ),
    };
    r
}

/// Ends the upload (FIN, final reply) and deletes the file. Returns the bytes sent and any
/// problem worth reporting.
async fn finish_upload(conn: &mut ControlConnection, upload: Upload, name: &str) -> (u64, Option<String>) {
    upload.stop.cancel();
    let mut problems = Vec::new();
    let mut bytes = 0;
    match upload.writer.await {
        Ok((mut data, sent, err)) => {
            bytes = sent;
            problems.extend(err);
            let _ = tokio::time::timeout(Duration::from_secs(5), data.shutdown()).await;
        }
        Err(e) => problems.push(format!("the upload task failed: {e}")),
    }
    match conn.read_reply(Phase::FinalReply).await {
        Ok(r) if r.is_completion() => {}
        Ok(r) => problems.push(format!("upload ended with {} {}", r.code, r.short_text())),
        Err(e) => problems.push(format!("upload ended with {e}")),
    }
    if let Err(e) = conn.delete(name).await {
        problems.push(format!("could not delete the scratch file {name}: {e}"));
    }
    (bytes, (!problems.is_empty()).then(|| problems.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::grants_needed;

    #[test]
    fn enough_grants_to_hit_one_port() {
        assert_eq!(grants_needed(1), 5);
        assert_eq!(grants_needed(2), 14);
        assert_eq!(grants_needed(10), 88);
        assert!(grants_needed(64) >= 5 * 64);
    }
}
