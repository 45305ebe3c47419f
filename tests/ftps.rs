//! FTPS end to end: explicit TLS on control and data connections against the embedded server
//! (`--tls`, a certificate made at start) and real vsftpd (which refuses data connections that
//! do not resume the control connection's TLS session); certificate checks that fail as
//! `tls_error` unless `--insecure`.

mod common;

use common::servers::{self, TlsFiles};
use ftpswarm::event::{Outcome, TransferEvent};
use ftpswarm::probe::{probe, render, ProbeOptions};
use ftpswarm::profile::{HumanDuration, Mix, PortRange, ProfileOverrides, TlsMode, TlsVersion};
use ftpswarm::run::{run, RunOptions, RunReport};
use ftpswarm::rundir;
use ftpswarm::server::{EmbeddedConfig, EmbeddedServer, DEFAULT_PASSWORD, DEFAULT_USER};
use ftpswarm::tls::TlsOptions;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn overrides(range: PortRange) -> ProfileOverrides {
    ProfileOverrides {
        sessions: Some(4),
        duration: Some(HumanDuration(Duration::from_secs(3))),
        mix: Some(Mix {
            retr: 1,
            stor: 1,
            list: 1,
        }),
        pasv_range: Some(range),
        ..Default::default()
    }
}

fn events(dir: &Path) -> Vec<TransferEvent> {
    csv::Reader::from_path(dir.join(rundir::EVENTS))
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect()
}

