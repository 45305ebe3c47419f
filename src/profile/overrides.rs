//! Command-line overrides of the main profile knobs.

use super::{HumanDuration, LoadModel, Mix, PortRange, Profile};

/// What `ftpswarm run` flags change in the profile. `None` leaves the profile's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileOverrides {
    pub sessions: Option<u32>,
    pub rate: Option<f64>,
    pub total_sessions: Option<u64>,
    pub files_per_session: Option<u32>,
    pub parallel: Option<u32>,
    pub duration: Option<HumanDuration>,
    pub think_time: Option<HumanDuration>,
    pub mix: Option<Mix>,
    pub pasv_range: Option<PortRange>,
    pub seed: Option<u64>,
    /// Local addresses to spread connections over (see `session.source_addresses`).
    pub source_addresses: Option<Vec<String>>,
    pub tls: Option<super::TlsMode>,
    pub ca_file: Option<String>,
    pub insecure: bool,
    pub tls_max_version: Option<super::TlsVersion>,
    pub shard: Option<super::Shard>,
}

impl ProfileOverrides {
    pub(super) fn apply(&self, p: &mut Profile) {
        if let Some(s) = self.sessions {
            p.load.sessions = s;
            p.load.model = LoadModel::Closed;
        }
        if let Some(r) = self.rate {
            p.load.rate = r;
            p.load.model = LoadModel::Open;
        }
        if let Some(t) = self.total_sessions {
            p.load.total_sessions = Some(t);
        }
        if let Some(f) = self.files_per_session {
            p.session.files_per_session = f;
        }
        if let Some(n) = self.parallel {
            p.session.parallel_connections = n;
        }
        if let Some(d) = self.duration {
            p.load.duration = Some(d);
        }
        if let Some(t) = self.think_time {
            p.session.think_time = t;
            p.session.think_time_max = None;
        }
        if let Some(m) = self.mix {
            p.mix = m;
        }
        if let Some(r) = self.pasv_range {
            p.target.pasv_range = Some(r);
        }
        if let Some(s) = self.seed {
            p.seed = s;
        }
        if let Some(a) = &self.source_addresses {
            p.session.source_addresses = a.clone();
        }
        if let Some(t) = self.tls {
            p.target.tls = Some(t);
        }
        if let Some(f) = &self.ca_file {
            p.target.ca_file = Some(f.clone());
        }
        if self.insecure {
            p.target.insecure = true;
        }
        if let Some(v) = self.tls_max_version {
            p.target.tls_max_version = Some(v);
        }
        if let Some(s) = self.shard {
            p.load.shard = Some(s);
        }
    }

    /// The flag that set `field`, when one did.
    pub(super) fn flag_for(&self, field: &str) -> Option<&'static str> {
        let set = |o: bool, flag| if o { Some(flag) } else { None };
        match field {
            "load.sessions" => set(self.sessions.is_some(), "--sessions"),
            "load.rate" => set(self.rate.is_some(), "--rate"),
            "load.total_sessions" => set(self.total_sessions.is_some(), "--total-sessions"),
            "load.duration" => set(self.duration.is_some(), "--duration"),
            "session.files_per_session" => set(self.files_per_session.is_some(), "--files-per-session"),
            "session.parallel_connections" => set(self.parallel.is_some(), "--parallel"),
            "session.think_time" | "session.think_time_max" => set(self.think_time.is_some(), "--think-time"),
            "mix" => set(self.mix.is_some(), "--mix"),
            "session.source_addresses" => set(self.source_addresses.is_some(), "--source-addresses"),
            "target.tls" => set(self.tls.is_some(), "--tls"),
            "target.ca_file" => set(self.ca_file.is_some(), "--ca-file"),
            "target.tls_max_version" => set(self.tls_max_version.is_some(), "--tls-max-version"),
            "load.shard" => set(self.shard.is_some(), "--shard"),
            _ => None,
        }
    }
}

/// Parses `--mix retr=70,stor=20,list=10` (missing commands get weight 0).
pub fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut mix = Mix {
        retr: 0,
        stor: 0,
        list: 0,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not `command=weight`; write e.g. retr=70,stor=20,list=10"))?;
        let w: u32 = v
            .trim()
            .parse()
            .map_err(|_| format!("weight {v:?} of {k} is not a whole number >= 0"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "retr" => mix.retr = w,
            "stor" => mix.stor = w,
            "list" => mix.list = w,
            other => return Err(format!("unknown command {other:?}; allowed: retr, stor, list")),
        }
    }
    if mix.total() == 0 {
        return Err("all weights are 0; give at least one of retr, stor, list a weight above 0".into());
    }
    Ok(mix)
}
