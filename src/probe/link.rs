//! The probe's connections: logged-in control connections, one passive request classified
//! into what it tells about the server, and releasing what we opened.
//!
//! Every step of the probe holds ports on purpose, so releasing them matters as much as
//! taking them: a port we leave pending stays held by the server (libunftp for 15 s even
//! after our QUIT, since its listener task is not tied to the session) and would make the
//! next step see a fuller range than it thinks.

use crate::event::FailureClass;
use crate::ftp::passive::PassiveGrant;
use crate::ftp::{ClientConfig, ClientError, ConnectTimes, ControlConnection, Phase};
use crate::port_range::PortRange;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Time the server gets to act on something it cannot acknowledge (an accept on a data
/// port, a listener closed at session end) before we rely on it having happened.
pub(crate) const SETTLE: Duration = Duration::from_millis(10);

/// How long we wait for the server to close the control connection after `221`.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Where the probe connects, and the client settings every connection shares.
#[derive(Clone)]
pub(crate) struct Link {
    pub addr: SocketAddr,
    pub config: Arc<ClientConfig>,
}

impl Link {
    /// A new control connection, logged in and in binary mode.
    pub async fn open(&self) -> Result<ControlConnection, ClientError> {
        self.open_from(None).await
    }

    pub async fn open_from(&self, source: Option<IpAddr>) -> Result<ControlConnection, ClientError> {
        let mut times = ConnectTimes::default();
        let mut conn = ControlConnection::open(self.config.clone(), self.addr, source, &mut times).await?;
        conn.login().await?;
        Ok(conn)
    }

    /// The reply timeout, which is also how long a PASV may go unanswered before we call it a
    /// wait.
    pub fn reply_timeout(&self) -> Duration {
        self.config.timeouts.reply
    }
}

/// What one passive request got, in the terms of the fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantOutcome {
    /// A port inside the range (or any port when no range is known).
    InRange { port: u16 },
    /// A port outside the range: a fallback to a kernel-assigned port (pyftpdlib, ProFTPD).
    OutOfRange { port: u16 },
    /// A negative reply. `session_dropped`: the server closed the control connection after
    /// it (vsftpd's `500 OOPS`).
    Refused {
        code: u16,
        text: String,
        session_dropped: bool,
    },
    /// The server closed the control connection without a reply.
    SessionKilled { detail: String },
    /// No reply within the reply timeout: the server may be queueing the request.
    Wait { after_s: f64 },
    /// Anything else (unparseable reply, I/O error): not evidence about the range.
    Error { detail: String },
}

impl GrantOutcome {
    pub fn port(&self) -> Option<u16> {
        match self {
            GrantOutcome::InRange { port } | GrantOutcome::OutOfRange { port } => Some(*port),
            _ => None,
        }
    }

    /// The server could not give a port from its range: what exhaustion looks like.
    pub fn is_capacity_failure(&self) -> bool {
        matches!(
            self,
            GrantOutcome::OutOfRange { .. }
                | GrantOutcome::Refused { .. }
                | GrantOutcome::SessionKilled { .. }
                | GrantOutcome::Wait { .. }
        )
    }

    /// A short description for text output and for grouping outcomes.
    pub fn describe(&self) -> String {
        match self {
            GrantOutcome::InRange { port } => format!("port {port}"),
            GrantOutcome::OutOfRange { port } => format!("port {port} outside the range"),
            GrantOutcome::Refused {
                code,
                text,
                session_dropped,
            } => {
                let then = if *session_dropped {
                    ", then the session was dropped"
                } else {
                    ""
                };
                format!("{code} {text:?}{then}")
            }
            GrantOutcome::SessionKilled { .. } => "control connection closed without a reply".into(),
            GrantOutcome::Wait { after_s } => format!("no reply within {after_s:.0} s"),
            GrantOutcome::Error { detail } => format!("error: {detail}"),
        }
    }
}

