//! `sweep` on loopback: the embedded server per width, and a server started by a command
//! template (our own `ftpswarm serve`, so the test needs nothing installed).

use ftpswarm::profile::ProfileOverrides;
use ftpswarm::sweep::{sweep, SweepOptions, SWEEP_CSV, SWEEP_JSON};
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
        verify_model: true,
        out: dir.join("sweep"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sweep_measures_each_width_against_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path(), 31800, vec![1, 40]);
    let r = sweep(&opts, CancellationToken::new()).await.unwrap();
    let model = r.model.as_ref().expect("the widest width gives a fit");
    // The model's width (and 0.6 × it) were added and measured.
    let widths: Vec<u32> = r.widths.iter().map(|w| w.width).collect();
    assert!(
        widths.contains(&model.model_width),
        "{widths:?} lacks {}",
        model.model_width
    );
    assert!(widths.windows(2).all(|p| p[0] < p[1]), "{widths:?}");
    let narrow = &r.widths[0];
    let wide = r.widths.last().unwrap();
    assert_eq!(narrow.width, 1);
    // One port for 16 busy connections: failures are certain, and the interval excludes zero.
    assert!(narrow.failures > 0 && narrow.ci_low > 0.0, "{narrow:?}");
    assert!(narrow.ci_low <= narrow.failure_rate && narrow.failure_rate <= narrow.ci_high);
    assert!(wide.failure_rate < narrow.failure_rate, "{wide:?} vs {narrow:?}");
    // The model agrees on the ordering.
    assert!(wide.model_blocking.unwrap() < narrow.model_blocking.unwrap());
    for f in [
        SWEEP_CSV,
        SWEEP_JSON,
        "report.md",
        "charts/sweep.png",
        "charts/sweep.svg",
    ] {
        assert!(opts.out.join(f).is_file(), "{f} missing");
    }
    let rows = csv::Reader::from_path(opts.out.join(SWEEP_CSV))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, r.widths.len());
    let md = std::fs::read_to_string(opts.out.join("report.md")).unwrap();
    assert!(
        md.contains("Verdict") && md.contains(&format!("| {} |", model.model_width)),
        "{md}"
    );
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
    let r = sweep(&opts, CancellationToken::new()).await.unwrap();
    assert_eq!(r.widths.iter().map(|w| w.width).collect::<Vec<_>>(), vec![2, 6]);
    for w in &r.widths {
        assert!(w.attempts > 0, "{w:?}");
        // Every run's grants stayed inside the width's own range: the command got its ports.
        for dir in &w.runs_dirs {
            let s: ftpswarm::summary::Summary =
                ftpswarm::output::read_json(&std::path::Path::new(dir).join("summary.json")).unwrap();
            assert_eq!(s.passive.out_of_range, 0);
            assert!(s.passive.distinct_ports <= u64::from(w.width), "{dir}");
        }
    }
    assert!(r.widths[0].failure_rate > r.widths[1].failure_rate);
}
