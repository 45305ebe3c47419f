//! `timeline.csv`: the live counters every sample tick (100 ms by default), plus, when the
//! server runs on this host, the kernel's view of the sockets on the passive range.

use super::sockdiag::{sample_sockets, SocketCounts};
use super::LiveCounters;
use crate::clock::RunClock;
use crate::event::FailureClass;
use crate::port_range::PortRange;
use crate::rundir::OutputError;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use crate::rundir::TIMELINE;

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    pub t_us: u64,
    pub sessions_active: i64,
    pub control_open: i64,
    pub pasv_pending: i64,
    pub data_open: i64,
    pub ports_held: i64,
    pub grants_total: u64,
    pub out_of_range_total: u64,
    pub transfers_total: u64,
    pub bytes_total: u64,
    /// Cumulative failures per class, in `FailureClass::ALL` order.
    pub failures_total: [u64; FailureClass::ALL.len()],
    pub server_sockets: Option<SocketCounts>,
    /// The server's listeners on the range, averaged over fast samples since the previous
    /// row (see [`ListenerAverage`]).
    pub server_listening: Option<ListenerAverage>,
    /// The share of the host's CPU time, all cores together, spent busy since the previous
    /// row (0 to 1, from /proc/stat). With the server on the same host this is how close the
    /// two are to running out of CPU together; `plan` stretches holds with it when it plans
    /// for more sessions than the run had.
    pub host_cpu_busy: Option<f64>,
    /// Cores the server's own process kept busy since the previous row (1.0 = one core), when
    /// it runs on this host in a process of its own (see [`super::server_process`]). A server
    /// with one event loop saturates at one core: `plan` takes this share for its contention.
    pub server_cpu_cores: Option<f64>,
}

/// The mean number of listening sockets on the range over one tick, from LISTEN-only sock_diag
/// dumps every few milliseconds: the ports the server really holds, as it holds them. One
/// count per tick would miss the bursts (a 2 ms hold is seen by one tick in fifty); the mean
/// of a few dozen is what the plan compares the simulated holds with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenerAverage {
    pub mean: f64,
    pub samples: u32,
}

const FIXED_COLUMNS: &[&str] = &[
    "t_us",
    "sessions_active",
    "control_open",
    "pasv_pending",
    "data_open",
    "ports_held",
    "grants_total",
    "out_of_range_total",
    "transfers_total",
    "bytes_total",
];
const SOCKET_COLUMNS: &[&str] = &["srv_listen", "srv_established", "srv_time_wait", "srv_other"];
const LISTENER_COLUMNS: &[&str] = &["srv_listen_mean", "srv_listen_samples"];
const HOST_COLUMN: &str = "host_cpu_busy";
const SERVER_CPU_COLUMN: &str = "server_cpu_cores";

pub fn columns() -> Vec<String> {
    FIXED_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .chain(FailureClass::ALL.iter().map(|c| format!("failed_{c}_total")))
        .chain(SOCKET_COLUMNS.iter().map(|s| s.to_string()))
        .chain(LISTENER_COLUMNS.iter().map(|s| s.to_string()))
        .chain([HOST_COLUMN.to_string(), SERVER_CPU_COLUMN.to_string()])
        .collect()
}

