use super::*;
use crate::event::{ConnectionRecord, Outcome, PassiveCommand, SessionRecord, TransferEvent};

fn transfer(port: u16, granted: u64, connected: Option<u64>, closed: Option<u64>, outcome: Outcome) -> Record {
    Record::Transfer(TransferEvent {
        session_id: 1,
        connection_id: 1,
        seq_in_session: 0,
        command: TransferCommand::Retr,
        passive_command: PassiveCommand::Pasv,
        path: "size-10.bin".into(),
        pasv_port: Some(port),
        in_range: Some(port < 30010),
        t_pasv_sent_us: granted - 100,
        t_pasv_reply_us: Some(granted),
        t_data_connected_us: connected,
        t_data_tls_us: None,
        t_first_byte_us: connected.map(|c| c + 10),
        t_transfer_done_us: closed,
        t_data_closed_us: closed,
        t_final_reply_us: closed.map(|c| c + 50),
        bytes: if connected.is_some() { 10 } else { 0 },
        expected_bytes: Some(10),
        pasv_reply_code: Some(227),
        transfer_reply_code: connected.map(|_| 150),
        final_reply_code: closed.map(|_| 226),
        outcome,
        detail: match outcome {
            Outcome::Ok => String::new(),
            Outcome::Failed(c) => format!("{c} happened"),
            Outcome::Interrupted => "cut".into(),
        },
    })
}

#[test]
fn concurrency_ports_and_failures_from_a_hand_made_stream() {
    // Data connections [1000,2000], [1500,2500], [2000,3000]: they touch at 2000, where the
    // closing counts first, so the peak is 2. Ports are held from the grant: 30001 for
    // [900,2000] and again for [1900,3000], 30002 for [1400,2500], and an abandoned grant of
    // zero length at 1950. Three grants overlap at 1900, but two of them are one port, 30001:
    // the range is 2 ports short, not 3.
    let records = vec![
        transfer(30001, 900, Some(1000), Some(2000), Outcome::Ok),
        transfer(30002, 1400, Some(1500), Some(2500), Outcome::Ok),
        transfer(30001, 1900, Some(2000), Some(3000), Outcome::Ok),
        transfer(30050, 1950, None, None, Outcome::Failed(FailureClass::PasvOutOfRange)),
    ];
    let mut acc = Accumulator::new(None);
    for r in &records {
        acc.add(r);
    }
    let s = acc.finish();
    assert_eq!(s.passive.grants, 4);
    assert_eq!(s.passive.distinct_ports, 3);
    assert_eq!((s.passive.min_port, s.passive.max_port), (Some(30001), Some(30050)));
    assert_eq!(s.passive.out_of_range, 1);
    assert_eq!(s.passive.peak_data_connections, 2);
    assert_eq!(s.passive.peak_ports_held, 2);
    assert_eq!(s.transfers.attempted, 4);
    assert_eq!(s.transfers.ok, 3);
    assert_eq!(s.failures.get("pasv_out_of_range"), Some(&1));
    assert_eq!(
        s.failure_examples["pasv_out_of_range"],
        vec!["pasv_out_of_range happened".to_string()]
    );
    // The last record ends at 3050 µs (final reply of the third transfer).
    assert_eq!(s.elapsed_s, 0.00305);
    assert_eq!(s.transfers.bytes, 30);
    let pasv = &s.latency_us["pasv"];
    assert_eq!((pasv.count, pasv.p50_us, pasv.max_us), (4, 100, 100));
    let transfer = &s.latency_us["transfer"];
    assert_eq!((transfer.count, transfer.max_us), (3, 1000));
}

