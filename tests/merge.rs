//! Sharded runs and `merge`: two shards against one embedded server, merged, against one run
//! of the same whole load; and the live metrics, scraped while a run goes on.

mod common;

use ftpswarm::event::Record;
use ftpswarm::merge::{merge, MergeOptions};
use ftpswarm::observe::timeline::read_timeline;
use ftpswarm::profile::{HumanDuration, PortRange, ProfileOverrides, Shard};
use ftpswarm::run::{run, RunOptions};
use ftpswarm::rundir::{self, Manifest, RunStatus};
use ftpswarm::server::{EmbeddedConfig, EmbeddedServer, DEFAULT_PASSWORD, DEFAULT_USER};
use ftpswarm::summary::{phase_latencies, PHASES};
use hdrhistogram::Histogram;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

const RANGE: PortRange = PortRange { min: 30700, max: 30799 };

fn load(shard: Option<Shard>) -> ProfileOverrides {
    ProfileOverrides {
        sessions: Some(4),
        total_sessions: Some(40),
        files_per_session: Some(3),
        // Sessions long enough that the ramp's (1 s) workers overlap.
        think_time: Some(HumanDuration(Duration::from_millis(100))),
        duration: Some(HumanDuration(Duration::from_secs(60))),
        pasv_range: Some(RANGE),
        source_addresses: Some(vec!["127.0.0.2-127.0.0.5".into()]),
        shard,
        ..ProfileOverrides::default()
    }
}

fn options(target: &str, dir: &Path, overrides: ProfileOverrides, start_at: Option<SystemTime>) -> RunOptions {
    RunOptions {
        target: Some(target.to_string()),
        out: Some(dir.to_path_buf()),
        overrides,
        start_at,
        ..RunOptions::default()
    }
}

/// Per phase, the histogram of every latency in the records (what the log should hold).
fn histograms_of(records: &[Record]) -> Vec<Histogram<u64>> {
    let mut h: Vec<Histogram<u64>> = PHASES
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap())
        .collect();
    for r in records {
        phase_latencies(r, |i, v| h[i].saturating_record(v.clamp(1, 3_600_000_000)));
    }
    h
}

/// Per phase, every histogram of a run's latency log added up.
fn logged(dir: &Path) -> Vec<Histogram<u64>> {
    let mut h: Vec<Histogram<u64>> = PHASES
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap())
        .collect();
    for i in ftpswarm::observe::hlog::read_intervals(dir).unwrap() {
        let slot = PHASES.iter().position(|p| *p == i.phase).unwrap();
        h[slot].add(&i.histogram).unwrap();
    }
    h
}

fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merge_into_one_run_of_their_whole_load() {
    let server = EmbeddedServer::start(EmbeddedConfig::loopback(RANGE)).await.unwrap();
    let target = format!("ftp://{DEFAULT_USER}:{DEFAULT_PASSWORD}@{}", server.addr);
    let tmp = tempfile::tempdir().unwrap();
    let (d0, d1, whole_dir, merged_dir) = (
        tmp.path().join("shard-0"),
        tmp.path().join("shard-1"),
        tmp.path().join("whole"),
        tmp.path().join("merged"),
    );
    // Both shards start their load together, as on two machines.
    let start_at = SystemTime::now() + Duration::from_millis(1500);
    let shard = |index| Some(Shard { index, count: 2 });
    let (r0, r1) = tokio::join!(
        run(
            options(&target, &d0, load(shard(0)), Some(start_at)),
            CancellationToken::new()
        ),
        run(
            options(&target, &d1, load(shard(1)), Some(start_at)),
            CancellationToken::new()
        ),
    );
    let (r0, r1) = (r0.unwrap(), r1.unwrap());
    let whole = run(options(&target, &whole_dir, load(None), None), CancellationToken::new())
        .await
        .unwrap();

    // Each shard ran its share, from its own source addresses, and says which shard it was.
    for (r, index) in [(&r0, 0), (&r1, 1)] {
        assert_eq!(r.manifest.shard, shard(index));
        assert!(r.manifest.host.is_some());
        assert!(r.manifest.started_at.ends_with('Z'), "UTC: {}", r.manifest.started_at);
        assert_eq!(r.profile.load.sessions, 2);
        assert_eq!(r.profile.load.total_sessions, Some(20));
        assert_eq!(r.profile.session.source_addresses.len(), 2);
        assert_eq!(r.summary.sessions.completed, 20);
        let origin = r.manifest.clock_origin_unix_us;
        let wanted = start_at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros() as u64;
        assert!(
            origin >= wanted && origin - wanted < 500_000,
            "the load started at --start-at: {origin} vs {wanted}"
        );
    }
    assert_eq!(r0.profile.session.source_addresses, ["127.0.0.2", "127.0.0.4"]);

    let merged = merge(&MergeOptions {
        dirs: vec![d1.clone(), d0.clone()],
        out: merged_dir.clone(),
        force: false,
    })
    .unwrap();
    let (m, s, w) = (&merged.manifest, &merged.summary, &whole.summary);
    assert_eq!(m.status, RunStatus::Complete, "{:?}", m.partial_reason);
    assert!(merged.missing.is_empty());
    assert_eq!(
        m.merged_from.iter().map(|f| f.shard).collect::<Vec<_>>(),
        [shard(0).unwrap(), shard(1).unwrap()]
    );
    let p = m.profile.known().unwrap();
    assert_eq!(
        (p.load.sessions, p.load.total_sessions, p.load.shard),
        (4, Some(40), None)
    );
    assert_eq!(p.session.source_addresses.len(), 4);

    // The same load as the whole run: sessions, transfers, and (seeded per session id, and the
    // shards' ids are the whole run's) the same commands.
    assert_eq!(s.sessions.completed, 40);
    assert_eq!(
        (s.sessions.completed, s.sessions.ok),
        (w.sessions.completed, w.sessions.ok)
    );
    assert_eq!(s.transfers.attempted, w.transfers.attempted);
    assert_eq!(s.transfers.attempted, 120);
    let commands = |s: &ftpswarm::summary::Summary| {
        s.by_command
            .iter()
            .map(|(k, v)| (k.clone(), v.attempted))
            .collect::<Vec<_>>()
    };
    assert_eq!(commands(s), commands(w));
    assert_eq!(
        s.transfers.attempted,
        r0.summary.transfers.attempted + r1.summary.transfers.attempted
    );
    assert_eq!(s.passive.grants, r0.summary.passive.grants + r1.summary.passive.grants);

    let records = rundir::read_records(&merged_dir).unwrap();
    let ids = |records: &[Record]| -> BTreeSet<u64> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Session(s) => Some(s.session_id),
                _ => None,
            })
            .collect()
    };
    assert_eq!(ids(&records), (1..=40).collect(), "no id used twice, none missing");
    assert_eq!(ids(&records), ids(&rundir::read_records(&whole_dir).unwrap()));
    let connections: Vec<u64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Connection(c) => Some(c.connection_id),
            _ => None,
        })
        .collect();
    assert_eq!(connections.iter().collect::<BTreeSet<_>>().len(), connections.len());
    // The shard column: shard 0 dealt the odd session ids.
    let mut rows = csv::Reader::from_path(merged_dir.join(rundir::SESSIONS)).unwrap();
    let headers = rows.headers().unwrap().clone();
    let (id_col, shard_col) = (
        headers.iter().position(|h| h == "session_id").unwrap(),
        headers.iter().position(|h| h == "shard").unwrap(),
    );
    for row in rows.records() {
        let row = row.unwrap();
        let id: u64 = row[id_col].parse().unwrap();
        assert_eq!(row[shard_col].parse::<u64>().unwrap(), (id - 1) % 2, "session {id}");
    }

    // The merged latency log is exactly the histogram of every merged record, phase by phase.
    let (from_log, from_records) = (logged(&merged_dir), histograms_of(&records));
    for (i, phase) in PHASES.iter().enumerate() {
        assert_eq!(recorded(&from_log[i]), recorded(&from_records[i]), "phase {phase}");
    }
    assert!(from_log[PHASES.iter().position(|p| *p == "pasv").unwrap()].len() == 120);

    // The merged timeline ends with both shards' totals.
    let (t0, t1, tm) = (
        read_timeline(&d0).unwrap(),
        read_timeline(&d1).unwrap(),
        read_timeline(&merged_dir).unwrap(),
    );
    let (l0, l1, lm) = (t0.last().unwrap(), t1.last().unwrap(), tm.last().unwrap());
    assert_eq!(lm.transfers_total, l0.transfers_total + l1.transfers_total);
    assert_eq!(lm.grants_total, l0.grants_total + l1.grants_total);
    assert_eq!(lm.bytes_total, l0.bytes_total + l1.bytes_total);
    assert_eq!(lm.grants_total, s.passive.grants);
    let busiest = tm.iter().map(|r| r.sessions_active).max().unwrap();
    assert!(busiest > 2, "both shards' sessions at once: at most {busiest}");

    // plan and report read a merged run like any other.
    let rec = ftpswarm::plan::plan_from_run(&merged_dir, &ftpswarm::plan::PlanRequest::default()).unwrap();
    assert!(rec.width > 0);
    assert_eq!(rec.inputs.users, 4.0, "planned for the whole load, not one shard");
    let report = ftpswarm::report::generate(&merged_dir).unwrap();
    let text = std::fs::read_to_string(report.report).unwrap();
    assert!(
        text.contains("shard 0/2") && text.contains("shard 1/2"),
        "report.md names the shards"
    );

    // What merge writes follows the schemas, as a run's files do.
    common::schemas::check(&merged_dir.join(rundir::MANIFEST), "manifest");
    common::schemas::check(&merged_dir.join(rundir::SUMMARY), "summary");
    common::schemas::check(&d0.join(rundir::MANIFEST), "manifest");

    // A missing shard is named and the merge is partial.
    let half = merge(&MergeOptions {
        // A shard whose pod failed before its load has no directory at all.
        dirs: vec![d0.clone(), tmp.path().join("shard-1-never-ran")],
        out: tmp.path().join("half"),
        force: false,
    })
    .unwrap();
    assert_eq!(half.missing, [shard(1).unwrap()]);
    assert_eq!(half.manifest.status, RunStatus::Partial);
    let reason = half.manifest.partial_reason.as_deref().unwrap();
    assert!(
        reason.contains("shard 1/2 is missing") && reason.contains("shard-1-never-ran does not exist"),
        "{reason}"
    );
    assert_eq!(half.summary.sessions.completed, 20);

    // What is not a shard of this load is refused before anything is written.
    let refused = |dirs: Vec<&Path>, name: &str| {
        let out = tmp.path().join(name);
        let e = merge(&MergeOptions {
            dirs: dirs.into_iter().map(Path::to_path_buf).collect(),
            out: out.clone(),
            force: false,
        })
        .err()
        .unwrap()
        .to_string();
        assert!(!out.exists(), "{name}: nothing written");
        e
    };
    let e = refused(vec![&d0, &whole_dir], "with-whole");
    assert!(e.contains("was not run as a shard"), "{e}");
    let e = refused(vec![&d0, &d0], "twice");
    assert!(e.contains("are both shard 0/2"), "{e}");
    let mut other: Manifest = rundir::read_json(&d1.join(rundir::MANIFEST)).unwrap();
    let other_dir = tmp.path().join("other-load");
    std::fs::create_dir_all(&other_dir).unwrap();
    for f in [rundir::EVENTS, rundir::CONNECTIONS, rundir::SESSIONS] {
        std::fs::copy(d1.join(f), other_dir.join(f)).unwrap();
    }
    let mut profile = other.profile.known().unwrap().clone();
    profile.session.files_per_session = 9;
    other.profile = profile.into();
    rundir::write_json(&other_dir.join(rundir::MANIFEST), &other).unwrap();
    let e = refused(vec![&d0, &other_dir], "other");
    assert!(e.contains("session.files_per_session"), "{e}");
    other.schema_version = 2;
    rundir::write_json(&other_dir.join(rundir::MANIFEST), &other).unwrap();
    let e = refused(vec![&d0, &other_dir], "old");
    assert!(e.contains("schema version 2"), "{e}");
    server.stop().await;
}

