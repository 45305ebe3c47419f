use super::*;

#[test]
fn rows_round_trip_through_csv() {
    let live = LiveCounters::default();
    live.granted(30001, Some(false));
    live.failure(FailureClass::PasvOutOfRange);
    let a = TimelineRow::capture(100, &live, None, None, None);
    let b = TimelineRow::capture(
        200,
        &live,
        Some(SocketCounts {
            listen: 1,
            established: 2,
            time_wait: Some(3),
            other: 0,
        }),
        Some(ListenerAverage {
            mean: 2.125,
            samples: 32,
        }),
        Some(0.5),
    );
    // Live counts without a TIME_WAIT reading keep that one field unknown.
    let c = TimelineRow::capture(
        300,
        &live,
        Some(SocketCounts {
            listen: 1,
            established: 0,
            time_wait: None,
            other: 0,
        }),
        None,
        None,
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut w = csv::Writer::from_path(tmp.path().join(TIMELINE)).unwrap();
    w.write_record(columns()).unwrap();
    for row in [&a, &b, &c] {
        w.write_record(row.to_record()).unwrap();
    }
    w.flush().unwrap();
    let back = read_timeline(tmp.path()).unwrap();
    assert_eq!(back, vec![a, b, c]);
    assert_eq!(back[0].ports_held, 1);
    assert_eq!(back[0].out_of_range_total, 1);
    let i = FailureClass::ALL
        .iter()
        .position(|c| *c == FailureClass::PasvOutOfRange)
        .unwrap();
    assert_eq!(back[0].failures_total[i], 1);
}

#[test]
fn listener_counts_average_per_row_and_survive_a_failed_dump() {
    let mut l = ListenerSampler::default();
    let refused = || Err(std::io::Error::other("interrupted"));
    for n in [2, 4, 3] {
        assert_eq!(l.sample(|| Ok(n)), LISTENER_SAMPLE_INTERVAL);
    }
    // A dump that fails is skipped, not counted as nothing held.
    l.sample(refused);
    assert_eq!(l.take(), Some(ListenerAverage { mean: 3.0, samples: 3 }));
    assert_eq!(l.take(), None, "each row starts afresh");
    // Once dumps have worked, failures never stop the counting, even right after a row.
    for _ in 0..5 {
        l.sample(refused);
    }
    l.sample(|| Ok(1));
    assert_eq!(l.take(), Some(ListenerAverage { mean: 1.0, samples: 1 }));
    assert_eq!(l.dumps, 10);

    // A kernel that refuses LISTEN-only dumps from the start is given up on after three.
    let mut never = ListenerSampler::default();
    for _ in 0..3 {
        never.sample(refused);
    }
    assert_eq!(never.sample(|| Ok(1)), Duration::from_millis(20));
    assert_eq!(never.take(), None);

    // Dumps that cost more than 1% of the interval in CPU stretch it.
    let mut slow = ListenerSampler::default();
    let wait = slow.sample(|| {
        let spin = cpu_time::ThreadTime::now();
        while spin.elapsed() < Duration::from_millis(2) {
            std::hint::black_box(0u64);
        }
        Ok(0)
    });
    assert!(wait >= Duration::from_millis(100), "{wait:?}");
    // A dump that waited 50 ms (the thread preempted on a busy host) cost next to no CPU: the
    // interval stays near its 5 ms, where pricing the wait would have made it 5 s.
    let mut preempted = ListenerSampler::default();
    let wait = preempted.sample(|| {
        std::thread::sleep(Duration::from_millis(50));
        Ok(0)
    });
    assert!(wait < Duration::from_millis(100), "{wait:?}");
}

#[test]
fn timelines_without_the_listener_columns_still_read() {
    // As written before the fast listener counts: their two columns, the host's and the
    // server's CPU absent.
    let tmp = tempfile::tempdir().unwrap();
    let live = LiveCounters::default();
    let row = TimelineRow::capture(100, &live, None, None, None);
    let cols = columns();
    let old = cols.len() - LISTENER_COLUMNS.len() - 2;
    let mut w = csv::Writer::from_path(tmp.path().join(TIMELINE)).unwrap();
    w.write_record(&cols[..old]).unwrap();
    w.write_record(&row.to_record()[..old]).unwrap();
    w.flush().unwrap();
    assert_eq!(read_timeline(tmp.path()).unwrap(), vec![row.clone()]);
    // A mean that is not a count is an error naming the column.
    let mut w = csv::Writer::from_path(tmp.path().join(TIMELINE)).unwrap();
    w.write_record(&cols).unwrap();
    let mut bad = row.to_record();
    let n = bad.len();
    bad[n - 4] = "-1".into();
    bad[n - 3] = "3".into();
    w.write_record(&bad).unwrap();
    w.flush().unwrap();
    let e = read_timeline(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("srv_listen_mean") && e.contains("row 2"), "{e}");
}

/// A timeline of one row, written as the sampler writes it.
fn write_one_row(dir: &std::path::Path, record: &[String]) {
    let mut w = csv::Writer::from_path(dir.join(TIMELINE)).unwrap();
    w.write_record(columns()).unwrap();
    w.write_record(record).unwrap();
    w.flush().unwrap();
}

#[test]
fn the_hosts_busy_share_is_written_read_back_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let live = LiveCounters::default();
    let row = TimelineRow::capture(100, &live, None, None, Some(0.375));
    write_one_row(tmp.path(), &row.to_record());
    assert_eq!(read_timeline(tmp.path()).unwrap(), vec![row.clone()]);
    let mut bad = row.to_record();
    let n = bad.len();
    bad[n - 2] = "1.5".into();
    write_one_row(tmp.path(), &bad);
    let e = read_timeline(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("host_cpu_busy") && e.contains("row 2"), "{e}");

    // The server's cores: more than one is a number (a threaded server), a negative one not.
    let mut server = row.clone();
    server.server_cpu_cores = Some(1.25);
    write_one_row(tmp.path(), &server.to_record());
    assert_eq!(read_timeline(tmp.path()).unwrap(), vec![server.clone()]);
    let mut bad = server.to_record();
    bad[n - 1] = "-0.5".into();
    write_one_row(tmp.path(), &bad);
    let e = read_timeline(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("server_cpu_cores") && e.contains("row 2"), "{e}");

    // Live: a busy loop on one core shows up as at least a share of the host.
    let mut host = HostCpu::default();
    assert_eq!(host.busy_since(), None, "nothing to compare with yet");
    let until = Instant::now() + Duration::from_millis(300);
    let mut x = 0u64;
    while Instant::now() < until {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy = host.busy_since().expect("300 ms move the counters");
    assert!(busy >= 0.8 / cores && busy <= 1.0, "{busy} on {cores} cores");
}

#[test]
fn sockstat_time_wait_count() {
    let text = "sockets: used 15\nTCP: inuse 6 orphan 0 tw 50317 alloc 6 mem 0\nUDP: inuse 0 mem 0\n";
    assert_eq!(parse_sockstat_tw(text), Some(50317));
    assert_eq!(parse_sockstat_tw("TCP: inuse 6\n"), None);
    assert_eq!(parse_sockstat_tw("garbage"), None);
}

#[test]
fn a_light_process_still_gets_its_share_of_one_core() {
    let Some(ten_s_ago) = Instant::now().checked_sub(Duration::from_secs(10)) else {
        return; // a monotonic clock not yet 10 s old: nothing to test against
    };
    // Hardly any CPU spent since now: the allowance is 1% of the 10 s the sampler has run.
    let idle = cpu_time::ProcessTime::try_now().ok();
    assert!(within(ten_s_ago, idle, Duration::from_millis(99), 0.01));
    assert!(!within(ten_s_ago, idle, Duration::from_millis(101), 0.01));
    // With no CPU clock at all, the wall time still counts.
    assert!(within(ten_s_ago, None, Duration::from_millis(49), 0.005));
    assert!(!within(ten_s_ago, None, Duration::from_millis(51), 0.005));
    // A sampler just started has no allowance yet.
    assert!(!within(Instant::now(), idle, Duration::from_millis(1), 0.01));
}

#[test]
fn sees_a_listening_socket_in_range() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let counts = sample_sockets(PortRange { min: port, max: port }).expect("procfs readable on Linux");
    assert_eq!(counts.listen, 1);
    drop(l);
    let counts = sample_sockets(PortRange { min: port, max: port }).unwrap();
    assert_eq!(counts.listen, 0);
}
