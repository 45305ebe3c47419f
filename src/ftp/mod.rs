//! The instrumented FTP client: our own protocol code on tokio, so that every reply and the
//! time of every phase is seen and recorded. One file per protocol step: `control` (the
//! connection and reply reading), `login`, `passive` (PASV/EPSV and the data connection),
//! `transfer` (RETR/STOR/LIST), `noop` (is the session still there), `housekeeping`
//! (MKD/DELE/RMD/NLST/SIZE for preparing and cleaning a real server); `stream` is the plain
//! or TLS byte stream under them (FTPS).

pub mod control;
pub mod error;
pub mod housekeeping;
pub mod login;
pub mod noop;
pub mod passive;
pub mod reply;
pub mod stream;
pub mod transfer;

pub use control::{ConnectTimes, ControlConnection};
pub use error::{ClientError, Phase};
pub use transfer::TransferRequest;

use crate::clock::RunClock;
use crate::event::PassiveCommand;
use crate::observe::LiveCounters;
use crate::port_range::PortRange;
use crate::target::Secret;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    pub connect: Duration,
    pub reply: Duration,
    pub data_connect: Duration,
    /// Longest a data connection may go without moving a byte.
    pub idle: Duration,
}

/// Everything a client connection needs, shared by all connections of a run.
#[derive(Debug)]
pub struct ClientConfig {
    pub clock: RunClock,
    pub timeouts: ClientTimeouts,
    pub user: String,
    pub password: Secret,
    pub passive: PassiveCommand,
    /// The passive range the server is supposed to use; grants outside it are failures.
    pub expected_range: Option<PortRange>,
    /// Connect data connections to the IP in the 227 reply rather than the control peer.
    pub use_announced_ip: bool,
    /// Bytes per second per data connection.
    pub bandwidth_cap: Option<u64>,
    /// Set once the "227 announces another IP" warning has been printed.
    pub announced_ip_warned: AtomicBool,
    /// What the sampler and progress display read while the run goes on.
    pub live: Arc<LiveCounters>,
    /// FTPS: how to secure the control and data connections; None for plain FTP.
    pub tls: Option<Arc<crate::tls::TlsClient>>,
    /// Cancelled when the run's drain period is over: whatever is in flight stops where it
    /// is and is recorded as `interrupted`.
    pub cut: tokio_util::sync::CancellationToken,
}