#[test]
fn order_of_records_does_not_change_the_summary() {
    let mut records = [
        transfer(30001, 900, Some(1000), Some(2000), Outcome::Ok),
        transfer(
            30003,
            1400,
            Some(1500),
            Some(2500),
            Outcome::Failed(FailureClass::TransferAborted),
        ),
        transfer(30002, 1900, Some(2000), Some(3000), Outcome::Ok),
    ];
    let forward = {
        let mut a = Accumulator::new(None);
        records.iter().for_each(|r| a.add(r));
        a.finish()
    };
    records.reverse();
    let backward = {
        let mut a = Accumulator::new(None);
        records.iter().for_each(|r| a.add(r));
        a.finish()
    };
    assert_eq!(forward, backward);
}

#[test]
fn folding_behind_a_watermark_gives_the_same_summary_and_holds_only_what_is_in_flight() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Ten thousand transfers on 8 ports, a few of them long; some never connect, some are
    // re-granted while open. They arrive in completion order, as the collector sees them.
    let mut records: Vec<(u64, u64, Record)> = (0..10_000u64)
        .map(|i| {
            let granted = 1_000 + i * 50 + rng.random_range(0..40);
            let long = rng.random_bool(0.01);
            let connected = rng.random_bool(0.95).then(|| granted + rng.random_range(0..200));
            let closed = connected.map(|c| {
                c + if long {
                    rng.random_range(0..50_000)
                } else {
                    rng.random_range(0..2_000)
                }
            });
            let port = 30000 + rng.random_range(0..8);
            let r = transfer(port, granted, connected, closed, Outcome::Ok);
            (record_end_us(&r), granted - 100, r)
        })
        .collect();
    records.sort_by_key(|(end, _, _)| *end);
    let batch = {
        let mut a = Accumulator::new(None);
        records.iter().for_each(|(_, _, r)| a.add(r));
        a.finish()
    };
    // What is still to come started no earlier than the minimum over the rest.
    let mut still_to_come = vec![u64::MAX; records.len() + 1];
    for i in (0..records.len()).rev() {
        still_to_come[i] = still_to_come[i + 1].min(records[i].1);
    }
    let mut streamed = Accumulator::new(None);
    let mut most_waiting = 0;
    for (i, (_, _, r)) in records.iter().enumerate() {
        streamed.add(r);
        if i % 7 == 0 {
            streamed.advance(still_to_come[i + 1]);
        }
        most_waiting = most_waiting.max(streamed.waiting());
    }
    assert_eq!(streamed.finish(), batch);
    assert!(batch.ledger.regranted_while_open > 0, "the case exercises the ledger");
    assert!(
        most_waiting < 1_500,
        "{most_waiting} of 10,000 transfers were held back"
    );
}

#[test]
fn connection_failures_count_once() {
    let failed_login = ConnectionRecord {
        session_id: 1,
        connection_id: 1,
        t_connect_start_us: 0,
        t_connected_us: Some(100),
        t_greeting_us: Some(200),
        t_tls_us: None,
        t_login_done_us: None,
        t_closed_us: 300,
        transfers_ok: 0,
        transfers_failed: 0,
        outcome: Outcome::Failed(FailureClass::LoginFailed),
        detail: "Login incorrect.".into(),
    };
    // Lost after login: its failure was already counted on the transfer that lost it.
    let lost_later = ConnectionRecord {
        connection_id: 2,
        t_login_done_us: Some(250),
        outcome: Outcome::Failed(FailureClass::Timeout),
        ..failed_login.clone()
    };
    let session = SessionRecord {
        session_id: 1,
        t_intended_start_us: 0,
        t_start_us: 5,
        t_login_done_us: None,
        t_end_us: 400,
        connections: 2,
        files_planned: 3,
        files_ok: 0,
        files_failed: 0,
        files_not_attempted: 3,
        bytes: 0,
        outcome: Outcome::Failed(FailureClass::LoginFailed),
        detail: "Login incorrect.".into(),
    };
    let mut a = Accumulator::new(None);
    for r in [
        Record::Connection(failed_login),
        Record::Connection(lost_later),
        Record::Session(session),
    ] {
        a.add(&r);
    }
    let s = a.finish();
    assert_eq!(s.failures.len(), 1);
    assert_eq!(s.failures["login_failed"], 1);
    assert_eq!((s.connections.opened, s.connections.failed), (2, 1));
    assert_eq!(
        (s.sessions.completed, s.sessions.failed, s.sessions.files_not_attempted),
        (1, 1, 3)
    );
    assert_eq!(s.latency_us["session"].max_us, 400);
    assert_eq!(s.latency_us["connect"].count, 2);
    assert!(!s.latency_us.contains_key("pasv"));
}

