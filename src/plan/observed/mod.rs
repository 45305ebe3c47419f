//! What a plan needs from a run directory, read fast: a million-row `events.csv` is parsed as
//! byte records, keeping only the columns the fit uses.

use crate::event::FailureClass;
use crate::observe::timeline::{read_timeline, TimelineRow, TIMELINE};
use crate::profile::{PortRange, Profile};
use crate::rundir::{self, Manifest, OutputError, RunStatus, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION};
use crate::summary::ledger::ReleasePolicy;
use crate::summary::Summary;
use std::path::{Path, PathBuf};

/// One PASV/EPSV attempt, reduced to times (µs since t = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub is_stor: bool,
    pub port: Option<u16>,
    pub t_sent_us: u64,
    pub t_granted_us: Option<u64>,
    pub t_connected_us: Option<u64>,
    pub t_first_byte_us: Option<u64>,
    pub t_transfer_done_us: Option<u64>,
    /// Our data connection closed, or we gave up on the grant.
    pub t_released_us: Option<u64>,
    /// The server refused the PASV (425 …) or answered outside the range.
    pub blocked: bool,
    /// Whether the granted port was inside the expected range (unknown without a range).
    pub in_range: Option<bool>,
}

/// A control connection's logged-in interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedIn {
    pub from_us: u64,
    pub to_us: u64,
}

