//! The control connection: bounded line reading, reply assembly, commands with timeouts.

use super::error::{ClientError, Phase};
use super::reply::{LineAssembler, Reply, ReplyParser};
use super::stream::{ControlRead, ControlWrite, TlsStream};
use super::ClientConfig;
use crate::target::Security;
use crate::tls::TlsClient;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

/// Timestamps of establishing a control connection, µs since the run started.
#[derive(Debug, Clone, Default)]
pub struct ConnectTimes {
    pub t_connect_start_us: u64,
    pub t_connected_us: Option<u64>,
    pub t_greeting_us: Option<u64>,
    /// The control connection's TLS handshake finished (FTPS only): before the greeting for
    /// implicit FTPS, after AUTH TLS for explicit.
    pub t_tls_us: Option<u64>,
}

pub struct ControlConnection {
    pub(super) replies: ReplyReader,
    writer: ControlWrite,
    /// This connection's TLS settings and session cache (FTPS only): its data connections
    /// resume its session.
    pub(super) tls: Option<(Arc<TlsClient>, TlsConnector)>,
    pub(super) peer: SocketAddr,
    pub(super) local_ip: IpAddr,
    /// The control connection's source address was chosen (`source_addresses`), so data
    /// connections must be bound to it too; otherwise the kernel's route picks the same one.
    pub(super) source_chosen: bool,
    pub(super) config: Arc<ClientConfig>,
    /// Reusable buffer for downloads, so a transfer allocates nothing.
    pub(super) data_buf: Vec<u8>,
    /// The server's 220 text: it names the server, which tells `plan` how it treats ports.
    greeting: String,
}

/// The control connection's read side: lines in, replies out.
pub(super) struct ReplyReader {
    reader: BufReader<ControlRead>,
    line: LineAssembler,
}

impl ReplyReader {
    fn new(read: ControlRead) -> Self {
        ReplyReader {
            reader: BufReader::with_capacity(512, read),
            line: LineAssembler::new(),
        }
    }

    async fn read_line(&mut self, phase: Phase) -> Result<(), ClientError> {
        self.line.clear();
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(b) => b,
                Err(e) => return Err(ClientError::io(phase, &e)),
            };
            if available.is_empty() {
                return Err(ClientError::closed(phase, "server closed the control connection"));
            }
            let (take, done) = self
                .line
                .push(available)
                .map_err(|e| ClientError::protocol(e.to_string()))?;
            self.reader.consume(take);
            if done {
                return Ok(());
            }
        }
    }

    /// Reads one complete (possibly multi-line) reply within the reply timeout.
    pub(super) async fn read(&mut self, config: &ClientConfig, phase: Phase) -> Result<Reply, ClientError> {
        let limit = config.timeouts.reply;
        let read = async {
            let mut parser = ReplyParser::new();
            loop {
                self.read_line(phase).await?;
                let raw = String::from_utf8_lossy(self.line.line());
                // A server may echo the password ("530 bad password 'x'"): it is scrubbed
                // here, before any reply text can reach a record, a log or the screen.
                let text = config.password.scrub_cow(&raw);
                match parser.feed(&text) {
                    Ok(Some(reply)) => return Ok(reply),
                    Ok(None) => continue,
                    Err(e) => return Err(ClientError::protocol(e.to_string())),
                }
            }
        };
        match tokio::time::timeout(limit, read).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::timeout(phase, &format!("no reply within {limit:?}"))),
        }
    }

    /// Waits until the server has sent something (or closed), without consuming it: safe to
    /// drop at any point, so it can race a data transfer.
    pub(super) async fn server_spoke(&mut self) {
        let _ = self.reader.fill_buf().await;
    }
}

/// Opens a TCP connection from `source` (or a kernel-chosen address) within `limit`.
pub(super) async fn connect_tcp(
    addr: SocketAddr,
    source: Option<IpAddr>,
    limit: Duration,
    phase: Phase,
) -> Result<TcpStream, ClientError> {
    let attempt = async {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(ip) = source {
            // Port chosen at connect(), per destination, not reserved for every destination at
            // bind(): a load from one source address is not capped by bind()'s port search.
            bind_address_no_port(&socket);
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(addr).await?;
        // Commands are small and latency matters more than packet count.
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ClientError::io(phase, &e)),
        Err(_) => Err(ClientError::timeout(
            phase,
            &format!("no TCP connection to {addr} within {limit:?}"),
        )),
    }
}

/// The TLS handshake on `tcp`, within `limit`; any failure is `tls_error` with rustls's reason.
pub(super) async fn handshake(
    tls: &TlsClient,
    connector: &TlsConnector,
    tcp: TcpStream,
    limit: Duration,
    what: &str,
) -> Result<TlsStream, ClientError> {
    match tokio::time::timeout(limit, connector.connect(tls.server_name.clone(), tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ClientError::tls(format!("{what} TLS handshake failed: {e}"))),
        Err(_) => Err(ClientError::tls(format!("no {what} TLS handshake within {limit:?}"))),
    }
}

