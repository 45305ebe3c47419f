//! `manifest.json`: what was run, against what, when, and whether it finished.

use serde::{Deserialize, Serialize};

/// Bumped whenever a file of the run directory changes shape. 2: recommendation.json is the
/// simulator's (sessions first, the server model, predictions per width); manifest.json may
/// carry the server's greeting and the sockets on the range before the load.
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest run directory this version still reads: version 1 runs lack only what 2 added.
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The load ran to its limits and every record was written.
    Complete,
    /// Interrupted (Ctrl-C), cut off, or still running / killed: see `partial_reason`.
    Partial,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Manifest {
    pub schema_version: u32,
    pub tool: String,
    pub tool_version: String,
    /// The profile after overrides, exactly as the engine used it. Read as JSON so that a
    /// profile from an older version still reads; its schema is today's profile.
    #[schemars(with = "crate::profile::Profile")]
    pub profile: serde_json::Value,
    /// Target URL without its password.
    pub target: String,
    pub embedded_server: bool,
    pub expected_pasv_range: Option<crate::port_range::PortRange>,
    pub started_at: String,
    /// Wall-clock time of t = 0 of every `*_us` column, in µs since the Unix epoch, so runs
    /// from several machines can be aligned.
    pub clock_origin_unix_us: u64,
    pub ended_at: Option<String>,
    pub status: RunStatus,
    pub partial_reason: Option<String>,
    pub files: Vec<String>,
    /// The real server's greeting (with the password scrubbed): it names the server, and so
    /// how it treats passive ports. None for the embedded server and for older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_greeting: Option<String>,
    /// Sockets on the passive range before ftpswarm touched the server (read before the
    /// preflight), when the server is on this host: ports other processes hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets_before_load: Option<SocketsBeforeLoad>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SocketsBeforeLoad {
    pub listen: u32,
    pub established: u32,
    /// TIME_WAIT sockets earlier loads left on the range: they slow the server's binds until
    /// they expire (absent in runs recorded before this was read).
    #[serde(default)]
    pub time_wait: Option<u32>,
}
