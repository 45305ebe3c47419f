//! The embedded server (and so `ftpswarm serve`) bounds what a client can make it buffer.

mod common;

use common::servers::test_pasv_range;
use ftpswarm::port_range::PortRange;
use ftpswarm::server::guard::MAX_COMMAND_LINE;
use ftpswarm::server::{EmbeddedConfig, EmbeddedServer, DEFAULT_PASSWORD, DEFAULT_USER};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const LINE: usize = 32 * 1024 * 1024;

fn rss_bytes() -> u64 {
    rss_in("/proc/self/status")
}

/// Resident memory from a `/proc/*/status` file. A memory test that cannot read it must fail,
/// not measure a growth of 0.
fn rss_in(path: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("{path} has no VmRSS line"))
}

async fn read_reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line))
        .await
        .expect("a reply within 10 s")
        .expect("readable reply");
    line
}

/// Logs in and out as a well-behaved client would.
async fn normal_session(addr: SocketAddr) {
    let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    assert!(read_reply(&mut r).await.starts_with("220"));
    w.write_all(format!("USER {DEFAULT_USER}\r\n").as_bytes())
        .await
        .unwrap();
    assert!(read_reply(&mut r).await.starts_with("331"));
    w.write_all(format!("PASS {DEFAULT_PASSWORD}\r\n").as_bytes())
        .await
        .unwrap();
    assert!(read_reply(&mut r).await.starts_with("230"));
    // A long but legal line (a path of 4 KiB) still passes.
    let long_path = format!("SIZE /{}\r\n", "d/".repeat(2048));
    assert!(long_path.len() < MAX_COMMAND_LINE);
    w.write_all(long_path.as_bytes()).await.unwrap();
    let reply = read_reply(&mut r).await;
    assert!(!reply.starts_with("500"), "a legal line was refused: {reply}");
    w.write_all(b"QUIT\r\n").await.unwrap();
    assert!(read_reply(&mut r).await.starts_with("221"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_control_line_gets_500_and_a_close_and_the_server_serves_on() {
    let (lo, hi) = test_pasv_range(10);
    // As `serve` configures it.
    let config = EmbeddedConfig {
        cap_control_lines: true,
        ..EmbeddedConfig::loopback(PortRange { min: lo, max: hi })
    };
    let server = EmbeddedServer::start(config).await.unwrap();
    let addr = server.addr;
    normal_session(addr).await;
    let rss_before = rss_bytes();

    let (mut r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut greeting = [0u8; 256];
    let n = r.read(&mut greeting).await.unwrap();
    assert!(
        greeting[..n].starts_with(b"220"),
        "{:?}",
        String::from_utf8_lossy(&greeting[..n])
    );
    // 32 MiB without a newline; the server may stop reading (and reset) at any point.
    let writer = tokio::spawn(async move {
        let chunk = vec![b'A'; 64 * 1024];
        let mut sent = 0;
        while sent < LINE {
            if w.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut answer = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_all)
        .await
        .expect("the server closes the connection");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("500 "), "want a 500, got {answer:?}");
    let sent = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the writer ends")
        .unwrap();
    let grown = rss_bytes().saturating_sub(rss_before);
    assert!(
        grown < 16 * 1024 * 1024,
        "RSS grew by {grown} bytes while {sent} bytes of one line were sent"
    );

    // The server is still there for everyone else.
    normal_session(addr).await;
    server.stop().await;
}

fn rss_of(pid: u32) -> u64 {
    rss_in(&format!("/proc/{pid}/status"))
}

/// The reproduction: `ftpswarm serve` sent 16+ MiB without a newline.
#[test]
fn serve_answers_an_endless_line_with_500_and_keeps_its_memory() {
    use std::io::{BufRead, BufReader, Read, Write};
    let (lo, hi) = test_pasv_range(10);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ftpswarm"))
        .args(["serve", "--port", "0", "--pasv", &format!("{lo}-{hi}")])
        .env("FTPSWARM_PASSWORD", "pw")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split('@')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let rss_before = rss_of(child.id());

    let stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let mut greeting = [0u8; 256];
    let n = reader.read(&mut greeting).unwrap();
    assert!(greeting[..n].starts_with(b"220"));
    let mut w = stream;
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'A'; 64 * 1024];
        let mut sent = 0;
        while sent < LINE && w.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    let mut answer = Vec::new();
    let _ = reader.read_to_end(&mut answer);
    let sent = writer.join().unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("500 "), "want a 500, got {answer:?}");
    let grown = rss_of(child.id()).saturating_sub(rss_before);
    assert!(
        grown < 16 * 1024 * 1024,
        "serve's RSS grew by {grown} bytes ({sent} sent)"
    );

    // Another client is served as usual.
    let stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("220"), "{line:?}");
    w.write_all(b"USER ftpswarm\r\nPASS pw\r\n").unwrap();
    for code in ["331", "230"] {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
