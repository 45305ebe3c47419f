//! Real FTP servers (vsftpd, pyftpdlib, ProFTPD and Pure-FTPd) started by integration tests.
//!
//! Every server listens on 127.0.0.1 only, on a control port picked at
//! start-up, runs as a child process of the test, and is stopped (its whole
//! process tree killed, the server reaped) when the [`RealServer`] is
//! dropped. Nothing here ever sends traffic anywhere but loopback.
//!
//! Install the servers with `.ci/install-servers.sh` (as root). When a server
//! cannot start, [`require_or_skip`] fails the test in CI (env `CI` set) and
//! skips it loudly elsewhere.
//!
//! # Passive port ranges
//!
//! Passive (PASV) ranges given to the servers must lie OUTSIDE the Linux
//! ephemeral port range (`net.ipv4.ip_local_port_range`, 32768–60999 by
//! default). A load test opens thousands of client sockets, each of which
//! takes an ephemeral port on 127.0.0.1; a passive range inside that range
//! keeps finding its ports already taken by the generator's own connections,
//! so the servers fail PASV (vsftpd) or silently fall back to a random
//! kernel-assigned port outside the configured range (pyftpdlib), and the
//! numbers measure the kernel's port allocator rather than the server. Use
//! [`test_pasv_range`], which hands out ranges in 20000–29999 that do not
//! collide between tests running at the same time, in one process or in
//! several (cargo test threads, nextest processes, several test binaries).
//!
//! Control ports come from binding port 0, so they are ephemeral ports and
//! never overlap the passive ranges.
//!
//! # Processes
//!
//! Each server runs in its own process group. A small `sh` watchdog, in a
//! process group of its own too, holds the read end of a pipe whose write end
//! only the test process has. `Drop` closes it; so does the test process
//! exiting for any reason (even SIGKILL from a test timeout). Either way the
//! watchdog kills the server's whole process tree, so no server outlives its
//! test. The tree, not just the pid or the group: vsftpd forks a process per
//! FTP session and each one calls setsid(), leaving the server's group.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// Local account vsftpd logs in as. Created by `.ci/install-servers.sh`.
pub const FTP_USER: &str = "ftpswarm";
/// Password of [`FTP_USER`] (also used for the pyftpdlib virtual user).
pub const FTP_PASSWORD: &str = "ftpswarm-test";
/// PAM service (`/etc/pam.d/<name>`, pam_unix only) written by
/// `.ci/install-servers.sh`. Debian's stock `vsftpd` service also runs
/// pam_listfile (/etc/ftpusers) and pam_shells, which can reject the user.
pub const VSFTPD_PAM_SERVICE: &str = "ftpswarm-vsftpd";
/// Passive ports handed out by [`test_pasv_range`]: below the ephemeral range.
pub const PASV_RANGE_LO: u16 = 20000;
/// Inclusive upper end of the passive port area.
pub const PASV_RANGE_HI: u16 = 29999;
/// Loopback address every fixture server listens on.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How long one start attempt may take until the server greets with `220`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Start attempts (each with a fresh control port) before giving up. A retry
/// only happens when the port was taken between picking and binding it.
const START_ATTEMPTS: u32 = 4;
/// Connect/read timeout of one greeting probe during start-up.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long `Drop` waits for a killed process to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a server log goes into error messages.
const LOG_TAIL_BYTES: u64 = 4096;
/// Hint appended to errors that mean "not installed / not set up".
const INSTALL_HINT: &str = "hint: run `sudo bash .ci/install-servers.sh`";

/// Which server implementation a [`RealServer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    Vsftpd,
    Pyftpdlib,
    Proftpd,
    PureFtpd,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Vsftpd => "vsftpd",
            ServerKind::Pyftpdlib => "pyftpdlib",
            ServerKind::Proftpd => "ProFTPD",
            ServerKind::PureFtpd => "Pure-FTPd",
        }
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A running FTP server on 127.0.0.1. Dropping it kills the server's process
/// tree (including open sessions), reaps it and deletes its directories.
pub struct RealServer {
    pub kind: ServerKind,
    /// Control port on 127.0.0.1.
    pub ctrl_port: u16,
    /// Passive port range (inclusive) the server was configured with.
    pub pasv_min: u16,
    pub pasv_max: u16,
    pub user: String,
    pub password: String,
    /// The directory a login lands in (FTP path `/`), writable by the FTP
    /// user. The test process (root) may also put files here directly; keep
    /// them world-readable (the default umask does) so vsftpd's user can RETR
    /// them.
    pub root_dir: PathBuf,
    /// Server stdout/stderr (and, for vsftpd, fd 0; see `spawn_logged`).
    pub log_path: PathBuf,
    /// The greeting (every line) the server sent during start-up.
    pub greeting: String,
    /// Time from spawning the (last) attempt to reading its greeting.
    pub startup_time: Duration,
    proc: ServerProcess,
    /// vsftpd only: per-instance directory under the user's home.
    instance_dir: Option<PathBuf>,
    _tmp: TempDir,
}

impl RealServer {
    /// `127.0.0.1:<ctrl_port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(LOOPBACK, self.ctrl_port))
    }

    /// Pid of the server process (also its process group id).
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// `None` while the server runs, its exit status once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.proc.poll_exit()
    }

    /// The last few KiB of the server log, for assertion messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path)
    }
}

impl std::fmt::Debug for RealServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealServer")
            .field("kind", &self.kind)
            .field("ctrl_port", &self.ctrl_port)
            .field("pasv_min", &self.pasv_min)
            .field("pasv_max", &self.pasv_max)
            .field("user", &self.user)
            .field("root_dir", &self.root_dir)
            .field("pid", &self.proc.child.id())
            .finish_non_exhaustive()
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        self.proc.stop();
        if let Some(dir) = &self.instance_dir {
            let _ = fs::remove_dir_all(dir);
        }
        release_pasv_range(self.pasv_min);
        // `_tmp` (config, logs, pyftpdlib root) is removed when it drops.
    }
}

