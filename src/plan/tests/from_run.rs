//! Plans made from run directories: synthetic runs written as `run` writes them, read back
//! through `prepare_run` and `plan_from_run`.

use super::*;

/// Rewrites a field of a run's manifest, as another run would have recorded it.
fn edit_manifest(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(crate::rundir::MANIFEST);
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
}

/// A server that hands a port out again while our upload on it still runs (the ledger's
/// release at accept): two STORs on 30001, the second granted 500 µs after the first, whose
/// upload goes on until 2 ms.
fn regranted_while_open(dir: &std::path::Path, greeting: &str) {
    use crate::summary::synthetic::SyntheticRun;
    let mut run = SyntheticRun::create(dir, PortRange { min: 30000, max: 30099 }, greeting).unwrap();
    let s = crate::plan::observed::tests::S;
    let mut records = vec![
        SyntheticRun::transfer(1, 0, s, 30001, crate::event::TransferCommand::Stor, 1),
        SyntheticRun::transfer(2, 0, s + 500, 30001, crate::event::TransferCommand::Stor, 1),
    ];
    records.extend(SyntheticRun::connection(1, 0, 2 * s));
    records.extend(SyntheticRun::connection(2, 0, 2 * s));
    for r in &records {
        run.put(r).unwrap();
    }
    run.finish().unwrap();
}

#[test]
fn a_run_is_planned_for_the_load_asked() {
    let tmp = tempfile::tempdir().unwrap();
    crate::plan::observed::tests::every_kind_of_attempt(tmp.path());
    // The default profile's 4 sessions, here with 2 connections each.
    edit_manifest(tmp.path(), |m| {
        m["profile"]["session"]["parallel_connections"] = 2.into()
    });
    let plain = prepare_run(tmp.path(), &PlanRequest::default()).unwrap();
    let i = &plain.inputs;
    assert_eq!(
        (i.users, i.parallel, i.files_per_session, plain.trace_files),
        (4.0, 2, 5, 5)
    );
    assert_eq!(
        (i.control_connections, i.run_control_connections, i.scale),
        (8.0, 8.0, 1.0)
    );
    let Some(fit) = plain.fit.as_ref() else {
        panic!("a run is planned with its fit")
    };
    assert!((plain.analytic.target.pasv_per_s - fit.pasv_per_s).abs() < 1e-12);
    let req = PlanRequest {
        users: Some(10),
        parallel: Some(3),
        growth: 1.5,
        files: Some(7),
        ..PlanRequest::default()
    };
    let asked = prepare_run(tmp.path(), &req).unwrap();
    let i = &asked.inputs;
    assert_eq!(
        (i.users, i.parallel, i.files_per_session, asked.trace_files),
        (10.0, 3, 7, 5)
    );
    // 10 users × 3 connections × 1.5 growth, on a run of 4 × 2.
    assert_eq!((i.control_connections, i.run_control_connections), (45.0, 8.0));
    assert!((i.scale - 45.0 / 8.0).abs() < 1e-12, "{}", i.scale);
    // The busiest window's PASV rate per connection of the run, at the target's connections.
    let per_connection = fit.pasv_per_s / 8.0;
    assert!((asked.analytic.target.pasv_per_s - per_connection * 45.0).abs() < 1e-9);
}

#[test]
fn where_the_run_went_is_read_from_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    crate::plan::observed::tests::every_kind_of_attempt(tmp.path());
    let plain = prepare_run(tmp.path(), &PlanRequest::default()).unwrap();
    assert_eq!(
        (plain.control_port, plain.preferred_start, plain.held_by_others),
        (21, Some(30000), 0)
    );
    // No listeners counted on the range: the host's CPU and TIME_WAIT cap are not the
    // server's to plan with.
    assert_eq!((plain.trace.host_cpu_busy, plain.trace.time_wait_cap), (None, None));
    edit_manifest(tmp.path(), |m| {
        m["target"] = "ftp://synthetic@127.0.0.1:2121".into();
        m["sockets_before_load"] =
            serde_json::json!({"listen": 2, "established": 3, "time_wait": 0, "host_time_wait_cap": 5000});
    });
    let req = PlanRequest {
        range_start: Some(40000),
        ..PlanRequest::default()
    };
    let other = prepare_run(tmp.path(), &req).unwrap();
    // Ports other processes had open on the range before the load are added to the plan.
    assert_eq!(
        (other.control_port, other.preferred_start, other.held_by_others),
        (2121, Some(40000), 5)
    );
    assert_eq!(other.trace.time_wait_cap, None);
    let r = plan_from_run(tmp.path(), &req).unwrap();
    assert_eq!(r.width, r.model_width + 5);
    assert_eq!(r.range.parse::<PortRange>().map(|p| p.width()).ok(), Some(r.width));
    // The embedded server's control port was a free one picked for the run: 21 for the firewall.
    edit_manifest(tmp.path(), |m| m["embedded_server"] = true.into());
    assert_eq!(prepare_run(tmp.path(), &req).unwrap().control_port, 21);
}

