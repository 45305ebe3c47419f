use super::*;
use crate::profile::{LoadModel, Mix, PassiveMode, Profile, SessionSpec, SizeDistribution};

// The run's profile in words, as the parameters table shows it.

pub(super) fn load_model(m: LoadModel) -> &'static str {
    match m {
        LoadModel::Closed => "closed",
        LoadModel::Open => "open",
    }
}

pub(super) fn passive_mode(m: PassiveMode) -> &'static str {
    match m {
        PassiveMode::Pasv => "PASV",
        PassiveMode::Epsv => "EPSV",
    }
}

pub(super) fn think_time(s: &SessionSpec) -> String {
    match s.think_time_max {
        Some(max) => format!("{} to {max} (uniform)", s.think_time),
        None => s.think_time.to_string(),
    }
}

pub(super) fn mix(m: &Mix) -> String {
    let weights = [m.retr, m.stor, m.list];
    let parts: Vec<String> = COMMANDS.iter().zip(weights).map(|(c, w)| format!("{c} {w}")).collect();
    parts.join(", ")
}

/// The size distribution in words, sizes as the profile would write them (KiB, MiB).
pub(super) fn file_size(d: &SizeDistribution) -> String {
    match d {
        SizeDistribution::Fixed { bytes } => format!("fixed, {bytes}"),
        SizeDistribution::Uniform { min, max } => format!("uniform, {min} to {max}"),
        SizeDistribution::Lognormal { median, sigma, max } => {
            format!("lognormal, median {median}, σ {sigma:?}, max {max}")
        }
    }
}

/// The parameters table's rows. The closed model ignores the rate and the open model the
/// session count, so only the one that drove the load is shown.
pub(super) fn parameter_rows(p: &Profile) -> Vec<(&'static str, Option<String>)> {
    let mut rows = vec![("Load model", Some(load_model(p.load.model).to_string()))];
    rows.push(match p.load.model {
        LoadModel::Closed => ("Concurrent sessions", Some(p.load.sessions.to_string())),
        LoadModel::Open => ("Session arrivals per second", Some(format!("{} /s", p.load.rate))),
    });
    rows.extend([
        (
            "Duration (no new session after)",
            p.load.duration.map(|d| d.to_string()),
        ),
        ("Total sessions", p.load.total_sessions.map(|n| n.to_string())),
        ("Files per session", Some(p.session.files_per_session.to_string())),
        (
            "Parallel connections per session",
            Some(p.session.parallel_connections.to_string()),
        ),
        ("Think time between files", Some(think_time(&p.session))),
        ("Mix (relative weights)", Some(mix(&p.mix))),
        ("File size distribution", Some(file_size(&p.file_size))),
        ("Passive mode", Some(passive_mode(p.session.passive_mode).to_string())),
        ("Expected passive range", p.target.pasv_range.map(|r| r.to_string())),
    ]);
    rows
}