/// Applies the CI policy to a server start: in CI (env `CI` non-empty) a
/// server that cannot start fails the test with the full error; elsewhere the
/// test is skipped with a loud `SKIPPED:` line on stderr and `None`.
pub fn require_or_skip(result: Result<RealServer, String>) -> Option<RealServer> {
    match result {
        Ok(server) => Some(server),
        Err(err) => {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!("CI is set, so real FTP servers are required, but one failed to start:\n{err}");
            }
            eprintln!(
                "\n=====================================================================\n\
                 SKIPPED: {err}\n\
                 (this test needs a real FTP server; {INSTALL_HINT}; with CI set this is a failure)\n\
                 =====================================================================\n"
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------
// vsftpd
// ---------------------------------------------------------------------------

/// Starts vsftpd on 127.0.0.1:<free port> with passive ports
/// `pasv_min..=pasv_max`, logging in local user [`FTP_USER`] into a fresh
/// per-instance directory (chrooted, so it is FTP path `/`). Needs root.
pub fn start_vsftpd(pasv_min: u16, pasv_max: u16) -> Result<RealServer, String> {
    start_vsftpd_with(pasv_min, pasv_max, None)
}

/// A certificate and its key, in PEM, for a server under test.
pub struct TlsFiles {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsFiles {
    /// A self-signed certificate for `names` (its own CA: trust it with --ca-file).
    pub fn self_signed(names: &[&str]) -> TlsFiles {
        let made = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("rcgen makes a certificate for fixed names");
        TlsFiles {
            cert_pem: made.cert.pem(),
            key_pem: made.key_pair.serialize_pem(),
        }
    }
}

/// vsftpd with explicit FTPS required on control and data connections, and its default
/// `require_ssl_reuse=YES`: a data connection that does not resume the control connection's
/// TLS session is refused (`522 SSL connection failed: session reuse required`).
pub fn start_vsftpd_tls(pasv_min: u16, pasv_max: u16, tls: &TlsFiles) -> Result<RealServer, String> {
    start_vsftpd_with(pasv_min, pasv_max, Some((tls, false)))
}

/// As [`start_vsftpd_tls`], speaking implicit FTPS (`implicit_ssl=YES`): TLS from the first
/// byte, no AUTH TLS.
pub fn start_vsftpd_implicit_tls(pasv_min: u16, pasv_max: u16, tls: &TlsFiles) -> Result<RealServer, String> {
    start_vsftpd_with(pasv_min, pasv_max, Some((tls, true)))
}

fn start_vsftpd_with(pasv_min: u16, pasv_max: u16, tls: Option<(&TlsFiles, bool)>) -> Result<RealServer, String> {
    check_pasv_args(pasv_min, pasv_max)?;
    let bin = std::env::var_os("FTPSWARM_VSFTPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/vsftpd"));
    if !bin.is_file() {
        return Err(format!(
            "vsftpd not found at {} (override with FTPSWARM_VSFTPD); {INSTALL_HINT}",
            bin.display()
        ));
    }
    // vsftpd must start as root: it authenticates through PAM (reads
    // /etc/shadow), chroots and switches to the logged-in user.
    if effective_uid() != Some(0) {
        return Err(format!(
            "vsftpd fixture needs root (effective uid is {:?})",
            effective_uid()
        ));
    }
    let pam_file = Path::new("/etc/pam.d").join(VSFTPD_PAM_SERVICE);
    if !pam_file.is_file() {
        return Err(format!("PAM service {} is missing; {INSTALL_HINT}", pam_file.display()));
    }
    let account = lookup_user(FTP_USER)?;

    let tmp = make_tempdir("vsftpd")?;
    // vsftpd chroots its unprivileged helper processes here; it must exist,
    // be owned by root and not be writable by the FTP user. A private one
    // avoids depending on /var/run/vsftpd/empty, which lives on a tmpfs.
    let secure_chroot = tmp.path().join("empty");
    fs::create_dir(&secure_chroot).map_err(|e| format!("create {}: {e}", secure_chroot.display()))?;
    set_mode(&secure_chroot, 0o755)?;

    // Several vsftpd instances (other tests, other test binaries) log in as
    // the same local user at the same time: give each its own directory.
    let fixtures_dir = account.home.join("fixtures");
    ensure_user_dir(&fixtures_dir, &account)?;
    remove_stale_dirs(&fixtures_dir, "");
    let instance_dir = fixtures_dir.join(unique_name());
    ensure_user_dir(&instance_dir, &account)?;

    let token = unique_name();
    let conf_path = tmp.path().join("vsftpd.conf");
    let mut tls_lines = Vec::new();
    let implicit = tls.is_some_and(|(_, implicit)| implicit);
    if let Some((t, _)) = tls {
        let cert = tmp.path().join("cert.pem");
        let key = tmp.path().join("key.pem");
        write_root_only(&cert, &t.cert_pem)?;
        write_root_only(&key, &t.key_pem)?;
        tls_lines = vec![
            "ssl_enable=YES".to_string(),
            format!("rsa_cert_file={}", cert.display()),
            format!("rsa_private_key_file={}", key.display()),
            "force_local_logins_ssl=YES".into(),
            "force_local_data_ssl=YES".into(),
            "require_ssl_reuse=YES".into(),
            // vsftpd 3.0.3's default cipher list is DES-CBC3-SHA alone, which no current TLS
            // library offers.
            "ssl_ciphers=HIGH".into(),
        ];
        if implicit {
            tls_lines.push("implicit_ssl=YES".into());
        }
    }
    let started = launch_with(ServerKind::Vsftpd, tmp.path(), &token, implicit, |port| {
        let mut conf = vsftpd_config(port, pasv_min, pasv_max, &instance_dir, &secure_chroot, &token);
        for line in &tls_lines {
            conf.push_str(line);
            conf.push('\n');
        }
        write_root_only(&conf_path, &conf)?;
        let mut cmd = Command::new(&bin);
        cmd.arg(&conf_path);
        Ok(cmd)
    });
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&instance_dir);
            return Err(e);
        }
    };
    Ok(RealServer {
        kind: ServerKind::Vsftpd,
        ctrl_port: started.port,
        pasv_min,
        pasv_max,
        user: FTP_USER.to_string(),
        password: FTP_PASSWORD.to_string(),
        root_dir: instance_dir.clone(),
        log_path: started.log_path,
        greeting: started.greeting,
        startup_time: started.startup_time,
        proc: started.proc,
        instance_dir: Some(instance_dir),
        _tmp: tmp,
    })
}

