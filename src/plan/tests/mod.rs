use super::*;
use crate::profile::Profile;
use std::time::Duration;

mod from_run;

fn what_if(hold_ms: u64) -> WhatIf {
    let mut profile = Profile::default();
    profile.load.sessions = 100;
    profile.session.parallel_connections = 2;
    profile.session.files_per_session = 20;
    profile.session.think_time = crate::profile::HumanDuration(Duration::from_millis(100));
    WhatIf {
        profile,
        hold: Duration::from_millis(hold_ms),
        transfer_time: Some(Duration::from_millis(400)),
    }
}

fn prediction_at(r: &Recommendation, width: u32) -> &Prediction {
    match r.predictions.iter().find(|p| p.width == width) {
        Some(p) => p,
        None => panic!("no prediction at {width} in {:?}", r.predictions),
    }
}

#[test]
fn an_unknown_server_is_planned_on_the_safe_side_and_says_so() {
    let unknown = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    let known = plan_what_if(
        &what_if(50),
        &PlanRequest {
            server: Some(ServerKind::Vsftpd),
            ..PlanRequest::default()
        },
    )
    .unwrap();
    // Same load and pick; the unknown server may also lose bind races.
    assert!(unknown.width >= known.width, "{} vs {}", unknown.width, known.width);
    assert!(
        unknown.warnings.iter().any(|w| w.contains("safe side")),
        "{:?}",
        unknown.warnings
    );
    assert!(unknown.server.collision_window_us.source.is_assumed());
}

#[test]
fn width_is_the_smallest_the_simulator_says_meets_the_target() {
    let r = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    // 200 connections, one file per 0.5 s each: 400 PASV/s × 50 ms = 20 erlangs.
    assert!(
        (r.analytic.target.pasv_per_s - 400.0).abs() < 1e-9,
        "{}",
        r.analytic.target.pasv_per_s
    );
    assert!((r.analytic.target.offered_erlangs - 20.0).abs() < 1e-9);
    let target = r.inputs.gos_per_session;
    assert!(r.session_failure <= target, "{}", r.session_failure);
    assert_eq!(r.session_failure, r.prediction.session_failure_busy);
    assert!(r.prediction.session_failure_busy >= r.prediction.session_failure_at_range);
    let narrower = prediction_at(&r, r.model_width - 1);
    assert!(narrower.session_failure_busy > target, "{narrower:?}");
    assert_eq!(r.width, r.model_width);
    let range: PortRange = r.range.parse().unwrap();
    assert_eq!(range.width(), r.width);
    assert!(placement::ephemeral_overlaps(range).is_empty(), "{range}");
    // 0.7 × the width is always among the predictions: the width a sweep shows missing.
    let seven_tenths = ((f64::from(r.model_width) * 0.7).round() as u32).max(1);
    assert!(prediction_at(&r, seven_tenths).session_failure_busy > target);
    // Narrower ranges never fail less.
    for w in r.predictions.windows(2) {
        assert!(w[0].width < w[1].width);
        assert!(w[1].pasv_failure <= w[0].pasv_failure + 1e-12, "{w:?}");
    }
}

#[test]
fn load_scales_with_users_parallel_and_growth() {
    let base = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    let req = PlanRequest {
        users: Some(200),
        growth: 1.5,
        ..PlanRequest::default()
    };
    let scaled = plan_what_if(&what_if(50), &req).unwrap();
    let ratio = scaled.analytic.target.offered_erlangs / base.analytic.target.offered_erlangs;
    assert!((ratio - 3.0).abs() < 1e-9, "{ratio}");
    assert!((scaled.inputs.control_connections - 600.0).abs() < 1e-9);
    assert!(scaled.width > base.width);
}

#[test]
fn scanning_servers_need_fewer_ports_than_random_try_servers() {
    // The same server but for its pick order: no bind race in either.
    let server = Some(ServerKind::Pyftpdlib);
    let random = plan_what_if(
        &what_if(50),
        &PlanRequest {
            server,
            pick: Some(PortPickPolicy::RandomTries { tries: 9 }),
            ..PlanRequest::default()
        },
    )
    .unwrap();
    let scan = plan_what_if(
        &what_if(50),
        &PlanRequest {
            server,
            ..PlanRequest::default()
        },
    )
    .unwrap();
    assert!(
        scan.width < random.width,
        "scan {} vs random {}",
        scan.width,
        random.width
    );
    assert!(scan.analytic.policy.contains("Engset"));
    assert_eq!(scan.server.pick.value, PickOrder::AnyFree);
    assert_eq!(random.server.pick.source, Source::Given);
}

