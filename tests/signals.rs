//! The signal matrix: a run stopped by SIGINT, SIGTERM or SIGKILL one second in keeps what it
//! did, in whole rows, and `plan` and `report` work on what it left.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ftpswarm() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftpswarm"));
    cmd.env_remove("FTPSWARM_PASSWORD");
    cmd
}

fn rows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Starts a 30 s run, sends `signal` one second after its first transfer row reached the
/// disk, and returns the run directory and how the process ended.
fn run_and_signal(signal: &str, pasv: &str, tmp: &Path) -> (std::path::PathBuf, std::process::Output) {
    let out = tmp.join(format!("run-{signal}"));
    let child = ftpswarm()
        .args(["run", "--duration", "30s", "--pasv-range", pasv, "-q", "-o"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Rows reach the disk within half a second of happening, so the first one shows the load
    // has begun (a first build of the embedded server can take a while on a busy machine).
    while rows(&out.join("events.csv")) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no transfer row on disk after 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap()
        .success());
    let waited = Instant::now();
    let o = child.wait_with_output().unwrap();
    // Drain (3 s by default) plus writing; never the 30 s the run asked for.
    assert!(
        waited.elapsed() < Duration::from_secs(15),
        "{signal}: took {:?} to stop",
        waited.elapsed()
    );
    (out, o)
}

fn assert_whole_rows(dir: &Path, signal: &str) {
    for f in ["events.csv", "connections.csv", "sessions.csv", "timeline.csv"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{signal}: {f}: {e}"));
        assert!(!text.is_empty(), "{signal}: {f} is empty (not even a header)");
        assert!(
            text.ends_with('\n'),
            "{signal}: {f} ends mid-row: {:?}",
            &text[text.len().saturating_sub(80)..]
        );
        let header_fields = text.lines().next().unwrap().split(',').count();
        for (i, line) in text.lines().enumerate() {
            // No field of these files holds a comma except a quoted detail, so count loosely:
            // a cut row would have fewer fields than the header.
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            let rec = reader.records().next().unwrap().unwrap();
            assert_eq!(
                rec.len(),
                header_fields,
                "{signal}: {f} row {} is not whole: {line}",
                i + 1
            );
        }
    }
}

fn assert_plan_and_report_work(dir: &Path, signal: &str) {
    let plan = ftpswarm().args(["plan", "--run"]).arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(plan.status.success(), "{signal}: plan failed: {stderr}");
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("partial"),
        "{signal}: plan does not say the run is partial:\n{stdout}"
    );
    let report = ftpswarm().args(["report", "--run"]).arg(dir).output().unwrap();
    assert!(
        report.status.success(),
        "{signal}: report failed: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("partial"),
        "{signal}: report.md does not say the run is partial"
    );
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn sigint_and_sigterm_drain_write_everything_and_exit_130() {
    let tmp = tempfile::tempdir().unwrap();
    for (signal, pasv) in [("INT", "30700-30749"), ("TERM", "30750-30799")] {
        let (dir, o) = run_and_signal(signal, pasv, tmp.path());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{signal}: stderr: {stderr}");
        assert!(stderr.contains(&format!("SIG{signal}")), "{signal}: {stderr}");
        let m = manifest(&dir);
        assert_eq!(m["status"], "partial", "{signal}");
        assert!(
            m["partial_reason"].as_str().unwrap().contains("interrupted"),
            "{signal}: {m}"
        );
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        let ok = summary["transfers"]["ok"].as_u64().unwrap();
        assert!(ok > 0, "{signal}");
        assert_eq!(
            ok as usize,
            rows_with_outcome(&dir, "ok"),
            "{signal}: summary and events.csv disagree"
        );
        assert_whole_rows(&dir, signal);
        assert_plan_and_report_work(&dir, signal);
    }
}

fn rows_with_outcome(dir: &Path, outcome: &str) -> usize {
    let mut r = csv::Reader::from_path(dir.join("events.csv")).unwrap();
    let col = r.headers().unwrap().iter().position(|h| h == "outcome").unwrap();
    r.records()
        .filter(|x| x.as_ref().unwrap().get(col) == Some(outcome))
        .count()
}

#[test]
fn sigkill_leaves_whole_rows_up_to_the_last_half_second_and_a_plannable_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, o) = run_and_signal("KILL", "30800-30849", tmp.path());
    assert_eq!(o.status.code(), None, "killed by a signal");
    let m = manifest(&dir);
    assert_eq!(m["status"], "partial");
    assert!(!dir.join("summary.json").exists());
    // About a second of load happened; rows are on disk within half a second of happening.
    assert!(
        rows(&dir.join("events.csv")) > 50,
        "{} rows",
        rows(&dir.join("events.csv"))
    );
    assert!(rows(&dir.join("sessions.csv")) > 5);
    assert!(rows(&dir.join("timeline.csv")) > 5);
    assert_whole_rows(&dir, "KILL");
    assert_plan_and_report_work(&dir, "KILL");
}

