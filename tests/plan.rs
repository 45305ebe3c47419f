//! `plan` end to end: record a run on the embedded server, plan from its directory, and check
//! the recommendation against the fitted load and the model (not against literals).

use ftpswarm::model::{self, PortPickPolicy};
use ftpswarm::plan::{self, observed::ObservedError, PlanError, PlanRequest};
use ftpswarm::profile::{HumanDuration, PortRange, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_from_a_recorded_run_is_consistent_with_the_fit_and_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let overrides = ProfileOverrides {
        duration: Some(HumanDuration(Duration::from_secs(3))),
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
    // The fitted load is λ·E[H]; at the observed concurrency the target is λ times the hold
    // planned with (the server's own listening count when it shows longer holds than the
    // client saw).
    assert!((fit.offered_erlangs - fit.pasv_per_s * fit.mean_hold_s).abs() < 1e-9);
    let (hold, _) = plan::effective_hold(&fit);
    assert!(hold >= fit.mean_hold_s);
    let expected = fit.pasv_per_s * hold;
    assert!(
        (rec.target.offered_erlangs - expected).abs() <= 1e-6 * expected.max(1.0),
        "{} vs {expected}",
        rec.target.offered_erlangs
    );
    // λ in the busiest window cannot be below the run's average rate.
    assert!(fit.pasv_per_s >= report.summary.passive.grants as f64 / report.summary.elapsed_s * 0.99);
    // Little's law holds for a steady closed-model run.
    assert!(fit.little_disagreement < 0.25, "{fit:?}");
    // The embedded server is libunftp: 9 random tries.
    let policy = PortPickPolicy::LIBUNFTP;
    let a = rec.target.offered_erlangs;
    let target = rec.inputs.gos_per_pasv;
    assert!(model::blocking(policy, a, rec.model_width) <= target);
    if rec.ceiling != Some(rec.model_width) {
        assert!(
            model::blocking(policy, a, rec.model_width - 1) > target,
            "not the smallest width"
        );
    }
    let range: PortRange = rec.range.parse().unwrap();
    assert_eq!(range.width(), rec.width);
    // The run's own range start is kept when it avoids the ephemeral ranges.
    assert_eq!(range.min, 31300);

    // Twice the users, twice the load; the width grows.
    let users = (rec.inputs.users * 2.0).ceil() as u32;
    let bigger = plan::plan_from_run(
        &dir,
        &PlanRequest {
            users: Some(users),
            ..PlanRequest::default()
        },
    )
    .unwrap();
    let ratio = bigger.target.offered_erlangs / rec.target.offered_erlangs;
    assert!((ratio - f64::from(users) / rec.inputs.users).abs() < 1e-9, "{ratio}");
    assert!(bigger.width >= rec.width);
    assert!(plan::render(&rec).contains(&rec.range));
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