#[test]
fn with_independent_sessions_the_simulator_agrees_with_the_analytic_model() {
    // The what-if trace has exponential holds and independent sessions: the assumptions of
    // Engset and the random-try chain, so the two must land close to each other.
    for pick in [PortPickPolicy::Scan, PortPickPolicy::RandomTries { tries: 9 }] {
        let r = plan_what_if(
            &what_if(50),
            &PlanRequest {
                server: Some(ServerKind::Pyftpdlib),
                pick: Some(pick),
                ..PlanRequest::default()
            },
        )
        .unwrap();
        let analytic = match r.analytic.width {
            Some(w) => f64::from(w),
            None => panic!("no analytic width for {pick:?}"),
        };
        let simulated = f64::from(r.model_width);
        assert!(
            (simulated / analytic - 1.0).abs() < 0.25,
            "{pick:?}: simulated {simulated} vs analytic {analytic}"
        );
    }
}

#[test]
fn rules_of_thumb_are_reported_with_their_predicted_failure() {
    let r = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    assert_eq!(r.rules_of_thumb.len(), 3);
    let (per_transfer, pure) = (&r.rules_of_thumb[0], &r.rules_of_thumb[2]);
    assert_eq!((per_transfer.width, pure.width), (200, 400));
    // Twice the ports never fail more.
    assert!(pure.session_failure <= per_transfer.session_failure);
    assert!(per_transfer.session_failure <= 1.0 && per_transfer.blocking_per_pasv <= per_transfer.session_failure);
}

#[test]
fn per_pasv_target_can_be_given_directly() {
    let req = PlanRequest {
        gos: GradeOfService::PerPasv(0.001),
        ..PlanRequest::default()
    };
    let r = plan_what_if(&what_if(50), &req).unwrap();
    assert_eq!(r.inputs.gos_per_pasv, 0.001);
    assert!((r.inputs.gos_per_session - (1.0 - 0.999f64.powi(20))).abs() < 1e-12);
    assert!(r.blocking_per_pasv <= 0.001);
}

#[test]
fn impossible_targets_are_rejected_with_the_allowed_range() {
    for (req, flag) in [
        (
            PlanRequest {
                gos: GradeOfService::PerSession(0.0),
                ..PlanRequest::default()
            },
            "--gos",
        ),
        (
            PlanRequest {
                gos: GradeOfService::PerSession(1.0),
                ..PlanRequest::default()
            },
            "--gos",
        ),
        (
            PlanRequest {
                gos: GradeOfService::PerPasv(-0.1),
                ..PlanRequest::default()
            },
            "--gos-per-pasv",
        ),
        (
            PlanRequest {
                growth: 0.0,
                ..PlanRequest::default()
            },
            "--growth",
        ),
        (
            PlanRequest {
                users: Some(0),
                ..PlanRequest::default()
            },
            "--users",
        ),
        (
            PlanRequest {
                parallel: Some(65),
                ..PlanRequest::default()
            },
            "--parallel",
        ),
        (
            PlanRequest {
                files: Some(0),
                ..PlanRequest::default()
            },
            "--files",
        ),
        (
            PlanRequest {
                replications: Some(0),
                ..PlanRequest::default()
            },
            "--replications",
        ),
    ] {
        match plan_what_if(&what_if(50), &req) {
            Err(PlanError::Input { flag: f, message }) => {
                assert_eq!(f, flag);
                assert!(message.contains("allowed"), "{message}");
            }
            other => panic!("{flag}: expected an input error, got {other:?}"),
        }
    }
    assert!(matches!(
        plan_what_if(&what_if(0), &PlanRequest::default()),
        Err(PlanError::Input { flag: "--hold", .. })
    ));
}

#[test]
fn snippets_name_the_recommended_range() {
    let r = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    let range: PortRange = r.range.parse().unwrap();
    assert!(r
        .server_snippets
        .iter()
        .any(|s| s.text.contains(&format!("pasv_max_port={}", range.max))));
    assert_eq!(r.firewall_snippets.len(), 4);
    let text = render(&r);
    assert!(
        text.starts_with(&format!("recommendation    {} ports: {} (", r.width, r.range)),
        "{text}"
    );
    assert!(text.contains(&format!("{:.1} users", r.inputs.users)), "{text}");
}

