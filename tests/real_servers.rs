//! The quick profile against real servers (vsftpd, pyftpdlib, ProFTPD, Pure-FTPd), each started by the test on
//! free loopback ports with a passive range outside the Linux ephemeral range. In CI a server
//! that cannot start fails the test; on a developer machine without it the test is skipped
//! loudly.

mod common;

use common::servers::{self, RealServer};
use ftpswarm::event::TransferEvent;
use ftpswarm::profile::{HumanDuration, PortRange, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
use ftpswarm::rundir::{self, RunStatus};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn options(server: &RealServer, out: &Path, prepare: bool) -> RunOptions {
    RunOptions {
        target: Some(format!(
            "ftp://{}:{}@127.0.0.1:{}",
            server.user, server.password, server.ctrl_port
        )),
        out: Some(out.to_path_buf()),
        prepare,
        overrides: ProfileOverrides {
            // The quick profile, shortened to keep the suite fast.
            duration: Some(HumanDuration(Duration::from_secs(3))),
            pasv_range: Some(PortRange {
                min: server.pasv_min,
                max: server.pasv_max,
            }),
            ..Default::default()
        },
        ..RunOptions::default()
    }
}

/// Files and directories left under the server's login directory.
fn leftovers(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// The servers whose processes race bind() and listen() for a passive port: a `425 …
/// Address already in use` can hit any run on any width, and is no defect of ours.
fn races(server: &RealServer) -> bool {
    matches!(
        server.kind,
        servers::ServerKind::Proftpd | servers::ServerKind::PureFtpd
    )
}

async fn quick_profile_completes(server: RealServer, identified: ftpswarm::sim::ServerKind) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let before = leftovers(&server.root_dir);
    let report = run(options(&server, &dir, true), CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{} run failed: {e:#}\nserver log:\n{}", server.kind, server.log_tail()));
    let s = &report.summary;
    assert_eq!(
        report.manifest.status,
        RunStatus::Complete,
        "{:?}",
        report.manifest.partial_reason
    );
    let only_races = s
        .failure_examples
        .get("pasv_rejected")
        .into_iter()
        .flatten()
        .all(|e| e.contains("Address already in use"));
    let collisions = if races(&server) && only_races {
        s.failures.get("pasv_rejected").copied().unwrap_or(0)
    } else {
        0
    };
    let other: u64 = s.failures.values().sum::<u64>() - collisions;
    assert!(
        other == 0 && collisions * 100 <= s.transfers.attempted,
        "{}: {:?} {:?}\n{}",
        server.kind,
        s.failures,
        s.failure_examples,
        server.log_tail()
    );
    // The greeting names the server, so the plan models the right one.
    assert!(report.manifest.server_greeting.is_some());
    let rec = ftpswarm::plan::plan_from_run(&dir, &ftpswarm::plan::PlanRequest::default()).unwrap();
    assert_eq!(rec.server.kind, identified, "{:?}", report.manifest.server_greeting);
    assert!(
        !rec.warnings.iter().any(|w| w.contains("safe side")),
        "{:?}",
        rec.warnings
    );
    // Each of the quick profile's session slots goes round at least twice in 3 s, even on
    // the slowest logins here (vsftpd's p50 is about 0.4 s).
    let slots = u64::from(report.profile.load.sessions);
    assert!(
        s.sessions.completed >= 2 * slots,
        "{} sessions from {slots} slots",
        s.sessions.completed
    );
    let events: Vec<TransferEvent> = csv::Reader::from_path(dir.join(rundir::EVENTS))
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        events.len() as u64,
        s.sessions.completed * u64::from(report.profile.session.files_per_session)
    );
    // ProFTPD never hands out the top port of its range; every other server may.
    let top = events.iter().filter(|e| e.pasv_port == Some(server.pasv_max)).count();
    if server.kind == servers::ServerKind::Proftpd {
        assert_eq!(top, 0, "ProFTPD granted its top port");
    }
    assert!(
        events.iter().all(|e| e.in_range != Some(false)),
        "{}: a grant outside the range",
        server.kind
    );
    // Every RETR read a prepared file in full.
    for e in events
        .iter()
        .filter(|e| e.command == ftpswarm::event::TransferCommand::Retr && e.outcome.is_ok())
    {
        assert_eq!(Some(e.bytes), e.expected_bytes, "{e:?}");
    }
    assert_eq!(report.cleanup_failures, 0);
    assert_eq!(
        leftovers(&server.root_dir),
        before,
        "{}: the run left files behind",
        server.kind
    );
}

async fn missing_files_are_one_clear_error_before_the_load(server: RealServer) {
    let tmp = tempfile::tempdir().unwrap();
    let err = match run(
        options(&server, &tmp.path().join("run"), false),
        CancellationToken::new(),
    )
    .await
    {
        Ok(_) => panic!("{}: expected a preflight error", server.kind),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("ftpswarm-data") && err.contains("--prepare"), "{err}");
    assert!(
        !tmp.path().join("run").exists(),
        "no run directory for a run that never started"
    );
}

fn range() -> (u16, u16) {
    servers::test_pasv_range(100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsftpd_quick_profile() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_vsftpd(lo, hi)) {
        quick_profile_completes(server, ftpswarm::sim::ServerKind::Vsftpd).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyftpdlib_quick_profile() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_pyftpdlib(lo, hi)) {
        quick_profile_completes(server, ftpswarm::sim::ServerKind::Pyftpdlib).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proftpd_quick_profile() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_proftpd(lo, hi)) {
        quick_profile_completes(server, ftpswarm::sim::ServerKind::Proftpd).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pure_ftpd_quick_profile() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_pure_ftpd(lo, hi)) {
        quick_profile_completes(server, ftpswarm::sim::ServerKind::PureFtpd).await;
    }
}

/// Pure-FTPd's admission cap is a range-width effect: at 4 ports it admits 2 clients, so a
/// profile of 8 sessions × 2 connections sees most logins refused, and the plan, which knows
/// the cap, predicts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pure_ftpd_admits_half_the_width_and_the_plan_knows() {
    let (lo, _) = servers::test_pasv_range(100);
    let hi = lo + 3;
    let Some(server) = servers::require_or_skip(servers::start_pure_ftpd(lo, hi)) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let report = run(options(&server, &dir, true), CancellationToken::new())
        .await
        .unwrap();
    let s = &report.summary;
    let refused = s.failures.get("greeting_rejected").copied().unwrap_or(0);
    assert!(refused > 0, "{:?}", s.failures);
    assert!(
        s.failure_examples["greeting_rejected"]
            .iter()
            .any(|e| e.contains("(the maximum)")),
        "{:?}",
        s.failure_examples
    );
    let measured = s.sessions.failed as f64 / s.sessions.completed as f64;
    let p = ftpswarm::plan::predict_at(&dir, &ftpswarm::plan::PlanRequest::default(), &[4]).unwrap()[0];
    assert!(p.refused_connections_per_session > 0.0, "{p:?}");
    assert!(
        p.session_failure > measured / 3.0 && p.session_failure < (measured * 3.0).min(1.0) + 1e-9,
        "predicted {p:?}, measured {measured}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsftpd_without_files_fails_before_the_load() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_vsftpd(lo, hi)) {
        missing_files_are_one_clear_error_before_the_load(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyftpdlib_without_files_fails_before_the_load() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_pyftpdlib(lo, hi)) {
        missing_files_are_one_clear_error_before_the_load(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proftpd_without_files_fails_before_the_load() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_proftpd(lo, hi)) {
        missing_files_are_one_clear_error_before_the_load(server).await;
    }
}
