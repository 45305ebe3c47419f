//! A run as the simulator replays it: every control connection with its open and close,
//! every PASV with its timestamps and what became of it, every session with whether it
//! failed for a reason no range width changes.

use crate::event::FailureClass;
use crate::rundir::{self, OutputError};
use std::collections::HashMap;
use std::path::Path;

/// What became of one PASV/EPSV in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A port in the range was granted (or no range was given to check it against).
    Granted,
    /// A port outside the range was granted: the server ran out and fell back.
    GrantedOutside,
    /// Refused while the range was full, or with a reply naming no collision.
    Refused,
    /// Refused because another session had bound the same port (`Address already in use`).
    Collided,
    /// The PASV itself got no usable answer (timeout, protocol error, connection lost).
    NoAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceAttempt {
    pub session: u32,
    pub connection: u32,
    pub is_stor: bool,
    pub t_sent: u64,
    pub t_reply: Option<u64>,
    pub t_connected: Option<u64>,
    pub t_first_byte: Option<u64>,
    pub t_closed: Option<u64>,
    pub t_final: Option<u64>,
    pub result: AttemptResult,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceConnection {
    pub session: u32,
    pub t_open: u64,
    pub t_close: u64,
    /// Refused before logging in with a 4xx/5xx greeting (e.g. `421 … the maximum`).
    pub greeting_refused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TraceSession {
    /// Failed for a reason a wider range would not cure (timeouts, transfer errors, …).
    pub failed_otherwise: bool,
    /// Failed at the range: a refused or out-of-range PASV.
    pub failed_at_range: bool,
    /// Refused at the greeting (an admission cap, or a server that is full).
    pub greeting_refused: bool,
}

/// Offsets from the 227 to each later phase, for PASVs that were refused in the run and
/// would get a port at another width: medians of the granted ones, per command.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhaseOffsets {
    pub connected: u64,
    pub first_byte: u64,
    pub closed: u64,
    pub final_reply: u64,
}

/// The server's listeners on the range over one stretch of the run, from the timeline's fast
/// LISTEN counts, less those held by other processes before the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenerTick {
    pub from_us: u64,
    pub to_us: u64,
    pub mean: f64,
    pub samples: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Sorted by connection, then by time sent.
    pub attempts: Vec<TraceAttempt>,
    pub connections: Vec<TraceConnection>,
    pub sessions: Vec<TraceSession>,
    pub offsets_stor: PhaseOffsets,
    pub offsets_other: PhaseOffsets,
    /// Median time between two PASVs on one connection: the scale below which two copies of
    /// the load are independent.
    pub median_cycle_us: u64,
    /// The width of the range the run had, when it is known: the replay takes the run's own
    /// conditions at that width as its baseline.
    pub run_width: Option<u32>,
    /// TIME_WAIT sockets on the range when the run began, when they were read.
    pub time_waits_at_start: Option<u32>,
    /// The most TIME_WAIT sockets the server's host keeps at once, when it is known (Linux's
    /// `net.ipv4.tcp_max_tw_buckets`, for a server on this host): past it a closing socket
    /// skips TIME_WAIT, so a range never carries more, however fast the load closes (see
    /// [`super::time_wait::capped_horizon_s`]). `None`: no cap assumed.
    pub time_wait_cap: Option<u32>,
    /// The server's own view of its holds, when it ran on this host (empty otherwise):
    /// what calibrates the release lag on a run whose range was never short.
    pub listening: Vec<ListenerTick>,
    /// The share of the host's CPU busy during the run, when the server ran on this host:
    /// how much longer holds take at more sessions (see [`super::contention`]).
    pub host_cpu_busy: Option<f64>,
    /// Cores the server's own process kept busy during the run, when it ran on this host in a
    /// process of its own: a server with one event loop saturates at one (see
    /// [`super::contention::busy_share`]).
    pub server_cpu_cores: Option<f64>,
    /// The share of a connection's time between two PASVs spent in the exchange itself (PASV
    /// to final reply), the rest being think time: the part of a closed load's cycle that
    /// slower steps lengthen (see [`super::contention`]).
    pub active_share: f64,
    /// Rows skipped because they were cut short (a killed run).
    pub warnings: Vec<String>,
}

struct Columns<'a> {
    headers: csv::ByteRecord,
    path: &'a Path,
}

