//! `sweep` on loopback: the embedded server per width, and a server started by a command
//! template (our own `ftpswarm serve`, so the test needs nothing installed).

mod common;

use ftpswarm::commands::sweep::sweep_and_report;
use ftpswarm::profile::ProfileOverrides;
use ftpswarm::sweep::{SweepOptions, SWEEP_CSV, SWEEP_JSON};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BURST: &str = r#"
name = "burst"
[load]
sessions = 8
ramp_up = "0s"
duration = "2s"
[session]
files_per_session = 10
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

fn options(dir: &std::path::Path, range_start: u16, widths: Vec<u32>) -> SweepOptions {
    let profile = dir.join("burst.toml");
    std::fs::write(&profile, BURST).unwrap();
    SweepOptions {
        profile: Some(profile),
        overrides: ProfileOverrides::default(),
        widths,
        range_start,
        target: None,
        server_cmd: None,
        stop_cmd: None,
        budget: Duration::from_secs(12),
        precision: 0.2,
        gos: 0.01,
        pick: None,
        server: None,
        verify_model: true,
        search: false,
        force: false,
        out: dir.join("sweep"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sweep_measures_each_width_against_the_prediction() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path(), 31800, vec![1, 40]);
    let r = sweep_and_report(&opts, CancellationToken::new()).await.unwrap();
    assert!(r.partial.is_none(), "{:?}", r.partial);
    let model = r.model.as_ref().expect("the widest width gives a plan");
    // The plan's width and 0.7 × it were added and measured.
    let widths: Vec<u32> = r.widths.iter().map(|w| w.width).collect();
    let seven_tenths = ((f64::from(model.model_width) * 0.7).round() as u32).max(1);
    for w in [model.model_width, seven_tenths] {
        assert!(widths.contains(&w), "{widths:?} lacks {w}");
    }
    assert!(widths.windows(2).all(|p| p[0] < p[1]), "{widths:?}");
    let narrow = &r.widths[0];
    let wide = r.widths.last().unwrap();
    assert_eq!(narrow.width, 1);
    // One port for 16 busy connections: sessions fail for certain, and the interval excludes zero.
    assert!(narrow.sessions_failed > 0 && narrow.session_ci_low > 0.0, "{narrow:?}");
    assert!(wide.session_failure < narrow.session_failure, "{wide:?} vs {narrow:?}");
    // Sessions fail at least as often as their PASVs.
    assert!(narrow.session_failure >= narrow.failure_rate);
    // Every width has a prediction, and it agrees on the ordering.
    let predicted = |w: &ftpswarm::sweep::WidthResult| w.predicted_session_failure.unwrap();
    assert!(predicted(wide) < predicted(narrow));
    for f in [
        SWEEP_CSV,
        SWEEP_JSON,
        "report.md",
        "charts/sweep.png",
        "charts/sweep.svg",
    ] {
        assert!(opts.out.join(f).is_file(), "{f} missing");
    }
    // The chart is a whole image: a PNG of the charts' size, an SVG that ends.
    let png = std::fs::read(opts.out.join("charts/sweep.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!(
        (be(&png[16..20]), be(&png[20..24])),
        (ftpswarm::report::charts::WIDTH, ftpswarm::report::charts::HEIGHT)
    );
    let svg = std::fs::read_to_string(opts.out.join("charts/sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    let rows = csv::Reader::from_path(opts.out.join(SWEEP_CSV))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, r.widths.len());
    common::schemas::check(&opts.out.join(SWEEP_JSON), "sweep");
    let md = std::fs::read_to_string(opts.out.join("report.md")).unwrap();
    assert!(
        md.contains("Verdict") && md.contains(&format!("| {} |", model.model_width)),
        "{md}"
    );
    // `ftpswarm report --run` redraws a sweep directory as it does a run's.
    std::fs::remove_file(opts.out.join("report.md")).unwrap();
    std::fs::remove_dir_all(opts.out.join("charts")).unwrap();
    ftpswarm::commands::report::command(&opts.out).unwrap();
    assert_eq!(std::fs::read_to_string(opts.out.join("report.md")).unwrap(), md);
    assert!(opts.out.join("charts/sweep.png").is_file() && opts.out.join("charts/sweep.svg").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_bisects_to_a_width_that_met_the_target_with_confidence() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), 31700, vec![40]);
    opts.search = true;
    opts.verify_model = false;
    opts.budget = Duration::from_secs(24);
    // A 5% target needs 74 sessions without a failure for 95% confidence, which even a
    // busy machine runs within a width's share of the budget (1% needs 369, which a shared
    // CI machine did not always manage).
    opts.gos = 0.05;
    let r = sweep_and_report(&opts, CancellationToken::new()).await.unwrap();
    let note = r
        .notes
        .iter()
        .find(|n| n.starts_with("search:"))
        .unwrap_or_else(|| panic!("no search note in {:?}", r.notes));
    // Whatever the search ended on, the width it names met the target with 95% confidence
    // and every narrower width it measured did not.
    let met: Vec<u32> = r
        .widths
        .iter()
        .filter(|w| w.sessions > 0 && w.session_ci_high <= r.gos_per_session)
        .map(|w| w.width)
        .collect();
    let smallest = *met
        .iter()
        .min()
        .unwrap_or_else(|| panic!("nothing met the target: {:?}", r.widths));
    assert!(
        note.contains(&format!("{smallest} (met)")) || note.contains(&format!("{smallest} ports is the smallest")),
        "{note}"
    );
    assert_eq!(r.measured_width, Some(smallest));
    assert!(
        r.widths.len() >= 3,
        "a search measures more than its first width: {:?}",
        r.widths
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_width_where_no_one_can_log_in_is_a_result_not_an_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), 31950, vec![2, 4]);
    opts.verify_model = false;
    opts.budget = Duration::from_secs(4);
    // The server refuses our password: no run can start at any width.
    opts.target = Some("ftp://ftpswarm:wrong-password@127.0.0.1".into());
    opts.server_cmd = Some(format!(
        "exec {} serve --port {{ctrl_port}} --pasv {{pasv_min}}-{{pasv_max}}",
        env!("CARGO_BIN_EXE_ftpswarm")
    ));
    let r = sweep_and_report(&opts, CancellationToken::new()).await.unwrap();
    assert_eq!(r.widths.len(), 2, "{r:?}");
    for w in &r.widths {
        assert_eq!((w.session_failure, w.sessions_failed), (1.0, w.sessions), "{w:?}");
        assert!(w.error.as_deref().is_some_and(|e| e.contains("log in")), "{w:?}");
        assert!(!w.error.as_deref().unwrap_or("").contains("wrong-password"), "{w:?}");
    }
    assert!(r.measured_width.is_none());
    assert!(opts.out.join(SWEEP_CSV).is_file() && opts.out.join("report.md").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_sweep_is_written_and_marked_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), 31600, vec![4, 8, 16]);
    opts.verify_model = false;
    let interrupt = CancellationToken::new();
    let stop = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop.cancel();
    });
    let r = sweep_and_report(&opts, interrupt).await.unwrap();
    assert_eq!(r.partial.as_deref(), Some("interrupted"));
    assert!(!r.widths.is_empty() && r.widths.len() < 3, "{:?}", r.widths);
    let written: ftpswarm::sweep::SweepResult = ftpswarm::rundir::read_json(&opts.out.join(SWEEP_JSON)).unwrap();
    assert_eq!(written.partial.as_deref(), Some("interrupted"));
    assert!(std::fs::read_to_string(opts.out.join("report.md"))
        .unwrap()
        .contains("Partial sweep"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_command_is_restarted_per_width_with_its_range() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), 31900, vec![2, 6]);
    opts.verify_model = false;
    opts.budget = Duration::from_secs(6);
    opts.target = Some("ftp://ftpswarm:swarm-secret@127.0.0.1".into());
    opts.server_cmd = Some(format!(
        "exec {} serve --port {{ctrl_port}} --pasv {{pasv_min}}-{{pasv_max}}",
        env!("CARGO_BIN_EXE_ftpswarm")
    ));
    let r = sweep_and_report(&opts, CancellationToken::new()).await.unwrap();
    assert_eq!(r.widths.iter().map(|w| w.width).collect::<Vec<_>>(), vec![2, 6]);
    for w in &r.widths {
        assert!(w.attempts > 0 && w.sessions > 0, "{w:?}");
        // Every run's grants stayed inside the width's own range: the command got its ports.
        for dir in &w.runs_dirs {
            let s: ftpswarm::summary::Summary =
                ftpswarm::rundir::read_json(&std::path::Path::new(dir).join("summary.json")).unwrap();
            assert_eq!(s.passive.out_of_range, 0);
            assert!(s.passive.distinct_ports <= u64::from(w.width), "{dir}");
        }
    }
    // Both widths are far too narrow for 16 busy connections; the narrower fails more PASVs.
    assert!(r.widths[0].failure_rate > r.widths[1].failure_rate, "{:?}", r.widths);
    assert!(
        r.widths[0].session_failure >= r.widths[1].session_failure,
        "{:?}",
        r.widths
    );
}

