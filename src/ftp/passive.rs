//! PASV / EPSV and opening the data connection.

use super::control::connect_tcp;
use super::reply::{parse_epsv_reply, parse_pasv_reply, Reply};
use super::{ClientError, ControlConnection, Phase};
use crate::event::PassiveCommand;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use tokio::net::TcpStream;

/// A passive port the server handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveGrant {
    pub port: u16,
    pub reply_code: u16,
    /// The IP inside a 227 reply (EPSV announces none).
    pub announced_ip: Option<Ipv4Addr>,
    /// Where we will connect.
    pub data_addr: SocketAddr,
}

impl ControlConnection {
    /// Sends PASV or EPSV and parses the port. A negative reply is `pasv_rejected`.
    pub async fn request_passive(&mut self) -> Result<PassiveGrant, ClientError> {
        let cmd = self.config.passive;
        let reply = self.command(cmd.as_str(), Phase::Passive).await?;
        let (port, announced_ip) = passive_port(cmd, &reply)?;
        Ok(PassiveGrant {
            port,
            reply_code: reply.code,
            announced_ip,
            data_addr: self.data_address(announced_ip, port),
        })
    }

    /// Never trust the server: by default data goes to the control connection's peer, not to
    /// whatever IP a 227 reply names (which could point anywhere: FTP bounce, or a NATed
    /// server announcing its private address).
    fn data_address(&self, announced: Option<Ipv4Addr>, port: u16) -> SocketAddr {
        let peer_ip = self.peer.ip();
        let choice = choose_data_address(peer_ip, announced, port, self.config.use_announced_ip);
        if let DataAddress::Peer(to, Some(ip)) = choice {
            if first_time(&self.config.announced_ip_warned) {
                tracing::warn!(
                    "the server announces data address {ip} but the control connection goes to {peer_ip}; \
                     connecting to {} (use --use-announced-ip for servers behind NAT that announce the right address)",
                    to.ip()
                );
            }
        }
        choice.addr()
    }

    /// Opens the data connection from the same local address as the control connection,
    /// since servers may check that both come from one client. To the control connection's
    /// own peer from a source the kernel chose, the kernel chooses the same source again, and
    /// a bind() first would only cost a syscall and a port search.
    pub async fn connect_data(&self, grant: &PassiveGrant) -> Result<TcpStream, ClientError> {
        let pinned = pin_source(self.source_chosen, grant.data_addr.ip(), self.peer.ip());
        connect_tcp(
            grant.data_addr,
            pinned.then_some(self.local_ip),
            self.config.timeouts.data_connect,
            Phase::DataConnect,
        )
        .await
    }
}

/// The port (and for PASV the address) a reply to `cmd` hands out; a negative reply is
/// `pasv_rejected`, anything else unexpected a protocol error.
fn passive_port(cmd: PassiveCommand, reply: &Reply) -> Result<(u16, Option<Ipv4Addr>), ClientError> {
    let expected = match cmd {
        PassiveCommand::Pasv => 227,
        PassiveCommand::Epsv => 229,
    };
    if reply.code != expected {
        if reply.is_negative() {
            return Err(ClientError::reply(Phase::Passive, reply));
        }
        return Err(ClientError::protocol(format!(
            "unexpected reply to {}: {reply}",
            cmd.as_str()
        )));
    }
    let (port, announced_ip) = match cmd {
        PassiveCommand::Pasv => {
            let a = parse_pasv_reply(&reply.text)
                .ok_or_else(|| ClientError::protocol(format!("unparseable 227 reply: {reply}")))?;
            (a.port, Some(a.ip))
        }
        PassiveCommand::Epsv => (
            parse_epsv_reply(&reply.text)
                .ok_or_else(|| ClientError::protocol(format!("unparseable 229 reply: {reply}")))?,
            None,
        ),
    };
    if port == 0 {
        return Err(ClientError::protocol(format!("server announced port 0: {reply}")));
    }
    Ok((port, announced_ip))
}

/// Where a data connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataAddress {
    /// To the control connection's peer; with the other address the server announced, when
    /// it named one (worth a warning).
    Peer(SocketAddr, Option<Ipv4Addr>),
    /// To the address the server announced, as the user asked.
    Announced(SocketAddr),
}

impl DataAddress {
    fn addr(self) -> SocketAddr {
        match self {
            DataAddress::Peer(a, _) | DataAddress::Announced(a) => a,
        }
    }
}

