//! Each chart drawn on a small fixture: its size, its series, and no two series in one colour.

use super::*;
use crate::observe::sockdiag::SocketCounts;
use crate::plan::observed::{Attempt, GrantSample};
use crate::port_range::PortRange;
use crate::sweep::{SweepResult, WidthResult};

fn svg_of(chart: &impl Chart) -> String {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        chart.draw(&root).unwrap();
        root.present().unwrap();
    }
    svg
}

/// The palette colours the drawing uses, in palette order.
fn colours_used(svg: &str) -> Vec<usize> {
    let svg = svg.to_ascii_uppercase();
    (0..PALETTE.len())
        .filter(|&i| {
            let RGBColor(r, g, b) = PALETTE[i];
            svg.contains(&format!("#{r:02X}{g:02X}{b:02X}"))
        })
        .collect()
}

/// Draws `chart`, checks its size and that every label is in its legend, and that its
/// `series` coloured series use as many distinct colours.
fn check(chart: &impl Chart, labels: &[&str], series: usize) -> String {
    let svg = svg_of(chart);
    assert!(
        svg.contains(&format!("width=\"{WIDTH}\"")) && svg.contains(&format!("height=\"{HEIGHT}\"")),
        "{}: not {WIDTH}×{HEIGHT}",
        chart.name()
    );
    assert!(!svg.contains("no data:"), "{}: drew no data", chart.name());
    for label in labels {
        let escaped = label.replace('&', "&amp;").replace('\'', "&apos;").replace('<', "&lt;");
        assert!(
            svg.contains(label) || svg.contains(&escaped) || svg.contains(&label.replace('\'', "&#39;")),
            "{}: no series {label:?}",
            chart.name()
        );
    }
    let used = colours_used(&svg);
    assert_eq!(
        used.len(),
        series,
        "{}: {series} series in {} colours {used:?}: two share one",
        chart.name(),
        used.len()
    );
    svg
}

fn row(t_s: u64, n: i64, failed: u64, sockets: bool) -> TimelineRow {
    TimelineRow {
        t_us: t_s * 1_000_000,
        sessions_active: n,
        control_open: n + 1,
        pasv_pending: n / 2,
        data_open: n - 1,
        ports_held: n + 2,
        grants_total: 10 * t_s,
        out_of_range_total: 0,
        transfers_total: 10 * t_s,
        bytes_total: 100 * t_s,
        failures_total: [failed * t_s; FailureClass::ALL.len()],
        server_sockets: sockets.then_some(SocketCounts {
            listen: 3,
            established: 4,
            time_wait: Some(5 * t_s as u32),
            other: 0,
        }),
        server_listening: None,
        host_cpu_busy: None,
        server_cpu_cores: None,
    }
}

#[test]
fn concurrency_draws_five_counters_and_the_servers_sockets_apart() {
    let timeline: Vec<_> = (0..5).map(|t| row(t, 4 + t as i64, 0, true)).collect();
    check(
        &Concurrency { timeline: &timeline },
        &["server: listening + established", "server: TIME_WAIT (right axis)"],
        7,
    );
}

#[test]
fn failures_give_every_class_its_own_colour() {
    let timeline: Vec<_> = (0..4).map(|t| row(t, 4, 1, false)).collect();
    let labels: Vec<String> = FailureClass::ALL.iter().map(|c| format!("{c} (3 in all)")).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    check(&Failures { timeline: &timeline }, &labels, FailureClass::ALL.len());
}

#[test]
fn ports_vs_data_draws_the_samples_and_the_fit() {
    let timeline: Vec<_> = (0..5).map(|t| row(t, 2 + t as i64, 0, false)).collect();
    check(
        &PortsVsData {
            timeline: &timeline,
            fit: Some((1.0, 2.0, 0.99)),
        },
        &["samples", "fit: 1.00x + 2.00, r² 0.99"],
        2,
    );
}

