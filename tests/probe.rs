//! `ftpswarm probe` against servers whose passive behaviour we know from their source and
//! from earlier measurements: the embedded libunftp server, vsftpd and pyftpdlib, each on
//! loopback with a 10-port range. Each test asserts what that server really does; the three
//! run in parallel and take about 22 s together (the libunftp one waits for its abandoned
//! listener to die; the others stop waiting at 5 s).

mod common;

use common::servers::{self, RealServer};
use ftpswarm::event::PassiveCommand;
use ftpswarm::model::HoldPolicy;
use ftpswarm::model::PortPickPolicy;
use ftpswarm::port_range::PortRange;
use ftpswarm::probe::{
    log_likelihood_drop, probe, render, AtExhaustion, Fingerprint, ForeignVerdict, LifetimeVerdict, PickVerdict,
    ProbeOptions, RangeSource, ReuseVerdict, TryModel,
};
use ftpswarm::server::binder::RANDOM_TRIES;
use ftpswarm::server::{EmbeddedConfig, EmbeddedServer, DEFAULT_PASSWORD, DEFAULT_USER};
use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn options(url: String, range: PortRange, max_wait: Duration) -> ProbeOptions {
    ProbeOptions {
        range: Some(range),
        max_wait,
        ..ProbeOptions::new(url)
    }
}

/// Probes and prints the fingerprint, so a failing assertion comes with the whole picture.
async fn fingerprint(opts: &ProbeOptions, what: &str) -> Fingerprint {
    let t0 = Instant::now();
    let f = probe(opts).await.unwrap();
    eprintln!("--- {what} ({:.1} s)\n{}", t0.elapsed().as_secs_f64(), render(&f));
    f
}

fn real_url(s: &RealServer) -> String {
    format!("ftp://{}:{}@127.0.0.1:{}", s.user, s.password, s.ctrl_port)
}

/// Ports of `range` with a listening socket on this host (from /proc/net/tcp).
fn listeners_in(range: PortRange) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp is how this test sees listeners");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            // 0A: LISTEN.
            (fields.get(3) == Some(&"0A") && range.contains(port)).then_some(port)
        })
        .collect()
}

