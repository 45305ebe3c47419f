//! A cap on the length of control lines, in front of libunftp.
//!
//! libunftp 0.24 splits the control stream on `\n` into a buffer that grows without limit: a
//! client sending 256 MiB without a newline made the server allocate 256 MiB. It has no
//! setting for a limit, and [`libunftp::Server::service`] takes only a `tokio::net::TcpStream`,
//! so the bytes cannot be filtered on their way in. Instead the client's connection is relayed
//! through a second TCP connection made on this machine: libunftp serves that one, and the
//! relay passes whole lines of at most [`MAX_COMMAND_LINE`] bytes. A longer line gets `500`
//! and the connection is closed.
//!
//! libunftp takes two facts from its control socket: its local address (where it opens
//! passive ports and what a 227 announces) and its peer's IP (data connections from any other
//! IP are refused). The inner connection therefore goes to a listener on the IP the client
//! connected to, and comes from the client's own IP. That is possible only when the client's
//! IP is an address of this machine (loopback, or a local client using a local address):
//! clients on other hosts are served directly, without the cap, and a warning says so once.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Longest control line passed on, CR LF included. RFC 959 sets no limit; a command is a
/// verb and a path, and paths stay far below this.
pub const MAX_COMMAND_LINE: usize = 8 * 1024;

/// The reply to an over-long line, before the connection is closed.
pub const TOO_LONG_REPLY: &str = "500 Command line too long; closing the control connection.\r\n";

/// How long the inner connection may take to be made and matched.
const PAIRING_WAIT: Duration = Duration::from_secs(5);

/// How long libunftp may take to finish its last reply once the client has closed.
const CLOSING_WAIT: Duration = Duration::from_secs(5);

/// After the 500: how long and how much of the client's input is read and dropped.
const DRAIN_WAIT: Duration = Duration::from_secs(1);
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

enum Slot {
    /// The relay connected and waits for the accepted end.
    Waiting(oneshot::Sender<TcpStream>),
    /// The listener accepted before the relay asked.
    Arrived(TcpStream),
}

type Slots = Arc<Mutex<HashMap<SocketAddr, Slot>>>;

/// One listener for inner connections on one local IP.
struct InnerListener {
    addr: SocketAddr,
    slots: Slots,
    task: JoinHandle<()>,
}

impl InnerListener {
    async fn start(ip: IpAddr) -> io::Result<InnerListener> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let slots: Slots = Arc::default();
        let task = tokio::spawn(dispatch(listener, slots.clone()));
        Ok(InnerListener { addr, slots, task })
    }
}