impl Columns<'_> {
    fn index(&self, name: &str) -> Result<usize, OutputError> {
        self.headers
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or_else(|| OutputError::Read {
                path: self.path.to_path_buf(),
                message: format!("no column {name}"),
            })
    }
}

fn num(field: Option<&[u8]>) -> Option<u64> {
    let f = field?;
    if f.is_empty() {
        return None;
    }
    std::str::from_utf8(f).ok()?.parse().ok()
}

fn text(field: Option<&[u8]>) -> &str {
    field.and_then(|f| std::str::from_utf8(f).ok()).unwrap_or("")
}

/// Reads every whole row of a CSV; a row cut short (the last one of a killed run) is
/// skipped with a warning instead of failing the read.
fn read_rows(
    dir: &Path,
    name: &str,
    warnings: &mut Vec<String>,
    mut each: impl FnMut(&Columns, &csv::ByteRecord) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    let path = dir.join(name);
    let err = |message: String| OutputError::Read {
        path: path.clone(),
        message,
    };
    let mut reader = crate::rundir::open_csv(&path)?;
    let headers = reader.byte_headers().map_err(|e| err(e.to_string()))?.clone();
    let columns = Columns { headers, path: &path };
    let mut record = csv::ByteRecord::new();
    let mut cut = 0usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) if record.len() != columns.headers.len() => cut += 1,
            Ok(true) => each(&columns, &record)?,
            // A row cut inside a quoted field ends the file: keep what came before.
            Err(_) => {
                cut += 1;
                break;
            }
        }
    }
    if cut > 0 {
        warnings.push(format!("{name}: skipped {cut} row(s) cut short (was the run killed?)"));
    }
    Ok(())
}

fn is_range_class(class: FailureClass) -> bool {
    matches!(class, FailureClass::PasvRejected | FailureClass::PasvOutOfRange)
}

