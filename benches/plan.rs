//! `plan` over a synthetic run directory of 1,000,000 transfer events (target: under 2 s on
//! a 2-core machine). Run with `cargo bench --bench plan`; pass a count to change the size.

use ftpswarm::event::TransferCommand;
use ftpswarm::plan::{plan_from_run, PlanRequest};
use ftpswarm::rundir;
use ftpswarm::summary::synthetic::SyntheticRun;
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
    let mut run = SyntheticRun::create(dir, range, "220 (vsFTPd 3.0.3)").expect("run directory");
    // 200 connections, each doing one 2 ms transfer every 10 ms: 20,000 PASV/s.
    let connections = 200u64;
    for i in 0..events {
        let conn = i % connections;
        let t = (i / connections) * 10_000 + conn * 37;
        let port = 30000 + ((i * 7919) % 1000) as u16;
        let command = if i % 3 == 0 {
            TransferCommand::Stor
        } else {
            TransferCommand::Retr
        };
        let r = SyntheticRun::transfer(conn + 1, (i / connections) as u32, t, port, command, 4096);
        run.put(&r).expect("write");
    }
    let end = events / connections * 10_000 + 10_000;
    for c in 0..connections {
        for r in SyntheticRun::connection(c + 1, 0, end) {
            run.put(&r).expect("write");
        }
    }
    run.finish().expect("summary");
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