#[test]
fn an_unknown_server_that_regrants_ports_in_use_is_planned_as_freeing_them_at_accept() {
    let unknown = |s: &Setup| s.warnings.iter().any(|w| w.contains("not one ftpswarm knows"));
    let tmp = tempfile::tempdir().unwrap();
    regranted_while_open(tmp.path(), "220 Welcome");
    let s = prepare_run(tmp.path(), &PlanRequest::default()).unwrap();
    assert_eq!(s.model.kind, ServerKind::Unknown);
    assert!(unknown(&s), "{:?}", s.warnings);
    assert_eq!(s.model.hold_end.value, HoldEnd::DataConnected);
    assert!(!s.model.hold_end.source.is_assumed(), "{:?}", s.model.hold_end.source);
    // A server ftpswarm knows keeps its known hold, whatever the ledger saw.
    let tmp = tempfile::tempdir().unwrap();
    regranted_while_open(tmp.path(), "220 (vsFTPd 3.0.3)");
    let vsftpd = prepare_run(tmp.path(), &PlanRequest::default()).unwrap();
    assert!(!unknown(&vsftpd), "{:?}", vsftpd.warnings);
    assert_eq!(vsftpd.model.hold_end, ServerModel::known(ServerKind::Vsftpd).hold_end);
    // An unknown server the ledger could not judge keeps the assumed (longest) hold.
    let tmp = tempfile::tempdir().unwrap();
    crate::plan::observed::tests::every_kind_of_attempt(tmp.path());
    edit_manifest(tmp.path(), |m| m["server_greeting"] = "220 Welcome".into());
    let undecided = prepare_run(tmp.path(), &PlanRequest::default()).unwrap();
    assert!(unknown(&undecided));
    assert!(undecided.model.hold_end.source.is_assumed());
    assert_eq!(
        undecided.model.hold_end,
        ServerModel::known(ServerKind::Unknown).hold_end
    );
}

#[test]
fn the_servers_listener_count_sets_the_hold_only_when_clearly_longer() {
    let tmp = tempfile::tempdir().unwrap();
    crate::plan::observed::tests::every_kind_of_attempt(tmp.path());
    let Some(mut fit) = prepare_run(tmp.path(), &PlanRequest::default()).unwrap().fit else {
        panic!("a run is planned with its fit")
    };
    (fit.pasv_per_s, fit.offered_erlangs, fit.mean_hold_s) = (100.0, 2.0, 0.02);
    let hold_with = |fit: &mut Fit, listening: Option<f64>| {
        fit.server_listening = listening;
        effective_hold(fit)
    };
    assert_eq!(hold_with(&mut fit, None), (0.02, None));
    // Up to 10% more than the client saw held is the same hold, seen from the other side.
    assert_eq!(hold_with(&mut fit, Some(2.1)), (0.02, None));
    assert_eq!(hold_with(&mut fit, Some(2.2)), (0.02, None));
    // More: by Little's law, 3 ports listening at 100 PASV/s are 30 ms per PASV.
    let (hold, note) = hold_with(&mut fit, Some(3.0));
    assert!((hold - 0.03).abs() < 1e-15, "{hold}");
    let note = note.unwrap_or_default();
    assert!(
        note.contains("3.00 ports listening") && note.contains("30.00 ms") && note.contains("20.00 ms"),
        "{note}"
    );
    // No PASV rate to divide by: the client's hold.
    fit.pasv_per_s = 0.0;
    assert_eq!(hold_with(&mut fit, Some(3.0)), (0.02, None));
}

#[test]
fn predictions_at_asked_widths_are_the_plans_own() {
    let tmp = tempfile::tempdir().unwrap();
    crate::plan::observed::tests::every_kind_of_attempt(tmp.path());
    let req = PlanRequest::default();
    let r = plan_from_run(tmp.path(), &req).unwrap();
    let widths = [r.model_width, r.model_width + 1];
    let p = predict_at(tmp.path(), &req, &widths).unwrap();
    assert_eq!(p.iter().map(|p| p.width).collect::<Vec<_>>(), widths);
    assert_eq!(p[0], *prediction_at(&r, r.model_width));
    assert_eq!(p[1], *prediction_at(&r, r.model_width + 1));
}

/// A run of `connections` connections, each making one PASV at every whole second from 1 s
/// to `pasvs` s, all at the same instant, on ports of their own (vsftpd's greeting).
fn in_step(connections: u64, pasvs: u64) -> Vec<crate::event::Record> {
    use crate::summary::synthetic::SyntheticRun;
    let s = crate::plan::observed::tests::S;
    let mut records = Vec::new();
    for id in 1..=connections {
        for k in 1..=pasvs {
            let port = 30000 + (id * 100 + k) as u16 % 1000;
            records.push(SyntheticRun::transfer(
                id,
                k as u32,
                k * s,
                port,
                crate::event::TransferCommand::Retr,
                1,
            ));
        }
        records.extend(SyntheticRun::connection(id, 0, (pasvs + 1) * s));
    }
    records
}

