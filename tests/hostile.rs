//! A scripted fake FTP server that misbehaves on purpose, to check that the client classifies
//! what real servers do only sometimes: failed logins mid-run, garbage replies, a 227 naming
//! another address. Only loopback addresses are ever used.

use ftpswarm::event::{FailureClass, Outcome, TransferEvent};
use ftpswarm::output;
use ftpswarm::profile::{parse_mix, HumanDuration, ProfileOverrides};
use ftpswarm::run::{run, RunOptions};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, PartialEq)]
enum PasvStyle {
    /// `227 Entering Passive Mode (127,0,0,1,p1,p2).`
    Normal,
    /// Odd spacing, no parentheses, and an address that is not ours (another loopback IP).
    OtherAddress,
    /// A 227 with no numbers in it.
    Garbage,
}

#[derive(Clone, Copy)]
struct Script {
    /// Every n-th login after the first is refused with 530.
    refuse_login_every: u32,
    pasv: PasvStyle,
}

async fn start_fake(script: Script) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let logins = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let logins = logins.clone();
            tokio::spawn(async move {
                let _ = serve_one(stream, script, logins).await;
            });
        }
    });
    addr
}

async fn serve_one(stream: tokio::net::TcpStream, script: Script, logins: Arc<AtomicU32>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220-fake server\r\n220 ready\r\n").await?;
    let mut data: Option<TcpListener> = None;
    while let Some(line) = lines.next_line().await? {
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "USER" => w.write_all(b"331 password please\r\n").await?,
            "PASS" => {
                let n = logins.fetch_add(1, Ordering::SeqCst);
                if n > 0 && n % script.refuse_login_every == 0 {
                    w.write_all(b"530 Login incorrect.\r\n").await?;
                } else {
                    w.write_all(b"230 in\r\n").await?;
                }
            }
            "TYPE" => w.write_all(b"200 binary\r\n").await?,
            "PASV" => {
                let l = TcpListener::bind("127.0.0.1:0").await?;
                let port = l.local_addr()?.port();
                let (p1, p2) = (port >> 8, port & 0xff);
                let reply = match script.pasv {
                    PasvStyle::Normal => format!("227 Entering Passive Mode (127,0,0,1,{p1},{p2}).\r\n"),
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
                    d.write_all(b"-rw-r--r-- 1 ftp ftp 3 Jan 1 00:00 a.txt\r\n").await?;
                    drop(d);
                    w.write_all(b"226-done\r\n226 really done\r\n").await?;
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
    Ok(())
}

async fn run_against(addr: SocketAddr) -> (ftpswarm::run::RunReport, Vec<TransferEvent>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let opts = RunOptions {
        target: Some(format!("ftp://alice:pw@{addr}")),
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
    let report = run(opts, CancellationToken::new()).await.unwrap();
    let events = csv::Reader::from_path(dir.join(output::EVENTS))
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect();
    (report, events, tmp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_mid_run_are_classified_and_the_run_goes_on() {
    let addr = start_fake(Script {
        refuse_login_every: 3,
        pasv: PasvStyle::Normal,
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
        refuse_login_every: u32::MAX,
        pasv: PasvStyle::OtherAddress,
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
        refuse_login_every: u32::MAX,
        pasv: PasvStyle::Garbage,
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