impl TimelineRow {
    /// A row at `t_us` with every count zero and nothing sampled.
    pub fn empty(t_us: u64) -> TimelineRow {
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
            server_cpu_cores: None,
        }
    }

    pub fn capture(
        t_us: u64,
        live: &LiveCounters,
        server_sockets: Option<SocketCounts>,
        server_listening: Option<ListenerAverage>,
        host_cpu_busy: Option<f64>,
    ) -> Self {
        TimelineRow {
            t_us,
            sessions_active: live.sessions_active.load(Relaxed),
            control_open: live.control_open.load(Relaxed),
            pasv_pending: live.pasv_pending.load(Relaxed),
            data_open: live.data_open.load(Relaxed),
            ports_held: live.ports_held.load(Relaxed),
            grants_total: live.grants.load(Relaxed),
            out_of_range_total: live.out_of_range.load(Relaxed),
            transfers_total: live.transfers_done.load(Relaxed),
            bytes_total: live.bytes.load(Relaxed),
            failures_total: FailureClass::ALL.map(|c| live.failures_of(c)),
            server_sockets,
            server_listening,
            host_cpu_busy,
            server_cpu_cores: None,
        }
    }

    fn to_record(&self) -> Vec<String> {
        let mut r = vec![
            self.t_us.to_string(),
            self.sessions_active.to_string(),
            self.control_open.to_string(),
            self.pasv_pending.to_string(),
            self.data_open.to_string(),
            self.ports_held.to_string(),
            self.grants_total.to_string(),
            self.out_of_range_total.to_string(),
            self.transfers_total.to_string(),
            self.bytes_total.to_string(),
        ];
        r.extend(self.failures_total.iter().map(u64::to_string));
        match self.server_sockets {
            Some(s) => r.extend([
                s.listen.to_string(),
                s.established.to_string(),
                s.time_wait.map(|n| n.to_string()).unwrap_or_default(),
                s.other.to_string(),
            ]),
            None => r.extend(std::iter::repeat_n(String::new(), SOCKET_COLUMNS.len())),
        }
        match self.server_listening {
            Some(l) => r.extend([format!("{:.3}", l.mean), l.samples.to_string()]),
            None => r.extend(std::iter::repeat_n(String::new(), LISTENER_COLUMNS.len())),
        }
        r.push(self.host_cpu_busy.map(|b| format!("{b:.3}")).unwrap_or_default());
        r.push(self.server_cpu_cores.map(|c| format!("{c:.3}")).unwrap_or_default());
        r
    }

    fn from_record(headers: &csv::StringRecord, rec: &csv::StringRecord) -> Result<Self, String> {
        let get = |name: &str| -> Result<&str, String> {
            let i = headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| format!("no column {name}"))?;
            Ok(rec.get(i).unwrap_or(""))
        };
        let num = |name: &str| -> Result<i64, String> {
            get(name)?.parse::<i64>().map_err(|e| format!("column {name}: {e}"))
        };
        let unum = |name: &str| -> Result<u64, String> {
            get(name)?.parse::<u64>().map_err(|e| format!("column {name}: {e}"))
        };
        let mut failures_total = [0; FailureClass::ALL.len()];
        for (slot, class) in failures_total.iter_mut().zip(FailureClass::ALL) {
            *slot = unum(&format!("failed_{class}_total"))?;
        }
        let sockets = match get("srv_listen")? {
            "" => None,
            _ => Some(SocketCounts {
                listen: unum("srv_listen")? as u32,
                established: unum("srv_established")? as u32,
                time_wait: match get("srv_time_wait")? {
                    "" => None,
                    _ => Some(unum("srv_time_wait")? as u32),
                },
                other: unum("srv_other")? as u32,
            }),
        };
        // Absent from timelines written before the fast listener samples.
        let server_listening = match (get("srv_listen_mean"), get("srv_listen_samples")) {
            (Ok(mean), Ok(samples)) if !mean.is_empty() && !samples.is_empty() => Some(ListenerAverage {
                mean: mean
                    .parse::<f64>()
                    .ok()
                    .filter(|m| m.is_finite() && *m >= 0.0)
                    .ok_or_else(|| format!("column srv_listen_mean: {mean:?} is not a count"))?,
                samples: unum("srv_listen_samples")? as u32,
            }),
            _ => None,
        };
        // Absent from timelines written before it was sampled.
        let host_cpu_busy = match get(HOST_COLUMN) {
            Ok(b) if !b.is_empty() => Some(
                b.parse::<f64>()
                    .ok()
                    .filter(|b| (0.0..=1.0).contains(b))
                    .ok_or_else(|| format!("column {HOST_COLUMN}: {b:?} is not a share from 0 to 1"))?,
            ),
            _ => None,
        };
        // Absent from timelines written before it was sampled.
        let server_cpu_cores = match get(SERVER_CPU_COLUMN) {
            Ok(c) if !c.is_empty() => Some(
                c.parse::<f64>()
                    .ok()
                    .filter(|c| c.is_finite() && *c >= 0.0)
                    .ok_or_else(|| format!("column {SERVER_CPU_COLUMN}: {c:?} is not a number of cores"))?,
            ),
            _ => None,
        };
        Ok(TimelineRow {
            t_us: unum("t_us")?,
            sessions_active: num("sessions_active")?,
            control_open: num("control_open")?,
            pasv_pending: num("pasv_pending")?,
            data_open: num("data_open")?,
            ports_held: num("ports_held")?,
            grants_total: unum("grants_total")?,
            out_of_range_total: unum("out_of_range_total")?,
            transfers_total: unum("transfers_total")?,
            bytes_total: unum("bytes_total")?,
            failures_total,
            server_sockets: sockets,
            server_listening,
            host_cpu_busy,
            server_cpu_cores,
        })
    }
}

