//! The run's file-descriptor budget: every control and data connection is a socket, and the
//! embedded server holds its own end of each plus a listener. Linux starts processes with a
//! soft limit (often 1,024) far below what thousands of sessions need; past it, connects fail
//! with EMFILE mid-run and look like a server failing. The soft limit is raised to what the
//! run needs before any traffic, and a hard limit too low for it is an error that says so.

use crate::profile::{LoadModel, Profile};
use thiserror::Error;

/// Descriptors besides the connections: stdio, the run's output files, the netlink socket,
/// the runtime's own (epoll, eventfds), the embedded server's control listener.
pub const BASE_DESCRIPTORS: u64 = 64;
/// Sockets per control connection at once: its own and its data connection's.
pub const CLIENT_SOCKETS_PER_CONNECTION: u64 = 2;
/// The embedded server's share in the same process: its ends of both, and its listener.
pub const EMBEDDED_SOCKETS_PER_CONNECTION: u64 = 3;
/// What a control connection holds for its whole life: its socket (and, on the embedded
/// server, the server's end). Its data connection and listener come and go with transfers.
pub const CLIENT_CONTROL_SOCKETS: u64 = 1;
pub const EMBEDDED_CONTROL_SOCKETS: u64 = 1;

/// What the run will open at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    pub connections: u64,
    pub per_connection: u64,
    pub needed: u64,
    /// What the connections hold for sure: every control socket at once. Data sockets are
    /// open only during transfers, so a load with think time never has all of them at once.
    pub floor: u64,
    /// A closed model opens all its connections for sure; an open model's bound is its
    /// `max_in_flight`, which a run reaches only if the server falls behind.
    pub certain: bool,
}

