//! Client errors carry the failure class they belong to, decided by the protocol step that
//! failed, so every failure lands in exactly one class.

use crate::event::FailureClass;
use crate::ftp::reply::Reply;
use std::io;

/// The protocol step in progress when something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    Greeting,
    Login,
    /// AUTH TLS, PBSZ, PROT and the handshakes of FTPS.
    Tls,
    Passive,
    DataConnect,
    TransferStart,
    Transfer,
    FinalReply,
    Housekeeping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub class: FailureClass,
    pub reply_code: Option<u16>,
    pub detail: String,
    /// The control connection can no longer be used (closed, desynchronised, timed out).
    pub control_lost: bool,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.detail)
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// A negative (or unexpected) reply to a command in `phase`.
    pub fn reply(phase: Phase, r: &Reply) -> Self {
        let class = match phase {
            Phase::Connect | Phase::Greeting => FailureClass::GreetingRejected,
            Phase::Login => FailureClass::LoginFailed,
            Phase::Tls => FailureClass::TlsError,
            Phase::Passive => FailureClass::PasvRejected,
            Phase::DataConnect | Phase::TransferStart | Phase::Housekeeping => FailureClass::TransferRejected,
            Phase::Transfer | Phase::FinalReply => match r.code {
                // 426: connection closed, transfer aborted; 451: local error in processing.
                426 | 451 => FailureClass::TransferAborted,
                _ => FailureClass::TransferRejected,
            },
        };
        ClientError {
            class,
            reply_code: Some(r.code),
            detail: r.short_text(),
            // 421 means the server is closing the control connection.
            control_lost: r.code == 421,
        }
    }

    /// The server closed the control connection (EOF or reset) while we waited in `phase`.
    pub fn closed(phase: Phase, what: &str) -> Self {
        let class = match phase {
            Phase::Connect | Phase::Greeting => FailureClass::GreetingRejected,
            Phase::Login => FailureClass::LoginFailed,
            Phase::Tls => FailureClass::TlsError,
            Phase::Passive => FailureClass::PasvRejected,
            Phase::DataConnect => FailureClass::DataConnectRefused,
            Phase::TransferStart | Phase::Transfer | Phase::FinalReply | Phase::Housekeeping => {
                FailureClass::TransferAborted
            }
        };
        ClientError {
            class,
            reply_code: None,
            detail: what.to_string(),
            control_lost: true,
        }
    }

    pub fn timeout(phase: Phase, what: &str) -> Self {
        let class = match phase {
            Phase::Connect => FailureClass::ConnectTimeout,
            Phase::DataConnect => FailureClass::DataConnectTimeout,
            Phase::Tls => FailureClass::TlsError,
            _ => FailureClass::Timeout,
        };
        // A data-connect timeout leaves the control connection in a known state; any other
        // timeout leaves a reply possibly still in flight, so the connection is unusable.
        let control_lost = phase != Phase::DataConnect;
        ClientError {
            class,
            reply_code: None,
            detail: what.to_string(),
            control_lost,
        }
    }

    /// A TLS failure on the control connection (handshake, certificate, AUTH TLS refused):
    /// the connection is of no further use.
    pub fn tls(detail: impl Into<String>) -> Self {
        ClientError {
            class: FailureClass::TlsError,
            reply_code: None,
            detail: detail.into(),
            control_lost: true,
        }
    }

    pub fn protocol(detail: impl Into<String>) -> Self {
        ClientError {
            class: FailureClass::ProtocolError,
            reply_code: None,
            detail: detail.into(),
            control_lost: true,
        }
    }

    pub fn io(phase: Phase, e: &io::Error) -> Self {
        if is_local(e) {
            return ClientError {
                class: FailureClass::LocalError,
                reply_code: None,
                detail: format!("on this machine, not the server: {e}"),
                // The connection may be fine, but a machine out of descriptors or ports should
                // not keep it busy.
                control_lost: matches!(phase, Phase::Connect),
            };
        }
        match (phase, e.kind()) {
            (_, io::ErrorKind::TimedOut) => Self::timeout(phase, &e.to_string()),
            (Phase::Connect, _) => ClientError {
                class: FailureClass::ConnectRefused,
                reply_code: None,
                detail: e.to_string(),
                control_lost: true,
            },
            (Phase::DataConnect, _) => ClientError {
                class: FailureClass::DataConnectRefused,
                reply_code: None,
                detail: e.to_string(),
                control_lost: false,
            },
            (Phase::Transfer, _) => ClientError {
                class: FailureClass::TransferAborted,
                reply_code: None,
                detail: e.to_string(),
                control_lost: false,
            },
            _ => Self::closed(phase, &e.to_string()),
        }
    }
}

/// Errors of our own machine: descriptors, memory, local addresses and ports. A server can
/// refuse or reset a connection, but it cannot make us run out of these.
fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL | libc::EADDRINUSE | libc::ENOBUFS | libc::ENOMEM)
    ) || e.kind() == io::ErrorKind::AddrNotAvailable
}
