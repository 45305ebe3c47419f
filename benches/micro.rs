//! Micro-benchmarks of the hot paths, per operation: reply parsing (every server line),
//! the live counters a transfer moves and the timeline samples, the passive-port ledger,
//! and the simulator `plan` searches widths with. `cargo bench --bench micro`; the README's
//! "Micro-benchmarks" table lists what one run on the 2-core CI machine gave.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ftpswarm::ftp::reply::{parse_pasv_reply, LineAssembler, ReplyParser};
use ftpswarm::observe::live::LiveCounters;
use ftpswarm::observe::timeline::TimelineRow;
use ftpswarm::sim::server::{ServerKind, ServerModel};
use ftpswarm::sim::synthetic::{trace_for, ProfileLoad};
use ftpswarm::sim::Predictor;
use ftpswarm::summary::ledger::{Grant, LedgerFold};
use std::hint::black_box;

/// What a server sends for one RETR with PASV, as our client reads it.
const EXCHANGE: &[u8] = b"227 Entering Passive Mode (127,0,0,1,117,48).\r\n\
150 Opening BINARY mode data connection for f-000123.bin (65536 bytes).\r\n\
226 Transfer complete.\r\n";

/// A multi-line reply (FEAT), the parser's slower path.
const FEAT: &[u8] =
    b"211-Features:\r\n EPSV\r\n PASV\r\n SIZE\r\n MDTM\r\n REST STREAM\r\n UTF8\r\n AUTH TLS\r\n211 End\r\n";

fn parse_all(input: &[u8]) -> usize {
    let mut lines = LineAssembler::new();
    let mut parser = ReplyParser::new();
    let (mut rest, mut replies) = (input, 0);
    while !rest.is_empty() {
        let Ok((used, complete)) = lines.push(rest) else { break };
        rest = &rest[used..];
        if complete {
            let line = String::from_utf8_lossy(lines.line()).into_owned();
            if let Ok(Some(_)) = parser.feed(&line) {
                replies += 1;
            }
            lines.clear();
        }
        if used == 0 {
            break;
        }
    }
    replies
}

fn replies(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    g.throughput(Throughput::Elements(3));
    g.bench_function("PASV + RETR exchange (3 replies)", |b| {
        b.iter(|| parse_all(black_box(EXCHANGE)))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("FEAT (one 9-line reply)", |b| b.iter(|| parse_all(black_box(FEAT))));
    g.bench_function("227 address", |b| {
        b.iter(|| parse_pasv_reply(black_box("Entering Passive Mode (127,0,0,1,117,48).")))
    });
    g.finish();
}

fn live_counters(c: &mut Criterion) {
    let live = LiveCounters::default();
    let mut g = c.benchmark_group("live counters");
    g.throughput(Throughput::Elements(1));
    let mut port = 30000u16;
    g.bench_function("one transfer: grant, connect, release", |b| {
        b.iter(|| {
            port = if port == 30099 { 30000 } else { port + 1 };
            live.granted(black_box(port), Some(true));
            live.data_connected();
            live.released(port, true);
        })
    });
    g.bench_function("one timeline row", |b| {
        b.iter(|| TimelineRow::capture(black_box(1_000_000), &live, None, None, None))
    });
    g.finish();
}

/// `n` grants over 100 ports, 40 connections cycling every 10 ms, each holding 0.5 ms
/// before its transfer of 2 ms: the shape of a busy embedded-server run.
fn grants(n: u64) -> Vec<Grant> {
    (0..n)
        .map(|i| {
            let t = (i / 40) * 10_000 + (i % 40) * 250;
            Grant {
                port: 30000 + ((i * 7919) % 100) as u16,
                t_granted_us: t,
                t_connected_us: Some(t + 500),
                t_released_us: t + 2_500,
                t_server_open_until_us: Some(t + 600),
                t_transfer_started_us: Some(t + 600),
            }
        })
        .collect()
}

fn ledger(c: &mut Criterion) {
    const N: u64 = 100_000;
    let all = grants(N);
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.bench_function("fold 100k grants in time order", |b| {
        b.iter_batched(
            LedgerFold::default,
            |mut fold| {
                for (i, grant) in all.iter().enumerate() {
                    fold.add(grant);
                    if i % 1_000 == 0 {
                        fold.advance(grant.t_granted_us);
                    }
                }
                fold.finish(100)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn simulator(c: &mut Criterion) {
    let load = ProfileLoad {
        sessions: Some(40),
        rate: 0.0,
        parallel: 2,
        files: 10,
        hold_s: 0.0005,
        per_file_s: 0.002,
        think_s: 0.01,
        login_s: 0.05,
        ramp_up_s: 1.0,
        duration_s: 10.0,
    };
    let trace = trace_for(&load, 1);
    let pasvs = trace.attempts.len() as u64;
    let mut g = c.benchmark_group("simulator");
    g.throughput(Throughput::Elements(pasvs));
    g.sample_size(20);
    for kind in [ServerKind::Vsftpd, ServerKind::Proftpd] {
        let predictor = Predictor::new(&trace, ServerModel::known(kind), 1.0, 1, 7);
        g.bench_function(format!("replay at 20 ports, {}", kind.name()), |b| {
            b.iter(|| predictor.counts(black_box(20)))
        });
    }
    g.finish();
}

criterion_group!(benches, replies, live_counters, ledger, simulator);
criterion_main!(benches);