pub fn read_timeline(dir: &Path) -> Result<Vec<TimelineRow>, OutputError> {
    let path = dir.join(TIMELINE);
    let err = |message: String| OutputError::Read {
        path: path.clone(),
        message,
    };
    let mut reader = crate::rundir::open_csv(&path)?;
    let headers = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    reader
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r = r.map_err(|e| err(e.to_string()))?;
            TimelineRow::from_record(&headers, &r).map_err(|e| err(format!("row {}: {e}", i + 2)))
        })
        .collect()
}

/// Writes `rows` as a timeline (a merged run's; the sampler writes its own as it goes).
pub fn write_timeline(path: &Path, rows: &[TimelineRow]) -> Result<(), OutputError> {
    let err = |message: String| OutputError::Write {
        path: path.to_path_buf(),
        message,
    };
    let file = File::create(path).map_err(|e| err(e.to_string()))?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(BufWriter::new(file));
    w.write_record(columns()).map_err(|e| err(e.to_string()))?;
    for row in rows {
        w.write_record(row.to_record()).map_err(|e| err(e.to_string()))?;
    }
    w.flush().map_err(|e| err(e.to_string()))
}

/// What the sampler does.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interval: Duration,
    /// Sample the kernel's sockets on this range (the server runs on this host).
    pub server_range: Option<PortRange>,
    /// The server listens on IPv6 (which socket table to read).
    pub server_ipv6: bool,
    /// The server's control address, to find its process and read its CPU (the server runs
    /// on this host).
    pub server_control: Option<std::net::SocketAddr>,
}

/// How often the server's listeners on the range are counted between two rows. A count (two
/// LISTEN-only dumps, one per family) costs ~22 µs on the 2-core CI host
/// (`listener_dump_cost`), but each wake-up costs more: every 2 ms the generator spent 14–18%
/// more CPU per transfer (`benches/sampler_overhead.py`); every 5 ms gives ~18 counts a row,
/// plenty for a mean, at a third of that.
const LISTENER_SAMPLE_INTERVAL: Duration = Duration::from_millis(5);
/// A host where one dump costs more stretches the interval to keep the sampler's share of a
/// core at this.
const LISTENER_CORE_SHARE: f64 = 0.01;

/// Most of the process's CPU time the TIME_WAIT count may take.
const SOCKET_CPU_BUDGET: f64 = 0.005;
/// What counting the host's `n` TIME_WAITs costs. Either way the kernel walks its whole
/// connection hash table (about 2 ms here, whatever it holds), then formats each TIME_WAIT:
/// as a line of /proc/net/tcp text, or as a binary sock_diag record. Measured on this 2-core
/// machine (`time_wait_cost` in `observe/sockdiag.rs`, the every-state dump the sampler makes;
/// ±30% between repeats): netlink 4.8 ms at 4,527 and 5.5–8.1 ms at 9,677; /proc 8.0 and
/// 13.7–22.2 ms. Priced at the dearer end, so the budget holds.
fn time_wait_read_cost(n: u64, netlink: bool) -> Duration {
    let (fixed_us, per_socket_ns): (u64, u64) = match netlink {
        true => (2_000, 650),
        false => (2_000, 1_800),
    };
    Duration::from_micros(fixed_us) + Duration::from_nanos(per_socket_ns.saturating_mul(n))
}

/// TIME_WAIT sockets on the host, from /proc/net/sockstat's `TCP: … tw N …` line: one cheap
/// line that prices a full /proc/net/tcp read before making it.
fn host_time_wait() -> Option<u64> {
    parse_sockstat_tw(&std::fs::read_to_string("/proc/net/sockstat").ok()?)
}

fn parse_sockstat_tw(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "tw")?;
    words.next()?.parse().ok()
}

/// Most of the process's CPU time the netlink live counts may take. The kernel walks every
/// socket of the family per dump, TIME_WAITs included, so on a host full of them even the
/// filtered dump costs milliseconds.
const DIAG_CPU_BUDGET: f64 = 0.01;

/// The socket reads may take their budget's share of the process's CPU time or of one core
/// over the time the sampler has run, whichever is more. On the process's CPU alone, a load
/// held back by think time or bandwidth caps got no live count after the first: 1 in 19 rows
/// of a 2 s run of capped uploads (1.3 ms per dump against ~0.1 s of CPU). A share of one
/// core is still a share the generator barely notices.
fn within(sampler_start: Instant, process_start: Option<cpu_time::ProcessTime>, spent: Duration, budget: f64) -> bool {
    let process_cpu = process_start.and_then(|p| p.try_elapsed().ok()).unwrap_or_default();
    let allowance = process_cpu.max(sampler_start.elapsed());
    spent.as_secs_f64() <= budget * allowance.as_secs_f64()
}

