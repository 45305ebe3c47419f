//! One entry point over the port-picking policies, so callers pick the
//! server's behaviour once and never call a loss formula directly.

use super::{
    engset_beta, engset_blocking, engset_min_width, erlang_b, erlang_b_min_width, random_try_blocking,
    random_try_min_width, random_try_width_ceiling,
};

/// How a server chooses the port it answers a `PASV` with; this, not the
/// server's name, decides which loss formula predicts its `425`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortPickPolicy {
    /// Scans the whole range and fails only when every port is held
    /// (ProFTPD, pyftpdlib). Many independent clients make the `PASV` stream
    /// Poisson, so blocking is Erlang B.
    Scan,
    /// Tries `tries` random ports and fails if all are held, even when free
    /// ports remain (vsftpd, libunftp: 9 tries). Blocking comes from the
    /// thinned birth–death chain in [`super::random_try`].
    RandomTries {
        /// Random ports tried before answering `425`.
        tries: u32,
    },
    /// Scans the whole range, but only `sources` control connections exist,
    /// so each held port visibly slows the `PASV` stream: Engset blocking,
    /// with the offered load spread evenly over the sources
    /// ([`engset_beta`]). Use it when the client count is within a few times
    /// the range width; with many clients it approaches [`Self::Scan`].
    ScanFewSources {
        /// Control connections that can request ports.
        sources: u32,
    },
}

impl PortPickPolicy {
    /// vsftpd: up to 9 random binds before `425`.
    pub const VSFTPD: Self = Self::RandomTries { tries: 9 };
    /// libunftp: up to 9 random ports before `425`.
    pub const LIBUNFTP: Self = Self::RandomTries { tries: 9 };
    /// ProFTPD scans its `PassivePorts` range.
    pub const PROFTPD: Self = Self::Scan;
    /// pyftpdlib scans its `passive_ports` range.
    pub const PYFTPDLIB: Self = Self::Scan;

    /// Widest range this policy can ever need with `control_connections`
    /// clients, whatever the load (see [`super::ceiling`]): the number of
    /// connections for scanning servers, the worst-case width for random
    /// tries. `None` where no finite width guarantees `target` (a zero or
    /// invalid target for random tries).
    #[must_use]
    pub fn width_ceiling(self, control_connections: u32, target: f64) -> Option<u32> {
        match self {
            Self::Scan => Some(control_connections),
            Self::ScanFewSources { sources } => Some(sources.min(control_connections)),
            Self::RandomTries { tries } => random_try_width_ceiling(control_connections, tries, target),
        }
    }
}

/// Share of `PASV` requests refused at `offered_erlangs` of load by a range
/// of `width` ports under `policy`. Always in `[0, 1]` except for NaN load,
/// which gives NaN; see the per-policy functions for the limits.
///
/// ```
/// use ftpswarm::model::{blocking, PortPickPolicy};
/// let scan = blocking(PortPickPolicy::PROFTPD, 10.0, 18);
/// let random = blocking(PortPickPolicy::VSFTPD, 10.0, 18);
/// assert!(scan < 0.01 && random > 0.01);
/// ```
#[must_use]
pub fn blocking(policy: PortPickPolicy, offered_erlangs: f64, width: u32) -> f64 {
    match policy {
        PortPickPolicy::Scan => erlang_b(offered_erlangs, width),
        PortPickPolicy::RandomTries { tries } => random_try_blocking(offered_erlangs, width, tries),
        PortPickPolicy::ScanFewSources { sources } => {
            engset_blocking(sources, width, engset_beta(offered_erlangs, sources))
        }
    }
}

/// Smallest range width whose blocking under `policy` is at most `target`.
///
/// `Some(0)` for zero load or `target >= 1`; `None` for invalid input or an
/// unreachable target (see [`erlang_b_min_width`], [`random_try_min_width`],
/// [`engset_min_width`]). The answer ignores the number of clients except for
/// [`PortPickPolicy::ScanFewSources`]; use [`capped_min_width`] to apply it.
///
/// ```
/// use ftpswarm::model::{min_width, PortPickPolicy};
/// assert_eq!(min_width(PortPickPolicy::Scan, 100.0, 0.01), Some(117));
/// assert_eq!(min_width(PortPickPolicy::LIBUNFTP, 100.0, 0.01), Some(172));
/// ```
#[must_use]
pub fn min_width(policy: PortPickPolicy, offered_erlangs: f64, target: f64) -> Option<u32> {
    match policy {
        PortPickPolicy::Scan => erlang_b_min_width(offered_erlangs, target),
        PortPickPolicy::RandomTries { tries } => random_try_min_width(offered_erlangs, target, tries),
        PortPickPolicy::ScanFewSources { sources } => {
            engset_min_width(sources, engset_beta(offered_erlangs, sources), target)
        }
    }
}

