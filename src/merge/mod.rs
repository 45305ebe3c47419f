//! `ftpswarm merge`: the shards of one load (`run --shard I/N` on several machines) put back
//! together as one run directory, which `plan` and `report` read like any other.
//!
//! Nothing is re-estimated. Every shard's times move onto one clock (the earliest shard's
//! t = 0, from each manifest's wall-clock origin); records are concatenated with a `shard`
//! column; latency histograms are added interval by interval from the shards' logs; the
//! timelines are summed tick by tick; the summary is folded from the merged records exactly
//! as a run's own is.

mod records;
mod timeline;

use crate::observe::hlog::{self, LoggedInterval};
use crate::profile::{Profile, Shard};
use crate::rundir::{self, Manifest, MergedShard, OutputError, RunStatus, SCHEMA_VERSION};
use crate::summary::Summary;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The shards' run directories, in any order.
    pub dirs: Vec<PathBuf>,
    pub out: PathBuf,
    /// Write into a non-empty `out`.
    pub force: bool,
}

pub struct MergeReport {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub summary: Summary,
    /// Shards of the load that were not given (the merge is partial).
    pub missing: Vec<Shard>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{dir}: {message}")]
    Shard { dir: String, message: String },
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// One shard as read from its run directory.
struct ShardRun {
    dir: PathBuf,
    manifest: Manifest,
    shard: Shard,
    profile: Profile,
}

impl ShardRun {
    fn read(dir: &Path) -> Result<ShardRun, MergeError> {
        let fail = |message: String| MergeError::Shard {
            dir: dir.display().to_string(),
            message,
        };
        let path = dir.join(rundir::MANIFEST);
        if !path.is_file() {
            return Err(fail("no manifest.json: not a run directory".into()));
        }
        let manifest: Manifest = rundir::read_json(&path)?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(fail(format!(
                "schema version {} where this ftpswarm writes {SCHEMA_VERSION}: merge shards made by this version (run them again, or merge with the ftpswarm that made them)",
                manifest.schema_version
            )));
        }
        if !manifest.merged_from.is_empty() {
            return Err(fail(
                "is itself a merged run: merge the shard runs it was made of".into(),
            ));
        }
        let shard = manifest.shard.ok_or_else(|| {
            fail("was not run as a shard (`run --shard I/N`): only the shards of one load merge".into())
        })?;
        let profile = match manifest.profile.known() {
            Some(p) => p.clone(),
            None => {
                return Err(fail(format!(
                    "its profile does not read ({}): cannot check it is a shard of the same load",
                    manifest.profile.unreadable_because().unwrap_or_default()
                )))
            }
        };
        Ok(ShardRun {
            dir: dir.to_path_buf(),
            manifest,
            shard,
            profile,
        })
    }
}

/// The profile with every field a shard takes its share of set to one value: what the
/// shards of one load have in common.
fn common_part(p: &Profile) -> serde_json::Value {
    let mut p = p.clone();
    p.load.sessions = 0;
    p.load.rate = 0.0;
    p.load.max_in_flight = 0;
    p.load.total_sessions = None;
    p.load.shard = None;
    p.session.source_addresses.clear();
    serde_json::to_value(&p).unwrap_or_default()
}

/// The first dotted field where two JSON values differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &path),
                    _ => Some(path),
                }
            })
        }
        _ if a == b => None,
        _ => Some(at.to_string()),
    }
}