/// Linux's IP_BIND_ADDRESS_NO_PORT. Best effort: without it bind() reserves a port as before.
fn bind_address_no_port(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor owned by `socket`, and a pointer to a live c_int with its size.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

impl ControlConnection {
    /// Connects and reads the greeting, securing the connection first (implicit FTPS) or
    /// right after (explicit: AUTH TLS). Times are filled in `times` as phases complete, so a
    /// failure still leaves the phases that were reached.
    pub async fn open(
        config: Arc<ClientConfig>,
        addr: SocketAddr,
        source: Option<IpAddr>,
        times: &mut ConnectTimes,
    ) -> Result<ControlConnection, ClientError> {
        let clock = config.clock;
        times.t_connect_start_us = clock.now_us();
        let stream = connect_tcp(addr, source, config.timeouts.connect, Phase::Connect).await?;
        times.t_connected_us = Some(clock.now_us());
        let local_ip = stream
            .local_addr()
            .map(|a| a.ip())
            .map_err(|e| ClientError::io(Phase::Connect, &e))?;
        let tls = config.tls.clone().map(|t| {
            let connector = t.for_session();
            (t, connector)
        });
        let (read, write) = match &tls {
            Some((t, connector)) if t.security == Security::ImplicitTls => {
                let secured = handshake(t, connector, stream, config.timeouts.reply, "control").await?;
                times.t_tls_us = Some(clock.now_us());
                let (r, w) = tokio::io::split(secured);
                (ControlRead::Tls(r), ControlWrite::Tls(w))
            }
            _ => {
                let (r, w) = stream.into_split();
                (ControlRead::Plain(r), ControlWrite::Plain(w))
            }
        };
        let explicit = tls.as_ref().is_some_and(|(t, _)| t.security == Security::ExplicitTls);
        let mut conn = ControlConnection {
            replies: ReplyReader::new(read),
            writer: write,
            tls,
            peer: addr,
            local_ip,
            source_chosen: source.is_some(),
            config,
            data_buf: Vec::new(),
            greeting: String::new(),
        };
        let greeting = conn.read_reply(Phase::Greeting).await?;
        // 120 "service ready in nnn minutes" precedes the real greeting.
        let greeting = if greeting.code == 120 {
            conn.read_reply(Phase::Greeting).await?
        } else {
            greeting
        };
        if greeting.code != 220 {
            return Err(ClientError::reply(Phase::Greeting, &greeting));
        }
        times.t_greeting_us = Some(clock.now_us());
        conn.greeting = greeting.text;
        if explicit {
            conn = conn.auth_tls().await?;
            times.t_tls_us = Some(clock.now_us());
        }
        Ok(conn)
    }

    /// AUTH TLS and the handshake: the plain connection becomes a TLS one.
    async fn auth_tls(mut self) -> Result<ControlConnection, ClientError> {
        let reply = self.command("AUTH TLS", Phase::Tls).await?;
        if reply.code != 234 {
            return Err(ClientError::tls(format!(
                "the server does not offer explicit FTPS: AUTH TLS answered {reply}"
            )));
        }
        let ControlConnection {
            replies,
            writer,
            tls,
            peer,
            local_ip,
            source_chosen,
            config,
            data_buf,
            greeting,
        } = self;
        if !replies.reader.buffer().is_empty() {
            // Bytes after the 234 would be plaintext injected ahead of the handshake.
            return Err(ClientError::tls(
                "the server sent data after 234, before the TLS handshake",
            ));
        }
        let (ControlRead::Plain(r), ControlWrite::Plain(w), Some((t, connector))) =
            (replies.reader.into_inner(), writer, tls)
        else {
            return Err(ClientError::tls("AUTH TLS on a connection that is already secured"));
        };
        let tcp = r
            .reunite(w)
            .map_err(|e| ClientError::tls(format!("cannot take back the control connection: {e}")))?;
        let secured = handshake(&t, &connector, tcp, config.timeouts.reply, "control").await?;
        let (r, w) = tokio::io::split(secured);
        Ok(ControlConnection {
            replies: ReplyReader::new(ControlRead::Tls(r)),
            writer: ControlWrite::Tls(w),
            tls: Some((t, connector)),
            peer,
            local_ip,
            source_chosen,
            config,
            data_buf,
            greeting,
        })
    }

    /// The TLS settings this connection was secured with (FTPS only).
    pub fn tls_client(&self) -> Option<Arc<TlsClient>> {
        self.tls.as_ref().map(|(t, _)| t.clone())
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Reads one complete (possibly multi-line) reply within the reply timeout.
    pub async fn read_reply(&mut self, phase: Phase) -> Result<Reply, ClientError> {
        self.replies.read(&self.config, phase).await
    }

    pub async fn send(&mut self, command: &str, phase: Phase) -> Result<(), ClientError> {
        // A path or user name with a line break would smuggle a second command.
        if command.contains(['\r', '\n']) {
            return Err(ClientError::protocol(
                "refusing to send a command containing a line break",
            ));
        }
        let limit = self.config.timeouts.reply;
        let mut line = Vec::with_capacity(command.len() + 2);
        line.extend_from_slice(command.as_bytes());
        line.extend_from_slice(b"\r\n");
        match tokio::time::timeout(limit, self.writer.write_all(&line)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ClientError::io(phase, &e)),
            Err(_) => Err(ClientError::timeout(
                phase,
                "could not send a command (server not reading)",
            )),
        }
    }

    /// Sends a command and reads its reply; the reply may be negative (that is data).
    pub async fn command(&mut self, command: &str, phase: Phase) -> Result<Reply, ClientError> {
        self.send(command, phase).await?;
        self.read_reply(phase).await
    }

    /// Polite goodbye; failures are irrelevant once our work on the connection is done.
    pub async fn quit(mut self) {
        let limit = Duration::from_secs(2).min(self.config.timeouts.reply);
        let _ = tokio::time::timeout(limit, async {
            if self.send("QUIT", Phase::Housekeeping).await.is_ok() {
                let _ = self.read_reply(Phase::Housekeeping).await;
            }
        })
        .await;
        let _ = self.writer.shutdown().await;
    }
}
