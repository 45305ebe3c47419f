//! The records every part of ftpswarm exchanges: one per data-connection attempt, one per
//! control connection, one per session. The engine produces them, the run directory stores
//! them as CSV, and the summary, model and report read them back, so old and merged runs are
//! analysed exactly like fresh ones.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every failure lands in exactly one class; README's "Failure classes" lists them for users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    ConnectRefused,
    ConnectTimeout,
    GreetingRejected,
    LoginFailed,
    PasvRejected,
    PasvOutOfRange,
    DataConnectRefused,
    DataConnectTimeout,
    TransferRejected,
    TransferAborted,
    ProtocolError,
    TlsError,
    Timeout,
    /// Our side failed, not the server: out of file descriptors, a source address this host
    /// does not have, no local port left to connect from.
    LocalError,
}

impl FailureClass {
    pub const ALL: [FailureClass; 14] = [
        FailureClass::ConnectRefused,
        FailureClass::ConnectTimeout,
        FailureClass::GreetingRejected,
        FailureClass::LoginFailed,
        FailureClass::PasvRejected,
        FailureClass::PasvOutOfRange,
        FailureClass::DataConnectRefused,
        FailureClass::DataConnectTimeout,
        FailureClass::TransferRejected,
        FailureClass::TransferAborted,
        FailureClass::ProtocolError,
        FailureClass::TlsError,
        FailureClass::Timeout,
        FailureClass::LocalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::ConnectRefused => "connect_refused",
            FailureClass::ConnectTimeout => "connect_timeout",
            FailureClass::GreetingRejected => "greeting_rejected",
            FailureClass::LoginFailed => "login_failed",
            FailureClass::PasvRejected => "pasv_rejected",
            FailureClass::PasvOutOfRange => "pasv_out_of_range",
            FailureClass::DataConnectRefused => "data_connect_refused",
            FailureClass::DataConnectTimeout => "data_connect_timeout",
            FailureClass::TransferRejected => "transfer_rejected",
            FailureClass::TransferAborted => "transfer_aborted",
            FailureClass::ProtocolError => "protocol_error",
            FailureClass::TlsError => "tls_error",
            FailureClass::Timeout => "timeout",
            FailureClass::LocalError => "local_error",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ok`, the failure class, or `interrupted`. Serialised as one flat string so the CSV stays
/// one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Failed(FailureClass),
    /// Cut off by the run's end (the drain period ran out, or Ctrl-C stopped the session's
    /// files): neither a success nor the server's failure, and left out of failure rates.
    Interrupted,
}

impl Outcome {
    pub const OK: Outcome = Outcome::Ok;

    pub fn is_ok(self) -> bool {
        matches!(self, Outcome::Ok)
    }
    pub fn failure(self) -> Option<FailureClass> {
        match self {
            Outcome::Ok | Outcome::Interrupted => None,
            Outcome::Failed(c) => Some(c),
        }
    }
    pub fn is_interrupted(self) -> bool {
        matches!(self, Outcome::Interrupted)
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "ok" {
            return Ok(Outcome::Ok);
        }
        if s == "interrupted" {
            return Ok(Outcome::Interrupted);
        }
        FailureClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .map(Outcome::Failed)
            .ok_or_else(|| format!("unknown outcome {s:?}"))
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Outcome {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Outcome".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut names = vec!["ok".to_string(), "interrupted".to_string()];
        names.extend(FailureClass::ALL.iter().map(|c| c.as_str().to_string()));
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Failed(c) => f.write_str(c.as_str()),
            Outcome::Interrupted => f.write_str("interrupted"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransferCommand {
    Retr,
    Stor,
    List,
}

impl TransferCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferCommand::Retr => "RETR",
            TransferCommand::Stor => "STOR",
            TransferCommand::List => "LIST",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum PassiveCommand {
    Pasv,
    Epsv,
}

impl PassiveCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            PassiveCommand::Pasv => "PASV",
            PassiveCommand::Epsv => "EPSV",
        }
    }
}

/// One data-connection attempt: one PASV/EPSV and the transfer that used it. Times are µs
/// since the run started (monotonic clock); a phase that was never reached is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransferEvent {
    pub session_id: u64,
    pub connection_id: u64,
    pub seq_in_session: u32,
    pub command: TransferCommand,
    pub passive_command: PassiveCommand,
    pub path: String,
    pub pasv_port: Option<u16>,
    pub in_range: Option<bool>,
    pub t_pasv_sent_us: u64,
    pub t_pasv_reply_us: Option<u64>,
    pub t_data_connected_us: Option<u64>,
    /// The data connection's TLS handshake finished (FTPS, PROT P); absent in older runs.
    #[serde(default)]
    pub t_data_tls_us: Option<u64>,
    pub t_first_byte_us: Option<u64>,
    pub t_transfer_done_us: Option<u64>,
    pub t_data_closed_us: Option<u64>,
    pub t_final_reply_us: Option<u64>,
    pub bytes: u64,
    pub expected_bytes: Option<u64>,
    pub pasv_reply_code: Option<u16>,
    pub transfer_reply_code: Option<u16>,
    pub final_reply_code: Option<u16>,
    pub outcome: Outcome,
    /// The server's reply text (or our own diagnosis) for a failure; empty on success.
    pub detail: String,
}

/// One control connection (a session has `parallel_connections` of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConnectionRecord {
    pub session_id: u64,
    pub connection_id: u64,
    pub t_connect_start_us: u64,
    pub t_connected_us: Option<u64>,
    pub t_greeting_us: Option<u64>,
    /// The control connection's TLS handshake finished (FTPS); absent in older runs.
    #[serde(default)]
    pub t_tls_us: Option<u64>,
    pub t_login_done_us: Option<u64>,
    pub t_closed_us: u64,
    pub transfers_ok: u32,
    pub transfers_failed: u32,
    pub outcome: Outcome,
    pub detail: String,
}

/// One simulated client session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionRecord {
    pub session_id: u64,
    /// When the load model wanted the session to start (open model: the arrival time).
    /// Latencies measured from here are free of coordinated omission.
    pub t_intended_start_us: u64,
    pub t_start_us: u64,
    pub t_login_done_us: Option<u64>,
    pub t_end_us: u64,
    pub connections: u32,
    pub files_planned: u32,
    pub files_ok: u32,
    pub files_failed: u32,
    /// Files never attempted because their control connection failed or the run was stopped.
    pub files_not_attempted: u32,
    pub bytes: u64,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub enum Record {
    Transfer(TransferEvent),
    Connection(ConnectionRecord),
    Session(SessionRecord),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_round_trips_as_flat_string() {
        for o in std::iter::once(Outcome::OK).chain(FailureClass::ALL.map(Outcome::Failed)) {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{o}\""));
            let back: Outcome = serde_json::from_str(&json).unwrap();
            assert_eq!(back, o);
        }
    }

    #[test]
    fn class_names_are_distinct() {
        let mut names: Vec<_> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FailureClass::ALL.len());
    }
}