/// Sends PASV/EPSV and classifies the answer. The grant comes back too when there is a port
/// to release. After a refusal, checks whether the session survived it.
pub(crate) async fn ask_port(
    conn: &mut ControlConnection,
    range: Option<PortRange>,
    reply_timeout: Duration,
) -> (GrantOutcome, Option<PassiveGrant>) {
    match conn.request_passive().await {
        Ok(grant) => {
            let inside = range.is_none_or(|r| r.contains(grant.port));
            let outcome = if inside {
                GrantOutcome::InRange { port: grant.port }
            } else {
                GrantOutcome::OutOfRange { port: grant.port }
            };
            (outcome, Some(grant))
        }
        Err(e) => (classify_error(conn, e, reply_timeout).await, None),
    }
}

async fn classify_error(conn: &mut ControlConnection, e: ClientError, reply_timeout: Duration) -> GrantOutcome {
    match (e.reply_code, e.class) {
        (Some(code), _) => {
            // 421 announces the close itself; anything else may still be followed by one
            // (vsftpd's `500 OOPS` is its last word), so ask.
            let session_dropped = code == 421 || !conn.alive().await;
            GrantOutcome::Refused {
                code,
                text: e.detail,
                session_dropped,
            }
        }
        (None, FailureClass::Timeout) => GrantOutcome::Wait {
            after_s: reply_timeout.as_secs_f64(),
        },
        (None, FailureClass::PasvRejected) if e.control_lost => GrantOutcome::SessionKilled { detail: e.detail },
        (None, _) => GrantOutcome::Error { detail: e.to_string() },
    }
}

/// Connects to a granted port and closes at once, then waits for a NOOP round trip.
///
/// This frees the port on every server we know without a transfer: libunftp and pyftpdlib
/// close their listener when they accept, and vsftpd closes it at the session's next PASV or
/// at its end. We close first, so TIME_WAIT lands on our side, not on the server's port. The
/// NOOP gives a server that accepts in another task (libunftp) time to do so before the next
/// request; without it the next random pick could find the old port still held. A server
/// that comments on the closed data connection (426 and the like) is read past, so that the
/// next request reads its own reply.
pub(crate) async fn release(conn: &mut ControlConnection, grant: &PassiveGrant) -> Result<(), ClientError> {
    drop(conn.connect_data(grant).await);
    if conn.alive().await {
        Ok(())
    } else {
        Err(ClientError::closed(
            Phase::Housekeeping,
            "the server closed the control connection after a released data connection",
        ))
    }
}

/// Releases the pending port (if any) and quits, waiting until the server has closed the
/// control connection, so that everything the session held is gone when this returns.
pub(crate) async fn close(conn: ControlConnection, grant: Option<&PassiveGrant>) {
    if let Some(g) = grant {
        drop(conn.connect_data(g).await);
    }
    quit_and_wait(conn).await;
}

/// QUIT, then wait (bounded) for the server to close: vsftpd's session processes hold its
/// listeners until they exit, which is when the control connection closes.
pub(crate) async fn quit_and_wait(mut conn: ControlConnection) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        if conn.send("QUIT", Phase::Housekeeping).await.is_ok() {
            // The 221, then end of stream (an error here means closed, which is the point).
            while conn.read_reply(Phase::Housekeeping).await.is_ok() {}
        }
    })
    .await;
}

/// A TCP connection from a chosen source address (the client library always uses the
/// control connection's own address for data).
pub(crate) async fn connect_from(source: IpAddr, to: SocketAddr, limit: Duration) -> std::io::Result<TcpStream> {
    let attempt = async {
        let socket = match to {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(to).await
    };
    tokio::time::timeout(limit, attempt)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no connection within {limit:?}")))?
}

/// A plain connection to `to` within `limit` (for testing whether a listener still exists).
pub(crate) async fn connect_plain(to: SocketAddr, limit: Duration) -> std::io::Result<TcpStream> {
    tokio::time::timeout(limit, TcpStream::connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no connection within {limit:?}")))?
}