#[test]
fn latency_gives_every_phase_its_own_colour() {
    let histograms: Vec<(&'static str, Histogram<u64>)> = PHASES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
            for v in 1..=100u64 {
                h.record(v * 100 * (i as u64 + 1)).unwrap();
            }
            (*p, h)
        })
        .collect();
    let labels: Vec<String> = PHASES.iter().map(|p| format!("{p} (n=100)")).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    check(&Latency { histograms }, &labels, PHASES.len());
}

fn grant(i: u64, port: u16, in_range: bool) -> Attempt {
    Attempt {
        is_stor: false,
        port: Some(port),
        t_sent_us: i * 1000,
        t_granted_us: Some(i * 1000 + 100),
        t_connected_us: Some(i * 1000 + 200),
        t_first_byte_us: Some(i * 1000 + 300),
        t_transfer_done_us: Some(i * 1000 + 900),
        t_released_us: Some(i * 1000 + 950),
        blocked: false,
        in_range: Some(in_range),
    }
}

#[test]
fn occupancy_draws_grants_inside_and_outside_the_range_apart() {
    let grants: Vec<Attempt> = (0..50)
        .map(|i| grant(i, 30000 + (i % 10) as u16, true))
        .chain([grant(50, 45000, false)])
        .collect();
    let sample = GrantSample {
        total: grants.len(),
        step: 1,
        t_end_us: 50_950,
        ports_inside: Some((30000, 30009)),
        any_outside: true,
        grants,
    };
    let svg = check(
        &Occupancy {
            grants: &sample,
            range: Some(PortRange { min: 30000, max: 30009 }),
        },
        &["in range", "outside the range"],
        2,
    );
    assert!(!svg.contains("every "), "a whole sample is not said to be thinned");
}

fn recommendation() -> Recommendation {
    crate::plan::plan_what_if(
        &crate::plan::WhatIf {
            profile: crate::profile::Profile::default(),
            hold: std::time::Duration::from_millis(40),
            transfer_time: None,
        },
        &crate::plan::PlanRequest::default(),
    )
    .unwrap()
}

#[test]
fn blocking_draws_three_predictions_the_width_and_every_rule_apart() {
    let r = recommendation();
    assert!(!r.rules_of_thumb.is_empty());
    let recommended = format!("recommended: {} ports", r.width);
    let mut labels = vec![
        "sessions failing in busy stretches (predicted)",
        "sessions failing on average (predicted)",
        "PASVs failing (predicted)",
        recommended.as_str(),
    ];
    let names: Vec<&str> = r.rules_of_thumb.iter().map(|rule| rule.name.as_str()).collect();
    labels.extend(&names);
    check(
        &Blocking {
            recommendation: Some(&r),
        },
        &labels,
        4 + r.rules_of_thumb.len(),
    );
}

#[test]
fn the_sweep_chart_draws_measurements_prediction_and_plan_apart() {
    let model = recommendation();
    let width = |w: u32, failed: u64| WidthResult {
        width: w,
        range: format!("30000-{}", 30000 + w - 1),
        runs: 1,
        seconds: 10.0,
        sessions: 1000,
        sessions_failed: failed,
        session_failure: failed as f64 / 1000.0,
        session_ci_low: (failed as f64 / 1000.0) * 0.7,
        session_ci_high: (failed as f64 / 1000.0) * 1.4 + 0.003,
        predicted_session_failure: Some(failed as f64 / 900.0),
        attempts: 10_000,
        failures: failed,
        failure_rate: failed as f64 / 10_000.0,
        ci_low: 0.0,
        ci_high: 0.01,
        model_blocking: Some(0.001),
        attempts_needed: 1000,
        precision_met: true,
        runs_dirs: vec![],
        error: None,
    };
    let result = SweepResult {
        schema_version: crate::rundir::SCHEMA_VERSION,
        profile: "fixture".into(),
        gos_per_session: 0.01,
        gos_per_pasv: 0.001,
        precision: 0.2,
        widths: vec![width(4, 200), width(8, 30), width(16, 0)],
        measured_width: Some(16),
        partial: None,
        notes: vec![],
        model: Some(model.clone()),
    };
    let plan = format!("plan's width: {}", model.model_width);
    check(
        &SweepChart { result: &result },
        &["predicted", plan.as_str(), "measured, 95% interval"],
        3,
    );
}
