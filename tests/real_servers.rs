//! The quick profile against real servers (vsftpd, pyftpdlib), each started by the test on
//! free loopback ports with a passive range outside the Linux ephemeral range. In CI a server
//! that cannot start fails the test; on a developer machine without it the test is skipped
//! loudly.

mod common;

use common::servers::{self, RealServer};
use ftpswarm::event::TransferEvent;
use ftpswarm::output::{self, RunStatus};
use ftpswarm::profile::{HumanDuration, PortRange, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
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

async fn quick_profile_completes(server: RealServer) {
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
    assert!(
        s.failures.is_empty(),
        "{}: {:?} {:?}\n{}",
        server.kind,
        s.failures,
        s.failure_examples,
        server.log_tail()
    );
    assert!(s.sessions.completed >= 8, "{} sessions", s.sessions.completed);
    let events: Vec<TransferEvent> = csv::Reader::from_path(dir.join(output::EVENTS))
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        events.len() as u64,
        s.sessions.completed * u64::from(report.profile.session.files_per_session)
    );
    assert!(
        events.iter().all(|e| e.in_range == Some(true)),
        "{}: a grant outside the range",
        server.kind
    );
    // Every RETR read a prepared file in full.
    for e in events
        .iter()
        .filter(|e| e.command == ftpswarm::event::TransferCommand::Retr)
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
        quick_profile_completes(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyftpdlib_quick_profile() {
    let (lo, hi) = range();
    if let Some(server) = servers::require_or_skip(servers::start_pyftpdlib(lo, hi)) {
        quick_profile_completes(server).await;
    }
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
