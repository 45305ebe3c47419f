use super::timeline::sum_on_ticks;
use super::*;
use crate::event::FailureClass;
use crate::observe::sockdiag::SocketCounts;
use crate::observe::timeline::TimelineRow;

fn row(t_us: u64, sessions: i64, grants: u64, listen: Option<u32>) -> TimelineRow {
    let mut failures_total = [0; FailureClass::ALL.len()];
    failures_total[0] = grants / 10;
    TimelineRow {
        t_us,
        sessions_active: sessions,
        control_open: sessions,
        pasv_pending: 0,
        data_open: 1,
        ports_held: 1,
        grants_total: grants,
        out_of_range_total: 0,
        transfers_total: grants,
        bytes_total: grants * 100,
        failures_total,
        server_sockets: listen.map(|listen| SocketCounts {
            listen,
            established: 0,
            time_wait: Some(0),
            other: 0,
        }),
        server_listening: None,
        host_cpu_busy: Some(0.5),
        server_cpu_cores: Some(0.8),
    }
}

#[test]
fn timelines_sum_on_ticks_and_end_with_every_shards_totals() {
    // Shard 0 from 0 to 300 ms, shard 1 from 150 ms to 550 ms (its clock 150 ms later).
    let a = vec![
        row(0, 2, 0, Some(4)),
        row(100_000, 2, 10, Some(5)),
        row(200_000, 2, 20, Some(6)),
        row(300_000, 0, 30, Some(7)),
    ];
    let b = vec![
        row(150_000, 3, 0, Some(99)),
        row(250_000, 3, 40, Some(99)),
        row(350_000, 3, 80, None),
        row(550_000, 0, 120, None),
    ];
    let merged = sum_on_ticks(&[a, b], 100_000);
    let at = |t: u64| merged.iter().find(|r| r.t_us == t).unwrap();
    assert_eq!(merged.first().unwrap().t_us, 0);
    assert_eq!(
        merged.last().unwrap().t_us,
        600_000,
        "a tick at or after every shard's last row"
    );
    // 100 ms: only shard 0 has started.
    assert_eq!((at(100_000).sessions_active, at(100_000).grants_total), (2, 10));
    // 200 ms: shard 0's 200 ms row + shard 1's 150 ms row.
    assert_eq!((at(200_000).sessions_active, at(200_000).grants_total), (5, 20));
    assert_eq!(at(200_000).failures_total[0], 2);
    // The server is one server: shard 0's view, not a sum.
    assert_eq!(at(200_000).server_sockets.map(|s| s.listen), Some(6));
    // 500 ms: shard 0 ended (its totals stay, its server view is old) and shard 1 has no view.
    assert_eq!(at(500_000).grants_total, 30 + 80);
    assert_eq!(at(500_000).server_sockets, None);
    let last = merged.last().unwrap();
    assert_eq!(
        (last.grants_total, last.transfers_total, last.bytes_total),
        (150, 150, 15_000)
    );
    assert_eq!(last.sessions_active, 0);
    assert_eq!(last.host_cpu_busy, Some(0.5));
}

#[test]
fn the_first_difference_names_the_field() {
    let a = serde_json::json!({"load": {"duration": "10s", "drain": "3s"}, "seed": 1});
    let b = serde_json::json!({"load": {"duration": "20s", "drain": "3s"}, "seed": 1});
    assert_eq!(first_difference(&a, &b, "").as_deref(), Some("load.duration"));
    assert_eq!(first_difference(&a, &a, ""), None);
    let c = serde_json::json!({"load": {"duration": "10s"}, "seed": 1});
    assert_eq!(first_difference(&a, &c, "").as_deref(), Some("load.drain"));
}

#[test]
fn shares_of_one_load_have_one_common_part_and_add_back_up() {
    let mut whole = Profile::default();
    whole.load.sessions = 7;
    whole.load.total_sessions = Some(30);
    whole.session.source_addresses = vec!["127.0.0.2-127.0.0.5".into()];
    let shards: Vec<ShardRun> = (0..3)
        .map(|index| {
            let mut p = whole.clone();
            p.load.shard = Some(Shard { index, count: 3 });
            let profile = p.shard_share().unwrap();
            ShardRun {
                dir: PathBuf::from(format!("shard-{index}")),
                manifest: manifest_for(&profile),
                shard: Shard { index, count: 3 },
                profile,
            }
        })
        .collect();
    check_shards(&shards).unwrap();
    let back = whole_profile(&shards);
    assert_eq!(back.load.sessions, 7);
    assert_eq!(back.load.total_sessions, Some(30));
    assert_eq!(back.load.shard, None);
    let mut addresses = back.session.source_addresses.clone();
    addresses.sort();
    assert_eq!(addresses, ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);

    // Another load's shard is refused, naming the field.
    let mut other = shards.into_iter().take(2).collect::<Vec<_>>();
    other[1].profile.load.duration = Some(crate::profile::HumanDuration::from_secs(99));
    let e = check_shards(&other).unwrap_err().to_string();
    assert!(e.contains("load.duration"), "{e}");
    other[1].profile.load.duration = other[0].profile.load.duration;
    other[1].shard = other[0].shard;
    let e = check_shards(&other).unwrap_err().to_string();
    assert!(e.contains("are both shard 0/3"), "{e}");
}

fn manifest_for(profile: &Profile) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        tool: "ftpswarm".into(),
        tool_version: "test".into(),
        profile: profile.clone().into(),
        target: "ftp://u@127.0.0.1:21".into(),
        embedded_server: false,
        expected_pasv_range: None,
        started_at: String::new(),
        clock_origin_unix_us: 0,
        ended_at: None,
        status: RunStatus::Complete,
        partial_reason: None,
        files: vec![],
        server_greeting: None,
        sockets_before_load: None,
        shard: profile.load.shard,
        host: None,
        merged_from: Vec::new(),
    }
}
