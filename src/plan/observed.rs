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
    let shares: Vec<f64> = timeline
        .iter()
        .filter(|r| span.is_none_or(|(from, to)| r.t_us >= from && r.t_us <= to))
        .filter_map(|r| r.host_cpu_busy)
        .collect();
    (shares.len() >= 5).then(|| shares.iter().sum::<f64>() / shares.len() as f64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Outcome, PassiveCommand, Record, TransferCommand, TransferEvent};
    use crate::rundir::RecordWriter;
    use crate::summary::synthetic::SyntheticRun;

    pub(crate) const S: u64 = 1_000_000;

    /// A timeline row at `t_us` with every count zero and nothing sampled.
    pub(crate) fn empty_row(t_us: u64) -> TimelineRow {
        TimelineRow {
            t_us,
            sessions_active: 0,
            control_open: 0,
            pasv_pending: 0,
            data_open: 0,
            ports_held: 0,
            grants_total: 0,
            out_of_range_total: 0,
            transfers_total: 0,
            bytes_total: 0,
            failures_total: [0; FailureClass::ALL.len()],
            server_sockets: None,
            server_listening: None,
            host_cpu_busy: None,
        }
    }

    /// A run of every kind of attempt a plan reads, written as `run` writes it. Connections
    /// log in 30 µs after they open: 1 over [0, 10 s), 2 over [1.5 s, 10 s), 3 over [20 s, 30 s).
    /// PASVs (227 after 100 µs, data connected at 150, first byte 300, done 2000, closed 2010,
    /// 226 at 2100, unless said otherwise), in file order:
    /// - 1.0 s RETR on 30001, 1.1 s STOR on 30002, 1.2–1.4 s RETR on 30003–30005;
    /// - 1.5 s refused (425, no port); 1.6 s granted 40000, outside the range, never connected;
    /// - 1.7 s RETR on 30007 whose data close was not recorded (released at its 226);
    /// - RETRs at 5, 7, 9 s (connection 1) and 25 s (connection 3).
    pub(crate) fn every_kind_of_attempt(dir: &Path) {
        let range = PortRange { min: 30000, max: 30099 };
        let mut run = SyntheticRun::create(dir, range, "220 (vsFTPd 3.0.3)").unwrap();
        let retr = |id, t, port| SyntheticRun::transfer(id, 0, t, port, TransferCommand::Retr, 1);
        let edit = |r: Record, f: &dyn Fn(&mut TransferEvent)| match r {
            Record::Transfer(mut e) => {
                f(&mut e);
                Record::Transfer(e)
            }
            other => other,
        };
        let mut records = vec![
            retr(1, S, 30001),
            SyntheticRun::transfer(1, 1, S + S / 10, 30002, TransferCommand::Stor, 1),
        ];
        records.extend((2..5).map(|i| retr(1, S + i * S / 10, 30001 + i as u16)));
        records.push(edit(retr(2, S + S / 2, 0), &|e| {
            e.pasv_port = None;
            e.in_range = None;
            e.pasv_reply_code = Some(425);
            (e.t_data_connected_us, e.t_first_byte_us, e.t_transfer_done_us) = (None, None, None);
            (e.t_data_closed_us, e.t_final_reply_us) = (None, None);
            e.outcome = Outcome::Failed(FailureClass::PasvRejected);
        }));
        records.push(edit(retr(2, S + 6 * S / 10, 40000), &|e| {
            e.in_range = Some(false);
            (e.t_data_connected_us, e.t_first_byte_us, e.t_transfer_done_us) = (None, None, None);
            (e.t_data_closed_us, e.t_final_reply_us) = (None, None);
            e.outcome = Outcome::Failed(FailureClass::PasvOutOfRange);
        }));
        records.push(edit(retr(2, S + 7 * S / 10, 30007), &|e| e.t_data_closed_us = None));
        records.extend([5, 7, 9].map(|t| retr(1, t * S, 30010)));
        records.push(retr(3, 25 * S, 30011));
        records.extend(SyntheticRun::connection(1, 0, 10 * S));
        records.extend(SyntheticRun::connection(2, S + S / 2, 10 * S));
        records.extend(SyntheticRun::connection(3, 20 * S, 30 * S));
        for r in &records {
            run.put(r).unwrap();
        }
        run.finish().unwrap();
    }

    #[test]
    fn every_kind_of_attempt_is_read_as_the_plan_needs_it() {
        let tmp = tempfile::tempdir().unwrap();
        every_kind_of_attempt(tmp.path());
        let obs = read(tmp.path()).unwrap();
        assert_eq!(obs.attempts.len(), 12);
        assert_eq!(obs.grants(), 11, "all but the refused one were granted a port");
        let ok = |t: u64, port: u16, is_stor: bool| Attempt {
            is_stor,
            port: Some(port),
            t_sent_us: t,
            t_granted_us: Some(t + 100),
            t_connected_us: Some(t + 150),
            t_first_byte_us: Some(t + 300),
            t_transfer_done_us: Some(t + 2000),
            t_released_us: Some(t + 2010),
            blocked: false,
            in_range: Some(true),
        };
        assert_eq!(obs.attempts[0], ok(S, 30001, false));
        assert_eq!(obs.attempts[1], ok(S + S / 10, 30002, true));
        assert_eq!(obs.attempts[4], ok(S + 4 * S / 10, 30005, false));
        let refused = Attempt {
            is_stor: false,
            port: None,
            t_sent_us: S + S / 2,
            t_granted_us: None,
            t_connected_us: None,
            t_first_byte_us: None,
            t_transfer_done_us: None,
            t_released_us: None,
            blocked: true,
            in_range: None,
        };
        assert_eq!(obs.attempts[5], refused);
        let t = S + 6 * S / 10;
        let outside = Attempt {
            port: Some(40000),
            t_sent_us: t,
            t_granted_us: Some(t + 100),
            t_released_us: Some(t + 100),
            in_range: Some(false),
            ..refused
        };
        assert_eq!(obs.attempts[6], outside, "an unused grant is released when it was made");
        let t = S + 7 * S / 10;
        assert_eq!(
            obs.attempts[7],
            Attempt {
                t_released_us: Some(t + 2100),
                ..ok(t, 30007, false)
            },
            "without a data close, at the final reply"
        );
        assert_eq!(obs.attempts[11], ok(25 * S, 30011, false));
        let logged_in = |from, to| LoggedIn {
            from_us: from + 30,
            to_us: to,
        };
        assert_eq!(
            obs.connections,
            [
                logged_in(0, 10 * S),
                logged_in(S + S / 2, 10 * S),
                logged_in(20 * S, 30 * S)
            ]
        );

        // A stretch keeps the PASVs sent in [from, to) and the connections logged in during it.
        let within = read_within(tmp.path(), Some((S, S + S / 2))).unwrap();
        let sent: Vec<u64> = within.attempts.iter().map(|a| a.t_sent_us).collect();
        assert_eq!(sent, (0..5).map(|i| S + i * S / 10).collect::<Vec<_>>());
        assert_eq!(within.connections, [logged_in(0, 10 * S)]);
        let within = read_within(tmp.path(), Some((10 * S, 11 * S))).unwrap();
        assert!(within.attempts.is_empty());
        assert_eq!(within.connections.len(), 2, "the two that end as it starts");
        let within = read_within(tmp.path(), Some((10 * S + 1, 20 * S + 30))).unwrap();
        assert!(within.connections.is_empty(), "ended before, or logged in as it ends");

        // A partial run is read, and says so.
        let mut manifest: Manifest = rundir::read_json(&tmp.path().join(rundir::MANIFEST)).unwrap();
        assert!(read_head(tmp.path()).unwrap().warnings.is_empty());
        manifest.status = RunStatus::Partial;
        manifest.partial_reason = Some("interrupted by Ctrl-C".into());
        rundir::write_json(&tmp.path().join(rundir::MANIFEST), &manifest).unwrap();
        assert_eq!(
            read_head(tmp.path()).unwrap().warnings,
            ["the run is partial (interrupted by Ctrl-C); planning from what it recorded"]
        );

        // The busiest second is 1.0–2.0 s (eight PASVs); a stretch as long as the run is none.
        assert_eq!(busiest_span(tmp.path(), S).unwrap(), Some((S, 2 * S)));
        assert_eq!(busiest_span(tmp.path(), 24 * S).unwrap(), None);
        assert_eq!(busiest_span(tmp.path(), 24 * S - 1).unwrap(), Some((S, 25 * S - 1)));
    }

    fn transfer(i: u64, port: Option<u16>, in_range: Option<bool>) -> Record {
        let t = i * 1000;
        Record::Transfer(TransferEvent {
            session_id: i,
            connection_id: i,
            seq_in_session: 0,
            command: TransferCommand::Retr,
            passive_command: PassiveCommand::Pasv,
            path: "size-1.bin".into(),
            pasv_port: port,
            in_range,
            t_pasv_sent_us: t,
            t_pasv_reply_us: Some(t + 100),
            t_data_connected_us: port.map(|_| t + 150),
            t_data_tls_us: None,
            t_first_byte_us: port.map(|_| t + 300),
            t_transfer_done_us: port.map(|_| t + 2000),
            t_data_closed_us: port.map(|_| t + 2010 + i % 7),
            t_final_reply_us: port.map(|_| t + 2100),
            bytes: 1,
            expected_bytes: Some(1),
            pasv_reply_code: Some(if port.is_some() { 227 } else { 425 }),
            transfer_reply_code: port.map(|_| 150),
            final_reply_code: port.map(|_| 226),
            outcome: if port.is_some() {
                Outcome::Ok
            } else {
                Outcome::Failed(FailureClass::PasvRejected)
            },
            detail: String::new(),
        })
    }

    /// A send time that is not a number is an error naming the file and its line.
    #[test]
    fn a_bad_send_time_is_reported_with_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        every_kind_of_attempt(tmp.path());
        let path = tmp.path().join(rundir::EVENTS);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let sent = lines[0].split(',').position(|h| h == "t_pasv_sent_us").unwrap();
        let mut fields: Vec<&str> = lines[2].split(',').collect();
        fields[sent] = "soon";
        lines[2] = fields.join(",");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let e = match read(tmp.path()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("read a send time of \"soon\""),
        };
        assert!(e.contains("row 3: t_pasv_sent_us is not a number"), "{e}");
        assert!(e.contains(rundir::EVENTS), "{e}");
    }

    /// The load a plan scales from: the closed model's sessions, else the timeline's peak,
    /// else the sessions the run completed.
    #[test]
    fn a_runs_concurrency_is_its_configured_sessions_or_their_peak() {
        let tmp = tempfile::tempdir().unwrap();
        every_kind_of_attempt(tmp.path());
        let mut obs = read(tmp.path()).unwrap();
        let completed = obs.head.summary.sessions.completed as f64;
        assert_eq!(completed, 3.0);
        let row = |t_us: u64, sessions_active: i64| TimelineRow {
            sessions_active,
            ..empty_row(t_us)
        };
        obs.head.timeline = vec![row(1, 5), row(2, 12), row(3, -20)];
        let mut profile = Profile::default();
        profile.load.model = crate::profile::LoadModel::Closed;
        profile.load.sessions = 8;
        obs.head.profile = Some(profile.clone());
        assert_eq!(run_sessions(&obs), 8.0, "closed: as configured, whatever the peak");
        profile.load.model = crate::profile::LoadModel::Open;
        obs.head.profile = Some(profile);
        assert_eq!(run_sessions(&obs), 12.0, "open: the peak");
        obs.head.profile = None;
        assert_eq!(run_sessions(&obs), 12.0, "unknown: the peak");
        obs.head.timeline = vec![row(1, 0), row(2, -3)];
        assert_eq!(run_sessions(&obs), completed, "no peak: the sessions completed");
        obs.head.summary.sessions.completed = 0;
        assert_eq!(run_sessions(&obs), 1.0, "at least one");
    }

    /// The host's busy share over a stretch: the mean of its rows' shares, edges included,
    /// from five rows that have one.
    #[test]
    fn the_hosts_busy_share_is_the_mean_of_five_rows_or_more() {
        let row = |t_us: u64, host_cpu_busy: Option<f64>| TimelineRow {
            host_cpu_busy,
            ..empty_row(t_us)
        };
        let rows = vec![
            row(99, Some(1.0)),
            row(100, Some(0.2)),
            row(150, None),
            row(160, Some(0.4)),
            row(170, Some(0.6)),
            row(180, Some(0.3)),
            row(200, Some(0.5)),
            row(201, Some(1.0)),
        ];
        let busy = host_cpu_busy(&rows, Some((100, 200))).unwrap_or(f64::NAN);
        assert!((busy - 0.4).abs() < 1e-12, "{busy}");
        let all = host_cpu_busy(&rows, None).unwrap_or(f64::NAN);
        assert!((all - 4.0 / 7.0).abs() < 1e-12, "{all}");
        assert_eq!(host_cpu_busy(&rows, Some((101, 200))), None, "four rows");
        assert_eq!(host_cpu_busy(&rows, Some((100, 199))), None, "four rows");
        assert_eq!(host_cpu_busy(&[], None), None);
    }

    #[test]
    fn busiest_window_finds_the_densest_stretch() {
        let t = [0, 10, 20, 500, 505, 506, 507, 1000];
        assert_eq!(busiest_window(&t, 100), (500, 4));
        assert_eq!(busiest_window(&t, 2000), (0, 8));
        assert_eq!(busiest_window(&[7], 5), (7, 1));
    }

    /// The chart's sample is bounded, evenly spread over the run, and its extent covers every
    /// grant, including those it does not draw.
    #[test]
    fn a_grant_sample_is_bounded_and_spans_the_whole_run() {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = RecordWriter::create(tmp.path()).unwrap();
        let n = 10_000u64;
        for i in 0..n {
            let record = match i {
                // Refused PASVs are not grants.
                _ if i % 10 == 3 => transfer(i, None, None),
                // One grant outside the range: known to the chart whether it is drawn or not.
                4_001 => transfer(i, Some(40_000), Some(false)),
                _ => transfer(i, Some(30_000 + (i % 50) as u16 + 5), Some(true)),
            };
            writer.write(&record).unwrap();
        }
        writer.sync().unwrap();
        let grants = n as usize - n as usize / 10;
        let sample = sample_grants(tmp.path(), 1_000).unwrap();
        assert_eq!(sample.total, grants);
        assert_eq!(sample.step, grants.div_ceil(1_000));
        assert!(sample.grants.len() <= 1_000, "{} drawn", sample.grants.len());
        assert!(sample.grants.len() >= 1_000 - 1, "{} drawn", sample.grants.len());
        assert!(sample.grants.iter().all(|a| a.port.is_some()));
        let last = (n - 1) * 1000 + 2010 + (n - 1) % 7;
        assert_eq!(sample.t_end_us, last);
        assert_eq!(sample.ports_inside, Some((30_005, 30_054)));
        assert!(sample.any_outside);
        // Spread over the run: the drawn grants reach its first and last hundredth.
        let first = sample.grants.iter().map(|a| a.t_sent_us).min().unwrap();
        let drawn_last = sample.grants.iter().map(|a| a.t_sent_us).max().unwrap();
        assert!(
            first < n * 1000 / 100 && drawn_last > n * 1000 * 99 / 100,
            "{first}..{drawn_last}"
        );

        let all = sample_grants(tmp.path(), usize::MAX).unwrap();
        assert_eq!((all.step, all.grants.len()), (1, grants));
    }
}
