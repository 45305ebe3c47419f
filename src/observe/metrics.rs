//! The live counters as a Prometheus scrape target, so a long run (or every shard of one) can
//! be watched on a dashboard while it goes. The counters are read from [`LiveCounters`] at
//! each scrape, never copied on the engine's hot path; only the phase histograms are fed, by
//! the record collector, off that path.
//!
//! The metric names are a contract with the Grafana dashboard: the tests pin them.

use super::LiveCounters;
use crate::event::{FailureClass, Record};
use crate::summary::{phase_latencies, PHASES};
use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// What `prometheus_client::encoding::text::encode` writes: OpenMetrics text, ending in `# EOF`.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A plain table keeps the names, the help and the source field side by side, so a rename
/// shows in one place (and in the tests that pin the names).
type Field<T> = fn(&LiveCounters) -> T;

/// Registered without `_total`: the encoder appends it to every counter.
const COUNTERS: [(&str, &str, Field<u64>); 8] = [
    ("ftpswarm_sessions_started", "Sessions started.", |l| {
        l.sessions_started.load(Relaxed)
    }),
    (
        "ftpswarm_sessions_done",
        "Sessions finished, whatever their outcome.",
        |l| l.sessions_done.load(Relaxed),
    ),
    (
        "ftpswarm_sessions_dropped",
        "Sessions the open load model skipped because max_in_flight sessions were already active.",
        |l| l.sessions_dropped.load(Relaxed),
    ),
    ("ftpswarm_logins", "Control connections that logged in.", |l| {
        l.logins.load(Relaxed)
    }),
    ("ftpswarm_pasv_grants", "PASV/EPSV replies that granted a port.", |l| {
        l.grants.load(Relaxed)
    }),
    (
        "ftpswarm_pasv_out_of_range",
        "PASV/EPSV grants of a port outside the expected passive range.",
        |l| l.out_of_range.load(Relaxed),
    ),
    (
        "ftpswarm_transfers",
        "Data-connection attempts (one PASV/EPSV and its transfer) finished, whatever their outcome.",
        |l| l.transfers_done.load(Relaxed),
    ),
    (
        "ftpswarm_bytes",
        "Payload bytes moved over data connections, RETR and STOR together.",
        |l| l.bytes.load(Relaxed),
    ),
];

const FAILURES: (&str, &str) = ("ftpswarm_failures", "Failures, by failure class.");

const GAUGES: [(&str, &str, Field<i64>); 5] = [
    ("ftpswarm_sessions_active", "Sessions running now.", |l| {
        l.sessions_active.load(Relaxed)
    }),
    (
        "ftpswarm_control_connections_open",
        "Control connections open now.",
        |l| l.control_open.load(Relaxed),
    ),
    (
        "ftpswarm_pasv_pending",
        "Ports granted by PASV/EPSV whose data connection is not open yet.",
        |l| l.pasv_pending.load(Relaxed),
    ),
    ("ftpswarm_data_connections_open", "Data connections open now.", |l| {
        l.data_open.load(Relaxed)
    }),
    (
        "ftpswarm_ports_held",
        "Distinct server passive ports held now, from the grant until our data connection closes.",
        |l| l.ports_held.load(Relaxed),
    ),
];

/// Registered with the seconds unit, which the encoder appends: `ftpswarm_phase_latency_seconds`.
const PHASE_LATENCY: (&str, &str) = (
    "ftpswarm_phase_latency",
    "Latency of each protocol phase a record reached, as the collector receives the records.",
);

/// 100 µs · 2^k up to 52.4 s (then +Inf): an FTP phase spans a LAN round trip to a stalled
/// server's timeouts. Whole microseconds over 1e6, so every bound prints as its exact decimal
/// and a latency of exactly a bound lands in that bound's bucket.
fn latency_buckets() -> impl Iterator<Item = f64> {
    (0..20u32).map(|k| f64::from(100u32 << k) / 1e6)
}

/// The scrape-time view of [`LiveCounters`].
#[derive(Debug)]
struct LiveCollector {
    live: Arc<LiveCounters>,
    /// The highest value each counter has shown (COUNTERS, then the failure classes). The
    /// engine claims a session id by adding first and taking it back past the session limit,
    /// so a raw read can be higher than the next one; a scraper would read that dip as a
    /// counter reset and see a spike in `rate()`.
    high_water: Box<[AtomicU64]>,
    /// Indexed like [`PHASES`].
    phases: Vec<Histogram>,
}

