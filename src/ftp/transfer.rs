//! RETR / STOR / LIST: one passive data connection each, every phase timestamped.

use super::control::handshake;
use super::reply::Reply;
use super::stream::DataStream;
use super::{ClientConfig, ClientError, ControlConnection, Phase};
use crate::event::{FailureClass, Outcome, TransferCommand, TransferEvent};
use crate::observe::LiveCounters;
use crate::tls::TlsClient;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CHUNK: usize = 64 * 1024;
/// Most bytes one discarding receive drops (it takes what the socket holds, up to this).
const DISCARD_MAX: usize = 1 << 20;
/// What STOR sends: content does not matter to the server, only its length.
static UPLOAD_PATTERN: [u8; CHUNK] = [super::stream::UPLOAD_BYTE; CHUNK];

/// One file to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub command: TransferCommand,
    pub path: String,
    /// STOR: bytes to send. RETR: bytes expected, when known (a shorter download is
    /// `transfer_aborted`).
    pub bytes: Option<u64>,
}

/// A granted port as the live counters see it: held from the grant until released, exactly
/// once, whichever way the transfer ends.
struct PortHold<'a> {
    live: &'a LiveCounters,
    port: u16,
    connected: bool,
    released: bool,
}

impl<'a> PortHold<'a> {
    fn new(live: &'a LiveCounters, port: u16, in_range: Option<bool>) -> Self {
        live.granted(port, in_range);
        PortHold {
            live,
            port,
            connected: false,
            released: false,
        }
    }
    fn connected(&mut self) {
        self.connected = true;
        self.live.data_connected();
    }
    fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.live.released(self.port, self.connected);
        }
    }
}

impl Drop for PortHold<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Who a transfer belongs to, for the ledger.
#[derive(Debug, Clone, Copy)]
pub struct TransferIds {
    pub session_id: u64,
    pub connection_id: u64,
    pub seq_in_session: u32,
}

/// What a transfer produced besides its event.
pub struct TransferOutput {
    pub event: TransferEvent,
    /// The control connection can no longer be used for further files.
    pub control_lost: bool,
}

impl ControlConnection {
    /// Runs one transfer and always returns its event, successful or not.
    pub async fn transfer(&mut self, req: &TransferRequest, ids: TransferIds) -> TransferOutput {
        self.transfer_collecting(req, ids, None, None).await
    }

    /// As [`transfer`](Self::transfer), sending `verb` instead of the command's own (NLST
    /// downloads like LIST) and keeping up to `collect.1` downloaded bytes.
    pub(super) async fn transfer_collecting(
        &mut self,
        req: &TransferRequest,
        ids: TransferIds,
        verb: Option<&str>,
        mut collect: Option<(&mut Vec<u8>, usize)>,
    ) -> TransferOutput {
        let clock = self.config.clock;
        let mut ev = TransferEvent {
            session_id: ids.session_id,
            connection_id: ids.connection_id,
            seq_in_session: ids.seq_in_session,
            command: req.command,
            passive_command: self.config.passive,
            path: req.path.clone(),
            pasv_port: None,
            in_range: None,
            t_pasv_sent_us: clock.now_us(),
            t_pasv_reply_us: None,
            t_data_connected_us: None,
            t_data_tls_us: None,
            t_first_byte_us: None,
            t_transfer_done_us: None,
            t_data_closed_us: None,
            t_final_reply_us: None,
            bytes: 0,
            expected_bytes: req.bytes,
            pasv_reply_code: None,
            transfer_reply_code: None,
            final_reply_code: None,
            outcome: Outcome::OK,
            detail: String::new(),
        };
        let cut = self.config.cut.clone();
        let result = {
            let steps = self.transfer_steps(req, verb, &mut ev, collect.as_mut().map(|(v, max)| (&mut **v, *max)));
            tokio::pin!(steps);
            tokio::select! {
                r = &mut steps => Some(r),
                _ = cut.cancelled() => None,
            }
            // The steps end here, dropping the data connection and the port's hold.
        };
        let Some(result) = result else {
            ev.outcome = Outcome::Interrupted;
            ev.detail = "cut off at the end of the run's drain period".into();
            // Mid-exchange, the control connection's next reply is anyone's guess.
            return TransferOutput {
                event: ev,
                control_lost: true,
            };
        };
        let control_lost = match result {
            Ok(()) => false,
            Err(e) => {
                if e.reply_code.is_some() && ev.final_reply_code.is_none() && ev.transfer_reply_code.is_some() {
                    ev.final_reply_code = e.reply_code;
                }
                let detail = if e.detail.is_empty() {
                    e.class.to_string()
                } else {
                    e.detail.clone()
                };
                match ev.outcome {
                    // The first failure in the protocol's order is the transfer's class; a later
                    // one is kept in the detail.
                    Outcome::Failed(_) => ev.detail = format!("{}; then {}: {}", ev.detail, e.class, detail),
                    Outcome::Ok | Outcome::Interrupted => {
                        ev.outcome = Outcome::Failed(e.class);
                        ev.detail = detail;
                    }
                }
                e.control_lost
            }
        };
        TransferOutput {
            event: ev,
            control_lost,
        }
    }