/// A free port on loopback for the metrics endpoint.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn scrape(addr: std::net::SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).await.ok()?;
    let (head, body) = body.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn value(scrape: &prometheus_parse::Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_are_served_while_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let opts = RunOptions {
        out: Some(tmp.path().join("run")),
        overrides: ProfileOverrides {
            sessions: Some(3),
            duration: Some(HumanDuration(Duration::from_secs(4))),
            think_time: Some(HumanDuration(Duration::from_millis(20))),
            pasv_range: Some(PortRange { min: 30800, max: 30849 }),
            shard: Some(Shard { index: 1, count: 3 }),
            ..ProfileOverrides::default()
        },
        metrics_addr: Some(addr),
        ..RunOptions::default()
    };
    let running = tokio::spawn(run(opts, CancellationToken::new()));
    // Scrapes until the load has granted ports; the endpoint is up before the load starts.
    let mut seen = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(text) = scrape(addr).await else { continue };
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
        if value(&parsed, "ftpswarm_pasv_grants_total") > 0.0 {
            seen = Some(parsed);
            break;
        }
    }
    let seen = seen.expect("a scrape during the run saw PASV grants");
    let report = running.await.unwrap().unwrap();
    assert!(value(&seen, "ftpswarm_sessions_started_total") >= 1.0);
    assert!(value(&seen, "ftpswarm_sessions_active") >= 1.0, "scraped mid-run");
    let grants = value(&seen, "ftpswarm_pasv_grants_total");
    assert!(grants <= report.summary.passive.grants as f64);
    let pasv_count = seen
        .samples
        .iter()
        .find(|s| s.metric == "ftpswarm_phase_latency_seconds_count" && s.labels.get("phase") == Some("pasv"));
    assert!(pasv_count.is_some(), "the PASV latency histogram is served");
    for s in &seen.samples {
        assert_eq!(
            (s.labels.get("shard"), s.labels.get("shards")),
            (Some("1"), Some("3")),
            "{}",
            s.metric
        );
    }
    // The run is over: so is the endpoint.
    assert!(scrape(addr).await.is_none());
}
