use super::*;
use crate::event::{Outcome, PassiveCommand, Record, TransferCommand, TransferEvent};
use crate::rundir::RecordWriter;
use crate::summary::synthetic::SyntheticRun;

pub(crate) const S: u64 = 1_000_000;

/// A run of every kind of attempt a plan reads, written as `run` writes it. Connections
/// log in 30 µs after they open: 1 over [0, 10 s), 2 over [1.5 s, 10 s), 3 over [20 s, 30 s).
/// PASVs (227 after 100 µs, data connected at 150, first byte 300, done 2000, closed 2010,
/// 226 at 2100, unless said otherwise), in file order:
/// - 1.0 s RETR on 30001, 1.1 s STOR on 30002, 1.2–1.4 s RETR on 30003–30005;
/// - 1.5 s refused (425, no port); 1.6 s granted 40000, outside the range, never connected;
/// - 1.7 s RETR on 30007 whose data close was not recorded (released at its 226);
/// - RETRs at 5, 7, 9 s (connection 1) and 25 s (connection 3).
pub(crate) fn every_kind_of_attempt(dir: &Path) {
    let range = PortRange { min: 30000, max: 30099 };
    let mut run = SyntheticRun::create(dir, range, "220 (vsFTPd 3.0.3)").unwrap();
    let retr = |id, t, port| SyntheticRun::transfer(id, 0, t, port, TransferCommand::Retr, 1);
    let edit = |r: Record, f: &dyn Fn(&mut TransferEvent)| match r {
        Record::Transfer(mut e) => {
            f(&mut e);
            Record::Transfer(e)
        }
        other => other,
    };
    let mut records = vec![
        retr(1, S, 30001),
        SyntheticRun::transfer(1, 1, S + S / 10, 30002, TransferCommand::Stor, 1),
    ];
    records.extend((2..5).map(|i| retr(1, S + i * S / 10, 30001 + i as u16)));
    records.push(edit(retr(2, S + S / 2, 0), &|e| {
        e.pasv_port = None;
        e.in_range = None;
        e.pasv_reply_code = Some(425);
        (e.t_data_connected_us, e.t_first_byte_us, e.t_transfer_done_us) = (None, None, None);
        (e.t_data_closed_us, e.t_final_reply_us) = (None, None);
        e.outcome = Outcome::Failed(FailureClass::PasvRejected);
    }));
    records.push(edit(retr(2, S + 6 * S / 10, 40000), &|e| {
        e.in_range = Some(false);
        (e.t_data_connected_us, e.t_first_byte_us, e.t_transfer_done_us) = (None, None, None);
        (e.t_data_closed_us, e.t_final_reply_us) = (None, None);
        e.outcome = Outcome::Failed(FailureClass::PasvOutOfRange);
    }));
    records.push(edit(retr(2, S + 7 * S / 10, 30007), &|e| e.t_data_closed_us = None));
    records.extend([5, 7, 9].map(|t| retr(1, t * S, 30010)));
    records.push(retr(3, 25 * S, 30011));
    records.extend(SyntheticRun::connection(1, 0, 10 * S));
    records.extend(SyntheticRun::connection(2, S + S / 2, 10 * S));
    records.extend(SyntheticRun::connection(3, 20 * S, 30 * S));
    for r in &records {
        run.put(r).unwrap();
    }
    run.finish().unwrap();
}

