//! Erlang B: the blocking of a passive range that a server *scans* (ProFTPD,
//! pyftpdlib) when the clients are many.
//!
//! A scanning server refuses a `PASV` only when all `N` ports are held. With
//! many independent clients, `PASV` requests form a Poisson stream whatever
//! the current occupancy, so the number of held ports is the M/G/N/N loss
//! system and the fraction of refused requests is Erlang's B formula. It
//! depends on the holding time only through its mean, which is why a
//! measured mean hold time and `PASV` rate suffice.
//!
//! The formula is evaluated with the recursion on `1/B`,
//! `1/B(A,n) = 1 + n/A · 1/B(A,n−1)`, which only adds and multiplies positive
//! numbers: it has no cancellation, no factorials and no overflow trouble for
//! loads of many thousands of erlangs and widths of hundreds of thousands.

use std::ops::RangeInclusive;

use super::clamp_load;

/// One step of the stable recursion: from `1/B(A, n−1)` to `1/B(A, n)`.
///
/// With `A = 0` the step yields `+inf` (nothing is ever blocked) and with
/// `A = +inf` it yields `1` (everything is blocked), so both limits come out
/// of the same arithmetic without special cases.
fn next_inverse(inverse: f64, width: u32, offered: f64) -> f64 {
    1.0 + f64::from(width) / offered * inverse
}

/// Fraction of `PASV` requests refused by a scanning server whose passive
/// range has `width` ports, when `offered_erlangs` ports would be busy on
/// average if none were ever refused.
///
/// By PASTA (Poisson arrivals see time averages) this is both the share of
/// time all ports are held and the share of requests that find them so.
///
/// Domain: negative load is treated as zero; NaN load gives NaN. `width = 0`
/// gives 1 (a request could never be served), zero load with a non-empty
/// range gives 0. Cost is O(`width`) at worst and stops early once the
/// blocking underflows to zero.
///
/// ```
/// use ftpswarm::model::erlang_b;
/// assert!((erlang_b(10.0, 18) - 0.007142).abs() < 1e-6);
/// ```
#[must_use]
pub fn erlang_b(offered_erlangs: f64, width: u32) -> f64 {
    let offered = clamp_load(offered_erlangs);
    if offered.is_nan() {
        return f64::NAN;
    }
    let mut inverse = 1.0;
    for n in 1..=width {
        inverse = next_inverse(inverse, n, offered);
        if inverse == f64::INFINITY {
            // B < 1e-308: every wider range is blocked even less.
            return 0.0;
        }
    }
    1.0 / inverse
}

/// The whole Erlang B blocking curve over `widths` in one pass.
///
/// Charts draw blocking against width; evaluating [`erlang_b`] at every
/// width would redo the recursion from zero each time (quadratic), while the
/// recursion already visits every smaller width on its way, so the curve
/// costs the same as its last point.
///
/// Returns `(width, blocking)` pairs in increasing width; an empty range
/// gives an empty vector. Same domain as [`erlang_b`].
#[must_use]
pub fn erlang_b_curve(offered_erlangs: f64, widths: RangeInclusive<u32>) -> Vec<(u32, f64)> {
    let (first, last) = (*widths.start(), *widths.end());
    if first > last {
        return Vec::new();
    }
    let offered = clamp_load(offered_erlangs);
    let capacity = usize::try_from(last - first).map_or(0, |n| n.saturating_add(1));
    let mut curve = Vec::with_capacity(capacity);
    if offered.is_nan() {
        curve.extend((first..=last).map(|n| (n, f64::NAN)));
        return curve;
    }
    let mut inverse = 1.0;
    if first == 0 {
        curve.push((0, 1.0));
    }
    for n in 1..=last {
        inverse = next_inverse(inverse, n, offered);
        if n >= first {
            curve.push((n, 1.0 / inverse));
        }
    }
    curve
}

