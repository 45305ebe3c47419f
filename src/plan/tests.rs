use super::*;

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

#[test]
fn width_is_the_smallest_meeting_the_target() {
    let r = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    // 200 connections, one file per 0.5 s each: 400 PASV/s × 50 ms = 20 erlangs.
    assert!((r.target.pasv_per_s - 400.0).abs() < 1e-9, "{}", r.target.pasv_per_s);
    assert!((r.target.offered_erlangs - 20.0).abs() < 1e-9);
    let policy = PortPickPolicy::RandomTries { tries: 9 };
    let target = r.inputs.gos_per_pasv;
    assert!(model::blocking(policy, 20.0, r.model_width) <= target);
    assert!(model::blocking(policy, 20.0, r.model_width - 1) > target);
    assert_eq!(r.width, r.model_width);
    let range: PortRange = r.range.parse().unwrap();
    assert_eq!(range.width(), r.width);
    assert!(placement::ephemeral_overlaps(range).is_empty(), "{range}");
    // A session of 20 PASVs fails 1% of the time at most.
    assert!(r.session_failure <= 0.01 + 1e-12);
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
    assert!((scaled.target.offered_erlangs - base.target.offered_erlangs * 2.0 * 1.5).abs() < 1e-9);
    assert!(scaled.width > base.width);
}

#[test]
fn scanning_servers_need_fewer_ports_than_random_try_servers() {
    let random = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    let scan = plan_what_if(
        &what_if(50),
        &PlanRequest {
            pick: Some(PortPickPolicy::Scan),
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
    assert!(scan.inputs.pick_policy.contains("Engset"));
}

#[test]
fn rules_of_thumb_are_reported_with_their_predicted_failure() {
    let r = plan_what_if(&what_if(50), &PlanRequest::default()).unwrap();
    assert_eq!(r.rules_of_thumb.len(), 3);
    let per_transfer = &r.rules_of_thumb[0];
    assert_eq!(per_transfer.width, 200);
    let policy = PortPickPolicy::RandomTries { tries: 9 };
    let modelled = model::blocking(policy, 20.0, 200);
    let bound = model::random_try_fail_probability(199, 200, 9);
    assert_eq!(per_transfer.blocking_per_pasv, modelled.min(bound));
    assert_eq!(r.rules_of_thumb[2].width, 400);
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
    assert!(!render(&r).is_empty());
}

#[test]
fn a_width_capped_at_the_ceiling_never_reports_impossible_failures() {
    // Few connections and a heavy load: the unlimited-client model would predict failures that
    // 4 connections cannot cause at the ceiling width.
    let mut w = what_if(50);
    w.profile.load.sessions = 4;
    w.profile.session.parallel_connections = 1;
    w.transfer_time = Some(Duration::from_millis(1));
    let r = plan_what_if(&w, &PlanRequest::default()).unwrap();
    assert_eq!(Some(r.width), r.ceiling, "{r:?}");
    assert!(r.session_failure <= 0.01 + 1e-12, "{}", r.session_failure);
    // The bound: 3 other connections on the ceiling's width, 9 tries.
    let bound = model::random_try_fail_probability(3, r.width, 9);
    assert!(r.blocking_per_pasv <= bound + 1e-15);
}
