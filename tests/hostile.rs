//! A scripted fake FTP server that misbehaves on purpose, to check that the client classifies
//! what real servers do only sometimes: failed logins mid-run, garbage replies, a 227 naming
//! another address. Only loopback addresses are ever used.

use ftpswarm::event::{FailureClass, Outcome, TransferEvent};
use ftpswarm::profile::{parse_mix, HumanDuration, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
use ftpswarm::rundir;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, PartialEq, Default)]
enum PasvStyle {
    /// `227 Entering Passive Mode (127,0,0,1,p1,p2).`
    #[default]
    Normal,
    /// Odd spacing, no parentheses, and an address that is not ours (another loopback IP).
    OtherAddress,
    /// A 227 with no numbers in it.
    Garbage,
    /// `425` to every PASV: a storm of refusals.
    Refused,
    /// vsftpd's way of refusing: both its processes' `500 OOPS`, then the session is gone.
    OopsAndGone,
}

/// What the data phase of a LIST does.
#[derive(Clone, Copy, PartialEq, Default)]
enum DataStyle {
    #[default]
    Normal,
    /// `150`, the data connection accepted and left silent, and never a final reply.
    NeverFinal,
    /// `150`, a silent data connection, then `426` on the control connection.
    Abort426,
    /// `150`, some bytes, then the data connection reset.
    Reset,
}

/// How every connection after the preflight's first one is greeted.
#[derive(Clone, Copy, PartialEq, Default)]
enum GreetingStyle {
    #[default]
    Normal,
    Garbage,
    Full421,
    /// A two-line greeting sent one byte per TCP segment.
    ByteByByte,
}

#[derive(Clone, Copy, Default)]
struct Script {
    /// Every n-th login after the first is refused with 530 (0: never).
    refuse_login_every: u32,
    /// The refusal repeats the password it was given, as some servers do.
    echo_password: bool,
    pasv: PasvStyle,
    data: DataStyle,
    greeting: GreetingStyle,
    /// TYPE is answered with 100,000 continuation lines before its 200.
    flood: bool,
    /// TYPE is answered with one line of 1 MiB.
    long_line: bool,
    /// The control connection is closed after this many transfers (0: never).
    close_after_transfers: u32,
}

struct Fake {
    addr: SocketAddr,
    /// Stops the server: the listener and every connection close, as when it is killed.
    kill: CancellationToken,
}

async fn start_fake(script: Script) -> SocketAddr {
    start_killable(script).await.addr
}

async fn start_killable(script: Script) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let logins = Arc::new(AtomicU32::new(0));
    let connections = Arc::new(AtomicU32::new(0));
    let kill = CancellationToken::new();
    let killed = kill.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                a = listener.accept() => match a { Ok(a) => a, Err(_) => return },
                _ = killed.cancelled() => return,
            };
            let logins = logins.clone();
            let n = connections.fetch_add(1, Ordering::SeqCst);
            let killed = killed.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = serve_one(stream, script, logins, n) => {}
                    _ = killed.cancelled() => {}
                }
            });
        }
    });
    Fake { addr, kill }
}