fn choose_data_address(peer: IpAddr, announced: Option<Ipv4Addr>, port: u16, use_announced: bool) -> DataAddress {
    match announced {
        Some(ip) if IpAddr::V4(ip) != peer => {
            if use_announced {
                DataAddress::Announced(SocketAddr::new(IpAddr::V4(ip), port))
            } else {
                DataAddress::Peer(SocketAddr::new(peer, port), Some(ip))
            }
        }
        _ => DataAddress::Peer(SocketAddr::new(peer, port), None),
    }
}

/// True the first time it is asked about `flag` (once per run, across every connection).
fn first_time(flag: &std::sync::atomic::AtomicBool) -> bool {
    !flag.swap(true, Ordering::Relaxed)
}

/// Whether a data connection binds its source first: only when the source was chosen
/// (`source_addresses`), or when the data goes to another address than the control
/// connection's peer, where the kernel might pick another source than the control
/// connection's.
fn pin_source(source_chosen: bool, data_ip: IpAddr, peer_ip: IpAddr) -> bool {
    source_chosen || data_ip != peer_ip
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FailureClass;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

    #[test]
    fn data_goes_to_the_peer_unless_the_user_trusts_the_announced_address() {
        let other = Ipv4Addr::new(10, 9, 8, 7);
        let to = |ip: IpAddr| SocketAddr::new(ip, 30_000);
        // The same address, or none (EPSV): the peer, nothing to warn about.
        assert_eq!(
            choose_data_address(PEER, Some(Ipv4Addr::LOCALHOST), 30_000, false),
            DataAddress::Peer(to(PEER), None)
        );
        assert_eq!(
            choose_data_address(PEER, Some(Ipv4Addr::LOCALHOST), 30_000, true),
            DataAddress::Peer(to(PEER), None)
        );
        assert_eq!(
            choose_data_address(PEER, None, 30_000, true),
            DataAddress::Peer(to(PEER), None)
        );
        // Another address: the peer, with the address to warn about; or, when asked, there.
        assert_eq!(
            choose_data_address(PEER, Some(other), 30_000, false),
            DataAddress::Peer(to(PEER), Some(other))
        );
        let trusted = choose_data_address(PEER, Some(other), 30_000, true);
        assert_eq!(trusted, DataAddress::Announced(to(IpAddr::V4(other))));
        assert_eq!(trusted.addr(), to(IpAddr::V4(other)));
    }

    #[test]
    fn a_passive_reply_gives_its_port_or_says_what_is_wrong() {
        let reply = |code: u16, text: &str| Reply {
            code,
            text: text.to_string(),
        };
        let pasv = reply(227, "Entering Passive Mode (127,0,0,1,117,48).");
        assert_eq!(
            passive_port(PassiveCommand::Pasv, &pasv).unwrap(),
            (30_000, Some(Ipv4Addr::LOCALHOST))
        );
        let epsv = reply(229, "Entering Extended Passive Mode (|||30001|)");
        assert_eq!(passive_port(PassiveCommand::Epsv, &epsv).unwrap(), (30_001, None));
        // The other command's reply, a negative one, garbage, and port 0.
        let class = |cmd, r: &Reply| passive_port(cmd, r).unwrap_err().class;
        assert_eq!(class(PassiveCommand::Epsv, &pasv), FailureClass::ProtocolError);
        assert_eq!(class(PassiveCommand::Pasv, &epsv), FailureClass::ProtocolError);
        let refused = reply(425, "Can't open passive connection");
        assert_eq!(class(PassiveCommand::Pasv, &refused), FailureClass::PasvRejected);
        assert_eq!(
            class(PassiveCommand::Pasv, &reply(227, "Entering Passive Mode")),
            FailureClass::ProtocolError
        );
        let zero = reply(227, "Entering Passive Mode (127,0,0,1,0,0).");
        let err = passive_port(PassiveCommand::Pasv, &zero).unwrap_err();
        assert_eq!(err.class, FailureClass::ProtocolError);
        assert!(err.to_string().contains("port 0"), "{err}");
    }

    #[test]
    fn the_announced_address_warning_comes_once() {
        let flag = std::sync::atomic::AtomicBool::new(false);
        assert!(first_time(&flag));
        assert!(!first_time(&flag));
        assert!(!first_time(&flag));
    }

    #[test]
    fn only_a_chosen_source_or_another_destination_binds_first() {
        let elsewhere = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
        assert!(!pin_source(false, PEER, PEER));
        assert!(pin_source(true, PEER, PEER));
        assert!(pin_source(false, elsewhere, PEER));
        assert!(pin_source(true, elsewhere, PEER));
    }
}
