//! `summary.json` and the human summary, computed from records alone: a live run feeds the
//! records as they happen, `read_records` feeds them back from a run directory, and both give
//! the same summary (order does not matter). The passive-port ledger (which port was granted
//! again while still held) is part of it.

pub mod ledger;
mod ordered;
pub mod synthetic;
mod text;

pub use text::render;

use crate::event::{FailureClass, Record, TransferCommand, TransferEvent};
use crate::port_range::PortRange;
use crate::rundir::SCHEMA_VERSION;
use hdrhistogram::Histogram;
use ledger::{Grant, LedgerSummary};
use ordered::OrderedFolds;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency phases, in the order a transfer meets them.
/// `tls` and `data_tls` are FTPS's handshakes on the control connection (with AUTH TLS when
/// explicit) and on each data connection; plain FTP runs have none.
pub const PHASES: &[&str] = &[
    "connect",
    "greeting",
    "tls",
    "login",
    "pasv",
    "data_connect",
    "data_tls",
    "first_byte",
    "transfer",
    "final_reply",
    "session",
];

/// Largest latency a histogram holds (1 h); longer values are clamped.
const HIST_MAX_US: u64 = 3_600_000_000;

fn new_histogram() -> Histogram<u64> {
    // Three significant digits from 1 µs to 1 h: constant bounds, which the tests exercise.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("constant histogram bounds are valid")
    // ok: constants
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommandCounts {
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    /// Cut off by the end of the run: neither ok nor failed.
    #[serde(default)]
    pub interrupted: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseLatency {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionCounts {
    pub completed: u64,
    pub ok: u64,
    pub failed: u64,
    /// Stopped by the run's end before they finished (Ctrl-C, or cut after the drain
    /// period): left out of failure rates.
    pub interrupted: u64,
    pub files_not_attempted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConnectionCounts {
    pub opened: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PassiveSummary {
    /// PASV/EPSV replies that named a port.
    pub grants: u64,
    pub distinct_ports: u64,
    pub min_port: Option<u16>,
    pub max_port: Option<u16>,
    pub out_of_range: u64,
    /// Most data connections open at one instant.
    pub peak_data_connections: u64,
    /// Most ports held at one instant, client view: from the PASV reply until our data
    /// connection closed (or the grant was abandoned).
    pub peak_ports_held: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub schema_version: u32,
    /// From t = 0 to the last record, in seconds.
    pub elapsed_s: f64,
    pub sessions: SessionCounts,
    pub connections: ConnectionCounts,
    pub transfers: CommandCounts,
    pub by_command: BTreeMap<String, CommandCounts>,
    pub transfers_per_s: f64,
    pub bytes_per_s: f64,
    pub passive: PassiveSummary,
    /// Every failure by class: transfers plus control connections that never got to work.
    pub failures: BTreeMap<String, u64>,
    /// A few distinct server replies per failure class, so a reader sees what the server said.
    pub failure_examples: BTreeMap<String, Vec<String>>,
    pub latency_us: BTreeMap<String, PhaseLatency>,
    /// Per-port history and the server's inferred release policy.
    pub ledger: LedgerSummary,
    /// Connects that waited for a retransmitted SYN: the server's listen backlog, not its FTP
    /// logic, held them up. Absent when none did (and in older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syn_retransmits: Option<SynRetransmits>,
}

/// Fewest connects at the retransmission steps that make a finding.
pub const SYN_FINDING_MIN: u64 = 10;

/// Connects that took one or two of Linux's SYN retransmission timeouts: the first SYN goes
/// again after 1 s, the second 2 s later. A listener whose queue is full drops SYNs (it does
/// not refuse them), so when a server accepts more slowly than clients arrive, connects pile
/// up at 1 s and 3 s with almost none in between: steps, unlike a slow server's smooth tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SynRetransmits {
    /// Connects that took 1.0 to 1.5 s: one SYN lost.
    pub after_1s: u64,
    /// Connects that took 3.0 to 3.5 s: two lost.
    pub after_3s: u64,
    /// Connects that took 0.5 to 1.0 s, which a smooth tail would have at least as many of.
    pub just_below_1s: u64,
    pub connects: u64,
}

impl SynRetransmits {
    /// From the connect latencies, when their shape says SYNs were retransmitted.
    pub fn from_connects(h: &Histogram<u64>) -> Option<SynRetransmits> {
        let mut found = SynRetransmits {
            after_1s: 0,
            after_3s: 0,
            just_below_1s: 0,
            connects: h.len(),
        };
        // Each bucket counted once, by its highest value: near 1 s a bucket spans 512 µs, and
        // `count_between` would put one straddling a bound on both sides. A retransmitted
        // connect on loopback takes 1.000-1.004 s, so the bucket across 1 s belongs past it.
        for v in h.iter_recorded() {
            let at = v.value_iterated_to();
            let n = v.count_at_value();
            match at {
                500_000..=999_999 => found.just_below_1s += n,
                1_000_000..=1_499_999 => found.after_1s += n,
                3_000_000..=3_499_999 => found.after_3s += n,
                _ => {}
            }
        }
        let stepped = found.after_1s + found.after_3s;
        // A step: twice as many just past the timeouts as in the half second below the first
        // (a smooth tail, even a flat one, has at least as many below as past); and more than
        // a lost packet or two: at least 10 connects and 0.5% of them.
        (stepped > 2 * found.just_below_1s && stepped >= SYN_FINDING_MIN && stepped * 200 >= found.connects)
            .then_some(found)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} of {} connects took about 1 s and {} about 3 s (against {} between 0.5 and 1 s): SYN \
             retransmits. The server's listen backlog overflowed and the kernel dropped SYNs, so its accept \
             queue, not its FTP logic, limited these connections; ramp the sessions up more slowly \
             (load.ramp_up) or raise the server's backlog (its listen() argument, capped by \
             net.core.somaxconn)",
            self.after_1s, self.connects, self.after_3s, self.just_below_1s
        )
    }
}

const EXAMPLES_PER_CLASS: usize = 3;

/// Folds records into a summary.
pub struct Accumulator {
    histograms: Vec<Histogram<u64>>,
    sessions: SessionCounts,
    connections: ConnectionCounts,
    by_command: BTreeMap<TransferCommand, CommandCounts>,
    failures: BTreeMap<FailureClass, u64>,
    examples: BTreeMap<FailureClass, Vec<String>>,
    ports_seen: Box<[u64; 1024]>,
    passive: PassiveSummary,
    /// Peaks and the ledger, which need transfers in time order.
    ordered: OrderedFolds,
    expected_range: Option<PortRange>,
    last_us: u64,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self::new(None)
    }
}

fn span(from: Option<u64>, to: Option<u64>) -> Option<u64> {
    Some(to?.saturating_sub(from?))
}

/// The latency of every phase a record reached, as (index into [`PHASES`], µs). One
/// definition for the summary and the interval log.
pub fn phase_latencies(record: &Record, mut f: impl FnMut(usize, u64)) {
    let mut put = |i: usize, v: Option<u64>| {
        if let Some(v) = v {
            f(i, v);
        }
    };
    match record {
        Record::Connection(c) => {
            // Implicit FTPS secures the connection before the greeting, explicit after it.
            let implicit_tls = c.t_tls_us.filter(|&t| c.t_greeting_us.is_none_or(|g| t <= g));
            put(0, span(Some(c.t_connect_start_us), c.t_connected_us));
            put(1, span(implicit_tls.or(c.t_connected_us), c.t_greeting_us));
            match implicit_tls {
                Some(_) => put(2, span(c.t_connected_us, c.t_tls_us)),
                None => put(2, span(c.t_greeting_us, c.t_tls_us)),
            }
            let login_from = match implicit_tls {
                Some(_) => c.t_greeting_us,
                None => c.t_tls_us.or(c.t_greeting_us),
            };
            put(3, span(login_from, c.t_login_done_us));
        }
        Record::Transfer(t) => {
            put(4, span(Some(t.t_pasv_sent_us), t.t_pasv_reply_us));
            put(5, span(t.t_pasv_reply_us, t.t_data_connected_us));
            put(6, span(t.t_data_connected_us, t.t_data_tls_us));
            put(7, span(t.t_data_connected_us, t.t_first_byte_us));
            put(8, span(t.t_data_connected_us, t.t_transfer_done_us));
            put(9, span(t.t_transfer_done_us, t.t_final_reply_us));
        }
        // Open model: from the intended arrival, so queueing before the start counts.
        Record::Session(s) => put(10, span(Some(s.t_intended_start_us), Some(s.t_end_us))),
    }
}

/// When a record's last phase ended, µs since t = 0.
pub fn record_end_us(record: &Record) -> u64 {
    match record {
        Record::Connection(c) => c.t_closed_us,
        Record::Session(s) => s.t_end_us,
        Record::Transfer(t) => [t.t_final_reply_us, t.t_data_closed_us, t.t_pasv_reply_us]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(t.t_pasv_sent_us),
    }
}

impl Accumulator {
    /// `expected_range` is the range the server picks ports from, when known (it sets the width
    /// the ledger's reuse test assumes).
    pub fn new(expected_range: Option<PortRange>) -> Self {
        Accumulator {
            histograms: PHASES.iter().map(|_| new_histogram()).collect(),
            sessions: SessionCounts::default(),
            connections: ConnectionCounts::default(),
            by_command: BTreeMap::new(),
            failures: BTreeMap::new(),
            examples: BTreeMap::new(),
            ports_seen: Box::new([0; 1024]),
            passive: PassiveSummary::default(),
            ordered: OrderedFolds::default(),
            expected_range,
            last_us: 0,
        }
    }

    fn failure(&mut self, class: FailureClass, detail: &str) {
        *self.failures.entry(class).or_default() += 1;
        let examples = self.examples.entry(class).or_default();
        if examples.len() < EXAMPLES_PER_CLASS && !examples.iter().any(|e| e == detail) {
            examples.push(detail.to_string());
        }
    }

    pub fn add(&mut self, record: &Record) {
        let histograms = &mut self.histograms;
        phase_latencies(record, |i, v| histograms[i].saturating_record(v.clamp(1, HIST_MAX_US)));
        self.last_us = self.last_us.max(record_end_us(record));
        match record {
            Record::Transfer(t) => self.add_transfer(t),
            Record::Connection(c) => {
                self.connections.opened += 1;
                // A connection that never logged in failed as a whole; one lost later already
                // counted its failure on the transfer that lost it.
                if c.t_login_done_us.is_none() {
                    if let Some(class) = c.outcome.failure() {
                        self.connections.failed += 1;
                        self.failure(class, &c.detail);
                    }
                }
            }
            Record::Session(s) => {
                self.sessions.completed += 1;
                self.sessions.files_not_attempted += u64::from(s.files_not_attempted);
                match s.outcome.failure() {
                    Some(_) => self.sessions.failed += 1,
                    // Older runs wrote `ok` with files left over for an interrupted session.
                    None if s.outcome.is_interrupted() || s.files_not_attempted > 0 => self.sessions.interrupted += 1,
                    None => self.sessions.ok += 1,
                }
            }
        }
    }

    fn add_transfer(&mut self, t: &TransferEvent) {
        let c = self.by_command.entry(t.command).or_default();
        c.attempted += 1;
        c.bytes += t.bytes;
        match t.outcome.failure() {
            None if t.outcome.is_interrupted() => c.interrupted += 1,
            None => c.ok += 1,
            Some(class) => {
                c.failed += 1;
                self.failure(class, &t.detail);
            }
        }
        let grant = if let (Some(port), Some(granted)) = (t.pasv_port, t.t_pasv_reply_us) {
            let p = &mut self.passive;
            p.grants += 1;
            p.min_port = Some(p.min_port.map_or(port, |m| m.min(port)));
            p.max_port = Some(p.max_port.map_or(port, |m| m.max(port)));
            if t.in_range == Some(false) {
                p.out_of_range += 1;
            }
            let (word, bit) = (usize::from(port) / 64, port % 64);
            self.ports_seen[word] |= 1 << bit;
            // Held from the grant until our data connection closed; an abandoned grant is
            // counted until we gave up on it.
            let released = t.t_data_closed_us.or(t.t_final_reply_us).unwrap_or(granted);
            Some(Grant {
                port,
                t_granted_us: granted,
                t_connected_us: t.t_data_connected_us,
                t_released_us: released.max(granted),
                t_server_open_until_us: match t.command {
                    TransferCommand::Stor => t.t_transfer_done_us,
                    TransferCommand::Retr | TransferCommand::List => t.t_first_byte_us,
                },
                t_transfer_started_us: t.t_first_byte_us,
            })
        } else {
            None
        };
        let data = t.t_data_connected_us.map(|connected| {
            let closed = t.t_data_closed_us.or(t.t_final_reply_us).unwrap_or(connected);
            (connected, closed.max(connected))
        });
        self.ordered.add(grant, data);
    }

    /// No transfer still to come was granted before `t_us` (see [`ordered`]): the time-ordered
    /// statistics fold what came before and let it go.
    pub fn advance(&mut self, t_us: u64) {
        self.ordered.advance(t_us);
    }

    /// Transfers held back until the watermark passes them.
    pub fn waiting(&self) -> usize {
        self.ordered.waiting()
    }

    pub fn finish(mut self) -> Summary {
        self.passive.distinct_ports = self.ports_seen.iter().map(|w| u64::from(w.count_ones())).sum();
        let transfers = self
            .by_command
            .values()
            .fold(CommandCounts::default(), |a, c| CommandCounts {
                attempted: a.attempted + c.attempted,
                ok: a.ok + c.ok,
                failed: a.failed + c.failed,
                interrupted: a.interrupted + c.interrupted,
                bytes: a.bytes + c.bytes,
            });
        let width = match (self.expected_range, self.passive.min_port, self.passive.max_port) {
            (Some(r), _, _) => r.width(),
            (None, Some(lo), Some(hi)) => u32::from(hi) - u32::from(lo) + 1,
            _ => 0,
        };
        let ordered = self.ordered.finish(width);
        self.passive.peak_data_connections = ordered.peak_data_connections;
        self.passive.peak_ports_held = ordered.peak_ports_held;
        if ordered.late > 0 {
            eprintln!(
                "warning: {} transfers arrived after the summary had folded their time; the peaks may be off by as many",
                ordered.late
            );
        }
        let ledger = ordered.ledger;
        let syn_retransmits = PHASES
            .iter()
            .position(|p| *p == "connect")
            .and_then(|i| self.histograms.get(i))
            .and_then(SynRetransmits::from_connects);
        let elapsed_s = self.last_us as f64 / 1e6;
        let per_s = |n: u64| if elapsed_s > 0.0 { n as f64 / elapsed_s } else { 0.0 };
        let latency_us = PHASES
            .iter()
            .zip(&self.histograms)
            .filter(|(_, h)| !h.is_empty())
            .map(|(name, h)| {
                (
                    name.to_string(),
                    PhaseLatency {
                        count: h.len(),
                        mean_us: (h.mean() * 10.0).round() / 10.0,
                        p50_us: h.value_at_quantile(0.5),
                        p90_us: h.value_at_quantile(0.9),
                        p99_us: h.value_at_quantile(0.99),
                        p999_us: h.value_at_quantile(0.999),
                        max_us: h.max(),
                    },
                )
            })
            .collect();
        Summary {
            schema_version: SCHEMA_VERSION,
            elapsed_s,
            sessions: self.sessions,
            connections: self.connections,
            transfers,
            by_command: self
                .by_command
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect(),
            transfers_per_s: per_s(transfers.ok),
            bytes_per_s: per_s(transfers.bytes),
            passive: self.passive,
            failures: self
                .failures
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect(),
            failure_examples: self
                .examples
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect(),
            latency_us,
            ledger,
            syn_retransmits,
        }
    }
}

/// Summary of a finished run directory, recomputed from its CSVs.
pub fn from_run_dir(dir: &std::path::Path) -> Result<Summary, crate::rundir::OutputError> {
    let manifest: crate::rundir::Manifest = crate::rundir::read_json(&dir.join(crate::rundir::MANIFEST))?;
    let range = manifest.expected_pasv_range;
    let mut acc = Accumulator::new(range);
    for r in crate::rundir::read_records(dir)? {
        acc.add(&r);
    }
    Ok(acc.finish())
}

#[cfg(test)]
mod tests;