#[test]
fn empty_run_gives_an_empty_but_valid_summary() {
    let s = Accumulator::new(None).finish();
    assert_eq!(s.transfers.attempted, 0);
    assert_eq!(s.transfers_per_s, 0.0);
    assert!(s.latency_us.is_empty());
    let text = render(&s, Some("30000-30099"));
    assert!(text.contains("failures     none"), "{text}");
}

fn connects_taking(us: &[u64]) -> Summary {
    let mut a = Accumulator::new(None);
    for (i, &took) in us.iter().enumerate() {
        a.add(&Record::Connection(ConnectionRecord {
            session_id: i as u64 + 1,
            connection_id: i as u64 + 1,
            t_connect_start_us: 0,
            t_connected_us: Some(took),
            t_greeting_us: Some(took + 100),
            t_tls_us: None,
            t_login_done_us: Some(took + 200),
            t_closed_us: took + 300,
            transfers_ok: 0,
            transfers_failed: 0,
            outcome: Outcome::OK,
            detail: String::new(),
        }));
    }
    a.finish()
}

#[test]
fn connects_stepping_to_1_s_and_3_s_are_named_syn_retransmits() {
    // What 1,000 sessions started at once against pyftpdlib's backlog looked like: most
    // connects fast, steps at 1 s and 3 s, nothing in between.
    let mut took = vec![300; 600];
    took.extend(std::iter::repeat_n(1_016_000, 300));
    took.extend(std::iter::repeat_n(3_020_000, 100));
    let s = connects_taking(&took);
    let syn = s
        .syn_retransmits
        .unwrap_or_else(|| panic!("no finding: {:?}", s.latency_us["connect"]));
    assert_eq!(
        (syn.after_1s, syn.after_3s, syn.just_below_1s, syn.connects),
        (300, 100, 0, 1_000)
    );
    let text = super::render(&s, None);
    assert!(
        text.contains("finding      300 of 1000 connects took about 1 s and 100 about 3 s"),
        "{text}"
    );
    assert!(text.contains("listen backlog"), "{text}");

    // A slow server's smooth tail is no finding, however slow.
    let smooth: Vec<u64> = (0..1_000).map(|i| 300 + i * 2_000).collect();
    assert_eq!(connects_taking(&smooth).syn_retransmits, None);
    // Nor is a fast run, nor one SYN lost on a real network, nor a few in a large run.
    assert_eq!(connects_taking(&[300; 100]).syn_retransmits, None);
    let mut one_lost = vec![300; 100];
    one_lost.push(1_100_000);
    assert_eq!(connects_taking(&one_lost).syn_retransmits, None);
    let mut few = vec![300; 10_000];
    few.extend([1_020_000; 40]);
    assert_eq!(connects_taking(&few).syn_retransmits, None);
    // Connects right at 1 s (loopback retransmits finish at 1.000-1.004 s) count once, past it.
    let mut edge = vec![300; 100];
    edge.extend([1_000_000; 20]);
    let syn = connects_taking(&edge).syn_retransmits;
    assert_eq!(syn.map(|s| (s.after_1s, s.just_below_1s)), Some((20, 0)));
    // The summary of a run without the finding writes no field (older readers see no change).
    let json = serde_json::to_string(&connects_taking(&[300; 10])).unwrap_or_default();
    assert!(!json.contains("syn_retransmits"), "{json}");
}