/// A run as a plan reads it: the run directory's head and the transfers of the stretch planned.
pub struct Observed {
    pub dir: PathBuf,
    pub head: RunHead,
    pub attempts: Vec<Attempt>,
    pub connections: Vec<LoggedIn>,
    pub release_policy: ReleasePolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ObservedError {
    #[error("{0} is not a run directory (no manifest.json); give the directory `ftpswarm run` printed")]
    NotARun(PathBuf),
    #[error("{dir} has schema version {found}; this ftpswarm reads versions {OLDEST_READABLE_SCHEMA} to {SCHEMA_VERSION} (re-run, or use the ftpswarm that made it)")]
    Schema { dir: PathBuf, found: u32 },
    #[error("{dir}: {message}")]
    Unusable { dir: PathBuf, message: String },
    #[error(transparent)]
    Output(#[from] OutputError),
}

fn column(headers: &csv::ByteRecord, name: &str, path: &Path) -> Result<usize, OutputError> {
    headers
        .iter()
        .position(|h| h == name.as_bytes())
        .ok_or_else(|| OutputError::Read {
            path: path.to_path_buf(),
            message: format!("no column {name}"),
        })
}

fn opt_u64(field: Option<&[u8]>) -> Option<u64> {
    let f = field?;
    if f.is_empty() {
        return None;
    }
    std::str::from_utf8(f).ok()?.parse().ok()
}

/// One of the run's CSVs read as byte records (a million-row file without a String per
/// field), with errors that name the file.
struct Rows {
    path: PathBuf,
    reader: csv::Reader<std::io::BufReader<std::io::Take<std::fs::File>>>,
    headers: csv::ByteRecord,
}

impl Rows {
    fn open(dir: &Path, name: &str) -> Result<Rows, OutputError> {
        let path = dir.join(name);
        let mut reader = rundir::open_csv(&path)?;
        let headers = reader
            .byte_headers()
            .map_err(|e| read_error(&path, e.to_string()))?
            .clone();
        Ok(Rows { path, reader, headers })
    }

    fn column(&self, name: &str) -> Result<usize, OutputError> {
        column(&self.headers, name, &self.path)
    }

    fn err(&self, message: String) -> OutputError {
        read_error(&self.path, message)
    }

    /// The next row into `record`; false at the end.
    fn next(&mut self, record: &mut csv::ByteRecord) -> Result<bool, OutputError> {
        self.reader
            .read_byte_record(record)
            .map_err(|e| read_error(&self.path, e.to_string()))
    }
}

fn read_error(path: &Path, message: String) -> OutputError {
    OutputError::Read {
        path: path.to_path_buf(),
        message,
    }
}

/// The stretch of `len_us` holding the most PASVs sent, when the run is longer than that: what
/// a plan of a long run reads, so that its memory does not grow with the run's length. Only the
/// send times are read (8 bytes per transfer).
pub fn busiest_span(dir: &Path, len_us: u64) -> Result<Option<(u64, u64)>, OutputError> {
    let mut rows = Rows::open(dir, rundir::EVENTS)?;
    let sent = rows.column("t_pasv_sent_us")?;
    let mut times = Vec::new();
    let mut record = csv::ByteRecord::new();
    while rows.next(&mut record)? {
        if let Some(t) = opt_u64(record.get(sent)) {
            times.push(t);
        }
    }
    times.sort_unstable();
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Ok(None);
    };
    if last - first <= len_us {
        return Ok(None);
    }
    let (start, _) = busiest_window(&times, len_us);
    Ok(Some((start, start + len_us)))
}

/// Start of the window of length `w` holding the most of `times` (sorted), and its count.
pub fn busiest_window(times: &[u64], w: u64) -> (u64, usize) {
    let (mut best_start, mut best) = (times.first().copied().unwrap_or(0), 0);
    let mut lo = 0;
    for (hi, &t) in times.iter().enumerate() {
        while times[lo] + w <= t {
            lo += 1;
        }
        if hi + 1 - lo > best {
            best = hi + 1 - lo;
            best_start = times[lo];
        }
    }
    (best_start, best)
}

fn within(span: Option<(u64, u64)>, t: u64) -> bool {
    span.is_none_or(|(from, to)| from <= t && t < to)
}

/// Every PASV sent within `span`, in file order, handed to `each` one at a time.
fn for_each_attempt(dir: &Path, span: Option<(u64, u64)>, mut each: impl FnMut(Attempt)) -> Result<(), OutputError> {
    let mut rows = Rows::open(dir, rundir::EVENTS)?;
    let c = |n| rows.column(n);
    let in_range = c("in_range")?;
    let (command, port, sent, reply, connected, first, done, closed, final_reply, outcome) = (
        c("command")?,
        c("pasv_port")?,
        c("t_pasv_sent_us")?,
        c("t_pasv_reply_us")?,
        c("t_data_connected_us")?,
        c("t_first_byte_us")?,
        c("t_transfer_done_us")?,
        c("t_data_closed_us")?,
        c("t_final_reply_us")?,
        c("outcome")?,
    );
    let rejected = FailureClass::PasvRejected.as_str().as_bytes();
    let outside = FailureClass::PasvOutOfRange.as_str().as_bytes();
    let mut record = csv::ByteRecord::new();
    let mut row = 1;
    while rows.next(&mut record)? {
        row += 1;
        let t_sent_us =
            opt_u64(record.get(sent)).ok_or_else(|| rows.err(format!("row {row}: t_pasv_sent_us is not a number")))?;
        if !within(span, t_sent_us) {
            continue;
        }
        let port = opt_u64(record.get(port)).and_then(|p| u16::try_from(p).ok());
        let t_granted_us = opt_u64(record.get(reply)).filter(|_| port.is_some());
        let t_connected_us = opt_u64(record.get(connected));
        let released = opt_u64(record.get(closed))
            .or(opt_u64(record.get(final_reply)))
            .or(t_granted_us);
        let o = record.get(outcome).unwrap_or(b"");
        each(Attempt {
            is_stor: record.get(command) == Some(b"STOR"),
            port,
            t_sent_us,
            t_granted_us,
            t_connected_us,
            t_first_byte_us: opt_u64(record.get(first)),
            t_transfer_done_us: opt_u64(record.get(done)),
            t_released_us: released,
            blocked: o == rejected || o == outside,
            in_range: match record.get(in_range) {
                Some(b"true") => Some(true),
                Some(b"false") => Some(false),
                _ => None,
            },
        });
    }
    Ok(())
}

fn read_attempts(dir: &Path, span: Option<(u64, u64)>) -> Result<Vec<Attempt>, OutputError> {
    let mut out = Vec::new();
    for_each_attempt(dir, span, |a| out.push(a))?;
    Ok(out)
}

/// A run's granted ports for drawing: every `step`-th grant in file order (at most the `max`
/// asked for) and the extent of all of them. Read in two passes, so that the chart of an
/// hour's run needs no more memory than a minute's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrantSample {
    pub grants: Vec<Attempt>,
    /// All grants in the run, drawn or not.
    pub total: usize,
    pub step: usize,
    /// The last release of any grant (µs since t = 0).
    pub t_end_us: u64,
    /// The lowest and highest granted port inside the range (or anywhere, without a range).
    pub ports_inside: Option<(u16, u16)>,
    pub any_outside: bool,
}

