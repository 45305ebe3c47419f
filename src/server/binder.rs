//! How the embedded server picks a passive port: libunftp's policy (9 random tries in the
//! range, then `425`), without libunftp's bind/listen race, on one thread of its own.
//!
//! Stock libunftp binds a random port with SO_REUSEADDR and calls listen() afterwards. Two
//! sessions can bind the same port in between; the second listen() then fails with
//! EADDRINUSE, and libunftp turns that error into a dropped control connection instead of a
//! retry or a 425. (Measured: 2 dropped sessions in 8,440 PASVs over a 100-port range with 16
//! control connections.) We listen right after binding, so a collision costs one of the nine
//! tries, exactly as a port found busy at bind() does.
//!
//! The binds run on one thread, one at a time, not on the async runtime's workers. A bind()
//! walks every TIME_WAIT socket on its port (Linux's bind conflict check), which on a narrow
//! range under load is thousands of sockets and most of a millisecond: on a worker it holds up
//! every task of that worker, our own client's included. Tried on `spawn_blocking` instead, a
//! burst's walks all took the cores at once. One thread bounds the walks to one core and leaves
//! the sessions running; a busy range then shows as slower PASV replies, as it would on a
//! server with a process per session.

use async_trait::async_trait;
use rand::Rng;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::mpsc;
use tokio::net::TcpSocket;
use tokio::sync::oneshot;

/// libunftp tries `1..BIND_RETRIES` (= 10), i.e. nine ports.
pub const RANDOM_TRIES: u32 = 9;
const BACKLOG: i32 = 1024;

struct BindRequest {
    ip: IpAddr,
    ports: RangeInclusive<u16>,
    reply: oneshot::Sender<io::Result<TcpSocket>>,
}

/// The bind thread's queue. The thread ends once every clone is dropped (the server and all
/// its sessions gone).
#[derive(Clone)]
pub struct BindThread {
    requests: mpsc::Sender<BindRequest>,
}

impl std::fmt::Debug for BindThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BindThread")
    }
}

impl BindThread {
    pub fn start() -> io::Result<BindThread> {
        let (requests, queue) = mpsc::channel::<BindRequest>();
        std::thread::Builder::new()
            .name("ftpswarm-pasv-bind".into())
            .spawn(move || {
                let mut rng = rand::rng();
                for r in queue {
                    // A session that has gone meanwhile drops its socket with the reply.
                    let _ = r.reply.send(bind_random(&mut rng, r.ip, r.ports));
                }
            })?;
        Ok(BindThread { requests })
    }

    /// A binder for one session.
    pub fn binder(&self) -> ListeningBinder {
        ListeningBinder { thread: self.clone() }
    }
}

#[derive(Debug)]
pub struct ListeningBinder {
    thread: BindThread,
}

fn try_port(ip: IpAddr, port: u16) -> io::Result<TcpSocket> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(ip, port))?;
    // libunftp calls listen() again on the socket we return; on a listening socket that only
    // updates the backlog.
    socket2::SockRef::from(&socket).listen(BACKLOG)?;
    Ok(socket)
}

fn bind_random(rng: &mut impl Rng, ip: IpAddr, ports: RangeInclusive<u16>) -> io::Result<TcpSocket> {
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free passive port found");
    for _ in 0..RANDOM_TRIES {
        let port = rng.random_range(ports.clone());
        match try_port(ip, port) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[async_trait]
impl libunftp::options::Binder for ListeningBinder {
    async fn bind(&mut self, local_addr: IpAddr, passive_ports: RangeInclusive<u16>) -> io::Result<TcpSocket> {
        let gone = || io::Error::other("the embedded server's bind thread has stopped");
        let (reply, answer) = oneshot::channel();
        self.thread
            .requests
            .send(BindRequest {
                ip: local_addr,
                ports: passive_ports,
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libunftp::options::Binder;

    #[tokio::test]
    async fn a_listening_port_is_never_handed_out_twice() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        // Find a free port and make it the whole range.
        let probe = std::net::TcpListener::bind((ip, 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let thread = BindThread::start().unwrap();
        let (mut b, mut other) = (thread.binder(), thread.binder());
        let first = b.bind(ip, port..=port).await.unwrap();
        assert_eq!(first.local_addr().unwrap().port(), port);
        // The port is listening now: another session must be refused, not given the port.
        let second = other.bind(ip, port..=port).await;
        assert_eq!(second.err().map(|e| e.kind()), Some(io::ErrorKind::AddrInUse));
        drop(first);
        assert!(
            other.bind(ip, port..=port).await.is_ok(),
            "the port is free again once released"
        );
    }

    #[tokio::test]
    async fn a_session_binds_after_the_server_has_let_go_of_the_thread() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        let thread = BindThread::start().unwrap();
        let mut b = thread.binder();
        drop(thread);
        // The session's binder keeps the thread alive.
        let s = b.bind(ip, 0..=0).await.unwrap();
        assert_ne!(s.local_addr().unwrap().port(), 0);
    }
}