#[test]
fn every_kind_of_attempt_is_read_as_the_plan_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    every_kind_of_attempt(tmp.path());
    let obs = read(tmp.path()).unwrap();
    assert_eq!(obs.attempts.len(), 12);
    assert_eq!(obs.grants(), 11, "all but the refused one were granted a port");
    let ok = |t: u64, port: u16, is_stor: bool| Attempt {
        is_stor,
        port: Some(port),
        t_sent_us: t,
        t_granted_us: Some(t + 100),
        t_connected_us: Some(t + 150),
        t_first_byte_us: Some(t + 300),
        t_transfer_done_us: Some(t + 2000),
        t_released_us: Some(t + 2010),
        blocked: false,
        in_range: Some(true),
    };
    assert_eq!(obs.attempts[0], ok(S, 30001, false));
    assert_eq!(obs.attempts[1], ok(S + S / 10, 30002, true));
    assert_eq!(obs.attempts[4], ok(S + 4 * S / 10, 30005, false));
    let refused = Attempt {
        is_stor: false,
        port: None,
        t_sent_us: S + S / 2,
        t_granted_us: None,
        t_connected_us: None,
        t_first_byte_us: None,
        t_transfer_done_us: None,
        t_released_us: None,
        blocked: true,
        in_range: None,
    };
    assert_eq!(obs.attempts[5], refused);
    let t = S + 6 * S / 10;
    let outside = Attempt {
        port: Some(40000),
        t_sent_us: t,
        t_granted_us: Some(t + 100),
        t_released_us: Some(t + 100),
        in_range: Some(false),
        ..refused
    };
    assert_eq!(obs.attempts[6], outside, "an unused grant is released when it was made");
    let t = S + 7 * S / 10;
    assert_eq!(
        obs.attempts[7],
        Attempt {
            t_released_us: Some(t + 2100),
            ..ok(t, 30007, false)
        },
        "without a data close, at the final reply"
    );
    assert_eq!(obs.attempts[11], ok(25 * S, 30011, false));
    let logged_in = |from, to| LoggedIn {
        from_us: from + 30,
        to_us: to,
    };
    assert_eq!(
        obs.connections,
        [
            logged_in(0, 10 * S),
            logged_in(S + S / 2, 10 * S),
            logged_in(20 * S, 30 * S)
        ]
    );

    // A stretch keeps the PASVs sent in [from, to) and the connections logged in during it.
    let within = read_within(tmp.path(), Some((S, S + S / 2))).unwrap();
    let sent: Vec<u64> = within.attempts.iter().map(|a| a.t_sent_us).collect();
    assert_eq!(sent, (0..5).map(|i| S + i * S / 10).collect::<Vec<_>>());
    assert_eq!(within.connections, [logged_in(0, 10 * S)]);
    let within = read_within(tmp.path(), Some((10 * S, 11 * S))).unwrap();
    assert!(within.attempts.is_empty());
    assert_eq!(within.connections.len(), 2, "the two that end as it starts");
    let within = read_within(tmp.path(), Some((10 * S + 1, 20 * S + 30))).unwrap();
    assert!(within.connections.is_empty(), "ended before, or logged in as it ends");

    // A partial run is read, and says so.
    let mut manifest: Manifest = rundir::read_json(&tmp.path().join(rundir::MANIFEST)).unwrap();
    assert!(read_head(tmp.path()).unwrap().warnings.is_empty());
    manifest.status = RunStatus::Partial;
    manifest.partial_reason = Some("interrupted by Ctrl-C".into());
    rundir::write_json(&tmp.path().join(rundir::MANIFEST), &manifest).unwrap();
    assert_eq!(
        read_head(tmp.path()).unwrap().warnings,
        ["the run is partial (interrupted by Ctrl-C); planning from what it recorded"]
    );

    // The busiest second is 1.0–2.0 s (eight PASVs); a stretch as long as the run is none.
    assert_eq!(busiest_span(tmp.path(), S).unwrap(), Some((S, 2 * S)));
    assert_eq!(busiest_span(tmp.path(), 24 * S).unwrap(), None);
    assert_eq!(busiest_span(tmp.path(), 24 * S - 1).unwrap(), Some((S, 25 * S - 1)));
}

fn transfer(i: u64, port: Option<u16>, in_range: Option<bool>) -> Record {
    let t = i * 1000;
    Record::Transfer(TransferEvent {
        session_id: i,
        connection_id: i,
        seq_in_session: 0,
        command: TransferCommand::Retr,
        passive_command: PassiveCommand::Pasv,
        path: "size-1.bin".into(),
        pasv_port: port,
        in_range,
        t_pasv_sent_us: t,
        t_pasv_reply_us: Some(t + 100),
        t_data_connected_us: port.map(|_| t + 150),
        t_data_tls_us: None,
        t_first_byte_us: port.map(|_| t + 300),
        t_transfer_done_us: port.map(|_| t + 2000),
        t_data_closed_us: port.map(|_| t + 2010 + i % 7),
        t_final_reply_us: port.map(|_| t + 2100),
        bytes: 1,
        expected_bytes: Some(1),
        pasv_reply_code: Some(if port.is_some() { 227 } else { 425 }),
        transfer_reply_code: port.map(|_| 150),
        final_reply_code: port.map(|_| 226),
        outcome: if port.is_some() {
            Outcome::Ok
        } else {
            Outcome::Failed(FailureClass::PasvRejected)
        },
        detail: String::new(),
    })
}

/// A send time that is not a number is an error naming the file and its line.
#[test]
fn a_bad_send_time_is_reported_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    every_kind_of_attempt(tmp.path());
    let path = tmp.path().join(rundir::EVENTS);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let sent = lines[0].split(',').position(|h| h == "t_pasv_sent_us").unwrap();
    let mut fields: Vec<&str> = lines[2].split(',').collect();
    fields[sent] = "soon";
    lines[2] = fields.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let e = match read(tmp.path()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("read a send time of \"soon\""),
    };
    assert!(e.contains("row 3: t_pasv_sent_us is not a number"), "{e}");
    assert!(e.contains(rundir::EVENTS), "{e}");
}

