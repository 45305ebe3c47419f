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
fn counters_track_increments_between_scrapes() {
    let live = Arc::new(LiveCounters::default());
    let metrics = Metrics::new(Arc::clone(&live), vec![]);
    live.sessions_started.fetch_add(3, Relaxed);
    live.transfers_done.fetch_add(10, Relaxed);
    live.failure(FailureClass::Timeout);
    let first = parse(&metrics.render());

    live.sessions_started.fetch_add(2, Relaxed);
    live.transfers_done.fetch_add(5, Relaxed);
    live.failure(FailureClass::Timeout);
    live.failure(FailureClass::LoginFailed);
    let second = parse(&metrics.render());

    assert_eq!(value(&second, "ftpswarm_sessions_started_total", &[]), 5.0);
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
