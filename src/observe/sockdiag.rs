//! The server's sockets on the passive range, from the kernel's sock_diag netlink interface.
//!
//! /proc/net/tcp lists every socket of the host as text, tens of thousands of TIME_WAITs after
//! a busy loopback run, so reading it every tick would cost more than the load generator
//! itself. sock_diag filters by TCP state in the kernel: a dump of everything but TIME_WAIT
//! returns only the live sockets (a few hundred), cheap enough for every sample. TIME_WAIT is
//! counted by a dump of every state, on a CPU budget (see the sampler); /proc
//! ([`sample_sockets`]) only where netlink is not available.

use crate::port_range::PortRange;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use std::io;

/// TCP states as the kernel numbers them (include/net/tcp_states.h).
const TCP_ESTABLISHED: u8 = 1;
const TCP_TIME_WAIT: u8 = 6;
const TCP_LISTEN: u8 = 10;

/// Sockets whose local port is in the passive range, by TCP state: the server side of every
/// passive listener and data connection (our own data sockets use ephemeral local ports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounts {
    pub listen: u32,
    pub established: u32,
    /// Unknown on samples where the (costly) TIME_WAIT count was not read.
    pub time_wait: Option<u32>,
    pub other: u32,
}

impl SocketCounts {
    pub fn total(&self) -> u32 {
        self.listen + self.established + self.time_wait.unwrap_or(0) + self.other
    }
}

/// Counts the sockets on `range` in /proc/net/tcp and tcp6. `None` when neither is readable
/// (not Linux, or no procfs).
pub fn sample_sockets(range: PortRange) -> Option<SocketCounts> {
    use procfs::net::TcpState;
    let mut counts = SocketCounts {
        time_wait: Some(0),
        ..SocketCounts::default()
    };
    let mut any = false;
    for table in [procfs::net::tcp(), procfs::net::tcp6()] {
        let Ok(entries) = table else { continue };
        any = true;
        for e in entries.iter().filter(|e| range.contains(e.local_address.port())) {
            match e.state {
                TcpState::Listen => counts.listen += 1,
                TcpState::Established => counts.established += 1,
                TcpState::TimeWait => counts.time_wait = Some(counts.time_wait.unwrap_or(0) + 1),
                _ => counts.other += 1,
            }
        }
    }
    any.then_some(counts)
}

/// Linux's cap on the TIME_WAIT sockets this host keeps at once (`net.ipv4.tcp_max_tw_buckets`):
/// past it a closing socket skips TIME_WAIT. `None` where it cannot be read.
pub fn host_time_wait_cap() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_max_tw_buckets")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&cap| cap > 0)
}

pub struct SockDiag {
    socket: Socket,
    buf: Vec<u8>,
    /// Each dump's sequence number: replies left over from a dump that failed half-way are
    /// recognised by theirs and skipped, so they are never counted as the next dump's.
    sequence: u32,
}

