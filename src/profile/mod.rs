//! Workload profiles: what the swarm does, loaded from TOML and checked before any traffic.
//!
//! Every field has a default so that a profile only states what it changes; every value is
//! validated, and an invalid one is reported with the file, line and field and what is allowed.

mod error;
mod overrides;
mod shard;
mod values;

pub use crate::target::{TlsMode, TlsVersion};
pub use error::ProfileError;
pub use overrides::{parse_mix, ProfileOverrides};
pub use shard::{Shard, MAX_SHARDS};
pub use values::{expand_source_addresses, ByteCount, HumanDuration, PortRange};

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The profile `ftpswarm run` uses when none is given.
pub const DEFAULT_PROFILE: &str = include_str!("../../profiles/quick.toml");
pub const DEFAULT_PROFILE_NAME: &str = "quick";
/// Most control connections one session may open (FileZilla allows 10, lftp more).
pub const MAX_PARALLEL: u32 = 64;
/// The default ramp opens at most this many control connections a second. A server whose
/// accept queue fills drops SYNs, and the clients wait 1 s and 3 s for their retransmits: a
/// burst the profile did not ask for. Measured against pyftpdlib (its default backlog), 1,000
/// sessions: at once, 628 connects waited ~1 s; over 1 s, 191; over 2 s, 70; over 5 s, 1.
pub const DEFAULT_RAMP_CONNECTS_PER_S: f64 = 200.0;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Seed of every random choice (commands, sizes, arrivals), so that two runs of one
    /// profile offer the same load.
    pub seed: u64,
    pub load: LoadSpec,
    pub session: SessionSpec,
    pub mix: Mix,
    pub file_size: SizeDistribution,
    pub target: TargetSpec,
    pub remote: RemoteSpec,
    pub timeouts: Timeouts,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            name: "unnamed".into(),
            description: String::new(),
            seed: 1,
            load: LoadSpec::default(),
            session: SessionSpec::default(),
            mix: Mix::default(),
            file_size: SizeDistribution::Fixed {
                bytes: ByteCount(64 * 1024),
            },
            target: TargetSpec::default(),
            remote: RemoteSpec::default(),
            timeouts: Timeouts::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// A fixed number of concurrent sessions; each starts the next session when it finishes.
    Closed,
    /// Sessions arrive at a rate whatever the server's speed (as real users do).
    Open,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    Poisson,
    Constant,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSpec {
    pub model: LoadModel,
    /// Closed model: concurrent sessions.
    pub sessions: u32,
    /// Closed model: time over which the sessions are started evenly. Unset: long enough
    /// that at most [`DEFAULT_RAMP_CONNECTS_PER_S`] control connections open per second, and
    /// at least 1 s (see [`Profile::ramp_up`]); a run records the value it used.
    pub ramp_up: Option<HumanDuration>,
    /// Open model: sessions started per second.
    pub rate: f64,
    pub arrival: Arrival,
    /// Open model: sessions allowed in flight at once; an arrival beyond it is counted as
    /// dropped rather than queued, so an overloaded server cannot make memory grow unbounded.
    pub max_in_flight: u32,
    /// Stop starting sessions after this long (sessions in flight finish).
    pub duration: Option<HumanDuration>,
    /// Stop after this many sessions have been started.
    pub total_sessions: Option<u64>,
    /// After Ctrl-C, how long sessions in flight may finish before they are cut off.
    pub drain: HumanDuration,
    /// Closed model: after a session refused at connect, greeting or login, wait before the
    /// next one, doubling per refusal in a row up to `backoff_max`, with full jitter. Zero
    /// retries at once (which turns a full server into a flood of refusals).
    pub backoff: HumanDuration,
    pub backoff_max: HumanDuration,
    /// Run shard I of N (`"I/N"`, 0-based) of this load: this machine's share of the
    /// sessions, rate and source addresses (`--shard`). A run's manifest records its share
    /// with this field set; `ftpswarm merge` adds the shards back up.
    pub shard: Option<Shard>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            model: LoadModel::Closed,
            sessions: 4,
            ramp_up: None,
            rate: 1.0,
            arrival: Arrival::Poisson,
            max_in_flight: 10_000,
            duration: Some(HumanDuration::from_secs(10)),
            total_sessions: None,
            drain: HumanDuration::from_secs(3),
            backoff: HumanDuration(std::time::Duration::from_millis(100)),
            backoff_max: HumanDuration::from_secs(5),
            shard: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PassiveMode {
    Pasv,
    Epsv,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSpec {
    pub files_per_session: u32,
    /// Logged-in control connections per session, each working its share of the files, as
    /// FileZilla ("maximum simultaneous transfers"), WinSCP and lftp (`mirror -P`) do.
    pub parallel_connections: u32,
    /// Pause between two files on one connection.
    pub think_time: HumanDuration,
    /// When set, think time is uniform between `think_time` and this.
    pub think_time_max: Option<HumanDuration>,
    pub passive_mode: PassiveMode,
    /// Per data connection, bytes per second; absent means unlimited.
    pub bandwidth_cap: Option<ByteCount>,
    /// Local addresses the sessions connect from, round-robin: one address models clients
    /// behind one NAT, a 127.0.0.0/8 spread models distinct hosts. Entries are IPs or
    /// `first-last` ranges. Empty: the kernel chooses.
    pub source_addresses: Vec<String>,
}

impl Default for SessionSpec {
    fn default() -> Self {
        SessionSpec {
            files_per_session: 5,
            parallel_connections: 1,
            think_time: HumanDuration::ZERO,
            think_time_max: None,
            passive_mode: PassiveMode::Pasv,
            bandwidth_cap: None,
            source_addresses: Vec::new(),
        }
    }
}

/// Relative weights of the three transfer commands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    pub retr: u32,
    pub stor: u32,
    pub list: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            retr: 70,
            stor: 20,
            list: 10,
        }
    }
}