async fn serve_one(
    stream: tokio::net::TcpStream,
    script: Script,
    logins: Arc<AtomicU32>,
    connection: u32,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    // The first connection is the preflight's: it is greeted normally so the load starts.
    match (connection, script.greeting) {
        (0, _) | (_, GreetingStyle::Normal) => w.write_all(b"220-fake server\r\n220 ready\r\n").await?,
        (_, GreetingStyle::Garbage) => w.write_all(b"\x00\xffhello? \x1b[31m\r\n").await?,
        (_, GreetingStyle::Full421) => return w.write_all(b"421 Too many users, try later\r\n").await,
        (_, GreetingStyle::ByteByByte) => {
            for b in b"220-fake server\r\n220 ready\r\n" {
                w.write_all(&[*b]).await?;
                w.flush().await?;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    let mut data: Option<TcpListener> = None;
    let mut transfers = 0u32;
    let mut password = String::new();
    while let Some(line) = lines.next_line().await? {
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "USER" => w.write_all(b"331 password please\r\n").await?,
            "PASS" => {
                password = line[4..].trim().to_string();
                let n = logins.fetch_add(1, Ordering::SeqCst);
                if script.refuse_login_every > 0 && n > 0 && n % script.refuse_login_every == 0 {
                    if script.echo_password {
                        let reply = format!("530 Login incorrect: bad password '{password}' for alice\r\n");
                        w.write_all(reply.as_bytes()).await?;
                    } else {
                        w.write_all(b"530 Login incorrect.\r\n").await?;
                    }
                } else {
                    w.write_all(b"230 in\r\n").await?;
                }
            }
            "TYPE" if script.flood && connection > 0 => {
                let mut flood = Vec::with_capacity(2_000_000);
                for i in 0..100_000 {
                    flood.extend_from_slice(format!("200-noise {i}\r\n").as_bytes());
                }
                flood.extend_from_slice(b"200 binary\r\n");
                w.write_all(&flood).await?;
            }
            "TYPE" if script.long_line && connection > 0 => {
                let mut long = b"200 ".to_vec();
                long.resize(1 << 20, b'x');
                long.extend_from_slice(b"\r\n");
                w.write_all(&long).await?;
            }
            "TYPE" => w.write_all(b"200 binary\r\n").await?,
            "NOOP" => w.write_all(b"200 still here\r\n").await?,
            "PASV" if script.pasv == PasvStyle::OopsAndGone && connection > 0 => {
                return w
                    .write_all(b"500 OOPS: vsf_sysutil_bind\r\n500 OOPS: priv_sock_get_int\r\n")
                    .await;
            }
            "PASV" if script.pasv == PasvStyle::Refused => {
                w.write_all(b"425 Can't open passive connection: no ports left\r\n")
                    .await?
            }
            "PASV" => {
                let l = TcpListener::bind("127.0.0.1:0").await?;
                let port = l.local_addr()?.port();
                let (p1, p2) = (port >> 8, port & 0xff);
                let reply = match script.pasv {
                    PasvStyle::Normal | PasvStyle::Refused | PasvStyle::OopsAndGone => {
                        format!("227 Entering Passive Mode (127,0,0,1,{p1},{p2}).\r\n")
                    }
                    PasvStyle::OtherAddress => format!("227 =127, 0,0 ,99 , {p1},{p2}\r\n"),
                    PasvStyle::Garbage => "227 Entering Passive Mode (a,b,c,d,e,f)\r\n".to_string(),
                };
                data = Some(l);
                w.write_all(reply.as_bytes()).await?;
            }
            "LIST" => match data.take() {
                Some(l) => {
                    w.write_all(b"150 here it comes\r\n").await?;
                    let (mut d, _) = l.accept().await?;
                    match script.data {
                        DataStyle::Normal => {
                            d.write_all(b"-rw-r--r-- 1 ftp ftp 3 Jan 1 00:00 a.txt\r\n").await?;
                            drop(d);
                            w.write_all(b"226-done\r\n226 really done\r\n").await?;
                        }
                        DataStyle::NeverFinal => {
                            // Hold the data connection open and say nothing, ever.
                            std::future::pending::<()>().await;
                        }
                        DataStyle::Abort426 => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            w.write_all(b"426 Connection closed; transfer aborted.\r\n").await?;
                            // The data connection stays open and silent (while the control
                            // connection goes on).
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                                drop(d);
                            });
                        }
                        DataStyle::Reset => {
                            d.write_all(b"-rw-r--r-- 1 ftp").await?;
                            let s = socket2::SockRef::from(&d);
                            s.set_linger(Some(Duration::ZERO))?;
                            drop(d);
                            w.write_all(b"426 Data connection reset.\r\n").await?;
                        }
                    }
                    transfers += 1;
                    if script.close_after_transfers > 0 && transfers >= script.close_after_transfers {
                        return Ok(());
                    }
                }
                None => w.write_all(b"425 use PASV first\r\n").await?,
            },
            "QUIT" => {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => w.write_all(b"502 not here\r\n").await?,
        }
    }
    let _ = password;
    Ok(())
}

