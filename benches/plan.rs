//! `plan` over a synthetic run directory of 1,000,000 transfer events (target: under 2 s on
//! a 2-core machine). Run with `cargo bench --bench plan`; pass a count to change the size.

use ftpswarm::event::{
    ConnectionRecord, Outcome, PassiveCommand, Record, SessionRecord, TransferCommand, TransferEvent,
};
use ftpswarm::plan::{plan_from_run, PlanRequest};
use ftpswarm::rundir::{self, Manifest, RecordWriter, RunStatus, SCHEMA_VERSION};
use ftpswarm::summary::Accumulator;
use std::time::Instant;

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let started = Instant::now();
    let range = ftpswarm::port_range::PortRange { min: 30000, max: 30999 };
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool: "ftpswarm".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        profile: serde_json::to_value(ftpswarm::profile::Profile::default()).expect("profile"),
        target: "ftp://bench@127.0.0.1:21".into(),
        embedded_server: false,
        expected_pasv_range: Some(range),
        started_at: String::new(),
        clock_origin_unix_us: 0,
        ended_at: None,
        status: RunStatus::Complete,
        partial_reason: None,
        files: vec![],
        server_greeting: Some("220 (vsFTPd 3.0.3)".into()),
        sockets_before_load: None,
    };
    rundir::write_json(&dir.join(rundir::MANIFEST), &manifest).expect("manifest");
    let mut writer = RecordWriter::create(dir).expect("writer");
    let mut acc = Accumulator::new(Some(range));
    // 200 connections, each doing one 2 ms transfer every 10 ms: 20,000 PASV/s.
    let connections = 200u64;
    for i in 0..events {
        let conn = i % connections;
        let t = (i / connections) * 10_000 + conn * 37;
        let port = 30000 + ((i * 7919) % 1000) as u16;
        let e = TransferEvent {
            session_id: conn + 1,
            connection_id: conn + 1,
            seq_in_session: (i / connections) as u32,
            command: if i % 3 == 0 {
                TransferCommand::Stor
            } else {
                TransferCommand::Retr
            },
            passive_command: PassiveCommand::Pasv,
            path: format!("size-{}.bin", 1000 + i % 5000),
            pasv_port: Some(port),
            in_range: Some(true),
            t_pasv_sent_us: t,
            t_pasv_reply_us: Some(t + 100),
            t_data_connected_us: Some(t + 150),
            t_first_byte_us: Some(t + 300),
            t_transfer_done_us: Some(t + 2000),
            t_data_closed_us: Some(t + 2010),
            t_final_reply_us: Some(t + 2100),
            bytes: 4096,
            expected_bytes: Some(4096),
            pasv_reply_code: Some(227),
            transfer_reply_code: Some(150),
            final_reply_code: Some(226),
            outcome: Outcome::Ok,
            detail: String::new(),
        };
        let r = Record::Transfer(e);
        writer.write(&r).expect("write");
        acc.add(&r);
    }
    let end = events / connections * 10_000 + 10_000;
    for c in 0..connections {
        let conn = Record::Connection(ConnectionRecord {
            session_id: c + 1,
            connection_id: c + 1,
            t_connect_start_us: 0,
            t_connected_us: Some(10),
            t_greeting_us: Some(20),
            t_login_done_us: Some(30),
            t_closed_us: end,
            transfers_ok: 0,
            transfers_failed: 0,
            outcome: Outcome::Ok,
            detail: String::new(),
        });
        let session = Record::Session(SessionRecord {
            session_id: c + 1,
            t_intended_start_us: 0,
            t_start_us: 0,
            t_login_done_us: Some(30),
            t_end_us: end,
            connections: 1,
            files_planned: 0,
            files_ok: 0,
            files_failed: 0,
            files_not_attempted: 0,
            bytes: 0,
            outcome: Outcome::Ok,
            detail: String::new(),
        });
        for r in [conn, session] {
            writer.write(&r).expect("write");
            acc.add(&r);
        }
    }
    writer.sync().expect("sync");
    rundir::write_json(&dir.join(rundir::SUMMARY), &acc.finish()).expect("summary");
    let size = std::fs::metadata(dir.join(rundir::EVENTS))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "synthetic run: {events} events, events.csv {:.0} MB, made in {:.1} s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let mut times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let rec = plan_from_run(dir, &PlanRequest::default()).expect("plan");
        times.push(t0.elapsed().as_secs_f64());
        assert!(rec.width > 0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "plan over {events} events: best {:.3} s, median {:.3} s (3 runs)",
        times[0], times[1]
    );
}