impl FdBudget {
    pub fn of(profile: &Profile, embedded_server: bool) -> FdBudget {
        let parallel = u64::from(profile.session.parallel_connections.max(1));
        let (sessions, certain) = match profile.load.model {
            LoadModel::Closed => (u64::from(profile.load.sessions), true),
            LoadModel::Open => (u64::from(profile.load.max_in_flight), false),
        };
        let connections = sessions.saturating_mul(parallel);
        let per_connection = CLIENT_SOCKETS_PER_CONNECTION
            + if embedded_server {
                EMBEDDED_SOCKETS_PER_CONNECTION
            } else {
                0
            };
        // Without think time a connection goes from one transfer to the next, so its data
        // sockets are open nearly all the time: then they are part of the floor too.
        let idles = !profile.session.think_time.0.is_zero() || profile.session.files_per_session == 0;
        let control = if idles {
            CLIENT_CONTROL_SOCKETS + if embedded_server { EMBEDDED_CONTROL_SOCKETS } else { 0 }
        } else {
            per_connection
        };
        FdBudget {
            connections,
            per_connection,
            needed: connections
                .saturating_mul(per_connection)
                .saturating_add(BASE_DESCRIPTORS),
            floor: connections.saturating_mul(control).saturating_add(BASE_DESCRIPTORS),
            certain,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "this run needs at least {floor} open files for its {connections} control connections alone, and up to {needed} \
     with every data connection open ({per_connection} sockets each + {BASE_DESCRIPTORS}), but this process may open \
     at most {hard} (the hard RLIMIT_NOFILE): raise it (`ulimit -Hn {needed}` as root before starting, LimitNOFILE= \
     for a systemd service, nofile in /etc/security/limits.conf), or lower --sessions or --parallel"
)]
pub struct FdLimitError {
    pub needed: u64,
    pub floor: u64,
    pub connections: u64,
    pub per_connection: u64,
    pub hard: u64,
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdLimit {
    /// The soft limit already covered the budget.
    Enough {
        soft: u64,
    },
    Raised {
        from: u64,
        to: u64,
    },
    /// Above the hard limit, but only a bound: an open model's `max_in_flight` (reached only
    /// by a server falling behind), or every data connection open at once while the control
    /// connections fit. Raised as far as it goes, and the run goes on.
    RaisedShort {
        from: u64,
        to: u64,
        needed: u64,
    },
}

/// The new soft limit for `budget` under the current (`soft`, `hard`) limits, or the error.
pub fn decide(budget: FdBudget, soft: u64, hard: u64) -> Result<FdLimit, FdLimitError> {
    if soft >= budget.needed {
        return Ok(FdLimit::Enough { soft });
    }
    if hard >= budget.needed {
        return Ok(FdLimit::Raised {
            from: soft,
            to: budget.needed,
        });
    }
    if budget.certain && hard < budget.floor {
        return Err(FdLimitError {
            needed: budget.needed,
            floor: budget.floor,
            connections: budget.connections,
            per_connection: budget.per_connection,
            hard,
        });
    }
    Ok(FdLimit::RaisedShort {
        from: soft,
        to: hard,
        needed: budget.needed,
    })
}

/// Sets both limits to `to` if this process may; false otherwise (EPERM for most users).
/// Raises both limits towards `want`, capped by the kernel's fs.nr_open, if this process may;
/// returns the new hard limit, or None (EPERM for most users).
fn raise_hard(want: u64) -> Option<u64> {
    let cap = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let to = cap.map_or(want, |c| want.min(c));
    let raised = libc::rlimit {
        rlim_cur: to,
        rlim_max: to,
    };
    // SAFETY: setrlimit reads one rlimit we own; the kernel refuses what we may not set.
    (unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0).then_some(to)
}

/// Raises this process's soft RLIMIT_NOFILE to what `budget` needs (never lowers it).
pub fn ensure(budget: FdBudget) -> anyhow::Result<FdLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(anyhow::anyhow!(
            "reading the open-file limit (RLIMIT_NOFILE) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    let (soft, mut hard) = (limit.rlim_cur, limit.rlim_max);
    // A privileged process (root, or CAP_SYS_RESOURCE) may raise its hard limit, up to the
    // kernel's fs.nr_open: do it rather than refuse a run `ulimit -Hn` would allow.
    if hard < budget.needed {
        if let Some(raised) = raise_hard(budget.needed).filter(|&r| r > hard) {
            hard = raised;
        }
    }
    let outcome = decide(budget, soft, hard)?;
    let to = match outcome {
        FdLimit::Enough { .. } => return Ok(outcome),
        FdLimit::Raised { to, .. } | FdLimit::RaisedShort { to, .. } => to,
    };
    let raised = libc::rlimit {
        rlim_cur: to,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit we own; the soft value is at most the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(anyhow::anyhow!(
            "raising the open-file limit (RLIMIT_NOFILE) from {soft} to {to} failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(sessions: u32, parallel: u32) -> Profile {
        let mut p = Profile::default();
        p.load.model = LoadModel::Closed;
        p.load.sessions = sessions;
        p.session.parallel_connections = parallel;
        p
    }

    fn thinking(mut p: Profile) -> Profile {
        p.session.think_time = crate::profile::HumanDuration::from_secs(60);
        p
    }

    #[test]
    fn the_budget_counts_both_ends_when_the_server_is_ours() {
        // Without think time every data socket is open nearly all the time: all are the floor.
        let b = FdBudget::of(&closed(1_000, 2), false);
        assert_eq!(
            (b.connections, b.needed, b.floor, b.certain),
            (2_000, 2_000 * 2 + 64, 2_000 * 2 + 64, true)
        );
        // Sessions that think between files hold only their control sockets for sure.
        let b = FdBudget::of(&thinking(closed(1_000, 2)), false);
        assert_eq!((b.needed, b.floor), (2_000 * 2 + 64, 2_000 + 64));
        let b = FdBudget::of(&thinking(closed(1_000, 2)), true);
        assert_eq!((b.needed, b.floor), (2_000 * 5 + 64, 2_000 * 2 + 64));
        let mut open = closed(1, 1);
        open.load.model = LoadModel::Open;
        open.load.max_in_flight = 300;
        let b = FdBudget::of(&open, false);
        assert_eq!((b.connections, b.certain), (300, false));
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_budget_and_a_low_hard_limit_is_an_error() {
        let b = FdBudget::of(&thinking(closed(10_000, 1)), false);
        assert_eq!(b.needed, 20_064);
        assert_eq!(decide(b, 30_000, 30_000), Ok(FdLimit::Enough { soft: 30_000 }));
        assert_eq!(
            decide(b, 1_024, 1_048_576),
            Ok(FdLimit::Raised {
                from: 1_024,
                to: 20_064
            })
        );
        let e = decide(b, 1_024, 4_096).unwrap_err();
        assert_eq!(e.hard, 4_096);
        let text = e.to_string();
        for part in [
            "at least 10064",
            "up to 20064",
            "10000 control connections",
            "4096",
            "ulimit -Hn 20064",
            "--sessions",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // Room for every control connection but not for every data connection at once (this
        // machine's hard limit is 20,000): as far as the hard limit goes, with a warning.
        assert_eq!(
            decide(b, 1_024, 20_000),
            Ok(FdLimit::RaisedShort {
                from: 1_024,
                to: 20_000,
                needed: 20_064
            })
        );
        assert!(decide(b, 1_024, 10_063).is_err());
        // The same sessions without think time need every socket: refused under 20,000.
        let busy = FdBudget::of(&closed(10_000, 1), false);
        assert!(decide(busy, 1_024, 20_000).is_err());
        // An open model's bound is only a bound: as far as the hard limit goes.
        let open = FdBudget { certain: false, ..b };
        assert_eq!(
            decide(open, 1_024, 4_096),
            Ok(FdLimit::RaisedShort {
                from: 1_024,
                to: 4_096,
                needed: 20_064
            })
        );
    }

    #[test]
    fn ensure_raises_this_process_within_its_hard_limit() {
        // A budget of the current soft limit + 1 (when the hard limit allows) must leave the
        // soft limit at least that high.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in `ensure`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        if limit.rlim_cur >= limit.rlim_max {
            assert!(matches!(
                ensure(FdBudget {
                    connections: 0,
                    per_connection: 2,
                    needed: limit.rlim_cur,
                    floor: limit.rlim_cur,
                    certain: true
                }),
                Ok(FdLimit::Enough { .. })
            ));
            return;
        }
        let want = limit.rlim_cur + 1;
        let outcome = ensure(FdBudget {
            connections: 0,
            per_connection: 2,
            needed: want,
            floor: want,
            certain: true,
        })
        .unwrap();
        assert_eq!(
            outcome,
            FdLimit::Raised {
                from: limit.rlim_cur,
                to: want
            }
        );
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert!(limit.rlim_cur >= want);
    }
}
