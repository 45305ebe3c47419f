//! What the observation layer must show about real passive-port behaviour: who frees a port
//! at accept and who holds it through the transfer, silent out-of-range fallbacks, and 425s,
//! each in the ledger, the timeline and the summary.

mod common;

use common::servers::{self, RealServer};
use ftpswarm::event::{FailureClass, Outcome, TransferEvent};
use ftpswarm::observe::timeline::{read_timeline, TimelineRow};
use ftpswarm::profile::{PortRange, ProfileOverrides};
use ftpswarm::run::{run, RunOptions, RunReport};
use ftpswarm::rundir;
use ftpswarm::summary::ledger::ReleasePolicy;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Long uploads (64–448 KiB at 2 MiB/s, 125 ms on average) on 8 connections, so ports stay in
/// use long enough for a release-at-accept server to hand them out again while ours are open.
/// Uploads, because a server reads them until our last byte; a download's server side may
/// close long before we have drained it, which proves nothing. Sizes vary because equal ones
/// keep the 8 connections in step: every PASV then comes just as the other transfers end, and
/// the re-grants a release-at-accept server would make while ours are open dropped to an
/// expected 4–18 per run (e^-4: no such re-grant, and a wrong verdict, in 2% of runs; it
/// happened in CI). Varied, they overlap at random: about 30 expected in every run.
const LONG_TRANSFERS: &str = r#"
name = "long-transfers"
[load]
sessions = 4
ramp_up = "0s"
total_sessions = 4
duration = "60s"
[session]
files_per_session = 24
parallel_connections = 2
think_time = "0ms"
bandwidth_cap = "2MiB"
[mix]
retr = 0
stor = 1
list = 0
[file_size]
distribution = "uniform"
min = "64KiB"
max = "448KiB"
"#;

/// Many short downloads on 16 connections with no pause: pending PASVs collide on a tiny range.
const BURST: &str = r#"
name = "burst"
[load]
sessions = 8
ramp_up = "0s"
total_sessions = 8
duration = "60s"
[session]
files_per_session = 20
parallel_connections = 2
think_time = "0ms"
[mix]
retr = 1
stor = 0
list = 0
[file_size]
distribution = "fixed"
bytes = 1024
"#;

fn profile(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("profile.toml");
    std::fs::write(&p, text).unwrap();
    p
}