/// The vsftpd configuration. vsftpd is strict about syntax: one
/// `option=value` per line, no spaces around `=`, no trailing whitespace and
/// no comments after a value; comments are whole `#` lines.
fn vsftpd_config(
    port: u16,
    pasv_min: u16,
    pasv_max: u16,
    local_root: &Path,
    secure_chroot_dir: &Path,
    token: &str,
) -> String {
    let lines: Vec<String> = vec![
        "# Generated by ftpswarm tests/common/servers.rs; one instance per test.".into(),
        // Standalone daemon in the foreground, so the test owns the process
        // and sees it exit; IPv4 loopback only.
        "listen=YES".into(),
        "listen_ipv6=NO".into(),
        format!("listen_address={LOOPBACK}"),
        format!("listen_port={port}"),
        "background=NO".into(),
        // vsftpd 3.0.3's seccomp filter misses syscalls that current glibc
        // and kernels use, so the session process is killed on its first
        // LIST/RETR/STOR: the client just sees the control connection close
        // with no reply and the data connection reset, and nothing is logged.
        "seccomp_sandbox=NO".into(),
        // isolate/isolate_network (default YES) clone every session into new
        // PID/IPC/network namespaces. Namespace setup and teardown serialise
        // in the kernel: with 8 parallel clients on the 2-core machine vsftpd
        // did ~1100 sessions/s with them and ~1550/s without, so a load test
        // would partly measure namespace churn.
        "isolate=NO".into(),
        "isolate_network=NO".into(),
        // Local (PAM) users only, writable.
        "anonymous_enable=NO".into(),
        "local_enable=YES".into(),
        "write_enable=YES".into(),
        "local_umask=022".into(),
        format!("pam_service_name={VSFTPD_PAM_SERVICE}"),
        "userlist_enable=NO".into(),
        "tcp_wrappers=NO".into(),
        "session_support=NO".into(),
        // Land in this instance's own directory and chroot there, so FTP
        // paths are "/"-relative and instances cannot see each other. vsftpd
        // refuses a writable chroot root unless told it is fine.
        format!("local_root={}", local_root.display()),
        "chroot_local_user=YES".into(),
        "allow_writeable_chroot=YES".into(),
        format!("secure_chroot_dir={}", secure_chroot_dir.display()),
        // Passive mode inside the test's range, always announcing loopback.
        "pasv_enable=YES".into(),
        format!("pasv_min_port={pasv_min}"),
        format!("pasv_max_port={pasv_max}"),
        format!("pasv_address={LOOPBACK}"),
        "pasv_addr_resolve=NO".into(),
        // Active mode stays possible, but vsftpd must not try to bind port
        // 20 for it.
        "port_enable=YES".into(),
        "connect_from_port_20=NO".into(),
        // Explicit caps (the defaults, 0, mean unlimited): far above what a
        // load test opens, yet a runaway test gets "421 There are too many
        // connected users" instead of exhausting the machine.
        "max_clients=2000".into(),
        "max_per_ip=2000".into(),
        // No transfer log: per-transfer logging would be load-test overhead,
        // and errors still reach the log file via fd 0 / stderr.
        "xferlog_enable=NO".into(),
        "syslog_enable=NO".into(),
        "dual_log_enable=NO".into(),
        // Listings in UTC, independent of the machine's time zone.
        "use_localtime=NO".into(),
        "dirmessage_enable=NO".into(),
        "hide_ids=NO".into(),
        "async_abor_enable=YES".into(),
        // A unique banner lets start-up tell this instance's greeting from
        // another server that grabbed the port first.
        format!("ftpd_banner=ftpswarm fixture vsFTPd {token}"),
    ];
    let mut conf = lines.join("\n");
    conf.push('\n');
    conf
}

// ---------------------------------------------------------------------------
// pyftpdlib
// ---------------------------------------------------------------------------

/// Runs pyftpdlib's default (single-process, epoll) FTPServer.
/// argv: host port user password root pasv_min pasv_max token
const PYFTPDLIB_SCRIPT: &str = r#"
import logging
import sys

import pyftpdlib
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    host, port, user, password, root, pmin, pmax, token = sys.argv[1:9]
    # pyftpdlib logs every command at INFO: under load that is CPU time and
    # a huge log. WARNING keeps errors and the "random kernel-assigned port"
    # warning (passive range exhausted).
    logging.basicConfig(
        level=logging.WARNING, format="[pyftpdlib %(levelname)s] %(message)s"
    )
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmwMT")
    base = FTPHandler
    if len(sys.argv) > 10:
        # FTPS: TLS required on control and data connections (needs pyOpenSSL).
        from pyftpdlib.handlers import TLS_FTPHandler

        base = TLS_FTPHandler
        base.certfile, base.keyfile = sys.argv[9], sys.argv[10]
        base.tls_control_required = True
        base.tls_data_required = True

    class Handler(base):
        pass

    Handler.authorizer = authorizer
    Handler.passive_ports = range(int(pmin), int(pmax) + 1)
    Handler.masquerade_address = "127.0.0.1"
    Handler.banner = "ftpswarm fixture pyftpdlib %s %s" % (pyftpdlib.__ver__, token)

    server = FTPServer((host, int(port)), Handler, backlog=1024)
    server.max_cons = 0  # unlimited
    server.max_cons_per_ip = 0  # unlimited
    print("listening on %s:%s" % (host, port), flush=True)
    server.serve_forever(handle_exit=True)


