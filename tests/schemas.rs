//! The run directory's JSON files have schemas checked in under `schemas/`, generated from the
//! types that write them. This test fails when a type changes and its schema was not
//! regenerated (`FTPSWARM_BLESS=1 cargo test --test schemas` writes them), and it checks
//! what a real run writes against the checked-in files.

mod common;

use ftpswarm::profile::{HumanDuration, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn generated() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("manifest", schemars::schema_for!(ftpswarm::rundir::Manifest)),
        ("summary", schemars::schema_for!(ftpswarm::summary::Summary)),
        ("recommendation", schemars::schema_for!(ftpswarm::plan::Recommendation)),
        ("sweep", schemars::schema_for!(ftpswarm::sweep::SweepResult)),
        ("probe", schemars::schema_for!(ftpswarm::probe::Fingerprint)),
    ]
}

#[test]
fn the_checked_in_schemas_are_the_types_schemas() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let bless = std::env::var_os("FTPSWARM_BLESS").is_some();
    for (name, schema) in generated() {
        let path = dir.join(format!("{name}.schema.json"));
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} differs from the type it describes; if the change is meant, bump SCHEMA_VERSION where readers need it \
             and run `FTPSWARM_BLESS=1 cargo test --test schemas`",
            path.display()
        );
    }
}

/// The schemas are not decoration: a run's files follow them, and a file that breaks them is
/// caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_json_files_follow_the_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let opts = RunOptions {
        out: Some(dir.clone()),
        overrides: ProfileOverrides {
            duration: Some(HumanDuration(Duration::from_secs(1))),
            ..ProfileOverrides::default()
        },
        report: false,
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    let (_, write_error) =
        ftpswarm::plan::plan_and_store(&report.dir, &ftpswarm::plan::PlanRequest::default()).unwrap();
    assert!(write_error.is_none(), "{write_error:?}");
    for (file, schema) in [
        (ftpswarm::rundir::MANIFEST, "manifest"),
        (ftpswarm::rundir::SUMMARY, "summary"),
        (ftpswarm::rundir::RECOMMENDATION, "recommendation"),
    ] {
        common::schemas::check(&dir.join(file), schema);
    }
    // A manifest with a status the schema does not allow is refused.
    let path = dir.join(ftpswarm::rundir::MANIFEST);
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["status"] = "finished".into();
    std::fs::write(&path, manifest.to_string()).unwrap();
    let refused = std::panic::catch_unwind(|| common::schemas::check(&path, "manifest"));
    assert!(
        refused.is_err(),
        "a manifest with status \"finished\" passed its schema"
    );
}