    async fn transfer_steps(
        &mut self,
        req: &TransferRequest,
        verb: Option<&str>,
        ev: &mut TransferEvent,
        collect: Option<(&mut Vec<u8>, usize)>,
    ) -> Result<(), ClientError> {
        let clock = self.config.clock;
        let grant = self.request_passive().await;
        ev.t_pasv_reply_us = Some(clock.now_us());
        let grant = match grant {
            Ok(g) => g,
            Err(e) => {
                ev.pasv_reply_code = e.reply_code;
                if e.reply_code.is_some() && !e.control_lost && !self.alive().await {
                    // The server ended the session with its refusal (vsftpd's `500 OOPS`).
                    // Going on would read its remains as the answers to our next PASVs and
                    // count each as one more refusal of the range.
                    return Err(ClientError {
                        control_lost: true,
                        detail: format!("{}; the server then closed the control connection", e.detail),
                        ..e
                    });
                }
                return Err(e);
            }
        };
        ev.pasv_reply_code = Some(grant.reply_code);
        ev.pasv_port = Some(grant.port);
        if let Some(range) = self.config.expected_range {
            let inside = range.contains(grant.port);
            ev.in_range = Some(inside);
            if !inside {
                // The transfer may well succeed here, but a firewall opened for the range
                // would drop it: that is the failure this tool exists to find.
                ev.outcome = Outcome::Failed(FailureClass::PasvOutOfRange);
                ev.detail = format!("server granted port {} outside the expected range {range}", grant.port);
            }
        }

        let live = self.config.live.clone();
        let mut hold = PortHold::new(&live, grant.port, ev.in_range);
        let tcp = self.connect_data(&grant).await?;
        ev.t_data_connected_us = Some(clock.now_us());
        hold.connected();

        let command = format!("{} {}", verb.unwrap_or(req.command.as_str()), req.path);
        self.send(&command, Phase::TransferStart).await?;
        let mut secured = SecuredData::default();
        let started = self.preliminary_reply_and_data(tcp, &mut secured).await;
        ev.t_data_tls_us = secured.t_tls_us;
        ev.transfer_reply_code = secured.preliminary_code;
        if let Some((code, at)) = secured.final_reply {
            ev.final_reply_code = code;
            ev.t_final_reply_us = Some(at);
        }
        let (prelim, data) = started?;
        ev.transfer_reply_code = Some(prelim.code);
        let not_resumed = |mut e: ClientError| {
            if let Some(why) = &secured.handshake_error {
                // The server refused a data connection whose TLS handshake had failed: a TLS
                // failure, whatever reply code it came with.
                e.class = FailureClass::TlsError;
                e.detail = format!("{}; {why}", e.detail);
            }
            if secured.resumed == Some(false) {
                e.detail = format!("{}; {NOT_RESUMED}", e.detail);
            }
            e
        };
        if prelim.is_negative() {
            return Err(not_resumed(ClientError::reply(Phase::TransferStart, &prelim)));
        }
        if prelim.is_completion() {
            // Some servers answer an empty LIST with 226 straight away.
            ev.final_reply_code = Some(prelim.code);
            ev.t_final_reply_us = Some(clock.now_us());
            drop(data);
            ev.t_data_closed_us = Some(clock.now_us());
            hold.release();
            return Ok(());
        }
        if !prelim.is_preliminary() {
            return Err(ClientError::protocol(format!(
                "unexpected reply to {}: {prelim}",
                req.command.as_str()
            )));
        }
        let Some(mut data) = data else {
            return Err(ClientError::protocol("no data connection after a preliminary reply"));
        };

        // The data moves while the control connection is watched: a server that gives up
        // (426 on a data connection it has gone silent on) says so there, and waiting out the
        // data idle timeout would misreport that as our timeout.
        let mut early: Option<Result<super::reply::Reply, ClientError>> = None;
        let moved = {
            let config: &ClientConfig = &self.config;
            let replies = &mut self.replies;
            let mover = async {
                match req.command {
                    TransferCommand::Stor => upload(config, &mut data, req.bytes.unwrap_or(0), ev).await,
                    TransferCommand::Retr | TransferCommand::List => {
                        download(config, &mut self.data_buf, &mut data, ev, collect).await
                    }
                }
            };
            tokio::pin!(mover);
            loop {
                tokio::select! {
                    biased;
                    r = &mut mover => break r,
                    _ = replies.server_spoke(), if early.is_none() => {
                        let reply = replies.read(config, Phase::FinalReply).await;
                        let finished = matches!(&reply, Ok(r) if r.is_completion());
                        early = Some(reply);
                        // A 226 can overtake the last bytes still in our socket: read on to
                        // the end. Anything else ends the transfer here.
                        if !finished {
                            break Ok(());
                        }
                    }
                }
            }
        };
        if ev.t_transfer_done_us.is_none() {
            ev.t_transfer_done_us = Some(clock.now_us());
        }
        drop(data);
        ev.t_data_closed_us = Some(clock.now_us());
        hold.release();

        // Even after a broken data stream the server owes a final reply (426/451); reading it
        // keeps the control connection usable for the next file.
        let final_reply = match early {
            Some(reply) => reply,
            None => self.read_reply(Phase::FinalReply).await,
        };
        ev.t_final_reply_us = Some(clock.now_us());
        let final_reply = match (moved, final_reply) {
            (Err(e), Ok(r)) => {
                ev.final_reply_code = Some(r.code);
                return Err(ClientError {
                    control_lost: false,
                    ..e
                });
            }
            (Err(e), Err(_)) => {
                return Err(ClientError {
                    control_lost: true,
                    ..e
                })
            }
            (Ok(()), r) => r?,
        };
        ev.final_reply_code = Some(final_reply.code);
        if !final_reply.is_completion() {
            return Err(not_resumed(ClientError::reply(Phase::FinalReply, &final_reply)));
        }
        if req.command == TransferCommand::Retr {
            if let Some(expected) = req.bytes.filter(|&n| n != ev.bytes) {
                return Err(ClientError {
                    class: FailureClass::TransferAborted,
                    reply_code: Some(final_reply.code),
                    detail: format!("short data: received {} of {expected} bytes", ev.bytes),
                    control_lost: false,
                });
            }
        }
        Ok(())
    }
}

