//! The binary's contract with a person: clear one-line errors, non-zero exits, no panics.

use std::process::{Command, Output};

fn ftpswarm(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftpswarm"));
    cmd.args(args)
        .env_remove("FTPSWARM_PASSWORD")
        .env("RUST_BACKTRACE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean_failure(out: &Output) -> String {
    let err = stderr_of(out);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("stack backtrace"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line, please: {err}");
    err
}

#[test]
fn invalid_profile_names_file_line_field_and_allowed_values() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(&p, "name = \"bad\"\n\n[load]\nsessions = 0\n").unwrap();
    let err = assert_clean_failure(&ftpswarm(&["run", "-p", p.to_str().unwrap()], &[]));
    assert!(
        err.contains("bad.toml") && err.contains("line 4") && err.contains("load.sessions"),
        "{err}"
    );
    assert!(err.contains("allowed: 1 to 100000"), "{err}");
}

#[test]
fn misspelt_field_is_reported_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("typo.toml");
    std::fs::write(&p, "[session]\nfiles_per_session = 2\nparalel_connections = 2\n").unwrap();
    let err = assert_clean_failure(&ftpswarm(&["run", "-p", p.to_str().unwrap()], &[]));
    assert!(
        err.contains("line 3") && err.contains("paralel_connections") && err.contains("parallel_connections"),
        "{err}"
    );
}

