//! From a per-session target to a per-`PASV` target.
//!
//! Users notice failed sessions, not failed `PASV` commands: a session that
//! opens `n` data connections (one `PASV` each: listings, transfers, retries)
//! is spoiled if *any* of them gets a `425`. Treating the attempts as
//! independent, which holds when one session's ports are a small share of
//! the range, a session survives with probability `(1 − b)^n`, so keeping
//! session failure at `B_s` needs `b = 1 − (1 − B_s)^(1/n)`, about `B_s / n`.
//!
//! Targets here are tiny (1e-4 and below), where `1 − (1 − x)` loses most
//! digits; the conversions therefore go through `ln_1p`/`exp_m1`.

/// Per-`PASV` blocking target that keeps the share of sessions with at least
/// one refused `PASV` at `session_target`, for sessions that issue
/// `pasv_per_session` of them.
///
/// Returns `None` unless `0 <= session_target <= 1`. A session with no data
/// connections cannot be spoiled by `PASV` refusals, so `pasv_per_session = 0`
/// imposes no constraint and gives `Some(1.0)`.
///
/// ```
/// use ftpswarm::model::per_pasv_target;
/// let b = per_pasv_target(0.01, 20).unwrap_or(0.0);
/// assert!((b - 0.000_502_4).abs() < 1e-7);
/// ```
#[must_use]
pub fn per_pasv_target(session_target: f64, pasv_per_session: u32) -> Option<f64> {
    if !(0.0..=1.0).contains(&session_target) {
        return None;
    }
    if pasv_per_session == 0 {
        return Some(1.0);
    }
    let ln_survive = (-session_target).ln_1p() / f64::from(pasv_per_session);
    Some(-ln_survive.exp_m1())
}

/// Share of sessions that see at least one refused `PASV` when each of their
/// `pasv_per_session` requests is refused with probability
/// `per_pasv_blocking`: `1 − (1 − b)^n`, the inverse of [`per_pasv_target`].
///
/// Use it to report a modelled or measured per-`PASV` blocking in the units
/// users care about. Returns `None` unless `0 <= per_pasv_blocking <= 1`;
/// `pasv_per_session = 0` gives `Some(0.0)`.
#[must_use]
pub fn session_failure(per_pasv_blocking: f64, pasv_per_session: u32) -> Option<f64> {
    if !(0.0..=1.0).contains(&per_pasv_blocking) {
        return None;
    }
    let ln_survive = f64::from(pasv_per_session) * (-per_pasv_blocking).ln_1p();
    Some(-ln_survive.exp_m1())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        let b = per_pasv_target(0.01, 20).unwrap_or(f64::NAN);
        assert!((b - 5.023_906e-4).abs() < 1e-9, "{b}");
    }

    #[test]
    fn single_pasv_is_identity_and_round_trip_holds() {
        for &s in &[0.0, 1e-12, 1e-6, 0.001, 0.01, 0.5, 0.999] {
            let b = per_pasv_target(s, 1).unwrap_or(f64::NAN);
            assert!((b - s).abs() <= 1e-15 * s.max(1e-300));
            for &n in &[2u32, 7, 20, 1000] {
                let b = per_pasv_target(s, n).unwrap_or(f64::NAN);
                assert!(b <= s);
                let back = session_failure(b, n).unwrap_or(f64::NAN);
                assert!((back - s).abs() <= 1e-13 * s.max(1e-300), "s={s} n={n}");
            }
        }
    }

    #[test]
    fn tiny_targets_keep_their_digits() {
        // 1 − (1 − x)^(1/10) = x/10 + 0.045·x² + …; the naive formula gets
        // only the first ~4 digits of it for x = 1e−12, so this checks the
        // second-order term, 13 digits down.
        let b = per_pasv_target(1e-12, 10).unwrap_or(f64::NAN);
        assert!((b - (1e-13 + 4.5e-26)).abs() < 1e-27, "{b:e}");
        let s = session_failure(1e-15, 3).unwrap_or(f64::NAN);
        assert!((s - 3e-15).abs() < 1e-28, "{s:e}");
    }

    #[test]
    fn domain() {
        assert_eq!(per_pasv_target(0.01, 0), Some(1.0));
        assert_eq!(per_pasv_target(1.0, 5), Some(1.0));
        assert_eq!(per_pasv_target(0.0, 5), Some(0.0));
        assert_eq!(per_pasv_target(-0.1, 5), None);
        assert_eq!(per_pasv_target(1.1, 5), None);
        assert_eq!(per_pasv_target(f64::NAN, 5), None);
        assert_eq!(session_failure(0.3, 0), Some(0.0));
        assert_eq!(session_failure(1.0, 4), Some(1.0));
        assert_eq!(session_failure(f64::NAN, 4), None);
        assert_eq!(session_failure(2.0, 4), None);
    }
}
