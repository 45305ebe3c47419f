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
use std::sync::atomic::Ordering::Relaxed;
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
    /// Every counter in it only grows (the engine claims session ids with a compare-and-swap,
    /// never past the limit), so its reads are Prometheus counters as they stand.
    live: Arc<LiveCounters>,
    /// Indexed like [`PHASES`].
    phases: Vec<Histogram>,
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, read) in &COUNTERS {
            let counter = ConstCounter::new(read(&self.live));
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let mut family = encoder.encode_descriptor(FAILURES.0, FAILURES.1, None, MetricType::Counter)?;
        for class in FailureClass::ALL {
            let counter = ConstCounter::new(self.live.failures_of(class));
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
mod tests;