impl LiveCollector {
    fn monotone(&self, index: usize, now: u64) -> u64 {
        self.high_water
            .get(index)
            .map_or(now, |h| h.fetch_max(now, Relaxed).max(now))
    }
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (i, (name, help, read)) in COUNTERS.iter().enumerate() {
            let counter = ConstCounter::new(self.monotone(i, read(&self.live)));
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let mut family = encoder.encode_descriptor(FAILURES.0, FAILURES.1, None, MetricType::Counter)?;
        for (i, class) in FailureClass::ALL.into_iter().enumerate() {
            let counter = ConstCounter::new(self.monotone(COUNTERS.len() + i, self.live.failures_of(class)));
            counter.encode(family.encode_family(&[("class", class.as_str())])?)?;
        }
        for (name, help, read) in &GAUGES {
            let gauge = ConstGauge::new(read(&self.live));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let mut family = encoder.encode_descriptor(
            PHASE_LATENCY.0,
            PHASE_LATENCY.1,
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (phase, histogram) in PHASES.iter().zip(&self.phases) {
            histogram.encode(family.encode_family(&[("phase", *phase)])?)?;
        }
        Ok(())
    }
}

/// ftpswarm's Prometheus registry: the live counters and the per-phase latency histograms.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Shared with the registered collector (a histogram clone is a handle to the same data),
    /// so `observe` goes straight to a phase's histogram without a label lookup.
    phases: Vec<Histogram>,
}

impl Metrics {
    /// `labels` are put on every series, so the shards of one run can scrape into one
    /// Prometheus and still be told apart (e.g. `[("shard", "0"), ("shards", "2")]`). Their
    /// names must be valid Prometheus label names; values are escaped by the encoder.
    pub fn new(live: Arc<LiveCounters>, labels: Vec<(String, String)>) -> Metrics {
        let phases: Vec<Histogram> = PHASES.iter().map(|_| Histogram::new(latency_buckets())).collect();
        let mut registry = Registry::with_labels(labels.into_iter().map(|(k, v)| (Cow::Owned(k), Cow::Owned(v))));
        registry.register_collector(Box::new(LiveCollector {
            live,
            high_water: (0..COUNTERS.len() + FailureClass::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            phases: phases.clone(),
        }));
        Metrics { registry, phases }
    }

    /// Fed every record by the collector, which already sees each one once and off the
    /// clients' path; the same phase definitions as the summary, in seconds.
    pub fn observe(&self, record: &Record) {
        phase_latencies(record, |phase, micros| {
            if let Some(histogram) = self.phases.get(phase) {
                histogram.observe(micros as f64 / 1e6);
            }
        });
    }

    /// One scrape's body: the counters as they are at this instant.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, and our collector only forwards the writer's
        // errors; should it ever, a scrape without `# EOF` is rejected, not misread.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding the metrics failed: {e}");
        }
        out
    }
}