#[test]
fn a_scanning_server_never_needs_more_ports_than_connections() {
    // Few connections and a heavy load: every connection almost always holds a port, but a
    // scanning server still finds one free as long as there are as many ports as connections.
    let mut w = what_if(50);
    w.profile.load.sessions = 4;
    w.profile.session.parallel_connections = 1;
    w.transfer_time = Some(Duration::from_millis(1));
    let req = PlanRequest {
        server: Some(ServerKind::Pyftpdlib),
        ..PlanRequest::default()
    };
    let r = plan_what_if(&w, &req).unwrap();
    assert!(r.width <= 4, "{}", r.width);
    assert_eq!(prediction_at(&r, 4).pasv_failure, 0.0);
}

#[test]
fn each_rows_listener_mean_covers_the_time_since_the_row_before() {
    use crate::observe::timeline::{ListenerAverage, TimelineRow};
    let live = crate::observe::LiveCounters::default();
    let row = |t_us: u64, mean: Option<f64>| {
        TimelineRow::capture(
            t_us,
            &live,
            None,
            mean.map(|mean| ListenerAverage { mean, samples: 30 }),
            None,
        )
    };
    // Two ports held by another process before the load; a row without counts is left out.
    let timeline = [
        row(0, None),
        row(100, Some(3.5)),
        row(200, None),
        row(300, Some(1.0)),
        row(400, Some(2.5)),
    ];
    let ticks = observed::listener_ticks(&timeline, 2, None);
    let got: Vec<(u64, u64, f64)> = ticks.iter().map(|t| (t.from_us, t.to_us, t.mean)).collect();
    assert_eq!(got, vec![(0, 100, 1.5), (200, 300, 0.0), (300, 400, 0.5)]);
    // A long run is planned on its busiest stretch: rows outside it are left out.
    let within = observed::listener_ticks(&timeline, 0, Some((100, 400)));
    let got: Vec<(u64, u64)> = within.iter().map(|t| (t.from_us, t.to_us)).collect();
    assert_eq!(got, vec![(200, 300), (300, 400)]);
}

#[test]
fn a_given_race_window_is_used_as_given_and_a_wider_one_asks_for_more_ports() {
    let given = |us: u64| {
        plan_what_if(
            &what_if(50),
            &PlanRequest {
                race_window: Some(Duration::from_micros(us)),
                ..PlanRequest::default()
            },
        )
        .unwrap()
    };
    let narrow = given(1);
    assert_eq!(narrow.server.collision_window_us.value, 1.0);
    assert!(matches!(narrow.server.collision_window_us.source, Source::Given));
    let wide = given(200);
    assert_eq!(wide.server.collision_window_us.value, 200.0);
    assert!(wide.width > narrow.width, "{} vs {}", wide.width, narrow.width);
}

fn inputs_with_files(files_per_session: u32) -> PlanInputs {
    PlanInputs {
        users: 10.0,
        parallel: 1,
        files_per_session,
        control_connections: 10.0,
        run_control_connections: 10.0,
        scale: 1.0,
        growth: 1.0,
        gos_per_session: 0.01,
        gos_per_pasv: 0.001,
    }
}

fn predicted(pasv_failure: f64, at_range: f64, busy: f64) -> Prediction {
    Prediction {
        width: 5,
        pasv_failure,
        session_failure: at_range,
        session_failure_at_range: at_range,
        session_failure_busy: busy,
        pasv_exhausted: pasv_failure,
        pasv_collided: 0.0,
        refused_connections_per_session: 0.0,
    }
}

#[test]
fn other_files_per_session_take_the_session_failure_from_the_pasv_failure() {
    let p = predicted(0.01, 0.04, 0.06);
    // The run's own files per session: its replayed sessions, in the busy stretches.
    assert_eq!(session_failure(&p, &inputs_with_files(10), 10), 0.06);
    // Twenty where the run had ten: 1 − 0.99^20 = 18.21% for independent PASVs, raised by the
    // run's busy-to-average ratio (0.06 / 0.04).
    let twenty = session_failure(&p, &inputs_with_files(20), 10);
    assert!((twenty - 0.27313959360415385).abs() < 1e-12, "{twenty}");
    // With nothing failing at the range on average there is no ratio: the independent figure.
    let calm = session_failure(&predicted(0.01, 0.0, 0.0), &inputs_with_files(20), 10);
    assert!((calm - 0.18209306240276923).abs() < 1e-12, "{calm}");
    // A share, never more than every session: 1 − 0.8^20 = 98.8%, × 1.5.
    assert_eq!(
        session_failure(&predicted(0.2, 0.04, 0.06), &inputs_with_files(20), 10),
        1.0
    );
}

