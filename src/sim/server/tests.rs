use super::*;

#[test]
fn greetings_name_their_servers() {
    let ours = format!("220 {}", crate::server::GREETING);
    let cases = [
        ("220 (vsFTPd 3.0.3)", ServerKind::Vsftpd),
        ("220 ProFTPD Server (ProFTPD) [127.0.0.1]", ServerKind::Proftpd),
        (
            "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\n220-You are user number 1 of 5 allowed.",
            ServerKind::PureFtpd,
        ),
        ("220 pyftpdlib 2.2.0 ready.", ServerKind::Pyftpdlib),
        ("220 Welcome to unFTP", ServerKind::Libunftp),
        (ours.as_str(), ServerKind::Embedded),
        // Pure-FTPd with its banner replaced by a fortune (-F) still counts its users.
        (
            "220-You are user number 3 of 50 allowed.\n220 bye",
            ServerKind::PureFtpd,
        ),
        ("220 Microsoft FTP Service", ServerKind::Unknown),
    ];
    for (greeting, kind) in cases {
        assert_eq!(ServerKind::from_greeting(greeting), kind, "{greeting}");
    }
}

#[test]
fn a_bind_stalls_the_whole_one_loop_server_and_no_other() {
    // 300 downloads/s for 60 s on 4 ports: 4,500 TIME_WAITs a port, 0.2 µs each.
    let stall = |kind| ServerModel::known(kind).bind_stall_us(4, 300.0, 60.0);
    assert!((stall(ServerKind::Pyftpdlib) - 900.0).abs() < 1e-9);
    // A process or thread per session stalls only its own session; the embedded server binds
    // on a thread of its own.
    for kind in [
        ServerKind::Embedded,
        ServerKind::Vsftpd,
        ServerKind::Proftpd,
        ServerKind::PureFtpd,
        ServerKind::Libunftp,
    ] {
        assert_eq!(stall(kind), 0.0, "{kind:?}");
    }
    let stalls = |kind| {
        ServerModel::known(kind)
            .inputs()
            .into_iter()
            .find(|(name, _, _)| *name == "bind stall")
            .map(|(_, what, _)| what)
    };
    assert_eq!(stalls(ServerKind::Embedded), None);
    assert!(stalls(ServerKind::Pyftpdlib).is_some_and(|w| w.contains("every session")));
}

#[test]
fn pure_ftpd_admits_half_the_width() {
    // Read off Pure-FTPd 1.0.50's greeting: "of 1 allowed" at 2 and 3 ports, 5 at 10 and 11.
    let a = Admission::HalfTheWidth;
    assert_eq!(
        (a.cap(1), a.cap(2), a.cap(3), a.cap(10), a.cap(11)),
        (None, Some(1), Some(1), Some(5), Some(5))
    );
    assert_eq!(Admission::Unlimited.cap(4), None);
    assert_eq!(Admission::Fixed(7).cap(100), Some(7));
}

#[test]
fn time_waits_stretch_the_race_window_on_narrow_ranges() {
    let m = ServerModel::known(ServerKind::Proftpd);
    let base = m.collision_window_us.value;
    // No downloads, no TIME_WAITs: the base window whatever the width.
    assert_eq!(m.window_at(10, 0.0, TIME_WAIT_S), base);
    // 400 downloads/s on 100 ports for a minute or more: 240 TIME_WAITs a port, twelve
    // times 20: the window is 1 + 240 / 20 = 13 times the base. Linux
    // keeps them 60 s, so a longer load has no more.
    assert!((m.window_at(100, 400.0, TIME_WAIT_S) / base - 13.0).abs() < 1e-9);
    assert_eq!(m.window_at(100, 400.0, 600.0), m.window_at(100, 400.0, TIME_WAIT_S));
    // Ten seconds into the load, a sixth of them: 1 + 40 / 20.
    assert!((m.window_at(100, 400.0, 10.0) / base - 3.0).abs() < 1e-9);
    assert!(m.window_at(16, 400.0, TIME_WAIT_S) > m.window_at(32, 400.0, TIME_WAIT_S));
    // Servers that cannot race have no window.
    assert!(!ServerModel::known(ServerKind::Vsftpd).races());
    assert!(ServerModel::known(ServerKind::PureFtpd).races());
}

#[test]
fn the_unknown_server_gets_the_longest_hold_and_says_it_assumed_it() {
    let m = ServerModel::known(ServerKind::Unknown);
    let longest = [
        HoldEnd::DataConnected,
        HoldEnd::TransferCommand,
        HoldEnd::DataClosed,
        HoldEnd::FinalReply,
        HoldEnd::NextCommand,
    ]
    .into_iter()
    .max_by_key(|h| h.rank());
    assert_eq!(Some(m.hold_end.value), longest);
    assert!(m.inputs().iter().all(|(_, _, s)| s.is_assumed()));
}