/// [`min_width`], but never wider than the policy's ceiling for
/// `control_connections` clients ([`PortPickPolicy::width_ceiling`]).
///
/// The load-based width assumes unlimited clients; with a known client
/// limit the ceiling already guarantees the target, so the smaller of the
/// two suffices. When the load-based answer does not exist (infinite load, a
/// zero target) the ceiling alone may still give one: `S` ports serve `S`
/// scanning clients without any refusal.
///
/// Returns `None` for a NaN or negative target, NaN load, or when neither
/// bound exists.
#[must_use]
pub fn capped_min_width(
    policy: PortPickPolicy,
    offered_erlangs: f64,
    target: f64,
    control_connections: u32,
) -> Option<u32> {
    if offered_erlangs.is_nan() || target.is_nan() || target < 0.0 {
        return None;
    }
    let by_load = min_width(policy, offered_erlangs, target);
    let ceiling = policy.width_ceiling(control_connections, target);
    match (by_load, ceiling) {
        (Some(w), Some(c)) => Some(w.min(c)),
        (w, c) => w.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICIES: [PortPickPolicy; 5] = [
        PortPickPolicy::Scan,
        PortPickPolicy::VSFTPD,
        PortPickPolicy::RandomTries { tries: 2 },
        PortPickPolicy::ScanFewSources { sources: 40 },
        PortPickPolicy::ScanFewSources { sources: 5000 },
    ];

    #[test]
    fn server_constants() {
        assert_eq!(PortPickPolicy::VSFTPD, PortPickPolicy::RandomTries { tries: 9 });
        assert_eq!(PortPickPolicy::LIBUNFTP, PortPickPolicy::VSFTPD);
        assert_eq!(PortPickPolicy::PROFTPD, PortPickPolicy::Scan);
        assert_eq!(PortPickPolicy::PYFTPDLIB, PortPickPolicy::Scan);
    }

    #[test]
    fn dispatch_check_values() {
        assert!((blocking(PortPickPolicy::Scan, 10.0, 17) - 0.01295).abs() < 5e-6);
        assert_eq!(min_width(PortPickPolicy::Scan, 10.0, 0.001), Some(21));
        assert_eq!(min_width(PortPickPolicy::VSFTPD, 10.0, 0.01), Some(22));
        assert_eq!(min_width(PortPickPolicy::LIBUNFTP, 100.0, 0.01), Some(172));
        // A = 10 over 50 sources is β = 0.25 per idle source.
        let engset = PortPickPolicy::ScanFewSources { sources: 50 };
        assert!((blocking(engset, 10.0, 18) - 0.003005).abs() < 5e-7);
        assert_eq!(min_width(engset, 10.0, 0.003006), Some(18));
    }

    #[test]
    fn properties_hold_for_every_policy() {
        for policy in POLICIES {
            for &a in &[0.5, 10.0, 30.0] {
                let mut previous = 1.0;
                for n in 0..=200 {
                    let b = blocking(policy, a, n);
                    assert!((0.0..=1.0).contains(&b), "{policy:?}");
                    assert!(b <= previous, "{policy:?} A={a}: rises at {n}");
                    previous = b;
                }
                assert!(blocking(policy, a * 1.5, 20) >= blocking(policy, a, 20));
                for &t in &[0.05, 0.001] {
                    let Some(n) = min_width(policy, a, t) else {
                        panic!("{policy:?} A={a} t={t}: no width");
                    };
                    assert!(n >= 1);
                    assert!(blocking(policy, a, n) <= t);
                    assert!(blocking(policy, a, n - 1) > t);
                }
            }
            assert_eq!(blocking(policy, 7.0, 0), 1.0, "{policy:?}");
            assert_eq!(blocking(policy, 0.0, 3), 0.0, "{policy:?}");
            assert_eq!(min_width(policy, 0.0, 0.01), Some(0), "{policy:?}");
            assert_eq!(min_width(policy, 7.0, f64::NAN), None, "{policy:?}");
        }
    }

    #[test]
    fn random_tries_never_beat_a_scan() {
        for &a in &[1.0, 10.0, 100.0] {
            for n in 1..=300 {
                let scan = blocking(PortPickPolicy::Scan, a, n);
                assert!(blocking(PortPickPolicy::VSFTPD, a, n) >= scan);
            }
        }
    }

    #[test]
    fn ceilings() {
        assert_eq!(PortPickPolicy::Scan.width_ceiling(50, 0.01), Some(50));
        let few = PortPickPolicy::ScanFewSources { sources: 30 };
        assert_eq!(few.width_ceiling(50, 0.01), Some(30));
        assert_eq!(PortPickPolicy::VSFTPD.width_ceiling(50, 0.01), Some(82));
        assert_eq!(PortPickPolicy::VSFTPD.width_ceiling(50, 0.0), None);
    }

    #[test]
    fn capped() {
        // 100 erlangs from only 50 clients: the client limit binds.
        assert_eq!(capped_min_width(PortPickPolicy::Scan, 100.0, 0.01, 50), Some(50));
        assert_eq!(capped_min_width(PortPickPolicy::VSFTPD, 100.0, 0.01, 50), Some(82));
        // Plenty of clients: the load binds.
        assert_eq!(capped_min_width(PortPickPolicy::Scan, 100.0, 0.01, 10_000), Some(117));
        assert_eq!(capped_min_width(PortPickPolicy::VSFTPD, 100.0, 0.01, 10_000), Some(172));
        // No load-based answer, but the clients bound it.
        assert_eq!(capped_min_width(PortPickPolicy::Scan, 100.0, 0.0, 50), Some(50));
        assert_eq!(
            capped_min_width(PortPickPolicy::Scan, f64::INFINITY, 0.01, 50),
            Some(50)
        );
        assert_eq!(capped_min_width(PortPickPolicy::VSFTPD, 100.0, 0.0, 50), None);
        assert_eq!(capped_min_width(PortPickPolicy::Scan, f64::NAN, 0.01, 50), None);
        assert_eq!(capped_min_width(PortPickPolicy::Scan, 100.0, f64::NAN, 50), None);
        assert_eq!(capped_min_width(PortPickPolicy::Scan, 100.0, -1.0, 50), None);
    }
}
