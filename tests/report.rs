//! `report`: every chart exists as a valid PNG and SVG of the expected size, report.md's
//! figures are summary.json's, and empty runs still give valid charts that say "no data".

use ftpswarm::profile::{HumanDuration, PortRange, ProfileOverrides};
use ftpswarm::report::{self, charts};
use ftpswarm::run::{run, RunOptions};
use ftpswarm::rundir;
use ftpswarm::summary::Summary;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const NAMES: [&str; 6] = [
    "concurrency",
    "occupancy",
    "ports_vs_data",
    "latency",
    "failures",
    "blocking",
];

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn check_charts(dir: &Path) -> Vec<String> {
    let mut svgs = Vec::new();
    for name in NAMES {
        let png = dir.join("charts").join(format!("{name}.png"));
        assert_eq!(png_size(&png), (charts::WIDTH, charts::HEIGHT), "{name}");
        let svg = std::fs::read_to_string(dir.join("charts").join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains(&format!("width=\"{}\"", charts::WIDTH)),
            "{name}.svg"
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{name}.svg is truncated");
        svgs.push(svg);
    }
    svgs
}

async fn record(overrides: ProfileOverrides, interrupt: CancellationToken) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: Some(tmp.path().join("run")),
        overrides,
        ..RunOptions::default()
    };
    run(opts, interrupt).await.unwrap();
    tmp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_gets_every_chart_and_a_report_with_its_own_figures() {
    let overrides = ProfileOverrides {
        duration: Some(HumanDuration(Duration::from_secs(2))),
        pasv_range: Some(PortRange { min: 31500, max: 31599 }),
        ..Default::default()
    };
    let tmp = record(overrides, CancellationToken::new()).await;
    let dir = tmp.path().join("run");
    let out = report::generate(&dir).unwrap();
    assert_eq!(out.charts.len(), NAMES.len());
    check_charts(&dir);
    let md = std::fs::read_to_string(&out.report).unwrap();
    let s: Summary = rundir::read_json(&dir.join(rundir::SUMMARY)).unwrap();
    for figure in [
        format!("| Transfers ok | {} |", s.transfers.ok),
        format!("| Sessions completed | {} |", s.sessions.completed),
        format!("| Transfers per second (ok) | {:.1} |", s.transfers_per_s),
        format!("| Distinct ports granted | {} |", s.passive.distinct_ports),
    ] {
        assert!(md.contains(&figure), "report.md lacks {figure:?}");
    }
    let pasv = &s.latency_us["pasv"];
    assert!(
        md.contains(&format!(
            "| pasv | {} | {:.2} |",
            pasv.count,
            pasv.p50_us as f64 / 1000.0
        )),
        "{md}"
    );
    for name in NAMES {
        assert!(md.contains(&format!("(charts/{name}.png)")), "{name} not embedded");
    }
    let rec: ftpswarm::plan::Recommendation = rundir::read_json(&dir.join(ftpswarm::plan::RECOMMENDATION)).unwrap();
    assert!(md.contains(&format!("**{} ports: {}**", rec.width, rec.range)), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_run_still_gets_valid_charts_that_say_no_data() {
    let interrupt = CancellationToken::new();
    interrupt.cancel();
    let overrides = ProfileOverrides {
        pasv_range: Some(PortRange { min: 31600, max: 31699 }),
        ..Default::default()
    };
    let tmp = record(overrides, interrupt).await;
    let dir = tmp.path().join("run");
    let out = report::generate(&dir).unwrap();
    let svgs = check_charts(&dir);
    // Each chart says why it is empty, in its own words. The three drawn from the timeline
    // are empty only when the sampler had no time for two rows (it may, even here).
    let samples = ftpswarm::observe::timeline::read_timeline(&dir).map_or(0, |t| t.len());
    let few = samples < 2;
    let why: [(&[&str], bool); 6] = [
        (&["fewer than two timeline samples"], few),
        (&["no port was granted"], true),
        (&["fewer than two timeline samples"], few),
        (&["no latency was recorded"], true),
        if few {
            (&["fewer than two timeline samples", "no timeline"], true)
        } else {
            (&["no failures in this run"], true)
        },
        (&["no recommendation"], true),
    ];
    for ((name, svg), (reasons, empty)) in NAMES.iter().zip(&svgs).zip(why) {
        let says = reasons.iter().any(|r| svg.contains(&format!("no data: {r}")));
        assert_eq!(
            says, empty,
            "{name} ({samples} timeline samples) should say no data: {reasons:?}"
        );
    }
    assert!(
        out.warnings.iter().any(|w| w.contains("no recommendation")),
        "{:?}",
        out.warnings
    );
    let md = std::fs::read_to_string(&out.report).unwrap();
    assert!(md.contains("Partial run"), "an interrupted run is reported as partial");
}