#[test]
fn the_curve_runs_from_a_third_of_the_width_to_twice_it_in_about_forty_steps() {
    for w in [1u32, 2, 3, 10, 30, 61, 100, 1000, 20_000] {
        let grid = curve_widths(w, &[], 0);
        assert!(grid.windows(2).all(|p| p[0] < p[1]), "{w}: {grid:?}");
        assert_eq!(grid.first(), Some(&(w / 3).max(1)), "{w}: {grid:?}");
        let top = (2 * w).max(w + 4);
        assert!(
            grid.last().is_some_and(|&l| l <= top && l + top / 40 + 1 >= top),
            "{w}: {grid:?}"
        );
        // The widths a sweep checks are always there.
        let seven_tenths = ((f64::from(w) * 0.7).round() as u32).max(1);
        for must in [w, (w - 1).max(1), seven_tenths] {
            assert!(grid.contains(&must), "{w}: {must} missing from {grid:?}");
        }
        // About 40 steps: at least 40 where the span has that many widths, and never so fine
        // that a wide range costs hundreds of predictions.
        let span = top - (w / 3).max(1);
        if span >= 40 {
            assert!((40..=84).contains(&grid.len()), "{w}: {} widths", grid.len());
        } else {
            assert_eq!(grid.len() as u32, span + 1, "{w}: every width of a short span");
        }
    }
    // At 61 ports the steps are 2 wide from 20, and 0.7 × 61 = 43 is added between them.
    let grid = curve_widths(61, &[], 0);
    assert!(
        grid.contains(&43) && grid.contains(&42) && !grid.contains(&41),
        "{grid:?}"
    );
    // At 1 port: up to 5, 4 more than the width.
    assert_eq!(curve_widths(1, &[], 0), vec![1, 2, 3, 4, 5]);
    // Widths asked for are added less the ports held by others, within 1..=MAX_WIDTH.
    let asked = curve_widths(30, &[7, 500, 2, u32::MAX], 3);
    for w in [4, 497, 1, MAX_WIDTH] {
        assert!(asked.contains(&w), "{w} missing from {asked:?}");
    }
}