/// Long enough for any honest scraper on a loaded host, short enough that idle connections
/// cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A scrape is one small response; a client that has not taken it by then is stuck or hostile.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// How long a stop waits for scrapes already being answered.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Scrapers are a handful; past this a flood of connections is refused, not served.
const MAX_CONNECTIONS: usize = 64;
/// After a failed accept (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `GET /metrics` on `addr` until `stop` is cancelled. Binding happens before this
/// returns, so a taken port fails the run's start with a message naming `--metrics-addr`,
/// and the bound address is returned for callers that asked for port 0.
pub async fn serve(
    metrics: Arc<Metrics>,
    addr: SocketAddr,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-addr {addr}: cannot listen for metrics scrapes"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("--metrics-addr {addr}: cannot read the bound address"))?;
    Ok((bound, tokio::spawn(accept_loop(listener, metrics, stop))))
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined {
                    tracing::debug!("metrics connection task ended abnormally: {e}");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if connections.len() >= MAX_CONNECTIONS {
                        tracing::debug!("metrics: refusing {peer}, {MAX_CONNECTIONS} connections already open");
                        continue;
                    }
                    connections.spawn(serve_connection(stream, Arc::clone(&metrics), stop.clone()));
                }
                Err(e) => {
                    tracing::debug!("metrics: accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    // Close the port first, so a stopped run is visibly gone to its scrapers.
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!("metrics: {} connections cut at stop", connections.len());
    }
    // Dropping the set aborts whatever is left.
}

async fn serve_connection(stream: TcpStream, metrics: Arc<Metrics>, stop: CancellationToken) {
    let service = service_fn(move |request: Request<Incoming>| {
        std::future::ready(Ok::<_, Infallible>(respond(&metrics, &request)))
    });
    let mut builder = http1::Builder::new();
    // One request per connection: scrapes are seconds apart, so keep-alive saves nothing and
    // an idle kept-alive connection would be one more thing to time out.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("metrics connection: {e}");
            }
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            // Bounded by the accept loop, which aborts this task after its grace.
            let _ = connection.await;
        }
        () = tokio::time::sleep(CONNECTION_DEADLINE) => {
            tracing::debug!("metrics connection: dropped after {CONNECTION_DEADLINE:?}");
        }
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.uri().path(), request.method()) {
        ("/metrics", &Method::GET | &Method::HEAD) => (StatusCode::OK, CONTENT_TYPE_OPENMETRICS, metrics.render()),
        ("/metrics", _) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, PassiveCommand, SessionRecord, TransferCommand, TransferEvent};
    use prometheus_parse::{LineInfo, Scrape, Value};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const COUNTER_NAMES: [&str; 8] = [
        "ftpswarm_sessions_started_total",
        "ftpswarm_sessions_done_total",
        "ftpswarm_sessions_dropped_total",
        "ftpswarm_logins_total",
        "ftpswarm_pasv_grants_total",
        "ftpswarm_pasv_out_of_range_total",
        "ftpswarm_transfers_total",
        "ftpswarm_bytes_total",
    ];
    const GAUGE_NAMES: [&str; 5] = [
        "ftpswarm_sessions_active",
        "ftpswarm_control_connections_open",
        "ftpswarm_pasv_pending",
        "ftpswarm_data_connections_open",
        "ftpswarm_ports_held",
    ];
    const HISTOGRAM: &str = "ftpswarm_phase_latency_seconds";

    /// Parses strictly: the parser skips what it cannot read, so first every line must be a
    /// comment or a sample with a numeric value, and the exposition must end in `# EOF`.
    fn parse(text: &str) -> Scrape {
        assert!(text.ends_with("# EOF\n"), "no OpenMetrics EOF marker:\n{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            match LineInfo::parse(line) {
                LineInfo::Sample { value, .. } => {
                    assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
                }
                other => panic!("not a sample: {line:?} ({other:?})"),
            }
        }
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    fn labels_are(sample: &prometheus_parse::Sample, want: &[(&str, &str)]) -> bool {
        sample.labels.len() == want.len() && want.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
    }

    /// The one scalar sample named `name` with exactly `labels`.
    fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels_are(s, labels))
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {} samples", found.len());
        match found[0].value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{name}: not a scalar: {other:?}"),
        }
    }

    fn buckets(scrape: &Scrape, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let found: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == HISTOGRAM && labels_are(s, labels))
            .collect();
        assert_eq!(found.len(), 1, "{HISTOGRAM} {labels:?}");
        match &found[0].value {
            Value::Histogram(b) => b.iter().map(|b| (b.less_than, b.count)).collect(),
            other => panic!("not a histogram: {other:?}"),
        }
    }

    fn transfer(pasv_sent: u64, pasv_reply: u64, data_connected: u64) -> Record {
        Record::Transfer(TransferEvent {
            session_id: 1,
            connection_id: 1,
            seq_in_session: 0,
            command: TransferCommand::Retr,
            passive_command: PassiveCommand::Pasv,
            path: "/f".into(),
            pasv_port: Some(30000),
            in_range: Some(true),
            t_pasv_sent_us: pasv_sent,
            t_pasv_reply_us: Some(pasv_reply),
            t_data_connected_us: Some(data_connected),
            t_data_tls_us: None,
            t_first_byte_us: None,
            t_transfer_done_us: None,
            t_data_closed_us: None,
            t_final_reply_us: None,
            bytes: 0,
            expected_bytes: None,
            pasv_reply_code: Some(227),
            transfer_reply_code: None,
            final_reply_code: None,
            outcome: Outcome::Failed(FailureClass::TransferAborted),
            detail: String::new(),
        })
    }

    #[test]
    fn render_parses_with_exact_values() {
        let live = Arc::new(LiveCounters::default());
        live.sessions_started.fetch_add(7, Relaxed);
        live.sessions_active.fetch_add(3, Relaxed);
        live.bytes.fetch_add(123_456, Relaxed);
        live.granted(30000, Some(true));
        live.failure(FailureClass::PasvRejected);
        let metrics = Metrics::new(Arc::clone(&live), vec![]);
        // pasv 1600 µs (exactly a bucket bound, which is inclusive), data_connect 7 ms.
        metrics.observe(&transfer(1_000, 2_600, 9_600));
        let text = metrics.render();
        let scrape = parse(&text);

        assert_eq!(value(&scrape, "ftpswarm_sessions_started_total", &[]), 7.0);
        assert_eq!(value(&scrape, "ftpswarm_sessions_active", &[]), 3.0);
        assert_eq!(value(&scrape, "ftpswarm_bytes_total", &[]), 123_456.0);
        assert_eq!(value(&scrape, "ftpswarm_pasv_grants_total", &[]), 1.0);
        assert_eq!(value(&scrape, "ftpswarm_pasv_pending", &[]), 1.0);
        assert_eq!(value(&scrape, "ftpswarm_ports_held", &[]), 1.0);
        assert_eq!(value(&scrape, "ftpswarm_pasv_out_of_range_total", &[]), 0.0);
        for class in FailureClass::ALL {
            let want = if class == FailureClass::PasvRejected { 1.0 } else { 0.0 };
            assert_eq!(
                value(&scrape, "ftpswarm_failures_total", &[("class", class.as_str())]),
                want,
                "{class}"
            );
        }

        // Exactly the contracted names, no more (a doubled `_total` would show here).
        let mut names: Vec<&str> = scrape
            .samples
            .iter()
            .map(|s| s.metric.as_str())
            .filter(|n| !n.starts_with(HISTOGRAM))
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut want: Vec<&str> = COUNTER_NAMES.iter().chain(&GAUGE_NAMES).copied().collect();
        want.push("ftpswarm_failures_total");
        want.sort_unstable();
        assert_eq!(names, want);
        for name in COUNTER_NAMES
            .iter()
            .map(|n| n.trim_end_matches("_total"))
            .chain(GAUGE_NAMES)
        {
            assert!(
                scrape.docs.get(name).is_some_and(|d| d.len() > 10),
                "no HELP for {name}"
            );
        }
        assert!(text.contains(&format!("# TYPE {HISTOGRAM} histogram\n")), "{text}");

        let pasv = [("phase", "pasv")];
        assert_eq!(value(&scrape, &format!("{HISTOGRAM}_count"), &pasv), 1.0);
        assert_eq!(value(&scrape, &format!("{HISTOGRAM}_sum"), &pasv), 0.0016);
        let b = buckets(&scrape, &pasv);
        assert_eq!(b.len(), 21, "20 bounds and +Inf: {b:?}");
        assert_eq!(b[0], (0.0001, 0.0));
        assert_eq!(b[19].0, 52.4288);
        assert_eq!(b[20], (f64::INFINITY, 1.0));
        assert!(
            b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "not cumulative: {b:?}"
        );
        assert_eq!((at_bound(&b, 0.0008), at_bound(&b, 0.0016)), (0.0, 1.0));

        let data = [("phase", "data_connect")];
        assert_eq!(value(&scrape, &format!("{HISTOGRAM}_sum"), &data), 0.007);
        let b = buckets(&scrape, &data);
        assert_eq!((at_bound(&b, 0.0064), at_bound(&b, 0.0128)), (0.0, 1.0));

        // Every phase is present before it is reached, so the dashboard has no gaps to explain.
        for phase in PHASES {
            let want = if ["pasv", "data_connect"].contains(phase) {
                1.0
            } else {
                0.0
            };
            assert_eq!(
                value(&scrape, &format!("{HISTOGRAM}_count"), &[("phase", phase)]),
                want,
                "{phase}"
            );
        }
    }

    fn at_bound(b: &[(f64, f64)], bound: f64) -> f64 {
        b.iter().find(|(le, _)| *le == bound).map_or(f64::NAN, |(_, c)| *c)
    }

    #[test]
    fn constant_labels_are_on_every_series() {
        let live = Arc::new(LiveCounters::default());
        let labels = vec![
            ("shard".to_string(), "1".to_string()),
            ("shards".to_string(), "2".to_string()),
        ];
        let metrics = Metrics::new(live, labels);
        metrics.observe(&Record::Session(SessionRecord {
            session_id: 1,
            t_intended_start_us: 0,
            t_start_us: 10,
            t_login_done_us: None,
            t_end_us: 2_000_000,
            connections: 1,
            files_planned: 0,
            files_ok: 0,
            files_failed: 0,
            files_not_attempted: 0,
            bytes: 0,
            outcome: Outcome::OK,
            detail: String::new(),
        }));
        let scrape = parse(&metrics.render());
        assert!(scrape.samples.len() > 30);
        for s in &scrape.samples {
            assert_eq!(
                (s.labels.get("shard"), s.labels.get("shards")),
                (Some("1"), Some("2")),
                "{} {}",
                s.metric,
                s.labels
            );
        }
        let session = [("phase", "session"), ("shard", "1"), ("shards", "2")];
        assert_eq!(value(&scrape, &format!("{HISTOGRAM}_sum"), &session), 2.0);
        assert_eq!(
            value(
                &scrape,
                "ftpswarm_sessions_started_total",
                &[("shard", "1"), ("shards", "2")]
            ),
            0.0
        );
    }

    #[test]
    fn counters_never_go_down_and_track_increments() {
        let live = Arc::new(LiveCounters::default());
        let metrics = Metrics::new(Arc::clone(&live), vec![]);
        live.sessions_started.fetch_add(3, Relaxed);
        live.transfers_done.fetch_add(10, Relaxed);
        live.failure(FailureClass::Timeout);
        let first = parse(&metrics.render());

        // The engine's claim past the session limit: add, then take back.
        live.sessions_started.fetch_sub(1, Relaxed);
        let dipped = parse(&metrics.render());
        assert_eq!(value(&dipped, "ftpswarm_sessions_started_total", &[]), 3.0);

        live.sessions_started.fetch_add(2, Relaxed);
        live.transfers_done.fetch_add(5, Relaxed);
        live.failure(FailureClass::Timeout);
        live.failure(FailureClass::LoginFailed);
        let second = parse(&metrics.render());

        assert_eq!(value(&second, "ftpswarm_sessions_started_total", &[]), 4.0);
        assert_eq!(value(&second, "ftpswarm_transfers_total", &[]), 15.0);
        let timeouts = [("class", "timeout")];
        assert_eq!(value(&first, "ftpswarm_failures_total", &timeouts), 1.0);
        assert_eq!(value(&second, "ftpswarm_failures_total", &timeouts), 2.0);
        assert_eq!(
            value(&second, "ftpswarm_failures_total", &[("class", "login_failed")]),
            1.0
        );
        for s in first.samples.iter().filter(|s| s.metric.ends_with("_total")) {
            let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (before, later) = (value(&first, &s.metric, &labels), value(&second, &s.metric, &labels));
            assert!(
                later >= before,
                "{} {} went from {before} to {later}",
                s.metric,
                s.labels
            );
        }
    }

    /// One request over a fresh connection, read to the server's close.
    async fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .unwrap()
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let content_type = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-type: ")
                    .or_else(|| l.strip_prefix("Content-Type: "))
            })
            .unwrap_or_default()
            .to_string();
        (status, content_type, body.to_string())
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn serves_metrics_404s_the_rest_and_stops() {
        let live = Arc::new(LiveCounters::default());
        live.logins.fetch_add(5, Relaxed);
        let metrics = Arc::new(Metrics::new(Arc::clone(&live), vec![]));
        let stop = CancellationToken::new();
        let (addr, task) = serve(metrics, "127.0.0.1:0".parse().unwrap(), stop.clone())
            .await
            .unwrap();
        assert_ne!(addr.port(), 0);

        // A client that sends half a request and then nothing must not hold up the others,
        // nor must one that sends garbage end the server.
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled.write_all(b"GET /metr").await.unwrap();
        let (status, _, _) = http(addr, "garbage\r\n\r\n").await;
        assert_eq!(status, 400);

        let (status, content_type, body) = http(addr, &get("/metrics")).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, CONTENT_TYPE_OPENMETRICS);
        assert_eq!(value(&parse(&body), "ftpswarm_logins_total", &[]), 5.0);

        live.logins.fetch_add(1, Relaxed);
        let (_, _, body) = http(addr, &get("/metrics")).await;
        assert_eq!(
            value(&parse(&body), "ftpswarm_logins_total", &[]),
            6.0,
            "read at scrape time"
        );

        let (status, _, _) = http(addr, &get("/nope")).await;
        assert_eq!(status, 404);
        let (status, _, _) = http(addr, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(status, 405);

        stop.cancel();
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "port still open after stop");
        drop(stalled);
    }

    #[tokio::test]
    async fn a_taken_address_is_an_error_naming_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new(Arc::new(LiveCounters::default()), vec![]));
        let err = serve(metrics, addr, CancellationToken::new()).await.unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains(&addr.to_string()), "{message}");
        assert!(message.contains("--metrics-addr"), "{message}");
    }
}
