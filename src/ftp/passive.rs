//! PASV / EPSV and opening the data connection.

use super::control::connect_tcp;
use super::reply::{parse_epsv_reply, parse_pasv_reply};
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
        let expected = match cmd {
            PassiveCommand::Pasv => 227,
            PassiveCommand::Epsv => 229,
        };
        if reply.code != expected {
            if reply.is_negative() {
                return Err(ClientError::reply(Phase::Passive, &reply));
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
        match announced {
            Some(ip) if IpAddr::V4(ip) != peer_ip => {
                if self.config.use_announced_ip {
                    return SocketAddr::new(IpAddr::V4(ip), port);
                }
                if !self.config.announced_ip_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the server announces data address {ip} but the control connection goes to {peer_ip}; \
                         connecting to {peer_ip} (use --use-announced-ip for servers behind NAT that announce the right address)"
                    );
                }
                SocketAddr::new(peer_ip, port)
            }
            _ => SocketAddr::new(peer_ip, port),
        }
    }

    /// Opens the data connection from the same local address as the control connection,
    /// since servers may check that both come from one client. To the control connection's
    /// own peer from a source the kernel chose, the kernel chooses the same source again, and
    /// a bind() first would only cost a syscall and a port search.
    pub async fn connect_data(&self, grant: &PassiveGrant) -> Result<TcpStream, ClientError> {
        let pinned = self.source_chosen || grant.data_addr.ip() != self.peer.ip();
        connect_tcp(
            grant.data_addr,
            pinned.then_some(self.local_ip),
            self.config.timeouts.data_connect,
            Phase::DataConnect,
        )
        .await
    }
}