#[test]
fn a_load_needing_more_local_ports_than_an_address_has_is_refused_before_any_traffic() {
    // Every control connection goes to one server port, so each needs a local port of its
    // own: one connection more than this host's ephemeral range has.
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let bounds: Vec<u32> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let ports = bounds[1] - bounds[0] + 1;
    let sessions = (ports / 2 + 1).to_string();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let target = format!("ftp://u:secret@127.0.0.1:{}", server.local_addr().unwrap().port());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let err = assert_clean_failure(&ftpswarm(
        &[
            "run",
            "--target",
            &target,
            "--sessions",
            &sessions,
            "--parallel",
            "2",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(
        err.contains(&format!("has only {ports} ephemeral ports")) && err.contains("--source-addresses"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    match server.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the server saw a connection: {other:?}"),
    }
    assert!(!out.exists(), "no run directory for a run that never started");
}

#[test]
fn unreachable_target_is_one_clear_line() {
    // A port nothing listens on: bind one, read its number, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ftp://bob@127.0.0.1:{port}");
    let err = assert_clean_failure(&ftpswarm(&["run", "--target", &url], &[("FTPSWARM_PASSWORD", "pw")]));
    assert!(err.contains("connect_refused") && err.contains(&url), "{err}");
}

#[test]
fn missing_password_says_how_to_give_one() {
    let err = assert_clean_failure(&ftpswarm(&["run", "--target", "ftp://bob@127.0.0.1:2"], &[]));
    assert!(err.contains("FTPSWARM_PASSWORD"), "{err}");
}

#[test]
fn bad_override_names_the_flag() {
    let err = assert_clean_failure(&ftpswarm(&["run", "--parallel", "0"], &[]));
    assert!(err.starts_with("error: --parallel"), "{err}");
}

#[test]
fn a_bad_source_address_names_the_flag() {
    let err = assert_clean_failure(&ftpswarm(&["run", "--source-addresses", "127.0.0.9-127.0.0.2"], &[]));
    assert!(err.starts_with("error: --source-addresses"), "{err}");
}

#[test]
fn more_sessions_than_the_hard_open_file_limit_fail_before_any_traffic() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftpswarm"));
    cmd.args([
        "run",
        "--sessions",
        "1000",
        "--duration",
        "1s",
        "-o",
        out.to_str().unwrap(),
    ])
    .env_remove("FTPSWARM_PASSWORD");
    // SAFETY: setrlimit is async-signal-safe; lowering a limit needs no privilege.
    unsafe {
        cmd.pre_exec(|| {
            let low = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &low) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let err = assert_clean_failure(&cmd.output().unwrap());
    // 1,000 sessions × 2 connections (the quick profile) × 5 sockets (the embedded server's
    // ends too) + 64.
    for part in [
        "10064",
        "2000 control connections",
        "at most 256",
        "RLIMIT_NOFILE",
        "lower --sessions",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!out.exists(), "nothing is written before the check");
}

#[test]
fn password_in_url_never_echoed() {
    let err = assert_clean_failure(&ftpswarm(&["run", "--target", "ftp://bob:hunter2@127.0.0.1:1"], &[]));
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn default_run_writes_a_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = ftpswarm(
        &[
            "run",
            "--duration",
            "1s",
            "--pasv-range",
            "30500-30599",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr_of(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("failures     none"), "{stdout}");
    for f in [
        "manifest.json",
        "events.csv",
        "sessions.csv",
        "connections.csv",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // The recommendation printed is the one written, and the report shows the run's figures.
    let read_json = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let rec = read_json("recommendation.json");
    let (width, range) = (rec["width"].as_u64().unwrap(), rec["range"].as_str().unwrap());
    assert!(
        stdout.contains(&format!("recommendation    {width} ports: {range}")),
        "{stdout}"
    );
    let summary = read_json("summary.json");
    let grants = summary["passive"]["grants"].as_u64().unwrap();
    assert!(grants > 0);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains(&format!("**{width} ports: {range}**")), "{md}");
    assert!(md.contains(&format!("| PASV/EPSV grants | {grants} |")), "{md}");
}

#[test]
fn ctrl_c_writes_results_marks_partial_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_ftpswarm"))
        .args([
            "run",
            "--duration",
            "60s",
            "--pasv-range",
            "30600-30699",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "stderr: {}", stderr_of(&o));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "partial");
    assert!(manifest["partial_reason"].as_str().unwrap().contains("interrupted"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary["transfers"]["ok"].as_u64().unwrap() > 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("status       partial"));
}

#[test]
fn serve_runs_the_embedded_server_for_other_clients() {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftpswarm"))
        .args(["serve", "--port", "0", "--pasv", "30700-30709"])
        .env("FTPSWARM_PASSWORD", "pw")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    // "ftpswarm embedded server on ftp://ftpswarm@127.0.0.1:PORT (passive 30700-30709)"
    let addr = first
        .split('@')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut line = String::new();
    let mut expect = |code: &str, reader: &mut BufReader<std::net::TcpStream>| {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
    };
    expect("220", &mut reader);
    w.write_all(b"USER ftpswarm\r\n").unwrap();
    expect("331", &mut reader);
    w.write_all(b"PASS pw\r\n").unwrap();
    expect("230", &mut reader);
    w.write_all(b"EPSV\r\n").unwrap();
    expect("229", &mut reader);
    w.write_all(b"QUIT\r\n").unwrap();
    expect("221", &mut reader);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.starts_with("served ")), "{rest:?}");
}

#[test]
fn plan_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let err = assert_clean_failure(&ftpswarm(&["plan", "--run", tmp.path().to_str().unwrap()], &[]));
    assert!(err.contains("not a run directory"), "{err}");
    let err = assert_clean_failure(&ftpswarm(&["plan", "--what-if", "--hold", "40ms", "--gos", "1.5"], &[]));
    assert!(err.contains("--gos") && err.contains("allowed"), "{err}");
}

#[test]
fn plan_what_if_prints_a_recommendation_and_json() {
    let o = ftpswarm(
        &[
            "plan",
            "--what-if",
            "--hold",
            "40ms",
            "--users",
            "400",
            "--parallel",
            "3",
            "--files",
            "20",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr_of(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("recommendation") && text.contains("400.0 users × 3"),
        "{text}"
    );
    let o = ftpswarm(&["plan", "--what-if", "--hold", "40ms", "--json"], &[]);
    let rec: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(rec["width"].as_u64().unwrap() > 0);
    assert_eq!(rec["firewall_snippets"].as_array().unwrap().len(), 4);
}

#[test]
fn argument_errors_exit_1_on_one_line() {
    // README: "1 means bad input ...; the error is one line saying what is wrong".
    let o = ftpswarm(&["run", "--paralel", "2"], &[]);
    let err = assert_clean_failure(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: ") && err.contains("--paralel"), "{err}");
    assert!(err.contains("--parallel"), "clap's tip is kept: {err}");

    let o = ftpswarm(&["run", "--duration", "soon"], &[]);
    let err = assert_clean_failure(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--duration") && err.contains("soon"), "{err}");

    let o = ftpswarm(&[], &[]);
    assert_clean_failure(&o);
    assert_eq!(o.status.code(), Some(1));

    // Asking for help is not an error.
    let o = ftpswarm(&["run", "--help"], &[]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"));
}

#[test]
fn an_error_and_its_cause_are_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = assert_clean_failure(&ftpswarm(
        &["run", "--duration", "1s", "-q", "-o", file.to_str().unwrap()],
        &[],
    ));
    assert!(err.contains("os error"), "{err}");
    assert_eq!(err.matches("File exists").count(), 1, "{err}");
}

#[test]
fn no_colours_when_stderr_is_not_a_terminal() {
    // Logs at -vv, then a quick failure: both go to a pipe here.
    let o = ftpswarm(
        &["-vv", "run", "--target", "ftp://bob@127.0.0.1:0"],
        &[("FTPSWARM_PASSWORD", "pw")],
    );
    let err = stderr_of(&o);
    assert!(err.contains("DEBUG"), "-vv logs something: {err}");
    assert!(!err.contains('\u{1b}'), "ANSI escapes in a pipe: {err:?}");
}

#[test]
fn control_characters_from_input_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    // A path that does not exist, with an escape sequence and a bell in its name.
    let path = tmp.path().join("evil\u{1b}[31mred\u{7}.toml");
    let err = assert_clean_failure(&ftpswarm(&["run", "-p", path.to_str().unwrap()], &[]));
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("evil\\u{1b}[31mred\\u{7}.toml"), "{err}");

    // A key with a NUL and a line break in it, quoted in TOML.
    let p = tmp.path().join("keys.toml");
    std::fs::write(&p, "[load]\n\"bad\\u0000key\\nsecond\" = 1\n").unwrap();
    let err = assert_clean_failure(&ftpswarm(&["run", "-p", p.to_str().unwrap()], &[]));
    assert!(!err.contains('\0'), "{err:?}");
    assert!(err.contains("bad\\0key\\nsecond"), "{err}");

    // And a URL.
    let err = assert_clean_failure(&ftpswarm(&["run", "--target", "ftp://bob@h\u{7}ost\u{1b}:21"], &[]));
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
}

#[test]
fn a_huge_unknown_toml_key_is_not_echoed_in_full() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("huge.toml");
    let key = "k".repeat(10 * 1024 * 1024);
    std::fs::write(&p, format!("[load]\n{key} = 1\n")).unwrap();
    let err = assert_clean_failure(&ftpswarm(&["run", "-p", p.to_str().unwrap()], &[]));
    assert!(err.len() < 2_000, "{} bytes of error", err.len());
    assert!(
        err.contains("line 2") && err.contains("kkkk…"),
        "{}",
        &err[..err.len().min(300)]
    );
}

#[test]
fn port_0_is_bad_input_not_a_refusal() {
    let o = ftpswarm(
        &["run", "--target", "ftp://bob@127.0.0.1:0"],
        &[("FTPSWARM_PASSWORD", "pw")],
    );
    let err = assert_clean_failure(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("port 0") && !err.contains("connect_refused"), "{err}");
}

#[test]
fn shard_start_time_and_metrics_errors_are_one_clear_line_before_any_traffic() {
    let err = assert_clean_failure(&ftpswarm(&["run", "--shard", "4/4"], &[]));
    assert!(err.contains("--shard") && err.contains("numbered 0 to 3"), "{err}");
    let err = assert_clean_failure(&ftpswarm(&["run", "--shard", "3/4", "--sessions", "3"], &[]));
    assert!(
        err.contains("shard 3/4 would run no session") && err.contains("at most 3 shards"),
        "{err}"
    );
    let err = assert_clean_failure(&ftpswarm(&["run", "--start-at", "tomorrow"], &[]));
    assert!(err.contains("--start-at") && err.contains("RFC 3339"), "{err}");
    // A metrics address already taken fails the run before its server or load start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let err = assert_clean_failure(&ftpswarm(
        &["run", "--metrics-addr", &addr, "-o", out_dir.to_str().unwrap()],
        &[],
    ));
    assert!(err.contains("--metrics-addr") && err.contains(&addr), "{err}");
    assert!(!out_dir.exists(), "no run directory for a run that never started");
    // A profile's shard is checked like any field: file, line, field.
    let profile = tmp.path().join("shard.toml");
    std::fs::write(&profile, "[load]\nsessions = 4\nshard = \"5/2\"\n").unwrap();
    let err = assert_clean_failure(&ftpswarm(&["run", "-p", profile.to_str().unwrap()], &[]));
    assert!(
        err.contains("line 3") && err.contains("shard 5 does not exist in 2 shards"),
        "{err}"
    );
}

#[test]
fn merge_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("shard-0");
    let out = tmp.path().join("merged");
    let err = assert_clean_failure(&ftpswarm(
        &["merge", missing.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &[],
    ));
    assert!(err.contains("none of the run directories exists"), "{err}");
    let not_a_run = tmp.path().join("empty");
    std::fs::create_dir_all(&not_a_run).unwrap();
    let err = assert_clean_failure(&ftpswarm(
        &["merge", not_a_run.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &[],
    ));
    assert!(err.contains("not a run directory"), "{err}");
    assert!(!out.exists());
}