/// The probe released every port it took: no listener is left on the range while the
/// server still runs (allowing a moment for listeners that are closing).
fn assert_released(range: PortRange) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = listeners_in(range);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ports still listening after the probe: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn libunftp_random_tries_425_released_at_accept_listener_15s() {
    let range = PortRange { min: 31700, max: 31709 };
    let f = block_on(async {
        let server = EmbeddedServer::start(EmbeddedConfig::loopback(range)).await.unwrap();
        let url = format!("ftp://{DEFAULT_USER}:{DEFAULT_PASSWORD}@{}", server.addr);
        let f = fingerprint(&options(url, range, Duration::from_secs(20)), "libunftp (embedded)").await;
        // The reuse step's upload reached the server and ended normally.
        assert_eq!(server.stats.stor_files.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_released(range);
        server.stop().await;
        f
    });
    assert!(!f.target.contains(DEFAULT_PASSWORD));
    assert_eq!(
        (f.range_source, f.width, f.max_pending),
        (RangeSource::Given, Some(10), 15)
    );
    assert_eq!(f.pick_order.verdict, PickVerdict::Random, "{}", f.pick_order.detail);
    assert_eq!(f.pick_order.out_of_range, 0);
    assert_eq!(f.epsv.supported, Some(true));

    // 425 with free ports left: random tries, never an out-of-range port.
    let AtExhaustion::Refuses {
        code, session_dropped, ..
    } = &f.exhaustion.at_exhaustion
    else {
        panic!("{:?}", f.exhaustion.at_exhaustion);
    };
    assert_eq!((*code, *session_dropped), (425, false));
    let est = f.exhaustion.estimate.as_ref().unwrap();
    assert_eq!(est.model, TryModel::RandomTries, "{est:?}");
    assert!(est.failures_before_full > 0 && est.k_hat.is_some(), "{est:?}");
    // libunftp tries 9 random ports (README's probe table). A 95% interval misses the true k
    // in one probe of twenty (CI saw 14 (10–20) and 5 (4–8)), so asking it to contain 9 is a
    // test that fails by chance; asking the data not to reject 9 at the 99.9% level fails by
    // chance once in a thousand runs, and whenever the estimate is really off.
    let drop = log_likelihood_drop(&f.exhaustion.observations(), 10, RANDOM_TRIES).unwrap();
    assert!(
        drop < 5.41,
        "k = 9 rejected (log-likelihood {drop:.2} below the best): {est:?}"
    );
    // The server is on this host: every request's held count is the kernel's, and with
    // nothing else on this range it is ours (the wait for released listeners worked).
    assert!(f.exhaustion.steps.iter().all(|s| s.listening.is_some()));
    let agree = f
        .exhaustion
        .steps
        .iter()
        .filter(|s| s.listening == Some(s.held))
        .count();
    assert!(agree * 10 >= f.exhaustion.steps.len() * 9, "{:?}", f.exhaustion.steps);
    assert!(
        f.exhaustion.notes.iter().any(|n| n.contains("kernel's listeners")),
        "{:?}",
        f.exhaustion.notes
    );
    assert!(matches!(f.pick_policy(), Some(PortPickPolicy::RandomTries { .. })));
    assert!(f
        .exhaustion
        .steps
        .iter()
        .all(|s| s.outcome.port().is_none_or(|p| range.contains(p))));
    assert!(f.exhaustion.steps.iter().all(|s| s.held <= 15));

    assert_eq!(f.reuse.verdict, ReuseVerdict::ReleasedAtAccept, "{}", f.reuse.detail);
    assert_eq!(f.hold_policy(), Some(HoldPolicy::UntilTransferStarts));
    // libunftp closes the data connection of another address at once.
    assert_eq!(
        f.foreign_source.verdict,
        ForeignVerdict::Refused,
        "{}",
        f.foreign_source.detail
    );
    // libunftp drops an unused listener after 15 s.
    let l = &f.abandoned_lifetime;
    assert_eq!(
        (l.verdict, l.lower_s, l.upper_s),
        (LifetimeVerdict::Between, Some(10.0), Some(20.0)),
        "{l:?}"
    );
}

#[test]
fn vsftpd_random_tries_oops_held_until_transfer_end_foreign_refused() {
    let (lo, hi) = servers::test_pasv_range(10);
    let Some(server) = servers::require_or_skip(servers::start_vsftpd(lo, hi)) else {
        return;
    };
    let range = PortRange { min: lo, max: hi };
    let f = block_on(fingerprint(
        &options(real_url(&server), range, Duration::from_secs(5)),
        "vsftpd",
    ));
    assert_eq!(f.pick_order.verdict, PickVerdict::Random, "{}", f.pick_order.detail);
    assert_eq!(f.epsv.supported, Some(true));
    // vsftpd gives up after 9 random binds with `500 OOPS: vsf_sysutil_bind` and ends the
    // session.
    let AtExhaustion::Refuses {
        code,
        text,
        session_dropped,
    } = &f.exhaustion.at_exhaustion
    else {
        panic!("{:?}", f.exhaustion.at_exhaustion);
    };
    assert_eq!((*code, *session_dropped), (500, true), "{text}");
    assert!(text.contains("OOPS") && text.contains("vsf_sysutil_bind"), "{text}");
    let est = f.exhaustion.estimate.as_ref().unwrap();
    assert_eq!(est.model, TryModel::RandomTries, "{est:?}");
    // vsftpd's 10 bind retries are 9 tries (`while (--bind_retries)`). As for libunftp, the
    // data must not reject 9 at the 99.9% level (a 95% interval misses one probe in twenty).
    let drop = log_likelihood_drop(&f.exhaustion.observations(), 10, 9).unwrap();
    assert!(
        drop < 5.41,
        "k = 9 rejected (log-likelihood {drop:.2} below the best): {est:?}"
    );
    assert!(matches!(f.pick_policy(), Some(PortPickPolicy::RandomTries { .. })));
    // vsftpd keeps its listener until the transfer ends.
    assert_eq!(
        f.reuse.verdict,
        ReuseVerdict::HeldUntilTransferEnds,
        "{}",
        f.reuse.detail
    );
    assert_eq!(f.hold_policy(), Some(HoldPolicy::UntilTransferEnds));
    // pasv_promiscuous=NO: "425 Security: Bad IP connecting."
    assert_eq!(
        f.foreign_source.verdict,
        ForeignVerdict::Refused,
        "{}",
        f.foreign_source.detail
    );
    assert!(f.foreign_source.detail.contains("425"), "{}", f.foreign_source.detail);
    // vsftpd accepts only after a transfer command, so the kernel keeps the listener for as
    // long as the session lives.
    assert_eq!(f.abandoned_lifetime.verdict, LifetimeVerdict::LongerThan);
    // The reuse step's upload was deleted.
    let left: Vec<_> = std::fs::read_dir(&server.root_dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_released(range);
}

#[test]
fn pyftpdlib_scans_falls_back_outside_the_range_released_at_accept() {
    let (lo, hi) = servers::test_pasv_range(10);
    let Some(server) = servers::require_or_skip(servers::start_pyftpdlib(lo, hi)) else {
        return;
    };
    let range = PortRange { min: lo, max: hi };
    let f = block_on(fingerprint(
        &options(real_url(&server), range, Duration::from_secs(5)),
        "pyftpdlib",
    ));
    // pyftpdlib shuffles the whole range anew for every PASV and takes the first free port:
    // with every port free each time, its picks are independent uniform draws, so the order
    // is random; that it is a *scan* shows only at exhaustion.
    assert_eq!(f.pick_order.verdict, PickVerdict::Random, "{}", f.pick_order.detail);
    assert_eq!(f.epsv.supported, Some(true));
    // Never a refusal: with the range full it hands out a kernel port outside it.
    let AtExhaustion::FallsBackOutsideRange { port } = f.exhaustion.at_exhaustion else {
        panic!("{:?}", f.exhaustion.at_exhaustion);
    };
    assert!(!range.contains(port));
    assert!(f.exhaustion.first_failure_held.iter().all(|n| *n == Some(10)));
    assert!(!f
        .exhaustion
        .steps
        .iter()
        .any(|s| matches!(s.outcome, ftpswarm::probe::GrantOutcome::Refused { .. })));
    assert_eq!(f.exhaustion.estimate.as_ref().map(|e| e.model), Some(TryModel::Scan));
    assert_eq!(f.pick_policy(), Some(PortPickPolicy::Scan));
    assert_eq!(f.reuse.verdict, ReuseVerdict::ReleasedAtAccept, "{}", f.reuse.detail);
    assert_eq!(f.hold_policy(), Some(HoldPolicy::UntilTransferStarts));
    // permit_foreign_addresses = False: closed, with an unsolicited 425.
    assert_eq!(
        f.foreign_source.verdict,
        ForeignVerdict::Refused,
        "{}",
        f.foreign_source.detail
    );
    // Its listener times out after 30 s.
    assert_eq!(f.abandoned_lifetime.verdict, LifetimeVerdict::LongerThan);
    let left: Vec<_> = std::fs::read_dir(&server.root_dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_released(range);
}

#[test]
fn errors_are_one_clear_line() {
    let range = PortRange { min: 31720, max: 31721 };
    block_on(async {
        let one_line = |e: anyhow::Error| {
            let s = format!("{e:#}");
            assert_eq!(s.lines().count(), 1, "{s}");
            s
        };
        let e = one_line(probe(&ProbeOptions::new("http://127.0.0.1:21")).await.unwrap_err());
        assert!(e.contains("not supported"), "{e}");
        let e = one_line(probe(&ProbeOptions::new("ftp://u:hunter2@:1")).await.unwrap_err());
        assert!(!e.contains("hunter2"), "{e}");

        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = one_line(
            probe(&ProbeOptions::new(format!("ftp://u:p@{closed}")))
                .await
                .unwrap_err(),
        );
        assert!(e.contains("connect_refused") && e.contains(&closed.to_string()), "{e}");

        let server = EmbeddedServer::start(EmbeddedConfig::loopback(range)).await.unwrap();
        let url = format!("ftp://{DEFAULT_USER}:wrong-{DEFAULT_PASSWORD}@{}", server.addr);
        let e = one_line(probe(&ProbeOptions::new(url)).await.unwrap_err());
        assert!(e.contains("login_failed") && !e.contains("wrong-"), "{e}");
        server.stop().await;
    });
}

/// The binary end to end: EPSV, no --range (inferred), JSON to stdout and to a file.
#[test]
fn cli_json_with_epsv_and_an_inferred_range() {
    let range = PortRange { min: 31710, max: 31714 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(EmbeddedServer::start(EmbeddedConfig::loopback(range)))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("fingerprint.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ftpswarm"))
        .args([
            "probe",
            &format!("ftp://{DEFAULT_USER}@{}", server.addr),
            "--epsv",
            "--rounds",
            "1",
            "--max-wait",
            "1s",
            "--json",
            "-o",
            out_file.to_str().unwrap(),
        ])
        .env("FTPSWARM_PASSWORD", DEFAULT_PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed: Fingerprint = serde_json::from_slice(&out.stdout).unwrap();
    let written: Fingerprint = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(printed, written);
    common::schemas::check(&out_file, "probe");
    assert_eq!(printed.passive_command, PassiveCommand::Epsv);
    assert_eq!(printed.range_source, RangeSource::Inferred);
    let inferred: PortRange = printed.range.as_deref().unwrap().parse().unwrap();
    assert!(inferred.min >= range.min && inferred.max <= range.max, "{inferred}");
    assert!(
        printed.notes.iter().any(|n| n.contains("no --range")),
        "{:?}",
        printed.notes
    );
    assert_eq!(printed.schema_version, ftpswarm::rundir::SCHEMA_VERSION);
    runtime.block_on(server.stop());

    // In-process, text: the same entry point the binary uses.
    let err = runtime
        .block_on(ftpswarm::commands::probe::command(
            ProbeOptions::new("ftp://[::1"),
            false,
            None,
        ))
        .unwrap_err();
    assert!(format!("{err:#}").contains("not a URL"), "{err:#}");
}