/// A PASV answered with a port (inside the range or not): `for_each_attempt` gives a grant time
/// only with a port.
fn is_grant(a: &Attempt) -> bool {
    a.t_granted_us.is_some()
}

pub fn sample_grants(dir: &Path, max: usize) -> Result<GrantSample, OutputError> {
    let mut sample = GrantSample::default();
    for_each_attempt(dir, None, |a| {
        if !is_grant(&a) {
            return;
        }
        sample.total += 1;
        sample.t_end_us = sample.t_end_us.max(a.t_released_us.unwrap_or(0));
        if a.in_range == Some(false) {
            sample.any_outside = true;
        } else if let Some(p) = a.port {
            let (lo, hi) = sample.ports_inside.unwrap_or((p, p));
            sample.ports_inside = Some((lo.min(p), hi.max(p)));
        }
    })?;
    sample.step = sample.total.div_ceil(max.max(1)).max(1);
    let mut nth = 0usize;
    let step = sample.step;
    let mut grants = Vec::with_capacity(sample.total.min(max));
    for_each_attempt(dir, None, |a| {
        if is_grant(&a) {
            if nth % step == 0 {
                grants.push(a);
            }
            nth += 1;
        }
    })?;
    sample.grants = grants;
    Ok(sample)
}

fn read_connections(dir: &Path, span: Option<(u64, u64)>) -> Result<Vec<LoggedIn>, OutputError> {
    let mut rows = Rows::open(dir, rundir::CONNECTIONS)?;
    let (login, closed) = (rows.column("t_login_done_us")?, rows.column("t_closed_us")?);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    while rows.next(&mut record)? {
        if let (Some(from_us), Some(to_us)) = (opt_u64(record.get(login)), opt_u64(record.get(closed))) {
            if span.is_some_and(|(from, to)| to_us < from || from_us >= to) {
                continue;
            }
            out.push(LoggedIn {
                from_us,
                to_us: to_us.max(from_us),
            });
        }
    }
    Ok(out)
}

/// Reads a run directory for planning. A partial run is usable, with a warning.
pub fn read(dir: &Path) -> Result<Observed, ObservedError> {
    read_within(dir, None)
}

/// The run directory's manifest, once it is known to be a run this version reads.
pub fn check(dir: &Path) -> Result<Manifest, ObservedError> {
    if !dir.join(rundir::MANIFEST).is_file() {
        return Err(ObservedError::NotARun(dir.to_path_buf()));
    }
    let raw: serde_json::Value = rundir::read_json(&dir.join(rundir::MANIFEST))?;
    let found = raw
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as u32;
    if !(OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&found) {
        return Err(ObservedError::Schema {
            dir: dir.to_path_buf(),
            found,
        });
    }
    serde_json::from_value(raw).map_err(|e| ObservedError::Unusable {
        dir: dir.to_path_buf(),
        message: format!("manifest.json: {e}"),
    })
}

/// Everything a run directory says about the run except its transfers: what a report needs
/// besides its charts' samples, read in memory that does not grow with the run's length.
pub struct RunHead {
    pub manifest: Manifest,
    pub profile: Option<Profile>,
    pub summary: Summary,
    pub expected_range: Option<PortRange>,
    pub timeline: Vec<TimelineRow>,
    pub warnings: Vec<String>,
}

pub fn read_head(dir: &Path) -> Result<RunHead, ObservedError> {
    let manifest = check(dir)?;
    let mut warnings = Vec::new();
    if manifest.status == RunStatus::Partial {
        warnings.push(format!(
            "the run is partial ({}); planning from what it recorded",
            manifest.partial_reason.as_deref().unwrap_or("no reason given")
        ));
    }
    let summary_path = dir.join(rundir::SUMMARY);
    let summary: Summary = if summary_path.is_file() {
        rundir::read_json(&summary_path)?
    } else {
        // Killed before it could write its summary: the CSVs hold everything it did.
        warnings.push("summary.json is missing (the run was killed); rebuilt from the CSVs".into());
        crate::summary::from_run_dir(dir)?
    };
    let profile = manifest.profile.known().cloned();
    if let Some(why) = manifest.profile.unreadable_because() {
        warnings.push(format!(
            "the manifest's profile is unreadable ({why}); assuming 1 connection and 1 file per session"
        ));
    }
    let expected_range = manifest.expected_pasv_range;
    let timeline = if dir.join(TIMELINE).is_file() {
        read_timeline(dir)?
    } else {
        Vec::new()
    };
    Ok(RunHead {
        manifest,
        profile,
        summary,
        expected_range,
        timeline,
        warnings,
    })
}