/// A server command that exits at once is tried on fresh ports (another connection may have
/// taken the first), then reported with each attempt's exit status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_command_that_exits_is_retried_on_fresh_ports_then_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), 31980, vec![2]);
    opts.verify_model = false;
    opts.target = Some("ftp://ftpswarm@127.0.0.1".into());
    opts.server_cmd = Some("exit 3 # {ctrl_port}".into());
    let err = match sweep_and_report(&opts, CancellationToken::new()).await {
        Ok(r) => panic!("a server that never starts cannot be swept: {r:?}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("failed to start 3 times"), "{err}");
    assert_eq!(err.matches("exit status: 3").count(), 3, "{err}");
}

/// `sweep --tls` on the embedded server: each width's server offers FTPS with a certificate
/// made at its start, the runs trust it, and every run is FTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_over_ftps_restarts_the_embedded_server_with_tls_per_width() {
    let tmp = tempfile::tempdir().unwrap();
    // Wide enough that the range never runs out (12 ports failed 3% of these sessions), so
    // every failure would be TLS's.
    let mut opts = options(tmp.path(), 31860, vec![40]);
    opts.overrides.tls = Some(ftpswarm::profile::TlsMode::Explicit);
    opts.verify_model = false;
    opts.budget = Duration::from_secs(4);
    let r = sweep_and_report(&opts, CancellationToken::new()).await.unwrap();
    let w = &r.widths[0];
    assert!(w.runs >= 1 && w.sessions > 0 && w.attempts > 0, "{w:?} {:?}", r.notes);
    // The only failures allowed are libunftp's AUTH TLS race (see tests/ftps.rs).
    assert!(w.sessions_failed * 50 <= w.sessions, "{w:?}");
    for dir in &w.runs_dirs {
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(std::path::Path::new(dir).join("summary.json")).unwrap())
                .unwrap();
        for (class, n) in summary["failures"].as_object().unwrap() {
            assert!(class == "tls_error" || n.as_u64() == Some(0), "{dir}: {class} {n}");
        }
    }
    let run = opts.out.join("w00040").join("run000");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["target"].as_str().unwrap().starts_with("ftps://"),
        "{manifest}"
    );
    assert!(opts.out.join("embedded-cert.pem").is_file());
}
