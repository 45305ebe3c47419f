//! The one-pending-port-per-connection ceiling.
//!
//! A control connection can have at most one passive port pending or in use
//! (a new `PASV` replaces the previous listener). So when `S` control
//! connections exist, at most `S − 1` *other* connections hold ports when one
//! of them asks. For a server that scans its range, `S` ports therefore
//! guarantee a free port: no range ever needs to be wider than the number of
//! control connections that can be open at once, however high the load.
//!
//! A random-try server can still miss free ports, so there the ceiling is
//! the width at which even the worst case, all `S − 1` others holding ports,
//! fails no more often than the target: `((S − 1)/N)^k <= target`.

use super::random_try::random_try_fail_probability;

/// Width for a scanning server, never more than the number of control
/// connections that can hold ports at the same time.
///
/// Use it on the output of a loss formula: Erlang B assumes unlimited
/// clients and keeps asking for more ports as the target tightens, but with
/// `control_connections` clients the extra ports could never all be held.
/// (Engset already knows this: its blocking is zero from `S` ports on.)
/// Not valid for random-try servers; see [`random_try_width_ceiling`].
#[must_use]
pub fn cap_width(width: u32, control_connections: u32) -> u32 {
    width.min(control_connections)
}

/// Smallest width at which a random-try server refuses a `PASV` with
/// probability at most `target` even in the worst case, when all other
/// `control_connections − 1` connections hold a port.
///
/// Beyond this width the load no longer matters, so it caps the answer of
/// [`super::random_try_min_width`] the way [`cap_width`] caps Erlang B.
/// Because the worst case is assumed, it is usually much wider than the
/// load-based width and only bites for small client counts.
///
/// Returns `Some(0)` for `target >= 1`, `Some(control_connections)` when
/// there is at most one connection (nobody else can hold a port, so one
/// port per connection suffices), and `None` for a NaN or negative target, a
/// zero target with two or more connections, `tries = 0`, or a width beyond
/// `u32::MAX`.
#[must_use]
pub fn random_try_width_ceiling(control_connections: u32, tries: u32, target: f64) -> Option<u32> {
    if target.is_nan() || target < 0.0 {
        return None;
    }
    if target >= 1.0 {
        return Some(0);
    }
    if control_connections <= 1 {
        return Some(control_connections);
    }
    if target == 0.0 || tries == 0 {
        return None;
    }
    let others = control_connections - 1;
    let meets = |width: u32| random_try_fail_probability(others, width, tries) <= target;
    // Closed form N = (S − 1)·target^(−1/k), then settle rounding exactly. exp() can land
    // just above a whole N (3.0000000000000004 for S = 2, k = 1, target 1/3), so the search
    // starts at the floor, never above the answer, and walks up.
    let estimate = f64::from(others) * (-target.ln() / f64::from(tries)).exp();
    if estimate >= f64::from(u32::MAX) {
        return meets(u32::MAX).then_some(u32::MAX);
    }
    // Truncation is intended: 0 < estimate < u32::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mut width = (estimate.floor() as u32).max(control_connections);
    while !meets(width) {
        if width == u32::MAX {
            return None;
        }
        width += 1;
    }
    Some(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{engset_blocking, random_try_fail_probability};

    #[test]
    fn scan_cap() {
        assert_eq!(cap_width(117, 50), 50);
        assert_eq!(cap_width(18, 50), 18);
        assert_eq!(cap_width(0, 50), 0);
        // The cap is exactly where Engset blocking becomes zero.
        assert_eq!(engset_blocking(50, cap_width(10_000, 50), 1e6), 0.0);
        assert!(engset_blocking(50, cap_width(10_000, 50) - 1, 1e6) > 0.0);
    }

    #[test]
    fn random_try_ceiling_values() {
        // 49 others, 9 tries, 1 %: N >= 49 · 100^(1/9) = 81.7…
        assert_eq!(random_try_width_ceiling(50, 9, 0.01), Some(82));
        assert!(random_try_fail_probability(49, 82, 9) <= 0.01);
        assert!(random_try_fail_probability(49, 81, 9) > 0.01);
        // One try: N >= (S − 1)/target = 99.9…
        assert_eq!(random_try_width_ceiling(11, 1, 0.1001), Some(100));
        // Very many tries approach the scan cap of S ports.
        assert_eq!(random_try_width_ceiling(50, 100_000, 0.01), Some(50));
    }

    #[test]
    fn random_try_ceiling_is_tight() {
        for &s in &[2u32, 3, 10, 50, 1000, 60_000] {
            for &k in &[1u32, 2, 9, 64] {
                for &t in &[0.5, 0.01, 1e-4] {
                    let Some(n) = random_try_width_ceiling(s, k, t) else {
                        panic!("S={s} k={k} t={t}: no ceiling");
                    };
                    assert!(n >= s);
                    assert!(random_try_fail_probability(s - 1, n, k) <= t);
                    if n > s {
                        assert!(random_try_fail_probability(s - 1, n - 1, k) > t);
                    }
                }
            }
        }
    }

    #[test]
    fn random_try_ceiling_is_the_smallest_width_on_exact_boundaries() {
        // Targets that some width meets exactly, (h/N)^k: the closed form lands on N give or
        // take a rounding, and the answer must be N itself, as a scan from S upwards finds.
        for (others, n, k) in [
            // Here exp() lands just above N (3.0000000000000004): its ceiling is one too wide.
            (1u32, 3u32, 1u32),
            (3, 10, 1),
            (4, 7, 1),
            (9, 90, 1),
            (2, 4, 2),
            (1, 2, 1),
            (3, 12, 3),
            (49, 98, 9),
            (5, 10, 20),
        ] {
            let target = (f64::from(others) / f64::from(n)).powi(k as i32);
            let s = others + 1;
            let scan = (s..).find(|&w| random_try_fail_probability(others, w, k) <= target);
            assert_eq!(
                random_try_width_ceiling(s, k, target),
                scan,
                "S={s} k={k} target={target}"
            );
            assert_eq!(scan, Some(n.max(s)));
        }
    }

    #[test]
    fn random_try_ceiling_domain() {
        // A zero target is never met by many tries either, even where (S/N)^k underflows.
        assert_eq!(random_try_width_ceiling(50, 64, 0.0), None);
        assert_eq!(random_try_width_ceiling(2, 100_000, 0.0), None);
        assert_eq!(random_try_width_ceiling(50, 9, 1.0), Some(0));
        assert_eq!(random_try_width_ceiling(1, 9, 0.01), Some(1));
        assert_eq!(random_try_width_ceiling(0, 9, 0.01), Some(0));
        assert_eq!(random_try_width_ceiling(50, 9, 0.0), None);
        assert_eq!(random_try_width_ceiling(50, 0, 0.01), None);
        assert_eq!(random_try_width_ceiling(50, 9, f64::NAN), None);
        assert_eq!(random_try_width_ceiling(50, 9, -0.2), None);
        // A negative target is refused whatever the load; a zero one is met by one connection
        // alone, which nobody else can take a port from.
        assert_eq!(random_try_width_ceiling(1, 9, -0.2), None);
        assert_eq!(random_try_width_ceiling(1, 9, 0.0), Some(1));
        assert_eq!(random_try_width_ceiling(100_000, 1, 1e-9), None);
    }
}