/// The host's CPU time from /proc/stat, busy and in all, between two rows.
#[derive(Default)]
struct HostCpu {
    last: Option<(u64, u64)>,
}

impl HostCpu {
    fn read() -> Option<(u64, u64)> {
        use procfs::CurrentSI;
        let t = procfs::KernelStats::current().ok()?.total;
        // Guest time is already inside user time.
        let idle = t.idle + t.iowait.unwrap_or(0);
        let total = t.user
            + t.nice
            + t.system
            + t.idle
            + t.iowait.unwrap_or(0)
            + t.irq.unwrap_or(0)
            + t.softirq.unwrap_or(0)
            + t.steal.unwrap_or(0);
        Some((total.saturating_sub(idle), total))
    }

    /// The busy share since the previous call; `None` the first time, or when no clock tick
    /// passed (the counters move in 10 ms steps per core).
    fn busy_since(&mut self) -> Option<f64> {
        let now = Self::read();
        let share = match (self.last, now) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                Some((b1.saturating_sub(b0) as f64 / (t1 - t0) as f64).clamp(0.0, 1.0))
            }
            _ => None,
        };
        self.last = now;
        share
    }
}

/// The fast listener counts between two rows.
#[derive(Default)]
struct ListenerSampler {
    sum: u64,
    samples: u32,
    /// Dumps made and the CPU time they took, for the interval and the overhead report.
    dumps: u64,
    cost: Duration,
    ever_counted: bool,
    failed: bool,
}

impl ListenerSampler {
    /// Counts once with `count`; returns how long to wait before the next count.
    fn sample(&mut self, count: impl FnOnce() -> std::io::Result<u32>) -> Duration {
        if self.failed {
            return Duration::from_millis(20);
        }
        // Priced in this thread's CPU time, not wall time: on a busy host the sampler is
        // preempted mid-dump, and a wall-time price once stretched the interval past a row for
        // the rest of the run (0 of 51 rows counted in a CI run of five loads at once) while
        // the dumps cost what they always do.
        let t0 = cpu_time::ThreadTime::try_now().ok();
        match count() {
            Ok(n) => {
                self.sum += u64::from(n);
                self.samples += 1;
                self.ever_counted = true;
            }
            // A kernel without LISTEN-only dumps fails every time: stop asking. A dump that
            // fails now and then (the table changed under it) is only skipped.
            Err(_) => self.failed = !self.ever_counted && self.dumps >= 2,
        }
        self.cost += t0.and_then(|t| t.try_elapsed().ok()).unwrap_or_default();
        self.dumps += 1;
        let mean_cost = self.cost.div_f64(self.dumps as f64);
        LISTENER_SAMPLE_INTERVAL.max(mean_cost.div_f64(LISTENER_CORE_SHARE))
    }

    fn take(&mut self) -> Option<ListenerAverage> {
        let average = (self.samples > 0).then(|| ListenerAverage {
            mean: self.sum as f64 / f64::from(self.samples),
            samples: self.samples,
        });
        (self.sum, self.samples) = (0, 0);
        average
    }
}

/// What the sampler did, to report its overhead.
#[derive(Debug, Clone, Copy, Default)]
pub struct SamplerStats {
    pub samples: u64,
    /// Wall time spent sampling and writing rows.
    pub busy: Duration,
    /// TIME_WAIT counts (netlink, or /proc/net/tcp without it), on the CPU budget.
    pub socket_reads: u64,
    /// CPU time spent counting TIME_WAITs.
    pub socket_cpu: Duration,
    /// Samples with live socket counts from netlink sock_diag.
    pub diag_samples: u64,
    /// Dumps that failed (e.g. interrupted by the socket table changing under them).
    pub diag_errors: u64,
    pub diag_cpu: Duration,
    /// LISTEN-only dumps between rows, and their CPU time (`srv_listen_mean`).
    pub listener_dumps: u64,
    pub listener_time: Duration,
}