fn write_run(dir: &std::path::Path, records: &[crate::event::Record]) {
    let mut run = crate::summary::synthetic::SyntheticRun::create(
        dir,
        PortRange { min: 30000, max: 30999 },
        "220 (vsFTPd 3.0.3)",
    )
    .unwrap();
    for r in records {
        run.put(r).unwrap();
    }
    run.finish().unwrap();
}

#[test]
fn sessions_that_fail_whatever_the_width_are_reported_apart() {
    use crate::event::{FailureClass, Outcome, Record};
    let tmp = tempfile::tempdir().unwrap();
    // Four connections in step; the fourth's login failed, and its session with it.
    let mut records = in_step(3, 10);
    let s = crate::plan::observed::tests::S;
    for mut r in crate::summary::synthetic::SyntheticRun::connection(4, 0, 11 * s) {
        match &mut r {
            Record::Connection(c) => {
                c.t_login_done_us = None;
                c.outcome = Outcome::Failed(FailureClass::LoginFailed);
            }
            Record::Session(c) => {
                c.t_login_done_us = None;
                c.outcome = Outcome::Failed(FailureClass::LoginFailed);
            }
            _ => {}
        }
        records.push(r);
    }
    write_run(tmp.path(), &records);
    let r = plan_from_run(tmp.path(), &PlanRequest::default()).unwrap();
    assert!(
        (r.session_failure_otherwise - 0.25).abs() < 1e-12,
        "{}",
        r.session_failure_otherwise
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("25.00% of the run's sessions failed for reasons no range width changes")),
        "{:?}",
        r.warnings
    );
    // Without it, nothing to say.
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), &in_step(3, 10));
    let r = plan_from_run(tmp.path(), &PlanRequest::default()).unwrap();
    assert_eq!(r.session_failure_otherwise, 0.0);
    assert!(
        !r.warnings.iter().any(|w| w.contains("no range width changes")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_load_in_bursts_is_said_to_need_more_than_the_analytic_model_thinks() {
    let burst = "would recommend only";
    let tmp = tempfile::tempdir().unwrap();
    // Ten connections asking at the same instant once a second: a few hundredths of an
    // erlang on average, ten ports at once.
    write_run(tmp.path(), &in_step(10, 10));
    let r = plan_from_run(tmp.path(), &PlanRequest::default()).unwrap();
    let analytic = r.analytic.width.unwrap_or(0);
    assert!(
        analytic * 2 < r.model_width,
        "analytic {analytic}, replay {}",
        r.model_width
    );
    assert!(r.warnings.iter().any(|w| w.contains(burst)), "{:?}", r.warnings);
    // Independent sessions: the two agree, and nothing is said.
    let req = PlanRequest {
        server: Some(ServerKind::Pyftpdlib),
        ..PlanRequest::default()
    };
    let r = plan_what_if(&what_if(50), &req).unwrap();
    assert!(!r.warnings.iter().any(|w| w.contains(burst)), "{:?}", r.warnings);
}

#[test]
fn an_unsteady_load_is_said_to_break_littles_law() {
    use crate::event::{FailureClass, Outcome, Record};
    let little = "Little's law check";
    let s = crate::plan::observed::tests::S;
    // Three connections in step, and as many PASVs again refused (425, no port): the PASV
    // rate doubles while the ports held stay, so rate × hold is twice the ports held.
    let mut records = in_step(3, 10);
    for id in 1..=3u64 {
        for k in 1..=10u64 {
            let mut r = crate::summary::synthetic::SyntheticRun::transfer(
                id,
                100 + k as u32,
                k * s + 10_000,
                0,
                crate::event::TransferCommand::Retr,
                1,
            );
            if let Record::Transfer(e) = &mut r {
                (e.pasv_port, e.in_range, e.pasv_reply_code) = (None, None, Some(425));
                (e.t_data_connected_us, e.t_first_byte_us, e.t_transfer_done_us) = (None, None, None);
                (e.t_data_closed_us, e.t_final_reply_us) = (None, None);
                e.outcome = Outcome::Failed(FailureClass::PasvRejected);
            }
            records.push(r);
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), &records);
    let unsteady = prepare_run(tmp.path(), &PlanRequest::default()).unwrap();
    let Some(fit) = unsteady.fit.as_ref() else {
        panic!("a run is planned with its fit")
    };
    assert!(fit.little_disagreement > 0.5, "{}", fit.little_disagreement);
    assert!(
        unsteady.warnings.iter().any(|w| w.contains(little)),
        "{:?}",
        unsteady.warnings
    );
    // The same connections without the refusals agree with the law: nothing said.
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), &in_step(3, 10));
    let steady = prepare_run(tmp.path(), &PlanRequest::default()).unwrap();
    assert!(
        !steady.warnings.iter().any(|w| w.contains(little)),
        "{:?}",
        steady.warnings
    );
}