main()
"#;

/// Starts pyftpdlib on 127.0.0.1:<free port> with passive ports
/// `pasv_min..=pasv_max` and one virtual user rooted at a temp directory.
/// Uses `python3` from PATH, or env `FTPSWARM_PYTHON`.
pub fn start_pyftpdlib(pasv_min: u16, pasv_max: u16) -> Result<RealServer, String> {
    start_pyftpdlib_with(pasv_min, pasv_max, None)
}

/// pyftpdlib's TLS_FTPHandler, with TLS required on control and data connections.
pub fn start_pyftpdlib_tls(pasv_min: u16, pasv_max: u16, tls: &TlsFiles) -> Result<RealServer, String> {
    start_pyftpdlib_with(pasv_min, pasv_max, Some(tls))
}

fn start_pyftpdlib_with(pasv_min: u16, pasv_max: u16, tls: Option<&TlsFiles>) -> Result<RealServer, String> {
    check_pasv_args(pasv_min, pasv_max)?;
    let python = std::env::var_os("FTPSWARM_PYTHON")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "python3".into());
    let tmp = make_tempdir("pyftpdlib")?;
    let root = tmp.path().join("root");
    fs::create_dir(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    let script = tmp.path().join("serve.py");
    fs::write(&script, PYFTPDLIB_SCRIPT).map_err(|e| format!("write {}: {e}", script.display()))?;

    let token = unique_name();
    let tls_files = match tls {
        Some(t) => {
            let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
            write_root_only(&cert, &t.cert_pem)?;
            write_root_only(&key, &t.key_pem)?;
            vec![cert, key]
        }
        None => Vec::new(),
    };
    let started = launch(ServerKind::Pyftpdlib, tmp.path(), &token, |port| {
        let mut cmd = Command::new(&python);
        cmd.arg("-u")
            .arg(&script)
            .arg(LOOPBACK.to_string())
            .arg(port.to_string())
            .arg(FTP_USER)
            .arg(FTP_PASSWORD)
            .arg(&root)
            .arg(pasv_min.to_string())
            .arg(pasv_max.to_string())
            .arg(&token)
            .args(&tls_files);
        Ok(cmd)
    })
    .map_err(|e| format!("{e}\n(python: {python:?}, override with FTPSWARM_PYTHON)"))?;
    Ok(RealServer {
        kind: ServerKind::Pyftpdlib,
        ctrl_port: started.port,
        pasv_min,
        pasv_max,
        user: FTP_USER.to_string(),
        password: FTP_PASSWORD.to_string(),
        root_dir: root,
        log_path: started.log_path,
        greeting: started.greeting,
        startup_time: started.startup_time,
        proc: started.proc,
        instance_dir: None,
        _tmp: tmp,
    })
}

// ---------------------------------------------------------------------------
// ProFTPD and Pure-FTPd (unpacked beside vsftpd: their packages conflict)
// ---------------------------------------------------------------------------

/// Where `.ci/install-servers.sh` unpacks ProFTPD and Pure-FTPd.
fn unpacked_servers() -> PathBuf {
    std::env::var_os("FTPSWARM_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/ftpswarm-servers"))
}