/// Hands each accepted inner connection to the relay that made it (known by its address).
async fn dispatch(listener: TcpListener, slots: Slots) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let mut map = slots.lock().unwrap_or_else(PoisonError::into_inner);
                match map.remove(&peer) {
                    Some(Slot::Waiting(tx)) => {
                        let _ = tx.send(stream);
                    }
                    _ => {
                        map.insert(peer, Slot::Arrived(stream));
                    }
                }
            }
            Err(e) => {
                tracing::warn!("embedded server: inner accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The inner listeners of one server, one per local IP that clients connect to.
#[derive(Default)]
pub struct LineGuard {
    listeners: HashMap<IpAddr, InnerListener>,
    warned_remote: Arc<AtomicBool>,
}

/// What the session task needs to relay one client.
pub struct Pairing {
    inner: SocketAddr,
    slots: Slots,
    warned_remote: Arc<AtomicBool>,
}

impl LineGuard {
    /// Prepares the relay of `client` (cheap; the connecting happens in [`Pairing::connect`]).
    /// `None` when no inner listener can be had: the client is then served directly.
    pub async fn pairing(&mut self, client: &TcpStream) -> Option<Pairing> {
        let local = client.local_addr().ok()?.ip();
        if let std::collections::hash_map::Entry::Vacant(slot) = self.listeners.entry(local) {
            match InnerListener::start(local).await {
                Ok(l) => {
                    slot.insert(l);
                }
                Err(e) => {
                    tracing::warn!("embedded server: no inner listener on {local} ({e}); control lines are not capped");
                    return None;
                }
            }
        }
        let l = self.listeners.get(&local)?;
        Some(Pairing {
            inner: l.addr,
            slots: l.slots.clone(),
            warned_remote: self.warned_remote.clone(),
        })
    }
}

impl Drop for LineGuard {
    fn drop(&mut self) {
        for l in self.listeners.values() {
            l.task.abort();
        }
    }
}

impl Pairing {
    /// Makes the inner connection for `client`: returns the stream libunftp is to serve and a
    /// future relaying between it and the client. Gives the client back when the inner
    /// connection cannot come from the client's IP (a client on another host).
    pub async fn connect(self, client: TcpStream) -> Result<(TcpStream, Relay), TcpStream> {
        let Ok(peer) = client.peer_addr() else {
            return Err(client);
        };
        match tokio::time::timeout(PAIRING_WAIT, self.make_inner(peer.ip())).await {
            Ok(Ok((served, ours))) => Ok((served, Relay { client, inner: ours })),
            Ok(Err(e)) => {
                if e.kind() == io::ErrorKind::AddrNotAvailable {
                    if !self.warned_remote.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "embedded server: control lines from {} (another host) are not length-capped: \
                             libunftp can only be handed a TCP stream, and a relayed one would come from this host",
                            peer.ip()
                        );
                    }
                } else {
                    tracing::warn!("embedded server: cannot relay {peer} ({e}); control lines are not capped");
                }
                Err(client)
            }
            Err(_) => {
                tracing::warn!("embedded server: relay for {peer} timed out; control lines are not capped");
                Err(client)
            }
        }
    }

    async fn make_inner(&self, from: IpAddr) -> io::Result<(TcpStream, TcpStream)> {
        let socket = match from {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // To a local IP the kernel picks that IP as the source; bind only for another one,
        // e.g. a client that came from 127.0.0.2.
        if from != self.inner.ip() {
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::new(from, 0))?;
        }
        let ours = socket.connect(self.inner).await?;
        let key = ours.local_addr()?;
        if key.ip() != from {
            return Err(io::Error::new(io::ErrorKind::AddrNotAvailable, "relay source differs"));
        }
        let rx = {
            let mut map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            match map.remove(&key) {
                Some(Slot::Arrived(s)) => return Self::finish(s, ours),
                _ => {
                    let (tx, rx) = oneshot::channel();
                    map.insert(key, Slot::Waiting(tx));
                    rx
                }
            }
        };
        match rx.await {
            Ok(s) => Self::finish(s, ours),
            Err(_) => Err(io::Error::other("inner listener stopped")),
        }
    }

    fn finish(served: TcpStream, ours: TcpStream) -> io::Result<(TcpStream, TcpStream)> {
        served.set_nodelay(true)?;
        ours.set_nodelay(true)?;
        Ok((served, ours))
    }
}

/// Relays one control connection: client to libunftp in lines of at most
/// [`MAX_COMMAND_LINE`] bytes, libunftp to client as is.
pub struct Relay {
    client: TcpStream,
    inner: TcpStream,
}

/// Why the relay stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Either side closed (or failed).
    Closed,
    /// The client sent an over-long line: it got `500` and was disconnected.
    LineTooLong,
}

/// Counts the bytes of the line in progress across reads; tells where the first over-long
/// line starts.
#[derive(Debug, Default)]
pub struct LineLimit {
    line_len: usize,
}

impl LineLimit {
    /// `Ok(())` when every line in `chunk` stays within the cap, else `Err(n)`: the first `n`
    /// bytes (whole lines) may still be passed on, the rest starts the over-long line.
    pub fn check(&mut self, chunk: &[u8]) -> Result<(), usize> {
        let mut start = 0;
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            self.line_len += piece.len();
            if self.line_len > MAX_COMMAND_LINE {
                return Err(start);
            }
            if piece.last() == Some(&b'\n') {
                self.line_len = 0;
            }
            start += piece.len();
        }
        Ok(())
    }
}