#[test]
fn the_simulator_rate_counts_every_replayed_pasv() {
    let req = PlanRequest {
        replications: Some(8),
        ..PlanRequest::default()
    };
    let started = std::time::Instant::now();
    let r = plan_what_if(&what_if(50), &req).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    // Every width predicted and every rule of thumb replays each replication's PASVs once
    // (the search's steps more); the rate is over the plan's own time, which this encloses.
    let replayed = r.predictor.pasvs_per_replication as f64
        * f64::from(r.predictor.replications)
        * (r.predictions.len() + r.rules_of_thumb.len()) as f64;
    assert_eq!(r.predictor.replications, 8);
    assert!(
        r.predictor.pasvs_per_second >= replayed / elapsed,
        "{} PASV/s reported, at least {replayed} replayed in {elapsed:.3} s",
        r.predictor.pasvs_per_second
    );
    // 400 PASV/s for a minute at 240 s a port would be 96,000 ports: the 4-minute rule is
    // flagged as a Windows rule.
    assert!(
        r.warnings.iter().any(|w| w.contains("4-minute rule")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn an_open_load_is_planned_for_the_sessions_in_flight() {
    let mut w = what_if(50);
    w.profile.load.model = crate::profile::LoadModel::Open;
    w.profile.load.rate = 2.0;
    let r = plan_what_if(&w, &PlanRequest::default()).unwrap();
    // Little's law: 2 sessions/s × (20 files / 2 connections × (400 ms + 100 ms think)) = 10
    // sessions in flight, 20 connections.
    assert!((r.inputs.users - 10.0).abs() < 1e-9, "{}", r.inputs.users);
    assert!((r.inputs.control_connections - 20.0).abs() < 1e-9);
}

#[test]
fn the_same_load_asked_for_two_ways_gets_the_same_plan() {
    // Closed: 200 users at 1.5× growth are the 300 sessions of a profile of 300.
    let grown = PlanRequest {
        users: Some(200),
        growth: 1.5,
        ..PlanRequest::default()
    };
    let direct = PlanRequest {
        users: Some(300),
        ..PlanRequest::default()
    };
    let (a, b) = (
        plan_what_if(&what_if(50), &grown).unwrap(),
        plan_what_if(&what_if(50), &direct).unwrap(),
    );
    assert_eq!(a.inputs.control_connections, b.inputs.control_connections);
    assert_eq!(a.predictions, b.predictions);
    // Open: 2 sessions/s with 10 in flight, asked for 20 at 1.5×, arrive at 6/s.
    let open = |rate: f64| {
        let mut w = what_if(50);
        w.profile.load.model = crate::profile::LoadModel::Open;
        w.profile.load.rate = rate;
        w
    };
    let grown = PlanRequest {
        users: Some(20),
        growth: 1.5,
        ..PlanRequest::default()
    };
    let (a, b) = (
        plan_what_if(&open(2.0), &grown).unwrap(),
        plan_what_if(&open(6.0), &PlanRequest::default()).unwrap(),
    );
    assert_eq!(a.inputs.control_connections, b.inputs.control_connections);
    assert_eq!(a.predictions, b.predictions);
    // 6 sessions a second of 20 files each, replayed for the 10 s minimum at least.
    assert!(
        b.predictor.pasvs_per_replication > 1_000,
        "{}",
        b.predictor.pasvs_per_replication
    );
}

#[test]
fn a_what_if_replays_about_fifty_thousand_pasvs_and_five_sessions() {
    // 200 connections at 400 PASV/s: 125 s of them (less the ramp-up and the gaps between
    // sessions: 44,000 here).
    let r = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    let n = r.predictor.pasvs_per_replication;
    assert!((40_000..=55_000).contains(&n), "{n}");
    // One connection of 300 files at 0.5 s each: 150 s per session, five of them (750 s,
    // past the 600 s the PASV count alone would take), 2 PASVs a second.
    let mut long = what_if(50);
    long.profile.load.sessions = 1;
    long.profile.session.parallel_connections = 1;
    long.profile.session.files_per_session = 300;
    let r = plan_what_if(&long, &PlanRequest::default()).unwrap();
    let n = r.predictor.pasvs_per_replication;
    assert!((1_450..=1_500).contains(&n), "{n}");
}

#[test]
fn a_given_release_lag_is_planned_in_microseconds() {
    let req = PlanRequest {
        release_lag: Some(Duration::from_millis(2)),
        ..PlanRequest::default()
    };
    let r = plan_what_if(&what_if(5), &req).unwrap();
    assert_eq!(r.server.release_lag_us.value, 2000.0);
    assert!(matches!(r.server.release_lag_us.source, Source::Given));
}

#[test]
fn the_four_minute_rule_is_flagged_only_where_it_overstates() {
    // Ports held 60 s each: 200 connections make 3.3 PASVs a second, 800 ports by the
    // 4-minute rule against the 200-odd the load holds at once: not the rule's overstatement.
    let r = plan_what_if(&what_if(60_000), &PlanRequest::default()).unwrap();
    assert!(r.model_width > 200, "{}", r.model_width);
    assert!(
        !r.warnings.iter().any(|w| w.contains("4-minute rule")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_rate_is_a_count_over_its_time() {
    assert_eq!(per_second(1_000, 0.5), 2_000.0);
    assert_eq!(per_second(3, 4.0), 0.75);
    assert_eq!(per_second(5, 0.0), 0.0);
}

#[test]
fn bursts_are_named_only_past_twice_the_analytic_width() {
    // The in-step runs of `from_run` plan 4 ports where the analytic model names 2 (no
    // warning) and 6 against 2 (a warning); these are the rule's edges.
    assert!(!beyond_the_analytic_model(2, 4));
    assert!(beyond_the_analytic_model(2, 5));
    assert!(!beyond_the_analytic_model(5, 10));
    assert!(!beyond_the_analytic_model(5, 8));
    assert!(beyond_the_analytic_model(5, 11));
    assert!(beyond_the_analytic_model(1, 3));
    assert!(!beyond_the_analytic_model(40, 44));
}