/// A SHA-512 crypt hash of [`FTP_PASSWORD`]: cheap logins (an argon2 hash costs 1–3 s each).
fn password_hash() -> Result<String, String> {
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", "ftpswarmfixture", FTP_PASSWORD])
        .output()
        .map_err(|e| format!("openssl passwd: {e}; {INSTALL_HINT}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl passwd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A fresh directory under the FTP user's home, which ProFTPD and Pure-FTPd chroot into.
fn user_instance_dir() -> Result<(Account, PathBuf), String> {
    let account = lookup_user(FTP_USER)?;
    let fixtures_dir = account.home.join("fixtures");
    ensure_user_dir(&fixtures_dir, &account)?;
    remove_stale_dirs(&fixtures_dir, "");
    let instance_dir = fixtures_dir.join(unique_name());
    ensure_user_dir(&instance_dir, &account)?;
    Ok((account, instance_dir))
}

fn require_root(what: &str) -> Result<(), String> {
    if effective_uid() != Some(0) {
        return Err(format!(
            "{what} fixture needs root (effective uid is {:?})",
            effective_uid()
        ));
    }
    Ok(())
}

/// Starts ProFTPD 1.3.8 standalone on 127.0.0.1:<free port>, logging in [`FTP_USER`]
/// (from its own AuthUserFile) into a fresh chrooted directory. ProFTPD needs
/// `pasv_min < pasv_max`, and never hands out the top port of its range.
pub fn start_proftpd(pasv_min: u16, pasv_max: u16) -> Result<RealServer, String> {
    start_proftpd_with(pasv_min, pasv_max, None)
}

/// ProFTPD with mod_tls: explicit FTPS required on control and data connections, and its
/// default of requiring data connections to resume the control connection's TLS session.
pub fn start_proftpd_tls(pasv_min: u16, pasv_max: u16, tls: &TlsFiles) -> Result<RealServer, String> {
    start_proftpd_with(pasv_min, pasv_max, Some(tls))
}

fn start_proftpd_with(pasv_min: u16, pasv_max: u16, tls: Option<&TlsFiles>) -> Result<RealServer, String> {
    check_pasv_args(pasv_min, pasv_max)?;
    if pasv_min >= pasv_max {
        return Err("ProFTPD's PassivePorts needs min < max".into());
    }
    let bin = unpacked_servers().join("usr/sbin/proftpd");
    if !bin.is_file() {
        return Err(format!("ProFTPD not found at {}; {INSTALL_HINT}", bin.display()));
    }
    require_root("ProFTPD")?;
    let (account, instance_dir) = user_instance_dir()?;
    let tmp = make_tempdir("proftpd")?;
    let passwd = tmp.path().join("passwd");
    write_root_only(
        &passwd,
        &format!(
            "{FTP_USER}:{}:{}:{}::{}:/bin/bash\n",
            password_hash()?,
            account.uid,
            account.gid,
            instance_dir.display()
        ),
    )?;
    let token = unique_name();
    let conf_path = tmp.path().join("proftpd.conf");
    let dir = tmp.path().to_path_buf();
    let mut tls_conf = String::new();
    if let Some(t) = tls {
        let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
        write_root_only(&cert, &t.cert_pem)?;
        write_root_only(&key, &t.key_pem)?;
        let modules = unpacked_servers().join("usr/lib/proftpd");
        if !modules.join("mod_tls.so").is_file() {
            return Err(format!(
                "ProFTPD's mod_tls not found in {}; {INSTALL_HINT}",
                modules.display()
            ));
        }
        // rcgen's keys are ECDSA: the EC directives, not the RSA ones.
        tls_conf = format!(
            "ModulePath {modules}\nLoadModule mod_tls.c\nTLSEngine on\nTLSRequired on\n\
             TLSProtocol TLSv1.2 TLSv1.3\nTLSECCertificateFile {cert}\nTLSECCertificateKeyFile {key}\n\
             TLSLog {dir}/tls.log\n",
            modules = modules.display(),
            cert = cert.display(),
            key = key.display(),
            dir = tmp.path().display(),
        );
    }
    let started = launch(ServerKind::Proftpd, tmp.path(), &token, |port| {
        let mut conf = format!(
            "ServerType standalone\nServerIdent on \"ftpswarm fixture ProFTPD {token}\"\nDefaultAddress 127.0.0.1\n\
             SocketBindTight on\nPort {port}\nUser nobody\nGroup nogroup\nUseIPv6 off\nUseReverseDNS off\n\
             DelayEngine off\nWtmpLog off\nAuthOrder mod_auth_file.c\nAuthUserFile {passwd}\n\
             RequireValidShell off\nDefaultRoot ~\nMaxInstances 2000\nMaxClients none\nMaxLoginAttempts 100\n\
             PassivePorts {pasv_min} {pasv_max}\nMasqueradeAddress 127.0.0.1\nAllowOverwrite on\n\
             PidFile {dir}/proftpd.pid\nScoreboardFile {dir}/proftpd.scoreboard\nDelayTable none\n\
             TransferLog none\n",
            passwd = passwd.display(),
            dir = dir.display()
        );
        conf.push_str(&tls_conf);
        write_root_only(&conf_path, &conf)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--nodaemon").arg("--config").arg(&conf_path);
        Ok(cmd)
    });
    finish_unpacked(ServerKind::Proftpd, started, pasv_min, pasv_max, instance_dir, tmp)
}

/// Starts Pure-FTPd 1.0.50 standalone on 127.0.0.1:<free port>, logging in [`FTP_USER`]
/// (a PureDB virtual user) into a fresh chrooted directory. Pure-FTPd admits at most
/// width / 2 clients whatever `-c` says.
pub fn start_pure_ftpd(pasv_min: u16, pasv_max: u16) -> Result<RealServer, String> {
    check_pasv_args(pasv_min, pasv_max)?;
    let root = unpacked_servers();
    let (bin, pure_pw) = (root.join("usr/sbin/pure-ftpd"), root.join("usr/bin/pure-pw"));
    if !bin.is_file() || !pure_pw.is_file() {
        return Err(format!("Pure-FTPd not found at {}; {INSTALL_HINT}", bin.display()));
    }
    require_root("Pure-FTPd")?;
    let (account, instance_dir) = user_instance_dir()?;
    let tmp = make_tempdir("pure-ftpd")?;
    let passwd = tmp.path().join("pureftpd.passwd");
    let pdb = tmp.path().join("pureftpd.pdb");
    write_root_only(
        &passwd,
        &format!(
            "{FTP_USER}:{}:{}:{}::{}/./::::::::::::\n",
            password_hash()?,
            account.uid,
            account.gid,
            instance_dir.display()
        ),
    )?;
    let out = Command::new(&pure_pw)
        .arg("mkdb")
        .arg(&pdb)
        .arg("-f")
        .arg(&passwd)
        .output()
        .map_err(|e| format!("pure-pw mkdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("pure-pw mkdb failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let token = unique_name();
    // The fortune file puts the token into the greeting.
    let fortunes = tmp.path().join("fortunes");
    fs::write(&fortunes, format!("ftpswarm fixture Pure-FTPd {token}\n"))
        .map_err(|e| format!("write fortunes: {e}"))?;
    let started = launch(ServerKind::PureFtpd, tmp.path(), &token, |port| {
        let mut cmd = Command::new(&bin);
        cmd.arg("-S")
            .arg(format!("127.0.0.1,{port}"))
            .arg("-p")
            .arg(format!("{pasv_min}:{pasv_max}"))
            .arg("-P")
            .arg("127.0.0.1")
            .arg("-l")
            .arg(format!("puredb:{}", pdb.display()))
            .args(["-E", "-A", "-H", "-C", "2000"])
            .arg("-F")
            .arg(&fortunes);
        // A one-port range means no cap at all, and -c would impose one.
        if pasv_max > pasv_min {
            cmd.args(["-c", "2000"]);
        }
        Ok(cmd)
    });
    finish_unpacked(ServerKind::PureFtpd, started, pasv_min, pasv_max, instance_dir, tmp)
}

fn finish_unpacked(
    kind: ServerKind,
    started: Result<Started, String>,
    pasv_min: u16,
    pasv_max: u16,
    instance_dir: PathBuf,
    tmp: TempDir,
) -> Result<RealServer, String> {
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&instance_dir);
            return Err(e);
        }
    };
    Ok(RealServer {
        kind,
        ctrl_port: started.port,
        pasv_min,
        pasv_max,
        user: FTP_USER.to_string(),
        password: FTP_PASSWORD.to_string(),
        root_dir: instance_dir.clone(),
        log_path: started.log_path,
        greeting: started.greeting,
        startup_time: started.startup_time,
        proc: started.proc,
        instance_dir: Some(instance_dir),
        _tmp: tmp,
    })
}

// ---------------------------------------------------------------------------
// Start-up: free port, spawn, wait for 220, retry on a taken port
// ---------------------------------------------------------------------------

struct Started {
    port: u16,
    proc: ServerProcess,
    log_path: PathBuf,
    greeting: String,
    startup_time: Duration,
}

enum AttemptError {
    /// The control port was taken by someone else: try another one.
    PortTaken(String),
    Fatal(String),
}

/// Starts a server, trying up to [`START_ATTEMPTS`] control ports. `make_cmd`
/// gets the port and returns the command (writing any config it needs).
fn launch(
    kind: ServerKind,
    dir: &Path,
    token: &str,
    make_cmd: impl FnMut(u16) -> Result<Command, String>,
) -> Result<Started, String> {
    launch_with(kind, dir, token, false, make_cmd)
}

/// As [`launch`]; a server speaking implicit FTPS greets only inside TLS, so it counts as up
/// once it accepts connections.
fn launch_with(
    kind: ServerKind,
    dir: &Path,
    token: &str,
    implicit_tls: bool,
    mut make_cmd: impl FnMut(u16) -> Result<Command, String>,
) -> Result<Started, String> {
    let mut taken = Vec::new();
    for attempt in 1..=START_ATTEMPTS {
        let port = free_port()?;
        let log_path = dir.join(format!("{}-attempt{attempt}.log", kind.name()));
        let cmd = make_cmd(port)?;
        match start_once(kind, cmd, port, &log_path, token, implicit_tls) {
            Ok(started) => return Ok(started),
            Err(AttemptError::PortTaken(why)) => taken.push(why),
            Err(AttemptError::Fatal(why)) => return Err(why),
        }
    }
    Err(format!(
        "{kind}: control port was taken on all {START_ATTEMPTS} attempts:\n{}",
        taken.join("\n")
    ))
}

fn start_once(
    kind: ServerKind,
    mut cmd: Command,
    port: u16,
    log_path: &Path,
    token: &str,
    implicit_tls: bool,
) -> Result<Started, AttemptError> {
    let fatal = AttemptError::Fatal;
    let t0 = Instant::now();
    let mut proc = spawn_logged(&mut cmd, log_path).map_err(|e| fatal(format!("{kind}: cannot start {cmd:?}: {e}")))?;
    let deadline = t0 + START_TIMEOUT;
    loop {
        if let Some(status) = proc.poll_exit() {
            let tail = log_tail(log_path);
            let msg = format!(
                "{kind} exited during start-up ({status}) on port {port}; log {}:\n{tail}",
                log_path.display()
            );
            return Err(if looks_like_port_taken(&tail) {
                AttemptError::PortTaken(msg)
            } else {
                fatal(msg)
            });
        }
        if implicit_tls {
            let addr = SocketAddr::V4(SocketAddrV4::new(LOOPBACK, port));
            if TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok() {
                return Ok(Started {
                    port,
                    proc,
                    log_path: log_path.to_path_buf(),
                    greeting: format!("(implicit FTPS, greeting inside TLS) {token}"),
                    startup_time: t0.elapsed(),
                });
            }
        }
        let probe_error = match read_greeting_within(port, PROBE_TIMEOUT) {
            Ok(line) if line.contains(token) => {
                return Ok(Started {
                    port,
                    proc,
                    log_path: log_path.to_path_buf(),
                    greeting: line,
                    startup_time: t0.elapsed(),
                });
            }
            Ok(line) => {
                // Someone else's server answered on the port we picked.
                proc.stop();
                return Err(AttemptError::PortTaken(format!(
                    "{kind}: port {port} answered with a foreign greeting {line:?}"
                )));
            }
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            let tail = log_tail(log_path);
            proc.stop();
            return Err(fatal(format!(
                "{kind} did not greet on 127.0.0.1:{port} within {START_TIMEOUT:?} \
                 (last probe: {probe_error}); log {}:\n{tail}",
                log_path.display()
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn looks_like_port_taken(log: &str) -> bool {
    // vsftpd: "500 OOPS: could not bind listening IPv4 socket";
    // Python: "OSError: [Errno 98] Address already in use".
    log.contains("could not bind listening") || log.contains("Address already in use")
}

/// A free TCP port on 127.0.0.1 (from the ephemeral range). It is free when
/// this returns; [`launch`] retries if it is taken before the server binds it.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(SocketAddrV4::new(LOOPBACK, 0)).map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let port = listener.local_addr().map_err(|e| format!("local_addr: {e}"))?.port();
    Ok(port)
}

/// Connects to 127.0.0.1:`port` and reads the greeting (following `220-`
/// continuation lines). Returns all its lines, or an error naming what was
/// read instead (e.g. `421`/`500 OOPS`).
pub fn read_greeting(port: u16) -> Result<String, String> {
    read_greeting_within(port, Duration::from_secs(2))
}

fn read_greeting_within(port: u16, timeout: Duration) -> Result<String, String> {
    let addr = SocketAddr::V4(SocketAddrV4::new(LOOPBACK, port));
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| format!("set_write_timeout: {e}"))?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| format!("clone stream: {e}"))?);
    let mut last = String::new();
    let mut all = String::new();
    // A greeting is a handful of lines at most; bound it anyway.
    for _ in 0..32 {
        let mut line = String::new();
        // `take` bounds a line from a server that never sends '\n'.
        let n = (&mut reader)
            .take(4096)
            .read_line(&mut line)
            .map_err(|e| format!("read greeting from {addr}: {e} (got so far: {last:?})"))?;
        if n == 0 {
            return Err(format!(
                "{addr} closed the connection before a greeting (got: {last:?})"
            ));
        }
        last = line.trim_end().to_string();
        all.push_str(&last);
        all.push('\n');
        let bytes = last.as_bytes();
        let is_final = bytes.len() >= 4 && bytes[..3].iter().all(u8::is_ascii_digit) && bytes[3] == b' ';
        if is_final || last.len() == 3 {
            if last.starts_with("220") {
                let mut s = &stream;
                let _ = s.write_all(b"QUIT\r\n");
                // Every line: Pure-FTPd puts what identifies an instance in the middle.
                return Ok(all.trim_end().to_string());
            }
            return Err(format!("{addr} greeted with {last:?}, not 220"));
        }
    }
    Err(format!("{addr}: greeting too long (last line {last:?})"))
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

struct ServerProcess {
    child: Child,
    watchdog: Option<Watchdog>,
}

struct Watchdog {
    child: Child,
    /// Closing this (drop, or the test process dying) makes it kill the tree.
    stdin: Option<ChildStdin>,
}

/// The watchdog, `sh -c SCRIPT name <server pid>`: waits for EOF on stdin,
/// then kills the server's whole process tree and process group.
///
/// A tree, not just the group: vsftpd calls setsid() for every FTP session,
/// so session processes leave the server's process group and would survive
/// a group kill (the test's control connections stay open). Each process is
/// SIGSTOPped before its children are read from
/// /proc/<pid>/task/<pid>/children, so nothing can fork behind our back, then
/// everything found gets SIGKILL. Ignores SIGHUP/SIGINT so a Ctrl-C of
/// `cargo test` (which kills the test process) still cleans up through the
/// closed pipe. dash's `kill` needs `-s KILL --` to accept a negative
/// (group) id; `kill -KILL -- -PID` fails with "Illegal number: -".
const WATCHDOG_SCRIPT: &str = r#"trap '' HUP INT
read -r _ignored
stop_tree() {
    kill -s STOP "$1" 2>/dev/null || return 0
    for c in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        stop_tree "$c"
    done
    echo "$1"
}
pids=$(stop_tree "$1")
if [ -n "$pids" ]; then kill -s KILL $pids 2>/dev/null; fi
kill -s KILL -- "-$1" 2>/dev/null
exit 0
"#;

/// Spawns `cmd` in a new process group with stdin, stdout and stderr all on
/// `log_path`, plus a watchdog for its process tree.
///
/// stdin too: vsftpd writes its `500 OOPS: ...` start-up errors to fd 0, not
/// to stderr (it was built for inetd, where fd 0 is the client socket), so
/// fd 0 must be the log file opened read-write or the reason is lost.
fn spawn_logged(cmd: &mut Command, log_path: &Path) -> Result<ServerProcess, String> {
    let log = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(log_path)
        .map_err(|e| format!("open {}: {e}", log_path.display()))?;
    let clone = |f: &File| f.try_clone().map_err(|e| format!("dup {}: {e}", log_path.display()));
    cmd.stdin(Stdio::from(clone(&log)?))
        .stdout(Stdio::from(clone(&log)?))
        .stderr(Stdio::from(log))
        .process_group(0);
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    let pgid = child.id();
    // Without the watchdog the server still stops on Drop (by pid), so a
    // missing `sh` is not an error; only cleanup after a crash suffers.
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("ftpswarm-fixture-watchdog")
        .arg(pgid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
        .map(|mut child| {
            let stdin = child.stdin.take();
            Watchdog { child, stdin }
        });
    Ok(ServerProcess { child, watchdog })
}

impl ServerProcess {
    /// The server's exit status if it has exited (reaping it). Once the
    /// server is reaped its pid may be reused, so the watchdog is disarmed
    /// (killed without closing its stdin) before it could signal that pid.
    fn poll_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten()?;
        if let Some(mut wd) = self.watchdog.take() {
            let _ = wd.child.kill();
            let _ = wait_bounded(&mut wd.child, REAP_TIMEOUT);
        }
        Some(status)
    }

    /// Kills the server's process tree and reaps the server and watchdog.
    /// Bounded: gives up (leaving a zombie at worst) rather than hang.
    fn stop(&mut self) {
        // An already-exited server only needs reaping (and the watchdog
        // disarming); its pid must not be signalled any more.
        if self.poll_exit().is_none() {
            if let Some(mut wd) = self.watchdog.take() {
                drop(wd.stdin.take()); // EOF: the watchdog kills the tree
                if !wait_bounded(&mut wd.child, REAP_TIMEOUT) {
                    let _ = wd.child.kill();
                    let _ = wait_bounded(&mut wd.child, REAP_TIMEOUT);
                }
            }
        }
        // Also kill by pid in case there was no watchdog. std never signals
        // a child it has already reaped, so this cannot hit a reused pid.
        let _ = self.child.kill();
        let _ = wait_bounded(&mut self.child, REAP_TIMEOUT);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Idempotent; covers error paths that drop without calling stop().
        self.stop();
    }
}

/// Waits up to `timeout` for `child` to exit; true once it has been reaped.
fn wait_bounded(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            // Still running at the deadline, or already reaped (ECHILD).
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// The last [`LOG_TAIL_BYTES`] of a log file, lossily decoded.
fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(LOG_TAIL_BYTES);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(LOG_TAIL_BYTES).read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        Ok(if start > 0 { format!("[...]{text}") } else { text })
    };
    match read() {
        Ok(s) if s.trim().is_empty() => "(log is empty)".to_string(),
        Ok(s) => s,
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

// ---------------------------------------------------------------------------
// Passive port ranges
// ---------------------------------------------------------------------------

/// Granularity of passive range reservations (ports).
const PASV_BLOCK: u16 = 10;

static PASV_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Reservation sockets by range start; see [`test_pasv_range`].
fn pasv_reservations() -> &'static Mutex<HashMap<u16, Vec<UdpSocket>>> {
    static RES: OnceLock<Mutex<HashMap<u16, Vec<UdpSocket>>>> = OnceLock::new();
    RES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Returns an inclusive passive port range `(min, max)` of `width` ports
/// (clamped to 1..=10000) inside [`PASV_RANGE_LO`]..=[`PASV_RANGE_HI`],
/// outside the ephemeral range (see the module docs).
///
/// Ranges start on 10-port blocks. The start block is derived from the pid
/// and a per-process counter, so concurrent tests begin their search in
/// different places; a range is taken only if every TCP port in it can be
/// bound on 127.0.0.1 right now and its blocks can be reserved.
///
/// A reservation is a UDP socket bound to 127.0.0.1:<block start> per block
/// (UDP, so it never occupies the TCP ports the server needs). The kernel
/// makes that bind exclusive across all processes and frees it when the
/// process dies, so two test processes can never get overlapping ranges,
/// and no lock file can go stale. Reservations are held until the
/// [`RealServer`] whose `pasv_min` is the range start is dropped, or until
/// the test process exits.
///
/// If no range is free, returns the first candidate unreserved; the server
/// or the test will then report the port clash.
pub fn test_pasv_range(width: u16) -> (u16, u16) {
    let span = PASV_RANGE_HI - PASV_RANGE_LO + 1;
    let width = width.clamp(1, span);
    let blocks_needed = width.div_ceil(PASV_BLOCK);
    let total_blocks = span / PASV_BLOCK;
    let starts = u32::from(total_blocks - blocks_needed + 1);
    let pid = std::process::id();
    let n = PASV_COUNTER.fetch_add(1, Ordering::Relaxed);
    // Spread processes (Knuth multiplicative hash of the pid) and successive
    // calls in one process (a stride of 7 blocks) over the area.
    let first = (pid.wrapping_mul(2_654_435_761) >> 8).wrapping_add(n.wrapping_mul(7)) % starts;
    for i in 0..starts {
        let block = (first + i) % starts;
        let Ok(block) = u16::try_from(block) else {
            continue;
        };
        let lo = PASV_RANGE_LO + block * PASV_BLOCK;
        let hi = lo + (width - 1);
        let Some(locks) = reserve_blocks(lo, blocks_needed) else {
            continue;
        };
        if (lo..=hi).all(tcp_port_bindable) {
            if let Ok(mut map) = pasv_reservations().lock() {
                map.insert(lo, locks);
            }
            return (lo, hi);
        }
        // Not bindable (used by something else): `locks` drops, releasing.
    }
    let lo = PASV_RANGE_LO + u16::try_from(first).unwrap_or(0) * PASV_BLOCK;
    (lo, lo + (width - 1))
}

/// Releases the reservation of a range returned by [`test_pasv_range`]
/// (no-op for ranges that were not reserved by this process).
pub fn release_pasv_range(pasv_min: u16) {
    if let Ok(mut map) = pasv_reservations().lock() {
        map.remove(&pasv_min);
    }
}

fn reserve_blocks(lo: u16, blocks: u16) -> Option<Vec<UdpSocket>> {
    (0..blocks)
        .map(|b| UdpSocket::bind(SocketAddrV4::new(LOOPBACK, lo + b * PASV_BLOCK)).ok())
        .collect()
}

fn tcp_port_bindable(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(LOOPBACK, port)).is_ok()
}

fn check_pasv_args(pasv_min: u16, pasv_max: u16) -> Result<(), String> {
    if pasv_min == 0 || pasv_min > pasv_max {
        return Err(format!(
            "bad passive range {pasv_min}..={pasv_max} (use test_pasv_range)"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// `<pid>-<counter>-<nanos>`: unique per call across processes. The leading
/// pid lets [`remove_stale_dirs`] tell whose directory it is.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temp dir named `ftpswarm-<kind>-<pid>-XXXXXX`, after removing such dirs
/// left behind by test processes that no longer exist.
fn make_tempdir(kind: &str) -> Result<TempDir, String> {
    let prefix = format!("ftpswarm-{kind}-");
    remove_stale_dirs(&std::env::temp_dir(), &prefix);
    tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir()
        .map_err(|e| format!("create temp dir: {e}"))
}

struct Account {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// Looks `name` up in /etc/passwd (the install script creates it there).
fn lookup_user(name: &str) -> Result<Account, String> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("read /etc/passwd: {e}"))?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 7 && f[0] == name {
            let uid = f[2].parse().map_err(|e| format!("uid of {name}: {e}"))?;
            let gid = f[3].parse().map_err(|e| format!("gid of {name}: {e}"))?;
            return Ok(Account {
                uid,
                gid,
                home: PathBuf::from(f[5]),
            });
        }
    }
    Err(format!("local user {name:?} does not exist; {INSTALL_HINT}"))
}

/// Effective uid from /proc/self/status (std has no geteuid).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Creates `dir` if needed, owned by the account, mode 0755.
fn ensure_user_dir(dir: &Path, account: &Account) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    std::os::unix::fs::chown(dir, Some(account.uid), Some(account.gid))
        .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    set_mode(dir, 0o755)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {:o} {}: {e}", mode, path.display()))
}

/// Writes a file owned by the current user (root) with mode 0600: vsftpd
/// refuses a config file it does not own ("500 OOPS: config file not owned
/// by correct user, or not a file").
fn write_root_only(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))?;
    set_mode(path, 0o600)
}

/// Removes directories in `parent` named `<prefix><pid>-...` whose pid is
/// not a running process: left behind by test processes killed before their
/// `Drop` ran. Best effort.
fn remove_stale_dirs(parent: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
