//! `ftpswarm run` against the embedded server, driven in-process.

use ftpswarm::event::{Outcome, TransferEvent};
use ftpswarm::profile::{HumanDuration, PortRange, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
use ftpswarm::rundir::{self, Manifest, RunStatus};
use ftpswarm::summary::{self, Summary};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn read_events(dir: &Path) -> Vec<TransferEvent> {
    let mut r = csv::Reader::from_path(dir.join(rundir::EVENTS)).unwrap();
    r.deserialize().map(|row| row.unwrap()).collect()
}

fn options(dir: &Path, overrides: ProfileOverrides) -> RunOptions {
    RunOptions {
        out: Some(dir.to_path_buf()),
        overrides,
        ..RunOptions::default()
    }
}

/// A pasv range no other test of this binary uses, below the Linux ephemeral range.
fn range(min: u16, width: u16) -> Option<PortRange> {
    Some(PortRange {
        min,
        max: min + width - 1,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_profile_completes_with_zero_failures_and_consistent_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // The built-in quick profile, shortened: same shape, fewer seconds.
    let overrides = ProfileOverrides {
        duration: Some(HumanDuration(Duration::from_secs(3))),
        pasv_range: range(30100, 100),
        ..Default::default()
    };
    let report = run(options(&dir, overrides), CancellationToken::new()).await.unwrap();
    let s = &report.summary;

    assert_eq!(
        report.manifest.status,
        RunStatus::Complete,
        "{:?}",
        report.manifest.partial_reason
    );
    assert!(
        s.failures.is_empty(),
        "failures: {:?} {:?}",
        s.failures,
        s.failure_examples
    );
    // About 500 sessions complete in 3 s on 2 busy cores (README: 1688 in 10 s); a fifth of
    // that is a regression, not noise.
    assert!(s.sessions.completed >= 100, "only {} sessions", s.sessions.completed);
    assert_eq!(s.sessions.ok, s.sessions.completed);
    // TCP_NODELAY on both ends: the final reply follows the data at once. With Nagle's
    // algorithm back, its p50 was 42 ms.
    let final_reply = &s.latency_us["final_reply"];
    assert!(final_reply.p50_us < 5_000, "{final_reply:?}");

    // events.csv: exactly sessions × files rows, every port inside the range.
    let events = read_events(&dir);
    let files = u64::from(report.profile.session.files_per_session);
    assert_eq!(events.len() as u64, s.sessions.completed * files);
    let r = report.profile.target.pasv_range.unwrap();
    assert!(events
        .iter()
        .all(|e| e.pasv_port.is_some_and(|p| r.contains(p)) && e.in_range == Some(true)));
    assert!(events.iter().all(|e| e.outcome == Outcome::Ok));
    // Every phase in order for every transfer.
    for e in &events {
        let t = [
            Some(e.t_pasv_sent_us),
            e.t_pasv_reply_us,
            e.t_data_connected_us,
            e.t_transfer_done_us,
            e.t_data_closed_us,
            e.t_final_reply_us,
        ];
        assert!(t.iter().all(Option::is_some), "{e:?}");
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "phases out of order: {e:?}");
        if e.command == ftpswarm::event::TransferCommand::Retr {
            assert_eq!(Some(e.bytes), e.expected_bytes);
        }
    }

    // libunftp frees ports before transfers end: short transfers give little evidence, but the
    // ledger must never claim the opposite.
    assert_ne!(
        s.ledger.release_policy,
        ftpswarm::summary::ledger::ReleasePolicy::HeldDuringTransfer,
        "{:?}",
        s.ledger.expected_regrants_if_released_at_accept
    );

    // Summary figures equal a recomputation from the CSVs, and what the server counted.
    let on_disk: Summary = rundir::read_json(&dir.join(rundir::SUMMARY)).unwrap();
    assert_eq!(&on_disk, s);
    assert_eq!(&summary::from_run_dir(&dir).unwrap(), s);
    assert_eq!(s.transfers.attempted, events.len() as u64);
    assert_eq!(s.transfers.bytes, events.iter().map(|e| e.bytes).sum::<u64>());
    assert_eq!(s.passive.grants, events.len() as u64);
    let sessions = ftpswarm::rundir::read_records(&dir).unwrap();
    let session_rows = sessions
        .iter()
        .filter(|r| matches!(r, ftpswarm::event::Record::Session(_)))
        .count();
    assert_eq!(session_rows as u64, s.sessions.completed);

    let manifest: Manifest = rundir::read_json(&dir.join(rundir::MANIFEST)).unwrap();
    assert_eq!(manifest.status, RunStatus::Complete);
    assert!(manifest.embedded_server);
    // The password never lands in the run directory.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(ftpswarm::server::DEFAULT_PASSWORD),
            "password in {}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_writes_everything_and_marks_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let overrides = ProfileOverrides {
        duration: Some(HumanDuration(Duration::from_secs(60))),
        pasv_range: range(30200, 100),
        ..Default::default()
    };
    let interrupt = CancellationToken::new();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let started = std::time::Instant::now();
    let report = run(options(&dir, overrides), interrupt).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "did not stop promptly");
    assert_eq!(report.manifest.status, RunStatus::Partial);
    assert!(report
        .manifest
        .partial_reason
        .as_deref()
        .unwrap_or("")
        .contains("interrupted"));
    let manifest: Manifest = rundir::read_json(&dir.join(rundir::MANIFEST)).unwrap();
    assert_eq!(manifest.status, RunStatus::Partial);
    // What ran before the interrupt is on disk and adds up.
    let events = read_events(&dir);
    assert!(!events.is_empty());
    assert_eq!(summary::from_run_dir(&dir).unwrap(), report.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_narrower_than_demand_yields_pasv_rejected_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // 16 control connections with no think time fighting over one port.
    let overrides = ProfileOverrides {
        sessions: Some(8),
        parallel: Some(2),
        files_per_session: Some(10),
        think_time: Some(HumanDuration::ZERO),
        total_sessions: Some(16),
        duration: Some(HumanDuration(Duration::from_secs(30))),
        mix: Some(ftpswarm::profile::parse_mix("retr=1").unwrap()),
        pasv_range: range(30300, 1),
        ..Default::default()
    };
    let report = run(options(&dir, overrides), CancellationToken::new()).await.unwrap();
    let s = &report.summary;
    let rejected = s.failures.get("pasv_rejected").copied().unwrap_or(0);
    assert!(
        rejected > 0,
        "expected 425s with 1 port for 16 connections: {:?}",
        s.failures
    );
    let events = read_events(&dir);
    let e = events
        .iter()
        .find(|e| e.outcome == Outcome::Failed(ftpswarm::event::FailureClass::PasvRejected))
        .unwrap();
    assert_eq!(e.pasv_reply_code, Some(425));
    assert_eq!(e.pasv_port, None);
    // Rejections do not kill sessions: other transfers went on.
    assert!(s.transfers.ok > 0);
    assert_eq!(s.transfers.attempted, 16 * 10);
    // One port can be held at most once, however many clients were granted it (this said 16).
    assert_eq!(s.passive.peak_ports_held, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_counts_latency_from_intended_arrival() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let overrides = ProfileOverrides {
        rate: Some(20.0),
        total_sessions: Some(20),
        duration: Some(HumanDuration(Duration::from_secs(10))),
        pasv_range: range(30400, 100),
        ..Default::default()
    };
    let report = run(options(&dir, overrides), CancellationToken::new()).await.unwrap();
    assert_eq!(report.summary.sessions.completed, 20);
    assert!(
        report.summary.failures.is_empty(),
        "{:?}",
        report.summary.failure_examples
    );
    for r in rundir::read_records(&dir).unwrap() {
        if let ftpswarm::event::Record::Session(s) = r {
            assert!(s.t_intended_start_us <= s.t_start_us, "{s:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epsv_sessions_work_like_pasv() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let profile = tmp.path().join("epsv.toml");
    std::fs::write(
        &profile,
        "name = \"epsv\"\n[load]\nsessions = 4\ntotal_sessions = 8\n[session]\npassive_mode = \"epsv\"\nparallel_connections = 2\n[target]\npasv_range = \"30800-30899\"\n",
    )
    .unwrap();
    let opts = RunOptions {
        profile: Some(profile),
        out: Some(dir.clone()),
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    assert!(
        report.summary.failures.is_empty(),
        "{:?}",
        report.summary.failure_examples
    );
    let events = read_events(&dir);
    assert_eq!(events.len(), 8 * 5);
    assert!(events
        .iter()
        .all(|e| e.passive_command == ftpswarm::event::PassiveCommand::Epsv
            && e.pasv_reply_code == Some(229)
            && e.in_range == Some(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_out_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(dir.join("charts")).unwrap();
    std::fs::write(dir.join("charts/old.png"), b"from another run").unwrap();
    let overrides = ProfileOverrides {
        total_sessions: Some(2),
        pasv_range: range(30450, 10),
        ..Default::default()
    };
    let refused = run(options(&dir, overrides.clone()), CancellationToken::new()).await;
    let e = format!("{:#}", refused.err().expect("a non-empty --out is refused"));
    assert!(e.contains("not empty") && e.contains("--force"), "{e}");
    assert!(!dir.join("manifest.json").exists(), "nothing written into it");
    let forced = RunOptions {
        force: true,
        ..options(&dir, overrides)
    };
    let report = run(forced, CancellationToken::new()).await.unwrap();
    assert_eq!(report.summary.sessions.completed, 2);
}

fn profile_file(dir: &Path, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("profile.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `profile` (TOML text) against the embedded server into `dir`/run, returning the
/// report and how long the run took.
async fn run_profile(dir: &Path, profile: &str) -> (ftpswarm::run::RunReport, Duration) {
    let opts = RunOptions {
        profile: Some(profile_file(dir, profile)),
        ..options(&dir.join("run"), ProfileOverrides::default())
    };
    let started = std::time::Instant::now();
    let report = run(opts, CancellationToken::new()).await.unwrap();
    (report, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_bounds_wall_time_even_with_an_hour_of_think_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (report, took) = run_profile(
        tmp.path(),
        "name = \"thinker\"\n[load]\nsessions = 3\nduration = \"1s\"\ndrain = \"1s\"\n\
         [session]\nfiles_per_session = 4\nthink_time = \"1h\"\n[target]\npasv_range = \"30460-30469\"\n",
    )
    .await;
    let dir = tmp.path().join("run");
    // 1 s of load, 1 s of drain, then cut: this ran for an hour before.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let s = &report.summary;
    assert_eq!(s.sessions.completed, 3, "every session is recorded");
    assert_eq!(s.sessions.interrupted, 3, "{:?}", s.sessions);
    assert_eq!((s.sessions.ok, s.sessions.failed), (0, 0));
    // The first file of each session ran; the other three were waiting out the think time.
    assert_eq!(s.transfers.ok, 3);
    assert_eq!(s.sessions.files_not_attempted, 9);
    assert_eq!(report.swarm.sessions_cut_off, 3);
    // Ran its full duration: cut sessions are the duration's end, not a loss.
    assert_eq!(
        report.manifest.status,
        RunStatus::Complete,
        "{:?}",
        report.manifest.partial_reason
    );
    let rows = csv::Reader::from_path(dir.join(rundir::SESSIONS))
        .unwrap()
        .into_records()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>();
    assert!(rows.iter().all(|r| r.iter().any(|f| f == "interrupted")), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_in_flight_at_the_cut_is_recorded_as_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    // A terabyte at 100 KiB/s: it would take months.
    let (report, took) = run_profile(
        tmp.path(),
        "name = \"huge\"\n[load]\nsessions = 2\nduration = \"1s\"\ndrain = \"500ms\"\n\
         [session]\nfiles_per_session = 1\nbandwidth_cap = \"100KiB\"\n[mix]\nretr = 1\nstor = 0\nlist = 0\n\
         [file_size]\ndistribution = \"fixed\"\nbytes = \"1TiB\"\n[target]\npasv_range = \"30470-30479\"\n",
    )
    .await;
    let dir = tmp.path().join("run");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let events = read_events(&dir);
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e.outcome, Outcome::Interrupted, "{e:?}");
        assert!(e.t_data_connected_us.is_some() && e.bytes > 0, "{e:?}");
        assert!(e.detail.contains("drain"), "{}", e.detail);
    }
    let s = &report.summary;
    assert_eq!(
        (s.transfers.attempted, s.transfers.interrupted, s.transfers.failed),
        (2, 2, 0)
    );
    assert_eq!(s.sessions.interrupted, 2);
    assert!(s.failures.is_empty(), "{:?}", s.failures);
    // Read back, the run gives the same summary.
    assert_eq!(summary::from_run_dir(&dir).unwrap(), report.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_failures_are_local_errors_and_stop_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    // 192.0.2.1 (TEST-NET-1) is on no interface here: binding to it fails before any packet.
    let (report, took) = run_profile(
        tmp.path(),
        "name = \"wrong-source\"\n[load]\nsessions = 4\nduration = \"30s\"\nbackoff = \"0s\"\n\
         [session]\nsource_addresses = [\"192.0.2.1\"]\n[target]\npasv_range = \"30480-30489\"\n",
    )
    .await;
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let s = &report.summary;
    assert!(
        s.failures.get("local_error").copied().unwrap_or(0) > 0,
        "{:?}",
        s.failures
    );
    assert!(
        !s.failures.contains_key("connect_refused"),
        "blamed on the server: {:?}",
        s.failures
    );
    let reason = report.manifest.partial_reason.unwrap_or_default();
    assert!(reason.contains("the load machine, not the server"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_come_from_the_source_addresses_given() {
    use ftpswarm::server::{EmbeddedConfig, EmbeddedServer, DEFAULT_PASSWORD, DEFAULT_USER};
    let pasv = PortRange { min: 30490, max: 30499 };
    let server = EmbeddedServer::start(EmbeddedConfig::loopback(pasv)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        target: Some(format!("ftp://{DEFAULT_USER}:{DEFAULT_PASSWORD}@{}", server.addr)),
        ..options(
            &tmp.path().join("run"),
            ProfileOverrides {
                sessions: Some(4),
                total_sessions: Some(8),
                files_per_session: Some(2),
                pasv_range: Some(pasv),
                source_addresses: Some(vec!["127.0.0.2-127.0.0.3".into()]),
                ..ProfileOverrides::default()
            },
        )
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    let s = &report.summary;
    // The embedded server takes data connections only from the control connection's address,
    // so every transfer working says they came from the same source too.
    assert_eq!((s.sessions.ok, s.sessions.failed), (8, 0), "{:?}", s.failures);
    assert_eq!(s.transfers.ok, 16);
    // The preflight connects from wherever the kernel picks; the load only from the two.
    let peers = server.control_peers();
    for ip in ["127.0.0.2", "127.0.0.3"] {
        assert!(peers.contains(&ip.parse().unwrap()), "{peers:?}");
    }
    assert!(peers.len() <= 3, "{peers:?}");
}