#[test]
fn a_run_cut_mid_row_by_an_older_version_is_read_up_to_the_cut_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = ftpswarm()
        .args([
            "run",
            "--sessions",
            "4",
            "--duration",
            "1s",
            "--pasv-range",
            "30850-30899",
            "-q",
            "--no-report",
            "-o",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // What SIGTERM did before: events.csv cut mid-row, no summary.
    let events = std::fs::read(dir.join("events.csv")).unwrap();
    let cut = events.len() - 17;
    std::fs::write(dir.join("events.csv"), &events[..cut]).unwrap();
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let plan = ftpswarm().args(["plan", "--run"]).arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(plan.status.success(), "{stderr}");
    assert!(stderr.contains("last row is cut"), "{stderr}");
    assert!(String::from_utf8_lossy(&plan.stdout).contains("rebuilt from the CSVs"));
}

#[test]
fn ctrl_c_during_the_preflight_exits_130_at_once() {
    // A server that accepts and never greets: the preflight waits on it (its timeout is 10 s).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let child = ftpswarm()
        .args(["run", "-q", "--target", &format!("ftp://u@127.0.0.1:{port}"), "-o"])
        .arg(tmp.path().join("run"))
        .env("FTPSWARM_PASSWORD", "pw")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let signalled = Instant::now();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "took {:?}",
        signalled.elapsed()
    );
    assert!(stderr.contains("interrupted during the preflight"), "{stderr}");
}

/// Runs the binary under `bash -c` with `limits` applied first (ulimit), returning its output.
fn run_limited(limits: &str, args: &str, out: &Path) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{limits}; exec '{}' run -q --no-report -o '{}' {args}",
            env!("CARGO_BIN_EXE_ftpswarm"),
            out.display()
        ))
        .env_remove("FTPSWARM_PASSWORD")
        .output()
        .unwrap();
    (o, started.elapsed())
}

#[test]
fn a_full_disk_stops_the_run_promptly_and_marks_it_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // A file-size limit of 200 KiB fails writes beyond it (EFBIG) as a full disk would
    // (ENOSPC); SIGXFSZ ignored, as the limit would otherwise kill the process.
    let (o, took) = run_limited(
        "ulimit -f 400; trap '' XFSZ",
        "--duration 30s --pasv-range 30900-30949",
        &out,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(took < Duration::from_secs(15), "noticed only after {took:?}: {stderr}");
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains("incomplete") || stderr.contains("cannot write"),
        "{stderr}"
    );
    let m = manifest(&out);
    assert_eq!(m["status"], "partial");
    assert!(
        m["partial_reason"]
            .as_str()
            .unwrap()
            .contains("could not all be written"),
        "{m}"
    );
    assert_whole_rows(&out, "full disk");
}

#[test]
fn running_out_of_file_descriptors_is_our_failure_and_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // An open model: its bound (max_in_flight sessions) is only a bound, so a hard limit below
    // it is a warning and the run starts (a closed model needing more stops before any
    // traffic: tests/cli.rs); 500 sessions a second then run out of 96 descriptors.
    let (o, took) = run_limited(
        "ulimit -n 96",
        "--duration 30s --rate 500 --pasv-range 30950-30999",
        &out,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("open-file limit"), "{stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {stderr}");
    let m = manifest(&out);
    assert_eq!(m["status"], "partial", "{stderr}");
    let reason = m["partial_reason"].as_str().unwrap();
    assert!(reason.contains("the load machine, not the server"), "{reason}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["failures"]["local_error"].as_u64().unwrap_or(0) > 0,
        "{}",
        summary["failures"]
    );
}