/// What opening a data connection's exchange recorded besides its result.
#[derive(Debug, Default)]
pub(crate) struct SecuredData {
    /// The TLS handshake finished (PROT P).
    pub t_tls_us: Option<u64>,
    /// The data connection's TLS handshake resumed the control connection's session.
    pub resumed: Option<bool>,
    /// Why the data connection's TLS handshake failed, when it failed before the server's
    /// preliminary reply (which is then the server's refusal of it).
    pub handshake_error: Option<String>,
    pub preliminary_code: Option<u16>,
    /// After a failed handshake: the server's final reply (its code, if one came) and when.
    pub final_reply: Option<(Option<u16>, u64)>,
}

impl ControlConnection {
    /// After a transfer command: its preliminary reply and the data connection to use, secured
    /// with TLS under PROT P. Servers differ in which comes first: vsftpd answers 150 and then
    /// accepts TLS, others secure the connection before they answer, so waiting for either
    /// before starting the other would deadlock with half of them. The data stream is `None`
    /// when the reply ends the exchange (a refusal, or 226 for an empty listing).
    pub(crate) async fn preliminary_reply_and_data(
        &mut self,
        tcp: TcpStream,
        secured_data: &mut SecuredData,
    ) -> Result<(Reply, Option<DataStream>), ClientError> {
        let Some((tls, connector)) = self.tls.clone() else {
            let prelim = self.read_reply(Phase::TransferStart).await?;
            secured_data.preliminary_code = Some(prelim.code);
            return Ok((prelim, Some(DataStream::Plain(tcp))));
        };
        self.secure_data(&tls, &connector, tcp, secured_data).await
    }