enum UpEnd {
    ClientClosed,
    TooLong,
}

async fn pump_up(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf) -> UpEnd {
    let mut buf = vec![0u8; 8 * 1024];
    let mut limit = LineLimit::default();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return UpEnd::ClientClosed;
            }
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        match limit.check(chunk) {
            Ok(()) => {
                if to.write_all(chunk).await.is_err() {
                    return UpEnd::ClientClosed;
                }
            }
            Err(ok) => {
                let _ = to.write_all(&chunk[..ok]).await;
                let _ = to.shutdown().await;
                return UpEnd::TooLong;
            }
        }
    }
}

/// Copies libunftp's replies to the client; remembers whether the last byte ended a line.
async fn pump_down(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf, at_line_start: &mut bool) {
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                *at_line_start = buf[n - 1] == b'\n';
            }
        }
    }
}

impl Relay {
    pub async fn run(self) -> RelayEnd {
        let (mut client_r, mut client_w) = self.client.into_split();
        let (mut inner_r, mut inner_w) = self.inner.into_split();
        let mut at_line_start = true;
        let end = {
            let up = pump_up(&mut client_r, &mut inner_w);
            let down = pump_down(&mut inner_r, &mut client_w, &mut at_line_start);
            tokio::pin!(up, down);
            tokio::select! {
                end = &mut up => match end {
                    UpEnd::ClientClosed => {
                        // libunftp has seen the end of input; let its last replies through.
                        let _ = tokio::time::timeout(CLOSING_WAIT, &mut down).await;
                        RelayEnd::Closed
                    }
                    UpEnd::TooLong => RelayEnd::LineTooLong,
                },
                () = &mut down => RelayEnd::Closed,
            }
        };
        if end == RelayEnd::LineTooLong {
            let reply = if at_line_start {
                TOO_LONG_REPLY.to_string()
            } else {
                format!("\r\n{TOO_LONG_REPLY}")
            };
            let _ = tokio::time::timeout(CLOSING_WAIT, client_w.write_all(reply.as_bytes())).await;
            let _ = client_w.shutdown().await;
            // Closing with input unread would reset the connection, and the reset can reach
            // the client before it has read the 500: read (and drop) what is still coming,
            // briefly and up to a bound.
            let drain = async {
                let mut buf = vec![0u8; 8 * 1024];
                let mut left = DRAIN_BYTES;
                while left > 0 {
                    match client_r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_WAIT, drain).await;
            return end;
        }
        let _ = client_w.shutdown().await;
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_pass_across_reads() {
        let mut l = LineLimit::default();
        assert_eq!(l.check(b"USER bob\r\nPASS x\r\n"), Ok(()));
        let half = vec![b'a'; MAX_COMMAND_LINE / 2];
        assert_eq!(l.check(&half), Ok(()));
        assert_eq!(l.check(&half[..MAX_COMMAND_LINE / 2 - 2]), Ok(()));
        assert_eq!(l.check(b"\r\n"), Ok(()), "exactly the cap, CR LF included");
        assert_eq!(l.check(b"NOOP\r\n"), Ok(()));
    }

    #[test]
    fn an_over_long_line_is_cut_at_its_start() {
        let mut l = LineLimit::default();
        let mut chunk = b"NOOP\r\n".to_vec();
        chunk.extend(vec![b'x'; MAX_COMMAND_LINE + 1]);
        assert_eq!(l.check(&chunk), Err(6));
        let mut l = LineLimit::default();
        assert_eq!(l.check(&vec![b'x'; MAX_COMMAND_LINE]), Ok(()));
        assert_eq!(l.check(b"y"), Err(0), "the line began in an earlier read");
    }
}