/// As [`read`], keeping only the PASVs sent within `span` and the control connections logged
/// in during it (see [`busiest_span`]).
pub fn read_within(dir: &Path, span: Option<(u64, u64)>) -> Result<Observed, ObservedError> {
    let head = read_head(dir)?;
    Ok(Observed {
        dir: dir.to_path_buf(),
        release_policy: head.summary.ledger.release_policy,
        attempts: read_attempts(dir, span)?,
        connections: read_connections(dir, span)?,
        head,
    })
}

impl Observed {
    /// Outcome-level sanity: a plan needs at least one granted port.
    pub fn grants(&self) -> usize {
        self.attempts.iter().filter(|a| a.t_granted_us.is_some()).count()
    }
}

/// The timeline's fast listener counts as the simulator compares them with its holds: each
/// row's mean covers the time since the row before, less what other processes held before the
/// load; only rows within the planned stretch of a long run (the replay has no other holds).
pub(crate) fn listener_ticks(
    timeline: &[crate::observe::timeline::TimelineRow],
    others: u32,
    span: Option<(u64, u64)>,
) -> Vec<crate::sim::trace::ListenerTick> {
    timeline
        .windows(2)
        .filter(|pair| span.is_none_or(|(from, to)| pair[0].t_us >= from && pair[1].t_us <= to))
        .filter_map(|pair| {
            let l = pair[1].server_listening?;
            Some(crate::sim::trace::ListenerTick {
                from_us: pair[0].t_us,
                to_us: pair[1].t_us,
                mean: (l.mean - f64::from(others)).max(0.0),
                samples: l.samples,
            })
        })
        .collect()
}

/// The concurrency a run was configured with, in sessions: the closed model's sessions, or
/// the open model's peak of sessions at once (from the timeline, else arrivals × duration).
pub(crate) fn run_sessions(obs: &Observed) -> f64 {
    let peak = obs
        .head
        .timeline
        .iter()
        .map(|r| r.sessions_active.max(0))
        .max()
        .unwrap_or(0) as f64;
    match &obs.head.profile {
        Some(p) if p.load.model == crate::profile::LoadModel::Closed => f64::from(p.load.sessions),
        _ if peak > 0.0 => peak,
        _ => (obs.head.summary.sessions.completed as f64).max(1.0),
    }
}

/// The host's mean busy CPU share over the rows inside `span` (all rows without one), or
/// `None` when the timeline did not record it (older runs) or has fewer than five rows of it.
pub(crate) fn host_cpu_busy(
    timeline: &[crate::observe::timeline::TimelineRow],
    span: Option<(u64, u64)>,
) -> Option<f64> {
    mean_within(timeline, span, |r| r.host_cpu_busy)
}

/// The cores the server's own process kept busy, on average over the rows inside `span`, as
/// [`host_cpu_busy`].
pub(crate) fn server_cpu_cores(
    timeline: &[crate::observe::timeline::TimelineRow],
    span: Option<(u64, u64)>,
) -> Option<f64> {
    mean_within(timeline, span, |r| r.server_cpu_cores)
}

fn mean_within(
    timeline: &[crate::observe::timeline::TimelineRow],
    span: Option<(u64, u64)>,
    value: impl Fn(&crate::observe::timeline::TimelineRow) -> Option<f64>,
) -> Option<f64> {
    let values: Vec<f64> = timeline
        .iter()
        .filter(|r| span.is_none_or(|(from, to)| r.t_us >= from && r.t_us <= to))
        .filter_map(value)
        .collect();
    (values.len() >= 5).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
pub(crate) mod tests;
