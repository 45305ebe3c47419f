//! The local server's own CPU: the process that owns its control listener, read from /proc.
//!
//! A server that serves every session from one event loop (pyftpdlib) runs out at one core,
//! long before a 2-core host does: pyftpdlib's realistic load at twice the sessions was
//! planned on the host's busy share and refuted (9 ports, 0.21% predicted, 12.6% failed),
//! because its loop, not the host, saturated. The plan's contention model takes this share for
//! such a server. For a server with a process per session (vsftpd, ProFTPD, Pure-FTPd) the
//! listener's owner is only the master, which does little; the share is recorded all the same
//! and the plan does not use it.

use std::net::SocketAddr;
use std::time::Instant;

/// The process behind the server's control port, and its CPU time at the previous reading.
#[derive(Debug)]
pub struct ServerProcess {
    pid: i32,
    ticks_per_s: f64,
    last: Option<(u64, Instant)>,
}

impl ServerProcess {
    /// The process listening on `control`, when it runs on this host and is not this one (the
    /// embedded server shares our process, whose CPU is mostly the load's). `None` when it
    /// cannot be told: no listener found, or its /proc entries are not ours to read.
    pub fn find(control: SocketAddr) -> Option<ServerProcess> {
        let inode = listener_inode(control)?;
        let pid = owner_of_socket(inode)?;
        if u32::try_from(pid).ok() == Some(std::process::id()) {
            return None;
        }
        let mut found = ServerProcess {
            pid,
            ticks_per_s: procfs::ticks_per_second() as f64,
            last: None,
        };
        // The first reading, which the next call measures from; and proof it can be read.
        found.last = Some((found.ticks()?, Instant::now()));
        Some(found)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Cores the process kept busy since the previous call or since it was found (1.0 = one
    /// core all the time); `None` when no time passed, or once the process is gone.
    pub fn cpu_since(&mut self) -> Option<f64> {
        let ticks = self.ticks()?;
        let now = Instant::now();
        let share = self.last.and_then(|(t0, at)| {
            let wall = now.duration_since(at).as_secs_f64();
            (wall > 0.0).then(|| ticks.saturating_sub(t0) as f64 / self.ticks_per_s / wall)
        });
        self.last = Some((ticks, now));
        share
    }

    fn ticks(&self) -> Option<u64> {
        let stat = procfs::process::Process::new(self.pid).ok()?.stat().ok()?;
        Some(stat.utime + stat.stime)
    }
}

/// The inode of the socket listening on `control`'s port, on its address or on every address.
fn listener_inode(control: SocketAddr) -> Option<u64> {
    let entries = procfs::net::tcp().into_iter().chain(procfs::net::tcp6()).flatten();
    let mut on_any = None;
    for e in entries {
        if e.state != procfs::net::TcpState::Listen || e.local_address.port() != control.port() {
            continue;
        }
        if e.local_address.ip() == control.ip() {
            return Some(e.inode);
        }
        if e.local_address.ip().is_unspecified() {
            on_any = Some(e.inode);
        }
    }
    on_any
}

/// The process holding socket `inode` open (the first one found: a forking server's master
/// and its children share it, and the lowest pid is the master).
fn owner_of_socket(inode: u64) -> Option<i32> {
    let mut pids: Vec<i32> = procfs::process::all_processes()
        .ok()?
        .flatten()
        .filter(|p| {
            p.fd().is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| matches!(fd.target, procfs::process::FDTarget::Socket(i) if i == inode))
            })
        })
        .map(|p| p.pid)
        .collect();
    pids.sort_unstable();
    pids.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_in_another_process_is_found_and_its_cpu_read() {
        // A child that listens and burns CPU: found by its port, and seen busy.
        let script = "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
                      print(s.getsockname()[1],flush=True)\nend=time.time()+30\nwhile time.time()<end: pass\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let found = ServerProcess::find(SocketAddr::from(([127, 0, 0, 1], port)));
        let cpu = found.map(|mut p| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            (p.pid(), p.cpu_since())
        });
        child.kill().unwrap();
        child.wait().unwrap();
        let (pid, cpu) = cpu.unwrap();
        assert_eq!(pid as u32, child.id());
        let cpu = cpu.unwrap();
        // It spins on one core; a busy host gives it less, never more than one.
        assert!(cpu > 0.2 && cpu < 1.2, "{cpu}");
    }

    #[test]
    fn our_own_listener_is_not_a_server_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(ServerProcess::find(addr).is_none());
        // Nothing listening: nothing found.
        drop(l);
        assert!(ServerProcess::find(addr).is_none());
    }
}