/// The checks before anything is written: one load, one shard count, each shard once.
fn check_shards(shards: &[ShardRun]) -> Result<(), MergeError> {
    let Some(first) = shards.first() else {
        return Err(MergeError::Mismatch("no run directories given".into()));
    };
    let common = common_part(&first.profile);
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in shards {
        if s.shard.count != first.shard.count {
            return Err(MergeError::Mismatch(format!(
                "{} is shard {} but {} is shard {}: the shards of one load share N",
                first.dir.display(),
                first.shard,
                s.dir.display(),
                s.shard
            )));
        }
        if let Some(other) = seen.insert(s.shard.index, &s.dir) {
            return Err(MergeError::Mismatch(format!(
                "{} and {} are both shard {}: give each shard once",
                other.display(),
                s.dir.display(),
                s.shard
            )));
        }
        if let Some(field) = first_difference(&common, &common_part(&s.profile), "") {
            return Err(MergeError::Mismatch(format!(
                "{} and {} ran different profiles (they differ in `{field}`): only the shards of one load merge",
                first.dir.display(),
                s.dir.display()
            )));
        }
        if s.manifest.target != first.manifest.target {
            return Err(MergeError::Mismatch(format!(
                "{} loaded {} but {} loaded {}: only the shards of one load merge",
                first.dir.display(),
                first.manifest.target,
                s.dir.display(),
                s.manifest.target
            )));
        }
    }
    Ok(())
}

/// The whole load the given shards ran: their shares added back up.
fn whole_profile(shards: &[ShardRun]) -> Profile {
    let mut whole = shards[0].profile.clone();
    whole.load.shard = None;
    whole.load.sessions = shards.iter().map(|s| s.profile.load.sessions).sum();
    whole.load.rate = shards.iter().map(|s| s.profile.load.rate).sum();
    whole.load.max_in_flight = shards.iter().map(|s| s.profile.load.max_in_flight).sum();
    whole.load.total_sessions = shards
        .iter()
        .map(|s| s.profile.load.total_sessions)
        .sum::<Option<u64>>();
    whole.session.source_addresses = shards
        .iter()
        .flat_map(|s| s.profile.session.source_addresses.iter().cloned())
        .collect();
    whole
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s).ok()
}