/// Every transfer that got a data connection succeeded over TLS, for every command, and both
/// handshakes are timed. (Which failures a run may have before any data connection, such as
/// ProFTPD's bind races, is the caller's to say.)
fn assert_every_transfer_over_tls(report: &RunReport, dir: &Path) {
    let s = &report.summary;
    for command in ["RETR", "STOR", "LIST"] {
        let c = s.by_command.get(command).copied().unwrap_or_default();
        assert!(c.attempted > 0 && c.ok > 0, "{command}: {c:?} {:?}", s.failure_examples);
    }
    let all = events(dir);
    let connected: Vec<&TransferEvent> = all.iter().filter(|e| e.t_data_connected_us.is_some()).collect();
    assert!(!connected.is_empty());
    for e in &connected {
        assert_eq!(e.outcome, Outcome::Ok, "{e:?}");
        let (connected, secured) = (e.t_data_connected_us.unwrap(), e.t_data_tls_us.unwrap());
        assert!(secured >= connected && e.t_final_reply_us.unwrap() >= secured, "{e:?}");
    }
    // Only refusals of the PASV itself came without a data connection.
    assert!(
        all.iter()
            .filter(|e| e.t_data_connected_us.is_none())
            .all(|e| e.pasv_port.is_none()),
        "a granted port without a data connection"
    );
    let data_tls = &s.latency_us["data_tls"];
    assert_eq!(data_tls.count, connected.len() as u64);
    assert_eq!(s.latency_us["tls"].count, s.connections.opened - s.connections.failed);
    assert!(report.manifest.target.starts_with("ftps"), "{}", report.manifest.target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_with_tls_moves_every_file_over_tls() {
    let (lo, hi) = servers::test_pasv_range(20);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let opts = RunOptions {
        out: Some(dir.clone()),
        overrides: ProfileOverrides {
            tls: Some(TlsMode::Explicit),
            ..overrides(PortRange { min: lo, max: hi })
        },
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new()).await.unwrap();
    assert_every_transfer_over_tls(&report, &dir);
    // The plan says the range must be opened whole; libunftp frees a port at accept, before
    // the data connection's handshake.
    assert_ftps_note(&dir, "does not lengthen");
    // libunftp 0.24 switches a control connection to TLS from a task it spawns after
    // answering 234, so a ClientHello that arrives first is read as a command and answered
    // in plain text (about 1 control connection in 300 here). Any other failure is ours.
    let s = &report.summary;
    let race = s
        .failure_examples
        .get("tls_error")
        .into_iter()
        .flatten()
        .all(|e| e.contains("InvalidContentType"));
    let tls_errors = s.failures.get("tls_error").copied().unwrap_or(0);
    let others: u64 = s.failures.values().sum::<u64>() - tls_errors;
    assert!(
        others == 0 && race && tls_errors * 50 <= s.connections.opened,
        "{:?} {:?}",
        s.failures,
        s.failure_examples
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsftpd_demanding_session_reuse_accepts_every_data_connection() {
    // Not one failure of any kind: vsftpd would answer a data connection that did not resume
    // its control connection's session with `522 SSL connection failed: session reuse
    // required`.
    let Some((report, tmp)) = real_server_moves_every_file_over_tls(servers::start_vsftpd_tls, "ftps", None).await
    else {
        return;
    };
    assert!(report.summary.sessions.completed >= 8, "{:?}", report.summary.sessions);
    // vsftpd holds a port until its final reply: the handshake is inside every hold.
    assert_ftps_note(&tmp.path().join("run"), "is part of every hold");
}

fn assert_ftps_note(dir: &Path, effect: &str) {
    let rec = ftpswarm::plan::plan_from_run(dir, &ftpswarm::plan::PlanRequest::default()).unwrap();
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.starts_with("FTPS:") && w.contains("opened statically") && w.contains(effect)),
        "{:?}",
        rec.warnings
    );
}

/// A real server with TLS required, reached as `scheme://`: every file moves over TLS, and
/// nothing fails. Returns the run (in `<tmp>/run`) for more checks; None when the server is
/// not installed here (outside CI).
async fn real_server_moves_every_file_over_tls(
    start: fn(u16, u16, &TlsFiles) -> Result<servers::RealServer, String>,
    scheme: &str,
    tls_max_version: Option<TlsVersion>,
) -> Option<(RunReport, tempfile::TempDir)> {
    let (lo, hi) = servers::test_pasv_range(20);
    let tls = TlsFiles::self_signed(&["127.0.0.1"]);
    let server = servers::require_or_skip(start(lo, hi, &tls))?;
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let dir = tmp.path().join("run");
    let opts = RunOptions {
        target: Some(format!(
            "{scheme}://{}:{}@127.0.0.1:{}",
            server.user, server.password, server.ctrl_port
        )),
        out: Some(dir.clone()),
        prepare: true,
        overrides: ProfileOverrides {
            ca_file: Some(ca.display().to_string()),
            tls_max_version,
            ..overrides(PortRange { min: lo, max: hi })
        },
        ..RunOptions::default()
    };
    let report = run(opts, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nserver log:\n{}", server.log_tail()));
    let s = &report.summary;
    // ProFTPD's session processes race bind() and listen() for a passive port: a `425 …
    // Address already in use` can hit any run (as in tests/real_servers.rs); nothing else may.
    let collisions = match server.kind {
        servers::ServerKind::Proftpd
            if s.failure_examples
                .get("pasv_rejected")
                .into_iter()
                .flatten()
                .all(|e| e.contains("Address already in use")) =>
        {
            s.failures.get("pasv_rejected").copied().unwrap_or(0)
        }
        _ => 0,
    };
    let others: u64 = s.failures.values().sum::<u64>() - collisions;
    assert!(
        others == 0 && collisions * 100 <= s.transfers.attempted,
        "{:?} {:?}\n{}",
        s.failures,
        s.failure_examples,
        server.log_tail()
    );
    assert_every_transfer_over_tls(&report, &dir);
    Some((report, tmp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyftpdlib_with_tls_required_moves_every_file_over_tls() {
    real_server_moves_every_file_over_tls(servers::start_pyftpdlib_tls, "ftps", None).await;
}

/// ProFTPD's mod_tls requires every data connection to resume the control connection's
/// session. Under TLS 1.3 it issues two tickets on the control connection and each serves
/// one data connection, so the client offers TLS 1.2, whose session resumes any number of
/// times (the server offers both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proftpd_with_mod_tls_moves_every_file_over_tls_1_2() {
    real_server_moves_every_file_over_tls(servers::start_proftpd_tls, "ftps", Some(TlsVersion::Tls12)).await;
}

/// Under TLS 1.3 the same server refuses a session's third data connection, and the failure
/// says why and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proftpd_under_tls_1_3_refuses_data_connections_past_its_tickets_and_says_why() {
    let (lo, hi) = servers::test_pasv_range(20);
    let tls = TlsFiles::self_signed(&["127.0.0.1"]);
    let Some(server) = servers::require_or_skip(servers::start_proftpd_tls(lo, hi, &tls)) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let url = format!(
        "ftps://{}:{}@127.0.0.1:{}",
        server.user, server.password, server.ctrl_port
    );
    let probed = probe(&probe_options(url.clone(), PortRange { min: lo, max: hi }, &ca))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log_tail()));
    let t = probed.tls.clone().unwrap();
    assert_eq!(t.session_reuse_required, Some(true), "{t:?}");
    // --prepare uploads more files on one connection than ProFTPD issued tickets for.
    let opts = RunOptions {
        target: Some(url),
        out: Some(tmp.path().join("run")),
        prepare: true,
        overrides: ProfileOverrides {
            ca_file: Some(ca.display().to_string()),
            ..overrides(PortRange { min: lo, max: hi })
        },
        ..RunOptions::default()
    };
    let e = format!(
        "{:#}",
        run(opts, CancellationToken::new()).await.err().expect("refused")
    );
    assert!(
        e.contains("did not resume") && e.contains("--tls-max-version 1.2"),
        "{e}"
    );
}

/// Implicit FTPS (`ftps-implicit://`): TLS before the greeting, the `tls` phase timed from
/// the TCP connect, and vsftpd's session reuse satisfied as with explicit FTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_ftps_against_vsftpd_moves_every_file_over_tls() {
    let Some((report, tmp)) =
        real_server_moves_every_file_over_tls(servers::start_vsftpd_implicit_tls, "ftps-implicit", None).await
    else {
        return;
    };
    assert!(
        report.manifest.target.starts_with("ftps-implicit://"),
        "{}",
        report.manifest.target
    );
    let connections: Vec<ftpswarm::event::ConnectionRecord> =
        csv::Reader::from_path(tmp.path().join("run").join(rundir::CONNECTIONS))
            .unwrap()
            .deserialize()
            .map(|r| r.unwrap())
            .collect();
    assert!(!connections.is_empty());
    for c in &connections {
        // Secured before the server could greet.
        let (tls_at, greeted) = (c.t_tls_us.unwrap(), c.t_greeting_us.unwrap());
        assert!(c.t_connected_us.unwrap() <= tls_at && tls_at <= greeted, "{c:?}");
    }
}

/// A certificate for another name: `tls_error` with rustls's reason, and no transfer; with
/// `--insecure` the same server works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_a_tls_error_unless_insecure() {
    let (lo, hi) = servers::test_pasv_range(10);
    let tls = TlsFiles::self_signed(&["ftp.example.invalid"]);
    let Some(server) = servers::require_or_skip(servers::start_vsftpd_tls(lo, hi, &tls)) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let options = |dir: &Path, insecure: bool| RunOptions {
        target: Some(format!(
            "ftps://{}:{}@127.0.0.1:{}",
            server.user, server.password, server.ctrl_port
        )),
        out: Some(dir.to_path_buf()),
        prepare: true,
        overrides: ProfileOverrides {
            ca_file: Some(ca.display().to_string()),
            insecure,
            sessions: Some(2),
            duration: Some(HumanDuration(Duration::from_secs(1))),
            pasv_range: Some(PortRange { min: lo, max: hi }),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    // The preflight's login already fails, with the reason.
    let refused = run(options(&tmp.path().join("checked"), false), CancellationToken::new()).await;
    let e = format!(
        "{:#}",
        refused
            .err()
            .expect("a certificate for another name must not be accepted")
    );
    assert!(e.contains("tls_error") && e.contains("not valid for name"), "{e}");

    let dir = tmp.path().join("insecure");
    let report = run(options(&dir, true), CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nserver log:\n{}", server.log_tail()));
    assert!(
        report.summary.failures.is_empty(),
        "{:?}",
        report.summary.failure_examples
    );
    assert!(report.summary.transfers.attempted > 0);
}

fn probe_options(url: String, range: PortRange, ca: &Path) -> ProbeOptions {
    ProbeOptions {
        range: Some(range),
        rounds: 1,
        max_wait: Duration::from_secs(1),
        tls: TlsOptions {
            ca_file: Some(ca.to_path_buf()),
            ..TlsOptions::default()
        },
        ..ProbeOptions::new(url)
    }
}

/// `probe` over FTPS tells a server that demands TLS session reuse on data connections
/// (vsftpd) from one that does not (libunftp).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_tells_which_server_requires_tls_session_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let (lo, hi) = servers::test_pasv_range(10);
    let range = PortRange { min: lo, max: hi };
    let embedded = EmbeddedServer::start(EmbeddedConfig {
        tls: true,
        ..EmbeddedConfig::loopback(range)
    })
    .await
    .unwrap();
    let ca = tmp.path().join("embedded.pem");
    std::fs::write(&ca, &embedded.certificate.as_ref().unwrap().pem).unwrap();
    let url = format!("ftps://{DEFAULT_USER}:{DEFAULT_PASSWORD}@{}", embedded.addr);
    let f = probe(&probe_options(url, range, &ca)).await.unwrap();
    eprintln!("{}", render(&f));
    embedded.stop().await;
    let t = f.tls.clone().expect("an FTPS probe reports its TLS facts");
    assert_eq!(t.session_reuse_required, Some(false), "{t:?}");
    assert_eq!(t.prot_c_accepted, Some(true), "{t:?}");
    assert!(render(&f).contains("TLS reuse        not required"));

    let (lo, hi) = servers::test_pasv_range(10);
    let tls = TlsFiles::self_signed(&["127.0.0.1"]);
    let Some(server) = servers::require_or_skip(servers::start_vsftpd_tls(lo, hi, &tls)) else {
        return;
    };
    let ca = tmp.path().join("vsftpd.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let url = format!(
        "ftps://{}:{}@127.0.0.1:{}",
        server.user, server.password, server.ctrl_port
    );
    let f = probe(&probe_options(url, PortRange { min: lo, max: hi }, &ca))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log_tail()));
    eprintln!("{}", render(&f));
    let t = f.tls.clone().expect("an FTPS probe reports its TLS facts");
    assert_eq!(t.session_reuse_required, Some(true), "{t:?}\n{}", server.log_tail());
    assert!(t.reuse_detail.contains("522"), "{t:?}");
}