async fn run_against(addr: SocketAddr) -> (ftpswarm::run::RunReport, Vec<TransferEvent>, tempfile::TempDir) {
    let (report, events, tmp) = run_bounded(addr, "pw").await;
    (report.unwrap(), events, tmp)
}

/// 12 sessions of 3 LISTs against the fake, with 3 s reply and idle timeouts so a fault that
/// leaves the client waiting ends within the test. Returns the run (or its error), the
/// events written, and the directory.
async fn run_bounded(
    addr: SocketAddr,
    password: &str,
) -> (
    anyhow::Result<ftpswarm::run::RunReport>,
    Vec<TransferEvent>,
    tempfile::TempDir,
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let profile = tmp.path().join("faults.toml");
    std::fs::write(
        &profile,
        "name = \"faults\"\n[timeouts]\nreply = \"3s\"\nidle = \"3s\"\n[load]\ndrain = \"1s\"\n",
    )
    .unwrap();
    let opts = RunOptions {
        profile: Some(profile),
        target: Some(format!("ftp://alice:{password}@{addr}")),
        out: Some(dir.clone()),
        overrides: ProfileOverrides {
            sessions: Some(4),
            total_sessions: Some(12),
            files_per_session: Some(3),
            parallel: Some(1),
            think_time: Some(HumanDuration::ZERO),
            duration: Some(HumanDuration(Duration::from_secs(20))),
            mix: Some(parse_mix("list=1").unwrap()),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await;
    let events = match csv::Reader::from_path(dir.join(rundir::EVENTS)) {
        Ok(mut r) => r.deserialize().map(|r| r.unwrap()).collect(),
        Err(_) => Vec::new(),
    };
    (report, events, tmp)
}

/// Every file of the run directory, as text.
fn all_outputs(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_file() {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_mid_run_are_classified_and_the_run_goes_on() {
    let addr = start_fake(Script {
        refuse_login_every: 3,
        ..Script::default()
    })
    .await;
    let (report, events, _tmp) = run_against(addr).await;
    let s = &report.summary;
    // Logins 3, 6, 9, 12 of 13 (one for the preflight) are refused.
    assert_eq!(s.failures.get("login_failed"), Some(&4), "{:?}", s.failures);
    assert_eq!(s.failure_examples["login_failed"], vec!["Login incorrect.".to_string()]);
    assert_eq!(s.sessions.completed, 12);
    assert_eq!(s.sessions.failed, 4);
    assert_eq!(s.sessions.files_not_attempted, 4 * 3);
    assert_eq!(events.len(), 8 * 3);
    assert!(events
        .iter()
        .all(|e| e.outcome == Outcome::Ok && e.final_reply_code == Some(226)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_goes_to_the_control_peer_not_the_announced_address() {
    let addr = start_fake(Script {
        pasv: PasvStyle::OtherAddress,
        ..Script::default()
    })
    .await;
    let (report, events, _tmp) = run_against(addr).await;
    // Had the client connected to 127.0.0.99, nothing would have listened there.
    assert!(
        report.summary.failures.is_empty(),
        "{:?}",
        report.summary.failure_examples
    );
    assert_eq!(events.len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_pasv_reply_is_a_protocol_error_not_a_panic() {
    let addr = start_fake(Script {
        pasv: PasvStyle::Garbage,
        ..Script::default()
    })
    .await;
    let (report, events, _tmp) = run_against(addr).await;
    let s = &report.summary;
    // Each connection loses its control channel at the first garbage reply (it can no longer
    // trust the conversation), so one failed transfer per session and two not attempted.
    assert_eq!(s.failures.get("protocol_error"), Some(&12), "{:?}", s.failures);
    assert_eq!(events.len(), 12);
    assert!(events
        .iter()
        .all(|e| e.outcome == Outcome::Failed(FailureClass::ProtocolError)));
    assert!(events[0].detail.contains("unparseable 227"), "{}", events[0].detail);
    assert_eq!(s.sessions.files_not_attempted, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_the_server_echoes_is_never_stored_or_printed() {
    let secret = "S3cr3tPW_xyz";
    let addr = start_fake(Script {
        refuse_login_every: 2,
        echo_password: true,
        ..Script::default()
    })
    .await;
    let (report, _events, tmp) = run_bounded(addr, secret).await;
    let report = report.unwrap();
    let s = &report.summary;
    assert!(
        s.failures.get("login_failed").copied().unwrap_or(0) > 0,
        "{:?}",
        s.failures
    );
    // The reply is kept, with the password cut out of it.
    assert!(
        s.failure_examples["login_failed"][0].contains("bad password '[redacted]'"),
        "{:?}",
        s.failure_examples
    );
    let dir = tmp.path().join("run");
    ftpswarm::report::generate(&dir).unwrap();
    let printed = ftpswarm::summary::render(&report.summary, None);
    for (what, text) in [("run directory", all_outputs(&dir)), ("printed summary", printed)] {
        assert!(!text.contains(secret), "the password is in the {what}");
        assert!(text.contains("[redacted]"), "{what} lost the reply");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_426_on_the_control_connection_ends_a_silent_transfer_at_once() {
    let addr = start_fake(Script {
        data: DataStyle::Abort426,
        ..Script::default()
    })
    .await;
    let started = std::time::Instant::now();
    let (report, events, _tmp) = run_bounded(addr, "pw").await;
    let s = report.unwrap().summary;
    // Before, each transfer waited out the data idle timeout and was called a timeout.
    assert_eq!(s.failures.get("transfer_aborted"), Some(&36), "{:?}", s.failures);
    assert!(!s.failures.contains_key("timeout"));
    assert!(events.iter().all(|e| e.final_reply_code == Some(426)));
    assert!(events[0].detail.contains("transfer aborted"), "{}", events[0].detail);
    // 36 transfers, 4 at a time, each ended by the 426 after 50 ms, not by a 3 s idle timeout.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_150_with_no_final_reply_times_out_within_the_bound() {
    let addr = start_fake(Script {
        data: DataStyle::NeverFinal,
        ..Script::default()
    })
    .await;
    let started = std::time::Instant::now();
    let (report, events, _tmp) = run_bounded(addr, "pw").await;
    let s = report.unwrap().summary;
    // Each session loses its control connection on the first silent transfer.
    assert_eq!(s.failures.get("timeout"), Some(&12), "{:?}", s.failures);
    assert_eq!(events.len(), 12);
    assert!(events.iter().all(|e| e.transfer_reply_code == Some(150)));
    assert!(started.elapsed() < Duration::from_secs(25), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_connection_reset_mid_transfer_is_transfer_aborted_and_the_session_goes_on() {
    let addr = start_fake(Script {
        data: DataStyle::Reset,
        ..Script::default()
    })
    .await;
    let (report, events, _tmp) = run_bounded(addr, "pw").await;
    let s = report.unwrap().summary;
    assert_eq!(s.failures.get("transfer_aborted"), Some(&36), "{:?}", s.failures);
    assert_eq!(events.len(), 36, "the control connection stays usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_faults_are_classified_per_connection() {
    for (style, class) in [
        (GreetingStyle::Garbage, "protocol_error"),
        (GreetingStyle::Full421, "greeting_rejected"),
    ] {
        let addr = start_fake(Script {
            greeting: style,
            ..Script::default()
        })
        .await;
        let (report, events, _tmp) = run_bounded(addr, "pw").await;
        let report = report.unwrap();
        let s = &report.summary;
        assert!(
            s.failures.get(class).copied().unwrap_or(0) >= 12,
            "{class}: {:?}",
            s.failures
        );
        assert_eq!(s.sessions.failed, 12, "{class}");
        assert!(events.is_empty());
        let example = &s.failure_examples[class][0];
        // Control bytes from the server are not stored raw.
        assert!(!example.contains('\x1b') && !example.contains('\0'), "{example:?}");
    }
    // A greeting dribbled one byte per segment is still a greeting.
    let addr = start_fake(Script {
        greeting: GreetingStyle::ByteByByte,
        ..Script::default()
    })
    .await;
    let (report, events, _tmp) = run_bounded(addr, "pw").await;
    assert!(report.unwrap().summary.failures.is_empty());
    assert_eq!(events.len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_flood_and_an_over_long_line_are_bounded() {
    // 100,000 continuation lines: read through, in bounded memory (one line at a time).
    let addr = start_fake(Script {
        flood: true,
        ..Script::default()
    })
    .await;
    let (report, _events, _tmp) = run_bounded(addr, "pw").await;
    let report = report.unwrap();
    assert!(report.summary.sessions.completed == 12, "{:?}", report.summary.sessions);
    // A 1 MiB line is refused as a protocol error, not buffered.
    let addr = start_fake(Script {
        long_line: true,
        ..Script::default()
    })
    .await;
    let (report, _events, _tmp) = run_bounded(addr, "pw").await;
    let s = report.unwrap().summary;
    assert!(
        s.failures.get("protocol_error").copied().unwrap_or(0) >= 12,
        "{:?}",
        s.failures
    );
    assert!(s.failure_examples["protocol_error"][0].contains("longer than"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_425_storm_and_a_control_connection_closed_mid_session_are_classified() {
    let addr = start_fake(Script {
        pasv: PasvStyle::Refused,
        ..Script::default()
    })
    .await;
    let (report, _events, _tmp) = run_bounded(addr, "pw").await;
    let s = report.unwrap().summary;
    assert_eq!(s.failures.get("pasv_rejected"), Some(&36), "{:?}", s.failures);
    assert!(s.failure_examples["pasv_rejected"][0].contains("no ports left"));

    let addr = start_fake(Script {
        close_after_transfers: 1,
        ..Script::default()
    })
    .await;
    let (report, events, _tmp) = run_bounded(addr, "pw").await;
    let s = report.unwrap().summary;
    // The first LIST works, the second finds the control connection closed.
    assert_eq!(events.iter().filter(|e| e.outcome == Outcome::Ok).count(), 12);
    assert_eq!(s.sessions.failed, 12, "{:?}", s.failures);
    assert_eq!(s.sessions.files_not_attempted, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_ends_the_session_counts_once_not_for_each_reply_it_leaves() {
    let addr = start_fake(Script {
        pasv: PasvStyle::OopsAndGone,
        ..Script::default()
    })
    .await;
    let (report, events, _tmp) = run_bounded(addr, "pw").await;
    let s = report.unwrap().summary;
    // One refusal per session: the second OOPS is not the answer to a next PASV, and no
    // PASV is written to the closed connection.
    assert_eq!(s.failures.get("pasv_rejected"), Some(&12), "{:?}", s.failures);
    assert_eq!(s.failures.values().sum::<u64>(), 12, "{:?}", s.failures);
    assert_eq!(s.sessions.failed, 12);
    assert_eq!(s.sessions.files_not_attempted, 24);
    for e in &events {
        assert!(e.detail.starts_with("OOPS: vsf_sysutil_bind"), "{}", e.detail);
        assert!(e.detail.contains("closed the control connection"), "{}", e.detail);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_stops_the_run_with_a_reason() {
    let fake = start_killable(Script::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let opts = RunOptions {
        target: Some(format!("ftp://alice:pw@{}", fake.addr)),
        out: Some(dir.clone()),
        overrides: ProfileOverrides {
            sessions: Some(4),
            files_per_session: Some(3),
            think_time: Some(HumanDuration(Duration::from_millis(20))),
            duration: Some(HumanDuration(Duration::from_secs(60))),
            mix: Some(parse_mix("list=1").unwrap()),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let kill = fake.kill.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        kill.cancel();
    });
    let started = std::time::Instant::now();
    let report = run(opts, CancellationToken::new()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let reason = report.manifest.partial_reason.clone().unwrap_or_default();
    assert!(reason.contains("the target went away"), "{reason}");
    let s = &report.summary;
    assert!(s.transfers.ok > 0);
    assert!(
        s.failures.get("connect_refused").copied().unwrap_or(0) > 0,
        "{:?}",
        s.failures
    );
    // Backoff keeps a dead server from turning into a flood of refusal rows.
    assert!(
        s.connections.failed < 500,
        "{} refused connections recorded",
        s.connections.failed
    );
}