/// Merges the shard runs in `opts.dirs` into `opts.out`.
pub fn merge(opts: &MergeOptions) -> Result<MergeReport, MergeError> {
    // A shard that failed before its load (an unreachable server, a wrong password) leaves
    // no directory: the merge goes on without it and names it missing.
    let (given, absent): (Vec<&PathBuf>, Vec<&PathBuf>) = opts.dirs.iter().partition(|d| d.exists());
    if given.is_empty() {
        return Err(MergeError::Mismatch(format!(
            "none of the run directories exists: {}",
            absent
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut shards = given
        .into_iter()
        .map(|d| ShardRun::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    shards.sort_by_key(|s| s.shard.index);
    check_shards(&shards)?;
    let count = shards[0].shard.count;
    let missing: Vec<Shard> = (0..count)
        .map(|index| Shard { index, count })
        .filter(|want| shards.iter().all(|s| s.shard != *want))
        .collect();

    rundir::refuse_non_empty(&opts.out, opts.force)?;
    std::fs::create_dir_all(&opts.out).map_err(|reason| OutputError::Create {
        path: opts.out.clone(),
        reason,
    })?;

    // One clock: the earliest shard's t = 0.
    let origin = shards
        .iter()
        .map(|s| s.manifest.clock_origin_unix_us)
        .min()
        .unwrap_or(0);
    let offsets: Vec<u64> = shards
        .iter()
        .map(|s| s.manifest.clock_origin_unix_us - origin)
        .collect();

    let inputs: Vec<records::ShardFiles> = shards
        .iter()
        .zip(&offsets)
        .map(|(s, &offset_us)| records::ShardFiles {
            dir: s.dir.clone(),
            shard: s.shard,
            offset_us,
        })
        .collect();
    for name in [rundir::EVENTS, rundir::CONNECTIONS, rundir::SESSIONS] {
        records::merge_csv(&inputs, name, &opts.out)?;
    }
    let mut files = vec![
        rundir::EVENTS.to_string(),
        rundir::CONNECTIONS.to_string(),
        rundir::SESSIONS.to_string(),
    ];

    let with_log: Vec<&records::ShardFiles> = inputs
        .iter()
        .filter(|s| s.dir.join(hlog::LATENCY_LOG).is_file())
        .collect();
    if !with_log.is_empty() {
        merge_latency_log(&with_log, origin, &opts.out)?;
        files.push(hlog::LATENCY_LOG.to_string());
    }
    if timeline::merge_timelines(&inputs, &opts.out)? {
        files.push(rundir::TIMELINE.to_string());
    }

    let first = &shards[0].manifest;
    let mut reasons: Vec<String> = missing.iter().map(|m| format!("shard {m} is missing")).collect();
    for d in &absent {
        reasons.push(format!(
            "{} does not exist (a shard that never started its load?)",
            d.display()
        ));
    }
    for s in &shards {
        if s.manifest.status == RunStatus::Partial {
            reasons.push(format!(
                "shard {} ({}) is partial: {}",
                s.shard,
                s.dir.display(),
                s.manifest.partial_reason.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    let ended_at = shards
        .iter()
        .filter_map(|s| s.manifest.ended_at.as_deref().and_then(parse_time))
        .max()
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        });
    let wall_origin = std::time::UNIX_EPOCH + std::time::Duration::from_micros(origin);
    files.push(rundir::SUMMARY.to_string());
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool: "ftpswarm".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        profile: whole_profile(&shards).into(),
        target: first.target.clone(),
        embedded_server: first.embedded_server,
        expected_pasv_range: first.expected_pasv_range,
        started_at: crate::clock::iso(wall_origin),
        clock_origin_unix_us: origin,
        ended_at,
        status: if reasons.is_empty() {
            RunStatus::Complete
        } else {
            RunStatus::Partial
        },
        partial_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        files,
        server_greeting: shards.iter().find_map(|s| s.manifest.server_greeting.clone()),
        // The server's side is one server for every shard: the first shard's reading.
        sockets_before_load: shards.iter().find_map(|s| s.manifest.sockets_before_load),
        shard: None,
        host: None,
        merged_from: shards
            .iter()
            .zip(&offsets)
            .map(|(s, &offset_us)| MergedShard {
                dir: s.dir.display().to_string(),
                shard: s.shard,
                host: s.manifest.host.clone(),
                started_at: s.manifest.started_at.clone(),
                clock_origin_unix_us: s.manifest.clock_origin_unix_us,
                status: s.manifest.status,
                partial_reason: s.manifest.partial_reason.clone(),
                offset_us,
            })
            .collect(),
    };
    rundir::write_json(&opts.out.join(rundir::MANIFEST), &manifest)?;
    let summary = crate::summary::from_run_dir(&opts.out)?;
    rundir::write_json(&opts.out.join(rundir::SUMMARY), &summary)?;
    Ok(MergeReport {
        dir: opts.out.clone(),
        manifest,
        summary,
        missing,
    })
}

/// The shards' latency logs as one: each histogram moved onto the merged clock and added to
/// the merged interval its start falls in. The counts are exact; a value's time moves by
/// less than one interval.
fn merge_latency_log(shards: &[&records::ShardFiles], origin_unix_us: u64, out: &Path) -> Result<(), MergeError> {
    use std::collections::btree_map::Entry;
    let mut logged = Vec::new();
    for s in shards {
        logged.extend(hlog::read_intervals(&s.dir)?.into_iter().map(|i| (s.offset_us, i)));
    }
    let length_us = logged.iter().map(|(_, i)| i.length_us).max().unwrap_or(1).max(1);
    // Keyed by start, then phase: the log's order.
    let mut grid: BTreeMap<(u64, String), LoggedInterval> = BTreeMap::new();
    for (offset_us, i) in logged {
        let slot = (offset_us + i.start_us) / length_us * length_us;
        match grid.entry((slot, i.phase.clone())) {
            Entry::Occupied(mut e) => e
                .get_mut()
                .histogram
                .add(&i.histogram)
                .map_err(|e| MergeError::Mismatch(format!("latency logs with different histogram bounds: {e:?}")))?,
            Entry::Vacant(v) => {
                v.insert(LoggedInterval {
                    start_us: slot,
                    length_us,
                    ..i
                });
            }
        }
    }
    let intervals: Vec<LoggedInterval> = grid.into_values().collect();
    let wall = std::time::UNIX_EPOCH + std::time::Duration::from_micros(origin_unix_us);
    hlog::write_intervals(out, wall, &intervals)?;
    Ok(())
}

#[cfg(test)]
mod tests;