/// Samples until `stop`, then writes one last row. Runs on the blocking pool: reading
/// /proc/net/tcp is synchronous and grows with the socket count.
pub fn spawn_sampler(
    dir: &Path,
    live: Arc<LiveCounters>,
    clock: RunClock,
    config: SamplerConfig,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<Result<SamplerStats, OutputError>>, OutputError> {
    let path: PathBuf = dir.join(TIMELINE);
    let file = File::create(&path).map_err(|e| OutputError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(BufWriter::new(file));
    let werr = |path: &PathBuf, e: csv::Error| OutputError::Write {
        path: path.clone(),
        message: e.to_string(),
    };
    w.write_record(columns()).map_err(|e| werr(&path, e))?;
    w.flush().map_err(|e| werr(&path, e.into()))?;
    Ok(tokio::task::spawn_blocking(move || {
        let mut stats = SamplerStats::default();
        let mut next = Instant::now();
        let sampler_start = next;
        let process_start = cpu_time::ProcessTime::try_now().ok();
        // Netlink sock_diag where the kernel offers it; /proc alone otherwise.
        let mut diag = config.server_range.and_then(|_| super::sockdiag::SockDiag::open().ok());
        let mut listeners = ListenerSampler::default();
        let mut host = HostCpu::default();
        let mut server = config
            .server_control
            .and_then(super::server_process::ServerProcess::find);
        loop {
            let stopping = stop.is_cancelled();
            let started = Instant::now();
            // The kernel's table lists every socket of the host (tens of thousands of
            // TIME_WAITs after a busy loopback run), so one read can cost more CPU than the
            // generator spends in a second. Read it only while its total CPU stays within
            // SOCKET_CPU_BUDGET of the process's; rows in between leave it empty.
            let sockets = match config.server_range {
                Some(range) => {
                    // TIME_WAIT, priced before it is paid: either read walks the kernel's whole
                    // connection table. With netlink one dump of every state gives the live
                    // counts too, for the price of the walk the live dump would make anyway.
                    let estimate = time_wait_read_cost(host_time_wait().unwrap_or(0), diag.is_some());
                    let time_wait_due = within(
                        sampler_start,
                        process_start,
                        stats.socket_cpu + estimate,
                        SOCKET_CPU_BUDGET,
                    );
                    // Only the very first live dump ignores its budget (it gives the baseline
                    // before the load); a failed dump must not turn into a dump every tick.
                    let first = stats.diag_samples + stats.diag_errors == 0;
                    let live_due = first || within(sampler_start, process_start, stats.diag_cpu, DIAG_CPU_BUDGET);
                    let t0 = cpu_time::ThreadTime::try_now().ok();
                    let spent =
                        |t0: Option<cpu_time::ThreadTime>| t0.and_then(|t| t.try_elapsed().ok()).unwrap_or_default();
                    match diag.as_mut() {
                        Some(d) if time_wait_due => {
                            let counts = d.count_all(range).ok();
                            stats.socket_cpu += spent(t0);
                            stats.socket_reads += 1;
                            match counts {
                                Some(_) => stats.diag_samples += 1,
                                None => stats.diag_errors += 1,
                            }
                            counts
                        }
                        Some(d) if live_due => {
                            // Live sockets only; `time_wait` stays unknown on this row.
                            let counts = d.count(range, config.server_ipv6).ok();
                            stats.diag_cpu += spent(t0);
                            match counts {
                                Some(_) => stats.diag_samples += 1,
                                None => stats.diag_errors += 1,
                            }
                            counts
                        }
                        Some(_) => None,
                        // Without netlink, /proc gives everything, on the TIME_WAIT budget.
                        None if time_wait_due => {
                            let counts = sample_sockets(range);
                            stats.socket_cpu += spent(t0);
                            stats.socket_reads += 1;
                            counts
                        }
                        None => None,
                    }
                }
                None => None,
            };
            let mut row = TimelineRow::capture(clock.now_us(), &live, sockets, listeners.take(), host.busy_since());
            row.server_cpu_cores = server.as_mut().and_then(|p| p.cpu_since());
            // Each row on disk as it is taken (ten a second): a killed run keeps its timeline.
            w.write_record(row.to_record())
                .and_then(|()| Ok(w.flush()?))
                .map_err(|e| werr(&path, e))?;
            stats.samples += 1;
            stats.busy += started.elapsed();
            if stopping {
                break;
            }
            next += config.interval;
            // Sleep in short steps so a stop is seen promptly, counting the listeners between.
            while Instant::now() < next && !stop.is_cancelled() {
                let step = match (diag.as_mut(), config.server_range) {
                    (Some(d), Some(range)) => listeners.sample(|| d.count_listeners(range)),
                    _ => Duration::from_millis(20),
                };
                std::thread::sleep(next.saturating_duration_since(Instant::now()).min(step));
            }
        }
        w.flush().map_err(|e| OutputError::Write {
            path: path.clone(),
            message: e.to_string(),
        })?;
        stats.listener_dumps = listeners.dumps;
        stats.listener_time = listeners.cost;
        Ok(stats)
    }))
}

#[cfg(test)]
mod tests;