    /// As [`preliminary_reply_and_data`](Self::preliminary_reply_and_data), securing the data
    /// connection with `connector`'s session cache (the probe's fresh one tests whether the
    /// server demands a resumed session).
    pub(crate) async fn secure_data(
        &mut self,
        tls: &TlsClient,
        connector: &TlsConnector,
        tcp: TcpStream,
        secured_data: &mut SecuredData,
    ) -> Result<(Reply, Option<DataStream>), ClientError> {
        let clock = self.config.clock;
        let limit = self.config.timeouts.data_connect.max(self.config.timeouts.reply);
        let securing = handshake(tls, connector, tcp, limit, "data");
        tokio::pin!(securing);
        let mut secured = None;
        let prelim = {
            let config: &ClientConfig = &self.config;
            let preliminary = self.replies.read(config, Phase::TransferStart);
            tokio::pin!(preliminary);
            loop {
                tokio::select! {
                    r = &mut securing, if secured.is_none() => {
                        match &r {
                            Ok(s) => {
                                secured_data.t_tls_us = Some(clock.now_us());
                                secured_data.resumed = Some(resumed(s));
                            }
                            Err(e) => secured_data.handshake_error = Some(e.detail.clone()),
                        }
                        secured = Some(r);
                    }
                    r = &mut preliminary => break r?,
                }
            }
        };
        secured_data.preliminary_code = Some(prelim.code);
        if !prelim.is_preliminary() {
            return Ok((prelim, None));
        }
        let secured = match secured {
            Some(r) => r,
            None => {
                let r = securing.await;
                if let Ok(s) = &r {
                    secured_data.t_tls_us = Some(clock.now_us());
                    secured_data.resumed = Some(resumed(s));
                }
                r
            }
        };
        match secured {
            Ok(s) => Ok((prelim, Some(DataStream::Tls(Box::new(s))))),
            Err(e) => {
                // The server owes a reply for the data connection it lost (425, 426, or
                // vsftpd's `522 SSL connection failed`); reading it keeps the session usable.
                let reply = self.read_reply(Phase::FinalReply).await;
                let code = reply.as_ref().ok().map(|r| r.code);
                secured_data.final_reply = Some((code, clock.now_us()));
                Err(ClientError {
                    reply_code: code,
                    control_lost: reply.is_err(),
                    ..e
                })
            }
        }
    }
}