impl Mix {
    pub fn total(&self) -> u64 {
        u64::from(self.retr) + u64::from(self.stor) + u64::from(self.list)
    }

    pub fn pick<R: Rng>(&self, rng: &mut R) -> crate::event::TransferCommand {
        use crate::event::TransferCommand;
        let total = self.total().max(1);
        let x = rng.random_range(0..total);
        if x < u64::from(self.retr) {
            TransferCommand::Retr
        } else if x < u64::from(self.retr) + u64::from(self.stor) {
            TransferCommand::Stor
        } else {
            TransferCommand::List
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum SizeDistribution {
    Fixed {
        bytes: ByteCount,
    },
    Uniform {
        min: ByteCount,
        max: ByteCount,
    },
    /// Real file trees are heavy-tailed: many small files, a few large ones.
    Lognormal {
        median: ByteCount,
        sigma: f64,
        max: ByteCount,
    },
}

impl SizeDistribution {
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u64 {
        match self {
            SizeDistribution::Fixed { bytes } => bytes.0,
            SizeDistribution::Uniform { min, max } => rng.random_range(min.0..=max.0.max(min.0)),
            SizeDistribution::Lognormal { median, sigma, max } => {
                let mu = (median.0.max(1) as f64).ln();
                match LogNormal::new(mu, *sigma) {
                    Ok(d) => (d.sample(rng).round() as u64).min(max.0),
                    Err(_) => median.0,
                }
            }
        }
    }

    /// Largest size this distribution can produce.
    pub fn max_bytes(&self) -> u64 {
        match self {
            SizeDistribution::Fixed { bytes } => bytes.0,
            SizeDistribution::Uniform { max, .. } => max.0,
            SizeDistribution::Lognormal { max, .. } => max.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TargetSpec {
    /// `ftp://user@host:port`; absent means the embedded server. `--target` overrides it.
    pub url: Option<String>,
    /// The passive range the target is configured with. Grants outside it are failures
    /// (`pasv_out_of_range`): a firewall opened for this range would drop them. The embedded
    /// server is started with this range.
    pub pasv_range: Option<PortRange>,
    /// Connect data connections to the IP inside the 227 reply instead of the control
    /// connection's peer (only for servers behind NAT that announce the right address).
    pub use_announced_ip: bool,
    /// FTPS: `explicit` (AUTH TLS, as `ftps://`), `implicit` (TLS from the first byte, as
    /// `ftps-implicit://`) or `off`. Absent: the URL's scheme decides; the embedded server
    /// speaks explicit FTPS with a self-signed certificate when this is `explicit`.
    pub tls: Option<TlsMode>,
    /// PEM file with the CA certificate(s) that signed the server's certificate, trusted
    /// besides the system's roots.
    pub ca_file: Option<String>,
    /// Accept any server certificate: for self-signed test servers only (a warning says so).
    pub insecure: bool,
    /// The newest TLS version to offer, `"1.2"` or `"1.3"` (default). ProFTPD's mod_tls with
    /// TLS 1.3 refuses the third data connection of a session: see README, FTPS.
    pub tls_max_version: Option<TlsVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteSpec {
    /// Directory RETR reads from on a real server (listed at start, files picked by size).
    pub retr_dir: String,
    /// Explicit remote paths for RETR instead of listing `retr_dir`.
    pub retr_files: Vec<String>,
    /// Scratch directory STOR writes unique files into (created if missing).
    pub stor_dir: String,
    /// Directory LIST lists.
    pub list_dir: String,
    /// How many distinct files `--prepare` uploads to cover the size distribution.
    pub prepare_files: u32,
}

impl Default for RemoteSpec {
    fn default() -> Self {
        RemoteSpec {
            retr_dir: "ftpswarm-data".into(),
            retr_files: Vec::new(),
            stor_dir: "ftpswarm-scratch".into(),
            list_dir: ".".into(),
            prepare_files: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub connect: HumanDuration,
    /// Longest wait for any reply on the control connection.
    pub reply: HumanDuration,
    pub data_connect: HumanDuration,
    /// Longest time a data connection may go without moving a byte.
    pub idle: HumanDuration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: HumanDuration::from_secs(5),
            reply: HumanDuration::from_secs(15),
            data_connect: HumanDuration::from_secs(5),
            idle: HumanDuration::from_secs(30),
        }
    }
}

/// One validation problem: the dotted field it concerns and what is wrong / allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub field: &'static str,
    pub message: String,
}

fn violation(field: &'static str, message: impl Into<String>) -> Violation {
    Violation {
        field,
        message: message.into(),
    }
}

impl Profile {
    /// Parses and validates a profile. `origin` names the file in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::from_toml(origin, text, &e))?;
        profile.validated(origin, text, &ProfileOverrides::default())
    }

    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Io {
            file: origin.clone(),
            message: e.to_string(),
        })?;
        let mut p = Self::from_toml_str(&text, &origin)?;
        if p.name == "unnamed" {
            if let Some(stem) = path.file_stem() {
                p.name = stem.to_string_lossy().into_owned();
            }
        }
        Ok(p)
    }

    /// Loads `path`, or the built-in quick profile, applies the CLI overrides and validates
    /// the result; a violation is reported against the flag when a flag set the field.
    pub fn load_with_overrides(path: Option<&Path>, overrides: &ProfileOverrides) -> Result<Profile, ProfileError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|e| ProfileError::Io {
                    file: p.display().to_string(),
                    message: e.to_string(),
                })?,
                p.display().to_string(),
            ),
            None => (
                DEFAULT_PROFILE.to_string(),
                "profiles/quick.toml (built in)".to_string(),
            ),
        };
        let mut profile: Profile = toml::from_str(&text).map_err(|e| ProfileError::from_toml(&origin, &text, &e))?;
        if profile.name == "unnamed" {
            profile.name = path
                .and_then(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| DEFAULT_PROFILE_NAME.to_string());
        }
        overrides.apply(&mut profile);
        // The manifest records the ramp the run used, the default's too.
        profile.load.ramp_up = Some(HumanDuration(profile.ramp_up()));
        profile.validated(&origin, &text, overrides)
    }

    fn validated(self, origin: &str, text: &str, overrides: &ProfileOverrides) -> Result<Profile, ProfileError> {
        match self.violations().into_iter().next() {
            None => Ok(self),
            Some(v) => Err(match overrides.flag_for(v.field) {
                Some(flag) => ProfileError::Override {
                    flag,
                    message: v.message,
                },
                None => ProfileError::invalid(origin, text, v.field, v.message),
            }),
        }
    }

    /// The closed model's ramp: the profile's, or by default one that opens at most
    /// [`DEFAULT_RAMP_CONNECTS_PER_S`] control connections a second (at least 1 s).
    pub fn ramp_up(&self) -> std::time::Duration {
        match self.load.ramp_up {
            Some(r) => r.0,
            None => {
                let connections = f64::from(self.load.sessions) * f64::from(self.session.parallel_connections.max(1));
                std::time::Duration::from_secs_f64((connections / DEFAULT_RAMP_CONNECTS_PER_S).max(1.0))
            }
        }
    }

    /// Every rule a profile must satisfy, in the order a reader meets the fields.
    pub fn violations(&self) -> Vec<Violation> {
        let mut v = Vec::new();
        let l = &self.load;
        match l.model {
            LoadModel::Closed if l.sessions == 0 || l.sessions > 100_000 => v.push(violation(
                "load.sessions",
                format!("is {}; allowed: 1 to 100000 concurrent sessions", l.sessions),
            )),
            LoadModel::Open if !(l.rate.is_finite() && l.rate > 0.0 && l.rate <= 1_000_000.0) => v.push(violation(
                "load.rate",
                format!("is {}; allowed: more than 0 and at most 1000000 sessions/s", l.rate),
            )),
            _ => {}
        }
        if l.model == LoadModel::Open && l.max_in_flight == 0 {
            v.push(violation("load.max_in_flight", "is 0; allowed: 1 or more"));
        }
        if l.backoff_max.0 < l.backoff.0 {
            v.push(violation(
                "load.backoff_max",
                format!(
                    "is {:?}, less than load.backoff ({:?}); allowed: at least load.backoff",
                    l.backoff_max.0, l.backoff.0
                ),
            ));
        }
        if l.duration.is_none() && l.total_sessions.is_none() {
            v.push(violation(
                "load.duration",
                "neither `duration` nor `total_sessions` is set; set at least one so the run ends",
            ));
        }
        if l.duration.is_some_and(|d| d.0.is_zero()) {
            v.push(violation(
                "load.duration",
                "is 0; allowed: a positive duration such as \"30s\"",
            ));
        }
        if l.total_sessions == Some(0) {
            v.push(violation(
                "load.total_sessions",
                "is 0; allowed: 1 or more (or leave it out)",
            ));
        }
        let s = &self.session;
        if s.files_per_session > 1_000_000 {
            v.push(violation("session.files_per_session", "allowed: 0 to 1000000"));
        }
        if s.parallel_connections == 0 || s.parallel_connections > MAX_PARALLEL {
            v.push(violation(
                "session.parallel_connections",
                format!(
                    "is {}; allowed: 1 to {MAX_PARALLEL} control connections per session",
                    s.parallel_connections
                ),
            ));
        }
        if let Some(max) = s.think_time_max {
            if max.0 < s.think_time.0 {
                v.push(violation(
                    "session.think_time_max",
                    format!(
                        "({max}) is below think_time ({}); allowed: at least think_time",
                        s.think_time
                    ),
                ));
            }
        }
        if s.bandwidth_cap.is_some_and(|b| b.0 == 0) {
            v.push(violation(
                "session.bandwidth_cap",
                "is 0; allowed: a positive rate such as \"1MiB\" (bytes per second), or leave it out",
            ));
        }
        if let Err(e) = values::expand_source_addresses(&s.source_addresses) {
            v.push(violation("session.source_addresses", e));
        }
        if self.mix.total() == 0 {
            v.push(violation(
                "mix",
                "all weights are 0; allowed: at least one of retr, stor, list above 0",
            ));
        }
        match &self.file_size {
            SizeDistribution::Uniform { min, max } if min.0 > max.0 => v.push(violation(
                "file_size.min",
                format!("({min}) is above max ({max}); allowed: min <= max"),
            )),
            SizeDistribution::Lognormal { sigma, .. } if !(sigma.is_finite() && *sigma >= 0.0 && *sigma <= 5.0) => {
                v.push(violation("file_size.sigma", format!("is {sigma}; allowed: 0 to 5")))
            }
            SizeDistribution::Lognormal { median, max, .. } if median.0 > max.0 => v.push(violation(
                "file_size.median",
                format!("({median}) is above max ({max}); allowed: median <= max"),
            )),
            _ => {}
        }
        if let Some(url) = &self.target.url {
            if let Err(e) = crate::target::Target::parse(url) {
                v.push(violation("target.url", e.to_string()));
            }
        }
        if self.remote.stor_dir.trim().is_empty() {
            v.push(violation(
                "remote.stor_dir",
                "is empty; allowed: a directory path such as \"ftpswarm-scratch\"",
            ));
        }
        if self.remote.prepare_files == 0 || self.remote.prepare_files > 1000 {
            v.push(violation("remote.prepare_files", "allowed: 1 to 1000"));
        }
        for (field, d) in [
            ("timeouts.connect", self.timeouts.connect),
            ("timeouts.reply", self.timeouts.reply),
            ("timeouts.data_connect", self.timeouts.data_connect),
            ("timeouts.idle", self.timeouts.idle),
        ] {
            if d.0.is_zero() {
                v.push(violation(field, "is 0; allowed: a positive duration such as \"5s\""));
            }
        }
        v
    }

    /// Data connections one session opens (one per file).
    pub fn transfers_per_session(&self) -> u32 {
        self.session.files_per_session
    }
}

#[cfg(test)]
mod tests;