async fn run_profile(
    text: &str,
    target: Option<&RealServer>,
    range: PortRange,
) -> (RunReport, Vec<TransferEvent>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let opts = RunOptions {
        profile: Some(profile(tmp.path(), text)),
        target: target.map(|s| format!("ftp://{}:{}@127.0.0.1:{}", s.user, s.password, s.ctrl_port)),
        prepare: target.is_some(),
        out: Some(out.clone()),
        overrides: ProfileOverrides {
            pasv_range: Some(range),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    let events = csv::Reader::from_path(out.join(rundir::EVENTS))
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect();
    (report, events, tmp)
}

/// The first live count is made whatever it costs (the baseline). Later ones are made while
/// the counts' CPU stays within 1% of the process's CPU or of one core over the time the
/// sampler has run: so a run whose first dump cost less than 1% of its own length must have
/// had another, on a row where grants were being made (the last row is always one). A host so
/// full of TIME_WAITs that one dump costs more (about 15,000 per second of run here) may go
/// without.
fn assert_socket_view_sampled_under_load(report: &RunReport, timeline: &[TimelineRow]) {
    assert!(
        timeline.first().is_some_and(|r| r.server_sockets.is_some()),
        "loopback target: socket view expected"
    );
    let sampler = report.sampler.as_ref().expect("the run had a sampler");
    let under_load = timeline
        .iter()
        .skip(1)
        .any(|r| r.grants_total > 0 && r.server_sockets.is_some());
    // What the sampler had run at its last row's check, at least: from the first row to the
    // last, less the time the last row's own dump may have taken.
    let span_s = match (timeline.first(), timeline.last()) {
        (Some(a), Some(b)) => b.t_us.saturating_sub(a.t_us) as f64 / 1e6,
        _ => 0.0,
    };
    let first_dump_s = sampler.diag_cpu.as_secs_f64() / sampler.diag_samples.max(1) as f64;
    assert!(
        under_load || first_dump_s > 0.01 * (span_s - 0.05),
        "no live count after the first, though one dump took {:.2} ms and the run {span_s:.2} s: {sampler:?}",
        first_dump_s * 1e3
    );
}

fn range_of(s: &RealServer) -> PortRange {
    PortRange {
        min: s.pasv_min,
        max: s.pasv_max,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_libunftp_frees_ports_at_accept() {
    let (report, _, tmp) = run_profile(LONG_TRANSFERS, None, PortRange { min: 31000, max: 31019 }).await;
    let l = &report.summary.ledger;
    assert!(
        report.summary.failures.is_empty(),
        "{:?}",
        report.summary.failure_examples
    );
    assert_eq!(l.release_policy, ReleasePolicy::AtAccept, "{l:?}");
    assert!(l.regranted_while_open > 0);
    let timeline = read_timeline(&tmp.path().join("run")).unwrap();
    assert_socket_view_sampled_under_load(&report, &timeline);
    // Held only until we connect: pending holds are far shorter than transfers.
    assert!(l.mean_pending_hold_us * 10.0 < l.mean_transfer_hold_us, "{l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsftpd_holds_ports_for_the_whole_transfer() {
    let (lo, hi) = servers::test_pasv_range(20);
    let Some(server) = servers::require_or_skip(servers::start_vsftpd(lo, hi)) else {
        return;
    };
    let (report, _, _tmp) = run_profile(LONG_TRANSFERS, Some(&server), range_of(&server)).await;
    let l = &report.summary.ledger;
    assert_eq!(l.regranted_while_open, 0, "vsftpd re-granted a port in use: {l:?}");
    assert_eq!(l.release_policy, ReleasePolicy::HeldDuringTransfer, "{l:?}");
    assert!(l.expected_regrants_if_released_at_accept >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyftpdlib_frees_ports_at_accept() {
    let (lo, hi) = servers::test_pasv_range(20);
    let Some(server) = servers::require_or_skip(servers::start_pyftpdlib(lo, hi)) else {
        return;
    };
    let (report, _, _tmp) = run_profile(LONG_TRANSFERS, Some(&server), range_of(&server)).await;
    let l = &report.summary.ledger;
    assert_eq!(l.release_policy, ReleasePolicy::AtAccept, "{l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyftpdlib_silently_falls_back_outside_a_busy_range() {
    let (lo, hi) = servers::test_pasv_range(1);
    let Some(server) = servers::require_or_skip(servers::start_pyftpdlib(lo, hi)) else {
        return;
    };
    let (report, events, tmp) = run_profile(BURST, Some(&server), range_of(&server)).await;
    let s = &report.summary;
    let outside = events.iter().filter(|e| e.in_range == Some(false)).count() as u64;
    assert!(
        outside > 0,
        "no out-of-range grant with one port for 16 connections: {:?}",
        s.failures
    );
    // The transfers themselves worked: only a firewall would have noticed.
    assert!(events
        .iter()
        .filter(|e| e.in_range == Some(false))
        .all(|e| e.final_reply_code == Some(226)));
    assert_eq!(s.passive.out_of_range, outside);
    assert_eq!(s.failures.get("pasv_out_of_range"), Some(&outside));
    let timeline = read_timeline(&tmp.path().join("run")).unwrap();
    assert_eq!(timeline.last().map(|r| r.out_of_range_total), Some(outside));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrow_embedded_range_shows_425_everywhere() {
    let (report, events, tmp) = run_profile(BURST, None, PortRange { min: 31100, max: 31100 }).await;
    let rejected: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Failed(FailureClass::PasvRejected))
        .collect();
    assert!(!rejected.is_empty(), "{:?}", report.summary.failures);
    assert!(rejected
        .iter()
        .all(|e| e.pasv_reply_code == Some(425) && !e.detail.is_empty()));
    let n = rejected.len() as u64;
    assert_eq!(report.summary.failures.get("pasv_rejected"), Some(&n));
    let timeline = read_timeline(&tmp.path().join("run")).unwrap();
    let i = FailureClass::ALL
        .iter()
        .position(|c| *c == FailureClass::PasvRejected)
        .unwrap();
    assert_eq!(timeline.last().map(|r| r.failures_total[i]), Some(n));
    // The timeline is monotonic in its cumulative columns and was sampled throughout.
    assert!(timeline
        .windows(2)
        .all(|w| w[0].t_us < w[1].t_us && w[0].grants_total <= w[1].grants_total));
    assert_socket_view_sampled_under_load(&report, &timeline);
}