/// The load a plan scales from: the closed model's sessions, else the timeline's peak,
/// else the sessions the run completed.
#[test]
fn a_runs_concurrency_is_its_configured_sessions_or_their_peak() {
    let tmp = tempfile::tempdir().unwrap();
    every_kind_of_attempt(tmp.path());
    let mut obs = read(tmp.path()).unwrap();
    let completed = obs.head.summary.sessions.completed as f64;
    assert_eq!(completed, 3.0);
    let row = |t_us: u64, sessions_active: i64| TimelineRow {
        sessions_active,
        ..TimelineRow::empty(t_us)
    };
    obs.head.timeline = vec![row(1, 5), row(2, 12), row(3, -20)];
    let mut profile = Profile::default();
    profile.load.model = crate::profile::LoadModel::Closed;
    profile.load.sessions = 8;
    obs.head.profile = Some(profile.clone());
    assert_eq!(run_sessions(&obs), 8.0, "closed: as configured, whatever the peak");
    profile.load.model = crate::profile::LoadModel::Open;
    obs.head.profile = Some(profile);
    assert_eq!(run_sessions(&obs), 12.0, "open: the peak");
    obs.head.profile = None;
    assert_eq!(run_sessions(&obs), 12.0, "unknown: the peak");
    obs.head.timeline = vec![row(1, 0), row(2, -3)];
    assert_eq!(run_sessions(&obs), completed, "no peak: the sessions completed");
    obs.head.summary.sessions.completed = 0;
    assert_eq!(run_sessions(&obs), 1.0, "at least one");
}

/// The host's busy share over a stretch: the mean of its rows' shares, edges included,
/// from five rows that have one.
#[test]
fn the_hosts_busy_share_is_the_mean_of_five_rows_or_more() {
    let row = |t_us: u64, host_cpu_busy: Option<f64>| TimelineRow {
        host_cpu_busy,
        ..TimelineRow::empty(t_us)
    };
    let rows = vec![
        row(99, Some(1.0)),
        row(100, Some(0.2)),
        row(150, None),
        row(160, Some(0.4)),
        row(170, Some(0.6)),
        row(180, Some(0.3)),
        row(200, Some(0.5)),
        row(201, Some(1.0)),
    ];
    let busy = host_cpu_busy(&rows, Some((100, 200))).unwrap_or(f64::NAN);
    assert!((busy - 0.4).abs() < 1e-12, "{busy}");
    let all = host_cpu_busy(&rows, None).unwrap_or(f64::NAN);
    assert!((all - 4.0 / 7.0).abs() < 1e-12, "{all}");
    assert_eq!(host_cpu_busy(&rows, Some((101, 200))), None, "four rows");
    assert_eq!(host_cpu_busy(&rows, Some((100, 199))), None, "four rows");
    assert_eq!(host_cpu_busy(&[], None), None);
}

#[test]
fn busiest_window_finds_the_densest_stretch() {
    let t = [0, 10, 20, 500, 505, 506, 507, 1000];
    assert_eq!(busiest_window(&t, 100), (500, 4));
    assert_eq!(busiest_window(&t, 2000), (0, 8));
    assert_eq!(busiest_window(&[7], 5), (7, 1));
}

/// The chart's sample is bounded, evenly spread over the run, and its extent covers every
/// grant, including those it does not draw.
#[test]
fn a_grant_sample_is_bounded_and_spans_the_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = RecordWriter::create(tmp.path()).unwrap();
    let n = 10_000u64;
    for i in 0..n {
        let record = match i {
            // Refused PASVs are not grants.
            _ if i % 10 == 3 => transfer(i, None, None),
            // One grant outside the range: known to the chart whether it is drawn or not.
            4_001 => transfer(i, Some(40_000), Some(false)),
            _ => transfer(i, Some(30_000 + (i % 50) as u16 + 5), Some(true)),
        };
        writer.write(&record).unwrap();
    }
    writer.sync().unwrap();
    let grants = n as usize - n as usize / 10;
    let sample = sample_grants(tmp.path(), 1_000).unwrap();
    assert_eq!(sample.total, grants);
    assert_eq!(sample.step, grants.div_ceil(1_000));
    assert!(sample.grants.len() <= 1_000, "{} drawn", sample.grants.len());
    assert!(sample.grants.len() >= 1_000 - 1, "{} drawn", sample.grants.len());
    assert!(sample.grants.iter().all(|a| a.port.is_some()));
    let last = (n - 1) * 1000 + 2010 + (n - 1) % 7;
    assert_eq!(sample.t_end_us, last);
    assert_eq!(sample.ports_inside, Some((30_005, 30_054)));
    assert!(sample.any_outside);
    // Spread over the run: the drawn grants reach its first and last hundredth.
    let first = sample.grants.iter().map(|a| a.t_sent_us).min().unwrap();
    let drawn_last = sample.grants.iter().map(|a| a.t_sent_us).max().unwrap();
    assert!(
        first < n * 1000 / 100 && drawn_last > n * 1000 * 99 / 100,
        "{first}..{drawn_last}"
    );

    let all = sample_grants(tmp.path(), usize::MAX).unwrap();
    assert_eq!((all.step, all.grants.len()), (1, grants));
}
