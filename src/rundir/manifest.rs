//! `manifest.json`: what was run, against what, when, and whether it finished.

use serde::{Deserialize, Serialize};

use crate::profile::{Profile, Shard};

/// Bumped whenever a file of the run directory changes shape. 2: recommendation.json is the
/// simulator's (sessions first, the server model, predictions per width); manifest.json may
/// carry the server's greeting and the sockets on the range before the load. 3: the manifest
/// may name the run's shard, its host and, merged, its shards; a merged run's CSVs end in a
/// `shard` column; `started_at` is UTC.
pub const SCHEMA_VERSION: u32 = 3;
/// The oldest run directory this version still reads: older runs lack only what later ones added.
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
    /// The profile after overrides, exactly as the engine used it. A profile from an older
    /// version reads (its missing fields take their defaults); one this version cannot read is
    /// kept as stored.
    #[schemars(with = "Profile")]
    pub profile: RecordedProfile,
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
    /// The shard of a larger load this run was (`--shard I/N`); its profile is its share.
    /// Absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The load machine's host name (absent in runs recorded before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A merged run (`ftpswarm merge`): the shard runs it was made of, in shard order. Empty
    /// for a run that was measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedShard>,
}

/// One shard run of a merged run, as its own manifest described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MergedShard {
    /// The shard's run directory, as given to `merge`.
    pub dir: String,
    pub shard: Shard,
    pub host: Option<String>,
    pub started_at: String,
    pub clock_origin_unix_us: u64,
    pub status: RunStatus,
    pub partial_reason: Option<String>,
    /// Added to this shard's `*_us` times to put them on the merged run's clock.
    pub offset_us: u64,
}

/// The profile a manifest records. Typed whenever this version can read it; otherwise (a
/// manifest from a newer version, or edited by hand) the JSON exactly as stored, so reading and
/// rewriting a manifest never loses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordedProfile {
    Known(Box<Profile>),
    Unreadable(serde_json::Value),
}

impl RecordedProfile {
    pub fn known(&self) -> Option<&Profile> {
        match self {
            RecordedProfile::Known(p) => Some(p),
            RecordedProfile::Unreadable(_) => None,
        }
    }

    /// Why the stored profile does not read as today's `Profile` (None when it does).
    pub fn unreadable_because(&self) -> Option<String> {
        match self {
            RecordedProfile::Known(_) => None,
            RecordedProfile::Unreadable(v) => Some(match serde_json::from_value::<Profile>(v.clone()) {
                Err(e) => e.to_string(),
                // Untagged deserialisation and a direct one agree; kept total all the same.
                Ok(_) => "it did not read as a profile".to_string(),
            }),
        }
    }
}

impl From<Profile> for RecordedProfile {
    fn from(p: Profile) -> RecordedProfile {
        RecordedProfile::Known(Box::new(p))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SocketsBeforeLoad {
    pub listen: u32,
    pub established: u32,
    /// TIME_WAIT sockets earlier loads left on the range: they slow the server's binds until
    /// they expire (absent in runs recorded before this was read).
    #[serde(default)]
    pub time_wait: Option<u32>,
    /// The most TIME_WAIT sockets the server's host keeps at once (Linux's
    /// `net.ipv4.tcp_max_tw_buckets`): a fast load's TIME_WAITs on the range stop piling up
    /// there. Absent in runs recorded before it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_time_wait_cap: Option<u32>,
}