impl SockDiag {
    pub fn open() -> io::Result<SockDiag> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(SockDiag {
            socket,
            buf: vec![0; 64 * 1024],
            sequence: 0,
        })
    }

    /// Live (non-TIME_WAIT) sockets whose local port is in `range`, for the server's address
    /// family (the kernel walks the whole table of a family per dump, TIME_WAITs included, so
    /// one family is half the cost); the `time_wait` field is left unknown.
    pub fn count(&mut self, range: PortRange, ipv6: bool) -> io::Result<SocketCounts> {
        let mut counts = SocketCounts {
            listen: 0,
            established: 0,
            time_wait: None,
            other: 0,
        };
        let states = StateFlags::all() - StateFlags::TIME_WAIT;
        self.dump(if ipv6 { AF_INET6 } else { AF_INET }, states, range, &mut counts)?;
        Ok(counts)
    }

    /// Every socket on `range` in both families, TIME_WAIT included: the sockets on the range
    /// before a load, and the sampler's rows that count TIME_WAIT. The kernel walks every socket of the host either way, but a binary
    /// dump costs a sixth of formatting /proc/net/tcp as text (21 ms of a 1,000-transfer run
    /// with 23,000 sockets on the host).
    pub fn count_all(&mut self, range: PortRange) -> io::Result<SocketCounts> {
        let mut counts = SocketCounts {
            time_wait: Some(0),
            ..SocketCounts::default()
        };
        for family in [AF_INET, AF_INET6] {
            self.dump(family, StateFlags::all(), range, &mut counts)?;
        }
        Ok(counts)
    }

    /// Listening sockets whose local port is in `range`, in both address families: the ports
    /// the server holds (a dual-stack server reached over 127.0.0.1 may listen on `::` for its
    /// passive ports). A dump of LISTEN alone walks only the kernel's listener table, never the
    /// established and TIME_WAIT ones (`inet_diag_dump_icsk`), so it stays cheap however busy
    /// the host is: cheap enough to take hundreds of times a second and average the server's
    /// holds (see the timeline's `srv_listen_mean`).
    pub fn count_listeners(&mut self, range: PortRange) -> io::Result<u32> {
        let mut counts = SocketCounts::default();
        for family in [AF_INET, AF_INET6] {
            self.dump(family, StateFlags::LISTEN, range, &mut counts)?;
        }
        Ok(counts.listen)
    }

    fn dump(&mut self, family: u8, states: StateFlags, range: PortRange, counts: &mut SocketCounts) -> io::Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.sequence;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id: if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            })
            .into(),
        );
        request.finalize();
        let mut out = vec![0; request.buffer_len()];
        request.serialize(&mut out);
        self.socket.send(&out, 0)?;
        loop {
            let size = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[offset..size])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = message.header.length as usize;
                if message.header.sequence_number != self.sequence {
                    // The tail of an earlier dump that failed half-way.
                    if length == 0 {
                        break;
                    }
                    offset += length;
                    continue;
                }
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r))
                        if range.contains(r.header.socket_id.source_port) =>
                    {
                        match r.header.state {
                            TCP_LISTEN => counts.listen += 1,
                            TCP_ESTABLISHED => counts.established += 1,
                            TCP_TIME_WAIT if counts.time_wait.is_some() => {
                                counts.time_wait = counts.time_wait.map(|n| n + 1);
                            }
                            _ => counts.other += 1,
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        return Err(io::Error::other(format!("sock_diag: {e:?}")));
                    }
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_listeners_and_connections_on_the_range() {
        let mut diag = match SockDiag::open() {
            Ok(d) => d,
            // CI runs on Linux with sock_diag: a skip there would hide a broken socket view.
            Err(e) if std::env::var_os("CI").is_some() => panic!("CI: sock_diag is required: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: no sock_diag on this machine: {e}");
                return;
            }
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let range = PortRange { min: port, max: port };
        let c = diag.count(range, false).unwrap();
        assert_eq!((c.listen, c.established, c.time_wait), (1, 0, None));
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = l.accept().unwrap();
        let c = diag.count(range, false).unwrap();
        // The accepted socket has the range's port locally; the client's does not.
        assert_eq!((c.listen, c.established), (1, 1));
        assert_eq!(diag.count_listeners(range).unwrap(), 1);
        assert_eq!(
            diag.count_all(range).unwrap(),
            SocketCounts {
                listen: 1,
                established: 1,
                time_wait: Some(0),
                other: 0
            }
        );
        drop(l);
        // The established pair stays; the listener is gone.
        assert_eq!(diag.count_listeners(range).unwrap(), 0);
        assert_eq!(diag.count(range, false).unwrap().established, 1);
        // The server side closes first: its end of the pair, on the range, waits in TIME_WAIT.
        drop(_server);
        let mut buf = [0u8; 1];
        let _ = std::io::Read::read(&mut &client, &mut buf);
        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut all = diag.count_all(range).unwrap();
        while all.time_wait != Some(1) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            all = diag.count_all(range).unwrap();
        }
        assert_eq!(all.time_wait, Some(1), "{all:?}");
        // The text view agrees.
        assert_eq!(sample_sockets(range).unwrap().time_wait, Some(1));
    }
}

/// How long one LISTEN-only dump takes on this host, with and without a crowd of TIME_WAITs:
/// `cargo test --release --lib listener_dump_cost -- --ignored --nocapture`.
#[cfg(test)]
#[test]
#[ignore]
fn listener_dump_cost() {
    let mut diag = SockDiag::open().unwrap();
    let range = PortRange { min: 30000, max: 30099 };
    let time = |diag: &mut SockDiag, f: &dyn Fn(&mut SockDiag)| {
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            f(diag);
        }
        t.elapsed() / 1000
    };
    let listeners = time(&mut diag, &|d| {
        d.count_listeners(range).unwrap();
    });
    let live = time(&mut diag, &|d| {
        d.count(range, false).unwrap();
    });
    let tw = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    eprintln!(
        "LISTEN-only dump {listeners:?}, all but TIME_WAIT {live:?}; {}",
        tw.lines().nth(1).unwrap_or("")
    );
}

/// Prices a TIME_WAIT count both ways on this host as it is (run after a busy loopback run,
/// with thousands of TIME_WAITs): `cargo test --release --lib time_wait_cost -- --ignored --nocapture`.
/// The sampler's `time_wait_read_cost` comes from it.
#[cfg(test)]
#[test]
#[ignore = "a measurement, not a check: it depends on the host's sockets"]
fn time_wait_cost() {
    let range = PortRange { min: 1, max: 65535 };
    let tw = std::fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("TCP:"))?.to_string();
            let mut w = line.split_whitespace();
            w.find(|x| *x == "tw")?;
            w.next()?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    let mut diag = SockDiag::open().unwrap();
    let rounds = 20;
    let t0 = cpu_time::ThreadTime::now();
    let mut n = 0;
    for _ in 0..rounds {
        // What the sampler's TIME_WAIT rows read: every state, both families.
        n = diag.count_all(range).unwrap().time_wait.unwrap_or(0);
    }
    let netlink = t0.elapsed() / rounds;
    let t1 = cpu_time::ThreadTime::now();
    let mut p = None;
    for _ in 0..rounds {
        p = sample_sockets(range);
    }
    let proc = t1.elapsed() / rounds;
    println!(
        "host TIME_WAITs {tw}; netlink counted {n} in {:?} ({:.0} ns each); /proc counted {:?} in {:?} ({:.0} ns each)",
        netlink,
        netlink.as_nanos() as f64 / tw.max(1) as f64,
        p.and_then(|p| p.time_wait),
        proc,
        proc.as_nanos() as f64 / tw.max(1) as f64
    );
}
