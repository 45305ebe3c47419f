//! `plan` end to end: record a run on the embedded server, plan from its directory, and check
//! the recommendation against the fitted load and the model (not against literals).

use ftpswarm::plan::{self, observed::ObservedError, PlanError, PlanRequest};
use ftpswarm::profile::{HumanDuration, PortRange, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
use ftpswarm::sim::ServerKind;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_from_a_recorded_run_is_consistent_with_the_fit_and_the_simulator() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // 5 s: the listener fit needs 250 counts, and the socket view's CPU budget allows about 70
    // a second on a slow 2-core host (a 3 s run got 204–240 there).
    let overrides = ProfileOverrides {
        duration: Some(HumanDuration(Duration::from_secs(5))),
        pasv_range: Some(PortRange { min: 31300, max: 31399 }),
        ..Default::default()
    };
    let opts = RunOptions {
        out: Some(dir.clone()),
        overrides,
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    assert!(report.summary.failures.is_empty());

    let rec = plan::plan_from_run(&dir, &PlanRequest::default()).unwrap();
    let fit = rec.fit.clone().unwrap();
    // The server's listeners were counted between the rows while the load ran, and with no
    // refusal on 100 ports to fit the server's release on, the plan fitted it on them: it took
    // the fit, or kept the known lag where that is longer and said what the counts showed.
    let timeline = ftpswarm::observe::timeline::read_timeline(&dir).unwrap();
    let loaded: Vec<_> = timeline.iter().skip(1).filter(|r| r.grants_total > 0).collect();
    // Every row: about 18 counts on an idle host, fewer when five such runs share two cores
    // (the sampler's thread waits to be scheduled), none when its interval outgrew a row,
    // as it did when a preempted dump was priced in wall time.
    let counted: Vec<_> = loaded.iter().filter_map(|r| r.server_listening).collect();
    assert!(
        counted.len() * 10 >= loaded.len() * 8,
        "{} of {} rows",
        counted.len(),
        loaded.len()
    );
    let taken = matches!(&rec.server.release_lag_us.source,
        ftpswarm::sim::server::Source::Measured(why) if why.contains("listeners on the range"));
    let noted = rec.warnings.iter().any(|w| w.contains("listeners on the range"));
    assert!(taken || noted, "{:?} {:?}", rec.server.release_lag_us, rec.warnings);
    // Two views of the same ports: the server listens from just before its 227 until it takes
    // the transfer command; we count a port from the 227 until the transfer ends.
    let listening = counted.iter().map(|l| l.mean).sum::<f64>() / counted.len() as f64;
    let ours = loaded.iter().map(|r| r.ports_held as f64).sum::<f64>() / loaded.len() as f64;
    assert!(
        listening > 0.0 && listening <= 1.1 * ours + 0.5,
        "listening {listening:.2}, ours {ours:.2}"
    );
    // λ is the busiest window's PASVs, recounted here from events.csv by brute force: the
    // most any window of that length starting at a PASV holds.
    let sent: Vec<u64> = csv::Reader::from_path(dir.join(ftpswarm::rundir::EVENTS))
        .unwrap()
        .deserialize::<ftpswarm::event::TransferEvent>()
        .map(|r| r.unwrap().t_pasv_sent_us)
        .collect();
    let w = (fit.window_s * 1e6).round() as u64;
    let most = sent
        .iter()
        .map(|&from| sent.iter().filter(|&&t| t >= from && t < from + w).count())
        .max()
        .unwrap();
    let counted = fit.pasv_per_s * fit.window_s;
    assert!(
        (counted - most as f64).abs() <= 1.0 + most as f64 * 0.01,
        "fit: {counted:.1} PASVs in its busiest {:.2} s; recounted: {most}",
        fit.window_s
    );
    // Little's law holds for a steady closed-model run.
    assert!(fit.little_disagreement < 0.25, "{fit:?}");
    // The run's own load: its 8 sessions × 2 connections, one copy of the run.
    assert_eq!(rec.inputs.run_control_connections, 16.0);
    assert_eq!(rec.inputs.scale, 1.0);
    assert_eq!(rec.server.kind, ServerKind::Embedded);
    // The smallest width the simulator says meets the target.
    let target = rec.inputs.gos_per_session;
    assert!(rec.session_failure <= target);
    let narrower = rec.predictions.iter().find(|p| p.width + 1 == rec.model_width);
    if let Some(p) = narrower {
        assert!(p.session_failure_busy > target, "{p:?}");
    }
    let range: PortRange = rec.range.parse().unwrap();
    assert_eq!(range.width(), rec.width);
    // The run's own range start is kept when it avoids the ephemeral ranges.
    assert_eq!(range.min, 31300);

    // Twice the users: two copies of the run, and a width at least as wide.
    let users = (rec.inputs.users * 2.0) as u32;
    let bigger = plan::plan_from_run(
        &dir,
        &PlanRequest {
            users: Some(users),
            ..PlanRequest::default()
        },
    )
    .unwrap();
    assert_eq!(bigger.inputs.scale, 2.0);
    // It says that it extrapolates; the run's own load does not.
    let extrapolates = |r: &plan::Recommendation| r.warnings.iter().any(|w| w.contains("as copies of the run"));
    assert!(extrapolates(&bigger), "{:?}", bigger.warnings);
    assert!(!extrapolates(&rec), "{:?}", rec.warnings);
    let ratio = bigger.analytic.target.offered_erlangs / rec.analytic.target.offered_erlangs;
    assert!((ratio - 2.0).abs() < 1e-9, "{ratio}");
    assert!(bigger.width >= rec.width);
    assert!(plan::render(&rec).contains(&rec.range));
}

/// The replay's first duty: at the run's own width it must predict the failures the run
/// measured. A narrow range on the embedded server makes them plentiful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_predicts_the_failures_its_own_run_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let width = 5;
    let opts = RunOptions {
        out: Some(dir.clone()),
        overrides: ProfileOverrides {
            duration: Some(HumanDuration(Duration::from_secs(4))),
            pasv_range: Some(PortRange {
                min: 31400,
                max: 31400 + width - 1,
            }),
            ..Default::default()
        },
        report: false,
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    let s = &report.summary.sessions;
    let measured = s.failed as f64 / s.completed as f64;
    assert!(s.failed >= 10, "too few failures to compare: {s:?}");
    let predicted = plan::predict_at(&dir, &PlanRequest::default(), &[u32::from(width)]).unwrap()[0];
    assert!(
        predicted.session_failure > measured / 3.0 && predicted.session_failure < measured * 3.0,
        "at {width} ports: predicted {predicted:?}, measured {measured} ({s:?})"
    );
    // And a wider range fails less, in prediction as in fact.
    let wider = plan::predict_at(&dir, &PlanRequest::default(), &[u32::from(width) * 3]).unwrap()[0];
    assert!(wider.session_failure < predicted.session_failure / 3.0, "{wider:?}");
}

#[test]
fn missing_and_foreign_directories_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    match plan::plan_from_run(tmp.path(), &PlanRequest::default()) {
        Err(PlanError::Observed(ObservedError::NotARun(_))) => {}
        other => panic!("{other:?}"),
    }
    std::fs::write(tmp.path().join("manifest.json"), r#"{"schema_version": 99}"#).unwrap();
    match plan::plan_from_run(tmp.path(), &PlanRequest::default()) {
        Err(e @ PlanError::Observed(ObservedError::Schema { found: 99, .. })) => {
            assert!(e.to_string().contains("version 99"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

/// A port another process holds on the range is read before the load starts (not from the
/// first sample, by when our own PASVs are granted too) and added to the width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_held_by_other_processes_widen_the_range() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let range = PortRange { min: 31500, max: 31549 };
    let foreign = std::net::TcpListener::bind(("127.0.0.1", 31520)).unwrap();
    let opts = RunOptions {
        out: Some(dir.clone()),
        overrides: ProfileOverrides {
            duration: Some(HumanDuration(Duration::from_secs(2))),
            pasv_range: Some(range),
            ..Default::default()
        },
        report: false,
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    drop(foreign);
    let before = report
        .manifest
        .sockets_before_load
        .expect("loopback runs read the range first");
    assert_eq!((before.listen, before.established), (1, 0));
    let rec = plan::plan_from_run(&dir, &PlanRequest::default()).unwrap();
    assert_eq!(rec.held_by_others, 1);
    assert_eq!(rec.width, rec.model_width + 1);
}

/// A long run is planned on its busiest stretch: only that stretch's transfers, and the
/// connections open during it, are read, so a plan's memory does not grow with the run.
#[test]
fn a_long_run_is_planned_on_its_busiest_stretch() {
    use ftpswarm::event::TransferCommand;
    use ftpswarm::summary::synthetic::SyntheticRun;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let range = PortRange { min: 30000, max: 30099 };
    let mut run = SyntheticRun::create(dir, range, "220 (vsFTPd 3.0.3)").unwrap();
    let mut put = |r: ftpswarm::event::Record| run.put(&r).unwrap();
    // A quiet connection for the first 299 s (a PASV a second), then ten busy ones for 300 s
    // (a PASV every 100 ms each).
    let s = 1_000_000u64;
    let transfer = |id: u64, t: u64, port: u16| SyntheticRun::transfer(id, 0, t, port, TransferCommand::Retr, 1);
    for i in 0..298 {
        put(transfer(1, 1_000 + i * s, 30000));
    }
    SyntheticRun::connection(1, 0, 299 * s).into_iter().for_each(&mut put);
    for c in 0..10u64 {
        for i in 0..3_000 {
            put(transfer(2 + c, 300 * s + c * 1_000 + i * 100_000, 30001 + c as u16));
        }
        SyntheticRun::connection(2 + c, 300 * s, 600 * s)
            .into_iter()
            .for_each(&mut put);
    }
    run.finish().unwrap();

    let span = plan::observed::busiest_span(dir, plan::PLAN_SPAN_US).unwrap().unwrap();
    assert!(span.0 >= 299 * s && span.1 - span.0 == plan::PLAN_SPAN_US, "{span:?}");
    let obs = plan::observed::read_within(dir, Some(span)).unwrap();
    assert_eq!(obs.attempts.len(), 30_000, "only the busy stretch's PASVs");
    assert_eq!(obs.connections.len(), 10, "only the connections logged in during it");
    let trace = ftpswarm::sim::trace::Trace::read_within(dir, Some(span)).unwrap();
    assert_eq!(
        (trace.attempts.len(), trace.connections.len(), trace.sessions.len()),
        (30_000, 10, 10)
    );
    let rec = plan::plan_from_run(dir, &PlanRequest::default()).unwrap();
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("planned on its busiest 300 s") && w.contains("30000 of its 30298")),
        "{:?}",
        rec.warnings
    );
}