/// Of the time between consecutive PASVs on a connection, the share from the first PASV to its
/// final reply, over all such pairs (sorted by connection, then time).
pub fn active_share(attempts: &[TraceAttempt]) -> f64 {
    let (mut active, mut cycle) = (0u64, 0u64);
    for w in attempts.windows(2).filter(|w| w[0].connection == w[1].connection) {
        let gap = w[1].t_sent.saturating_sub(w[0].t_sent);
        let busy = w[0]
            .t_final
            .or(w[0].t_closed)
            .or(w[0].t_reply)
            .map_or(0, |t| t.saturating_sub(w[0].t_sent))
            .min(gap);
        active += busy;
        cycle += gap;
    }
    if cycle == 0 {
        0.0
    } else {
        active as f64 / cycle as f64
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable(mid).1
}

/// Whether a refusal names the bind/listen race rather than a full range.
pub fn is_collision_text(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("address already in use") || d.contains("eaddrinuse")
}

impl Trace {
    /// Data connections the server closed first per second in the run (downloads,
    /// listings): each leaves a TIME_WAIT on its port.
    pub fn server_closes_per_s(&self) -> f64 {
        let closes = self
            .attempts
            .iter()
            .filter(|a| !a.is_stor && a.result != AttemptResult::NoAnswer)
            .count() as f64;
        match self.span() {
            Some((lo, hi)) if hi > lo => closes / ((hi - lo) as f64 / 1e6),
            _ => 0.0,
        }
    }

    pub fn read(dir: &Path) -> Result<Trace, OutputError> {
        Self::read_within(dir, None)
    }

    /// As [`read`](Self::read), keeping only the control connections open during `span` (with
    /// every PASV they sent, so no session is cut in two) and their sessions: what a plan of a
    /// long run replays, so that its memory follows the span, not the run.
    pub fn read_within(dir: &Path, span: Option<(u64, u64)>) -> Result<Trace, OutputError> {
        let overlaps = |open: u64, close: u64| span.is_none_or(|(from, to)| open < to && close >= from);
        let mut warnings = Vec::new();
        let mut session_index: HashMap<u64, u32> = HashMap::new();
        let mut connection_index: HashMap<u64, u32> = HashMap::new();
        let mut sessions: Vec<TraceSession> = Vec::new();
        let mut connections: Vec<TraceConnection> = Vec::new();
        fn intern_session(index: &mut HashMap<u64, u32>, sessions: &mut Vec<TraceSession>, id: u64) -> u32 {
            *index.entry(id).or_insert_with(|| {
                sessions.push(TraceSession::default());
                (sessions.len() - 1) as u32
            })
        }

        read_rows(dir, rundir::CONNECTIONS, &mut warnings, |c, r| {
            let (sid, cid) = (c.index("session_id")?, c.index("connection_id")?);
            let (open, closed, outcome) = (
                c.index("t_connect_start_us")?,
                c.index("t_closed_us")?,
                c.index("outcome")?,
            );
            let (Some(session_id), Some(connection_id), Some(t_open)) =
                (num(r.get(sid)), num(r.get(cid)), num(r.get(open)))
            else {
                return Ok(());
            };
            let t_close = num(r.get(closed)).unwrap_or(t_open).max(t_open);
            if !overlaps(t_open, t_close) {
                return Ok(());
            }
            let session = intern_session(&mut session_index, &mut sessions, session_id);
            let class = text(r.get(outcome))
                .parse::<crate::event::Outcome>()
                .ok()
                .and_then(|o| o.failure());
            let greeting_refused = class == Some(FailureClass::GreetingRejected);
            let s = &mut sessions[session as usize];
            match class {
                Some(FailureClass::GreetingRejected) => s.greeting_refused = true,
                Some(c) if is_range_class(c) => s.failed_at_range = true,
                Some(_) => s.failed_otherwise = true,
                None => {}
            }
            connection_index.insert(connection_id, connections.len() as u32);
            connections.push(TraceConnection {
                session,
                t_open,
                t_close,
                greeting_refused,
            });
            Ok(())
        })?;

        let mut attempts = Vec::new();
        read_rows(dir, rundir::EVENTS, &mut warnings, |c, r| {
            let idx = |n: &str| c.index(n);
            let (sid, cid, cmd) = (idx("session_id")?, idx("connection_id")?, idx("command")?);
            let (port, sent, reply) = (idx("pasv_port")?, idx("t_pasv_sent_us")?, idx("t_pasv_reply_us")?);
            let (connected, first, closed, fin) = (
                idx("t_data_connected_us")?,
                idx("t_first_byte_us")?,
                idx("t_data_closed_us")?,
                idx("t_final_reply_us")?,
            );
            let (outcome, detail, in_range) = (idx("outcome")?, idx("detail")?, idx("in_range")?);
            let (Some(session_id), Some(connection_id), Some(t_sent)) =
                (num(r.get(sid)), num(r.get(cid)), num(r.get(sent)))
            else {
                return Ok(());
            };
            let known = connection_index.get(&connection_id).copied();
            if known.is_none() && !overlaps(t_sent, t_sent) {
                return Ok(());
            }
            let session = intern_session(&mut session_index, &mut sessions, session_id);
            let connection = match known {
                Some(i) => i,
                // A connection whose row was lost (a killed run): open it at its first PASV.
                None => {
                    connection_index.insert(connection_id, connections.len() as u32);
                    connections.push(TraceConnection {
                        session,
                        t_open: t_sent,
                        t_close: t_sent,
                        greeting_refused: false,
                    });
                    (connections.len() - 1) as u32
                }
            };
            let class = text(r.get(outcome))
                .parse::<crate::event::Outcome>()
                .ok()
                .and_then(|o| o.failure());
            let granted = num(r.get(port)).is_some();
            let result = match class {
                _ if granted && r.get(in_range) == Some(b"false") => AttemptResult::GrantedOutside,
                _ if granted => AttemptResult::Granted,
                Some(FailureClass::PasvRejected) if is_collision_text(text(r.get(detail))) => AttemptResult::Collided,
                Some(FailureClass::PasvRejected) => AttemptResult::Refused,
                _ => AttemptResult::NoAnswer,
            };
            let s = &mut sessions[session as usize];
            match class {
                Some(c) if is_range_class(c) => s.failed_at_range = true,
                Some(_) => s.failed_otherwise = true,
                None => {}
            }
            attempts.push(TraceAttempt {
                session,
                connection,
                is_stor: r.get(cmd) == Some(b"STOR"),
                t_sent,
                t_reply: num(r.get(reply)),
                t_connected: num(r.get(connected)),
                t_first_byte: num(r.get(first)),
                t_closed: num(r.get(closed)),
                t_final: num(r.get(fin)),
                result,
            });
            Ok(())
        })?;

        // Sessions that ended without a connection or event row still count.
        read_rows(dir, rundir::SESSIONS, &mut warnings, |c, r| {
            let (sid, outcome) = (c.index("session_id")?, c.index("outcome")?);
            let (start, end) = (c.index("t_start_us")?, c.index("t_end_us")?);
            if let Some(id) = num(r.get(sid)) {
                // Within a span: the sessions of the connections kept, and those that never
                // got a connection but lived during it.
                let lived = |from: Option<u64>, to: Option<u64>| match (from, to) {
                    (Some(from), Some(to)) => overlaps(from, to.max(from)),
                    _ => false,
                };
                if span.is_some() && !session_index.contains_key(&id) && !lived(num(r.get(start)), num(r.get(end))) {
                    return Ok(());
                }
                let session = intern_session(&mut session_index, &mut sessions, id);
                let class = text(r.get(outcome))
                    .parse::<crate::event::Outcome>()
                    .ok()
                    .and_then(|o| o.failure());
                let s = &mut sessions[session as usize];
                match class {
                    Some(FailureClass::GreetingRejected) => s.greeting_refused = true,
                    Some(c) if is_range_class(c) => s.failed_at_range = true,
                    Some(_) if !s.failed_at_range && !s.greeting_refused => s.failed_otherwise = true,
                    _ => {}
                }
            }
            Ok(())
        })?;

        attempts.sort_by_key(|a| (a.connection, a.t_sent));
        let offsets = |stor: bool| {
            let granted = || {
                attempts
                    .iter()
                    .filter(move |a| a.is_stor == stor && a.result == AttemptResult::Granted)
                    .filter_map(|a| Some((a, a.t_reply?)))
            };
            let phase = |f: fn(&TraceAttempt) -> Option<u64>| {
                median(granted().filter_map(|(a, r)| Some(f(a)?.saturating_sub(r))).collect())
            };
            PhaseOffsets {
                connected: phase(|a| a.t_connected),
                first_byte: phase(|a| a.t_first_byte.or(a.t_connected)),
                closed: phase(|a| a.t_closed),
                final_reply: phase(|a| a.t_final.or(a.t_closed)),
            }
        };
        let cycles: Vec<u64> = attempts
            .windows(2)
            .filter(|w| w[0].connection == w[1].connection)
            .map(|w| w[1].t_sent - w[0].t_sent)
            .collect();
        let active_share = active_share(&attempts);
        Ok(Trace {
            offsets_stor: offsets(true),
            offsets_other: offsets(false),
            median_cycle_us: median(cycles),
            run_width: None,
            time_waits_at_start: None,
            time_wait_cap: None,
            attempts,
            connections,
            sessions,
            listening: Vec::new(),
            host_cpu_busy: None,
            server_cpu_cores: None,
            active_share,
            warnings,
        })
    }

    pub fn offsets(&self, is_stor: bool) -> &PhaseOffsets {
        if is_stor {
            &self.offsets_stor
        } else {
            &self.offsets_other
        }
    }

    /// First and last PASV sent: the span the replay covers.
    pub fn span(&self) -> Option<(u64, u64)> {
        let lo = self.attempts.iter().map(|a| a.t_sent).min()?;
        let hi = self.attempts.iter().map(|a| a.t_sent).max()?;
        Some((lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::records;

    #[test]
    fn every_column_read_is_one_the_writer_writes() {
        for name in [
            "in_range",
            "pasv_port",
            "t_pasv_sent_us",
            "t_pasv_reply_us",
            "t_data_connected_us",
            "t_first_byte_us",
            "t_data_closed_us",
            "t_final_reply_us",
            "outcome",
            "detail",
            "command",
        ] {
            assert!(records::TRANSFER_COLUMNS.contains(&name), "{name}");
        }
        for name in ["t_connect_start_us", "t_closed_us"] {
            assert!(records::CONNECTION_COLUMNS.contains(&name), "{name}");
        }
    }

    #[test]
    fn collisions_are_told_apart_from_a_full_range() {
        assert!(is_collision_text("PASV: Address already in use"));
        assert!(is_collision_text(
            "Unable to identify the local data socket: Address already in use"
        ));
        assert!(!is_collision_text("All reserved TCP ports are busy"));
        assert!(!is_collision_text("OOPS: vsf_sysutil_bind"));
    }
}