/// Smallest passive range width whose Erlang B blocking is at most `target`.
///
/// Blocking falls strictly as the range widens, so the first width that
/// meets the target is the answer and the search is the recursion itself:
/// O(answer) time, no bisection needed.
///
/// Returns:
/// * `Some(0)` when `target >= 1` (any range, even none, meets it) or when
///   the load is zero or negative: with no traffic nothing is refused, so
///   the model asks for no ports beyond whatever the caller reserves anyway.
///   (Formally `erlang_b(0.0, 0) == 1`, the fate a request *would* meet.)
/// * `None` when an input is NaN, the load is infinite, the target is
///   negative, or the target is zero with positive load (Erlang B is never
///   exactly zero), or when no `u32` width suffices.
///
/// ```
/// use ftpswarm::model::erlang_b_min_width;
/// assert_eq!(erlang_b_min_width(100.0, 0.01), Some(117));
/// ```
#[must_use]
pub fn erlang_b_min_width(offered_erlangs: f64, target: f64) -> Option<u32> {
    if offered_erlangs.is_nan() || offered_erlangs == f64::INFINITY {
        return None;
    }
    if target.is_nan() || target < 0.0 {
        return None;
    }
    let offered = clamp_load(offered_erlangs);
    if target >= 1.0 || offered == 0.0 {
        return Some(0);
    }
    if target == 0.0 {
        return None;
    }
    let mut inverse = 1.0;
    for n in 1..=u32::MAX {
        inverse = next_inverse(inverse, n, offered);
        if 1.0 / inverse <= target {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative agreement to four significant figures.
    fn assert_sig4(actual: f64, expected: f64) {
        assert!(
            ((actual - expected) / expected).abs() < 5e-4,
            "{actual} is not {expected} to 4 significant figures"
        );
    }

    #[test]
    fn check_values() {
        assert_sig4(erlang_b(10.0, 17), 0.01295);
        assert_sig4(erlang_b(10.0, 18), 0.007142);
        // Independently computed (1/B recursion in Python).
        assert_sig4(erlang_b(100.0, 100), 0.07570);
        assert_sig4(erlang_b(10_000.0, 10_000), 0.007937);
        assert_eq!(erlang_b(10.0, 1), 10.0 / 11.0);
    }

    #[test]
    fn inverse_check_values() {
        assert_eq!(erlang_b_min_width(10.0, 0.01), Some(18));
        assert_eq!(erlang_b_min_width(10.0, 0.001), Some(21));
        assert_eq!(erlang_b_min_width(100.0, 0.01), Some(117));
        assert_eq!(erlang_b_min_width(100.0, 0.001), Some(128));
        assert_eq!(erlang_b_min_width(1000.0, 0.01), Some(1029));
        assert_eq!(erlang_b_min_width(10_000.0, 0.001), Some(10_170));
    }

    #[test]
    fn limits() {
        assert_eq!(erlang_b(10.0, 0), 1.0);
        assert_eq!(erlang_b(0.0, 0), 1.0);
        assert_eq!(erlang_b(0.0, 5), 0.0);
        assert_eq!(erlang_b(-4.0, 5), 0.0);
        assert_eq!(erlang_b(f64::INFINITY, 5), 1.0);
        assert!(erlang_b(f64::NAN, 5).is_nan());
        assert!(erlang_b(1e-9, 1) < 1.1e-9);
        // Deep tail underflows to exactly zero instead of NaN.
        assert_eq!(erlang_b(10.0, 100_000), 0.0);
    }

    #[test]
    fn in_unit_interval_and_monotone_in_width() {
        for &a in &[0.01, 0.5, 3.0, 10.0, 100.0, 1000.0, 10_000.0] {
            let curve = erlang_b_curve(a, 0..=20_000);
            for pair in curve.windows(2) {
                let (b0, b1) = (pair[0].1, pair[1].1);
                assert!((0.0..=1.0).contains(&b1));
                assert!(b1 <= b0, "A={a}: not falling at width {}", pair[1].0);
                if b0 > 1e-300 {
                    assert!(b1 < b0, "A={a}: not strictly falling at {}", pair[1].0);
                }
            }
        }
    }

    #[test]
    fn increases_with_load() {
        for &n in &[1u32, 5, 18, 117, 1000] {
            let mut previous = 0.0;
            for i in 1..=200 {
                let b = erlang_b(f64::from(i) * 0.1 * f64::from(n), n);
                // Strictly rising once it is above the underflow.
                assert!(b >= previous, "width {n}: blocking fell at load step {i}");
                assert!(previous == 0.0 || b > previous, "width {n}: flat at step {i}");
                previous = b;
            }
        }
    }

    #[test]
    fn curve_matches_pointwise_and_respects_range() {
        let curve = erlang_b_curve(10.0, 15..=20);
        assert_eq!(curve.len(), 6);
        assert_eq!(curve[0].0, 15);
        for &(n, b) in &curve {
            assert_eq!(b, erlang_b(10.0, n));
        }
        assert_eq!(erlang_b_curve(10.0, 0..=0), vec![(0, 1.0)]);
        assert!(erlang_b_curve(10.0, 0..=3)[0].1 == 1.0);
        #[allow(clippy::reversed_empty_ranges)]
        let empty = erlang_b_curve(10.0, 5..=4);
        assert!(empty.is_empty());
        assert!(erlang_b_curve(f64::NAN, 1..=2).iter().all(|p| p.1.is_nan()));
    }

    #[test]
    fn inverse_is_tight() {
        for &a in &[0.1, 1.0, 7.5, 10.0, 55.0, 100.0, 999.0, 10_000.0] {
            for &t in &[0.5, 0.1, 0.01, 0.001, 1e-6] {
                let n = erlang_b_min_width(a, t).unwrap_or(0);
                assert!(n >= 1);
                assert!(erlang_b(a, n) <= t, "A={a} t={t}: width {n} too small");
                assert!(erlang_b(a, n - 1) > t, "A={a} t={t}: width {n} not minimal");
            }
        }
    }

    #[test]
    fn inverse_domain() {
        assert_eq!(erlang_b_min_width(0.0, 0.01), Some(0));
        assert_eq!(erlang_b_min_width(-1.0, 0.01), Some(0));
        assert_eq!(erlang_b_min_width(50.0, 1.0), Some(0));
        assert_eq!(erlang_b_min_width(50.0, 0.0), None);
        // No traffic meets even a zero target: nothing is ever refused.
        assert_eq!(erlang_b_min_width(0.0, 0.0), Some(0));
        assert_eq!(erlang_b_min_width(-1.0, 0.0), Some(0));
        assert_eq!(erlang_b_min_width(50.0, -0.1), None);
        assert_eq!(erlang_b_min_width(50.0, f64::NAN), None);
        assert_eq!(erlang_b_min_width(f64::NAN, 0.01), None);
        assert_eq!(erlang_b_min_width(f64::INFINITY, 0.01), None);
    }
}