fn resumed(s: &super::stream::TlsStream) -> bool {
    s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

/// Why a server may refuse a data connection whose TLS session was new.
const NOT_RESUMED: &str = "this data connection did not resume the control connection's TLS session \
    (with TLS 1.3 each session ticket serves one data connection): a server that requires reuse \
    refuses it; try --tls-max-version 1.2";

async fn download(
    config: &ClientConfig,
    buf: &mut Vec<u8>,
    data: &mut DataStream,
    ev: &mut TransferEvent,
    mut collect: Option<(&mut Vec<u8>, usize)>,
) -> Result<(), ClientError> {
    let clock = config.clock;
    let idle = config.timeouts.idle;
    let cap = config.bandwidth_cap;
    let chunk = cap.map_or(CHUNK, chunk_for_cap);
    // Bytes nobody keeps or paces are dropped in the kernel, a megabyte a call at most, and
    // need no buffer: an idle session holds none.
    let discarding = collect.is_none() && cap.is_none();
    let in_kernel = discarding && !data.is_tls();
    if buf.len() < chunk && !in_kernel {
        buf.resize(chunk, 0);
    }
    let started = Instant::now();
    loop {
        let received = match data {
            DataStream::Plain(tcp) if discarding => {
                tokio::time::timeout(idle, super::stream::discard(tcp, DISCARD_MAX)).await
            }
            _ => tokio::time::timeout(idle, data.read(&mut buf[..chunk])).await,
        };
        let n = match received {
            Ok(Ok(n)) => n,
            // Many FTPS servers close the data connection without TLS's close_notify, as
            // curl and FileZilla tolerate; a short file is still caught by its size.
            Ok(Err(e)) if data.is_tls() && e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(Err(e)) => return Err(ClientError::io(Phase::Transfer, &e)),
            Err(_) => return Err(idle_timeout(idle, ev.bytes)),
        };
        if n == 0 {
            return Ok(());
        }
        if ev.t_first_byte_us.is_none() {
            ev.t_first_byte_us = Some(clock.now_us());
        }
        ev.bytes += n as u64;
        if let Some((kept, max)) = collect.as_mut() {
            let room = max.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        if let Some(c) = cap {
            pace(started, ev.bytes, c).await;
        }
    }
}

async fn upload(
    config: &ClientConfig,
    data: &mut DataStream,
    size: u64,
    ev: &mut TransferEvent,
) -> Result<(), ClientError> {
    let clock = config.clock;
    let idle = config.timeouts.idle;
    let cap = config.bandwidth_cap;
    let chunk = cap.map_or(CHUNK, chunk_for_cap) as u64;
    let started = Instant::now();
    while ev.bytes < size {
        let n = (size - ev.bytes).min(chunk) as usize;
        let sent = match data {
            // Plain: the kernel sends from the shared upload source's pages, as much as the
            // socket takes (one call per socket buffer, not per 64 KiB).
            DataStream::Plain(tcp) => {
                let n = if cap.is_some() { n } else { (size - ev.bytes) as usize };
                tokio::time::timeout(idle, super::stream::send_pattern(tcp, n)).await
            }
            DataStream::Tls(_) => tokio::time::timeout(idle, data.write_all(&UPLOAD_PATTERN[..n]))
                .await
                .map(|r| r.map(|()| n)),
        };
        let n = match sent {
            Ok(Ok(0)) => {
                return Err(ClientError::io(
                    Phase::Transfer,
                    &std::io::Error::from(std::io::ErrorKind::WriteZero),
                ))
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(ClientError::io(Phase::Transfer, &e)),
            Err(_) => return Err(idle_timeout(idle, ev.bytes)),
        };
        if ev.t_first_byte_us.is_none() {
            ev.t_first_byte_us = Some(clock.now_us());
        }
        ev.bytes += n as u64;
        if let Some(c) = cap {
            pace(started, ev.bytes, c).await;
        }
    }
    // The transfer is done when the last byte is handed over; the FIN that follows lets
    // the server close, so a later timestamp could postdate the server's release.
    ev.t_transfer_done_us = Some(clock.now_us());
    // FIN (after TLS's close_notify) tells the server the file is complete.
    match tokio::time::timeout(idle, data.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ClientError::io(Phase::Transfer, &e)),
        Err(_) => return Err(idle_timeout(idle, ev.bytes)),
    }
    if data.is_tls() {
        // A TLS server writes too (session tickets, its close_notify). Closing with those
        // unread makes the kernel answer with a reset, which can reach the server before it
        // has read the file's tail: libunftp then failed 42 of 365 uploads with 426.
        let mut sink = [0u8; 1024];
        loop {
            match tokio::time::timeout(idle, data.read(&mut sink)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => return Err(idle_timeout(idle, ev.bytes)),
            }
        }
    }
    Ok(())
}

fn idle_timeout(idle: Duration, bytes: u64) -> ClientError {
    ClientError::timeout(
        Phase::Transfer,
        &format!("data connection idle for {idle:?} after {bytes} bytes"),
    )
}

/// Chunks of about 1/20 s of the cap keep a capped connection's rate smooth.
fn chunk_for_cap(cap: u64) -> usize {
    usize::try_from(cap / 20).unwrap_or(CHUNK).clamp(512, CHUNK)
}

/// Sleeps until `bytes` is on schedule for `cap` bytes/s since `started`.
async fn pace(started: Instant, bytes: u64, cap: u64) {
    let due = Duration::from_secs_f64(bytes as f64 / cap as f64);
    let elapsed = started.elapsed();
    if due > elapsed {
        tokio::time::sleep(due - elapsed).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_chunks_are_bounded() {
        assert_eq!(chunk_for_cap(1), 512);
        assert_eq!(chunk_for_cap(200_000), 10_000);
        assert_eq!(chunk_for_cap(u64::MAX), CHUNK);
    }
}
