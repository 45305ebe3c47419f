//! Random-try port picking: vsftpd and libunftp try `k` random ports of the
//! passive range (k = 9) and answer `425` when every try hits a held port,
//! even though free ports may remain.
//!
//! With `n` of `N` ports held, `k` independent uniform picks all land on held
//! ports with probability `(n/N)^k`. Requests still arrive as a Poisson stream
//! of rate `λ`, but only a share `1 − (n/N)^k` of them take a port, so the
//! number of held ports is a birth–death chain on `0..=N` with birth rate
//! `λ(1 − (n/N)^k)` and death rate `nμ` (`μ = 1/E[H]`, `A = λ/μ`). Its
//! stationary distribution is the product of the birth/death ratios,
//! `p_n ∝ Π_{i<n} A(1 − (i/N)^k)/(i + 1)`, and by PASTA the share of requests
//! refused is `Σ p_n (n/N)^k`.
//!
//! Compared with a scanning server, the range stops being fully usable well
//! before it is full: at 80 % occupancy nine tries still fail 13 % of the
//! time. Such servers therefore need a much wider range for the same target,
//! and as `k → ∞` the model turns back into Erlang B (only a full range
//! fails).
//!
//! The ratio `A(1 − (n/N)^k)/(n + 1)` falls as `n` grows, so `p_n` is unimodal.
//! The sum is taken outward from the mode with the mode's term set to 1:
//! nothing can overflow, and the walk stops once a geometric bound on the
//! remaining terms is below double precision, so an evaluation costs about
//! `O(√A)` steps (plus an `O(log N)` search for the mode) rather than `O(N)`.

use super::{clamp_load, erlang_b_min_width};

/// Terms beyond this share of the running sum cannot change the result.
const NEGLIGIBLE: f64 = 1e-17;
/// Absolute floor for the blocking sum: below it the blocking is zero for
/// every practical purpose, so the walk need not chase it.
const TINY: f64 = 1e-300;

/// Up to this many tries, `(n/N)^k` by repeated squaring is accurate to a
/// few dozen ulps and much cheaper than `ln` + `exp`.
const MAX_POWI_TRIES: u32 = 64;

/// `(n/N)^k` and `1 − (n/N)^k` for `held = n`, `width = N`, `tries = k`.
///
/// While the failure share is at most ½, `1 − fail` loses nothing, and that
/// is where the probability mass sits at any sensible target, so the cheap
/// power is used there. Otherwise both shares come from `k·ln(n/N)` through
/// `exp`/`exp_m1`, so the success share stays accurate when the range is
/// nearly full (where `1 − (n/N)^k` would cancel); `ln(n/N)` itself is taken
/// as `ln_1p(−(N−n)/N)` when the range is more than half full, so that a
/// share close to 1 does not lose digits to rounding.
fn fail_and_pass(held: u32, width: u32, tries: u32) -> (f64, f64) {
    if held >= width {
        return (1.0, 0.0);
    }
    if held == 0 {
        return (0.0, 1.0);
    }
    let width_f = f64::from(width);
    if tries <= MAX_POWI_TRIES {
        let k = i32::try_from(tries).unwrap_or(i32::MAX);
        let fail = (f64::from(held) / width_f).powi(k);
        if fail <= 0.5 {
            return (fail, 1.0 - fail);
        }
    }
    let ln_held_share = if 2 * u64::from(held) >= u64::from(width) {
        (-(f64::from(width - held) / width_f)).ln_1p()
    } else {
        (f64::from(held) / width_f).ln()
    };
    let ln_fail = f64::from(tries) * ln_held_share;
    (ln_fail.exp(), -ln_fail.exp_m1())
}

/// Probability that one `PASV` fails on a random-try server when `held` of
/// the `width` ports are held: `(held/width)^tries`.
///
/// This is the per-request failure a load generator should expect at a given
/// occupancy, and the weight each state gets in [`random_try_blocking`].
/// `held >= width` (including an empty range) gives 1; `held = 0` with a
/// non-empty range gives 0; `tries = 0` gives 1 (the server never looks).
#[must_use]
pub fn random_try_fail_probability(held: u32, width: u32, tries: u32) -> f64 {
    if tries == 0 {
        return 1.0;
    }
    fail_and_pass(held, width, tries).0
}

/// Fraction of `PASV` requests refused by a server that tries `tries` random
/// ports of a `width`-port range, at `offered_erlangs` of offered load.
///
/// Domain: negative load is treated as zero, NaN load gives NaN, infinite
/// load gives 1. `width = 0` or `tries = 0` gives 1; zero load with a
/// non-empty range gives 0.
///
/// ```
/// use ftpswarm::model::{erlang_b, random_try_blocking};
/// let random = random_try_blocking(10.0, 22, 9);
/// assert!(random < 0.01 && random > erlang_b(10.0, 22));
/// ```
#[must_use]
pub fn random_try_blocking(offered_erlangs: f64, width: u32, tries: u32) -> f64 {
    let offered = clamp_load(offered_erlangs);
    if offered.is_nan() {
        return f64::NAN;
    }
    if width == 0 || tries == 0 || offered == f64::INFINITY {
        return 1.0;
    }
    if offered == 0.0 {
        return 0.0;
    }
    // Birth/death ratio p_{n+1}/p_n, given the success share at n.
    let ratio = |n: u32, pass: f64| offered * pass / (f64::from(n) + 1.0);

    // Mode: the first state whose ratio is <= 1 (the ratio falls with n).
    let (mut lo, mut hi) = (0u32, width);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ratio(mid, fail_and_pass(mid, width, tries).1) <= 1.0 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let mode = lo;

    let (mode_fail, mode_pass) = fail_and_pass(mode, width, tries);
    let mut sum = 1.0;
    let mut blocked = mode_fail;

    // Upward: ratios are <= 1 and falling, so what remains after term t with
    // next ratio r is at most t·r/(1−r); weights are at most 1.
    let (mut term, mut n, mut pass) = (1.0, mode, mode_pass);
    while n < width {
        let r = ratio(n, pass);
        if r < 1.0 && term * r / (1.0 - r) <= NEGLIGIBLE * blocked.max(TINY * sum) {
            break;
        }
        term *= r;
        n += 1;
        let (fail, next_pass) = fail_and_pass(n, width, tries);
        sum += term;
        blocked += term * fail;
        pass = next_pass;
    }

    // Downward: p_{n−1} = p_n / r_{n−1} with r_{n−1} > 1 rising as n falls, so
    // the rest is at most t·q/(1−q) for q = 1/r_{n−1}, and its weights are at
    // most the next one down.
    let (mut term, mut n) = (1.0, mode);
    while n > 0 {
        let (fail, below_pass) = fail_and_pass(n - 1, width, tries);
        let q = 1.0 / ratio(n - 1, below_pass);
        let rest = term * q / (1.0 - q);
        // q < 1 holds below the mode; the guard keeps a mode misplaced by
        // rounding from turning the bound negative and stopping the walk.
        if q < 1.0 && rest <= NEGLIGIBLE * sum && rest * fail <= NEGLIGIBLE * blocked.max(TINY * sum) {
            break;
        }
        term *= q;
        n -= 1;
        sum += term;
        blocked += term * fail;
    }

    (blocked / sum).min(1.0)
}

/// Smallest width at which a random-try server's blocking is at most
/// `target`.
///
/// Random tries can only do worse than a scan, so the Erlang B width is a
/// lower bracket. When the range is wide compared with the load, few
/// requests are refused, about `A` ports are held and blocking is about
/// `(A/N)^k`, so `A·target^(−1/k)` is usually just above the answer; a short
/// downward gallop and a bisection then need a handful of `O(√A)`
/// evaluations (about 0.1 ms for 10,000 erlangs in a release build).
///
/// Returns `Some(0)` when `target >= 1` or the load is zero or negative (no
/// traffic needs no ports beyond what the caller reserves). Returns `None`
/// for NaN inputs, infinite load, a negative target, a zero target with
/// positive load, `tries = 0` (such a server always fails), or when no `u32`
/// width suffices.
///
/// ```
/// use ftpswarm::model::random_try_min_width;
/// assert_eq!(random_try_min_width(10.0, 0.01, 9), Some(22));
/// ```
#[must_use]
pub fn random_try_min_width(offered_erlangs: f64, target: f64, tries: u32) -> Option<u32> {
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
    if target == 0.0 || tries == 0 {
        return None;
    }
    let meets = |width: u32| random_try_blocking(offered, width, tries) <= target;

    // Widths below the Erlang B answer fail: random tries block at least as
    // often as a scan of the same range.
    let scan_width = erlang_b_min_width(offered, target)?;
    let mut failing = scan_width - 1;

    let guess = offered * (-target.ln() / f64::from(tries)).exp();
    let guess = if guess.is_finite() && guess < f64::from(u32::MAX) {
        // Truncation is intended: the guess is finite and below u32::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rounded = guess.ceil() as u32;
        rounded.max(scan_width)
    } else {
        u32::MAX
    };

    let mut passing = guess;
    if meets(passing) {
        // Gallop downward: in the usual regime the guess is just above the
        // answer, so a few small steps pin it down before bisection.
        let mut step = 1u32;
        while passing - failing > 1 {
            let probe = passing.saturating_sub(step).max(failing + 1);
            if !meets(probe) {
                failing = probe;
                break;
            }
            passing = probe;
            step = step.saturating_mul(2);
        }
    } else {
        // Gallop upward from the guess, doubling the step.
        failing = passing;
        let mut step = (passing / 8).max(1);
        loop {
            if passing == u32::MAX {
                return None;
            }
            passing = passing.saturating_add(step);
            if meets(passing) {
                break;
            }
            failing = passing;
            step = step.saturating_mul(2);
        }
    }
    while passing - failing > 1 {
        let mid = failing + (passing - failing) / 2;
        if meets(mid) {
            passing = mid;
        } else {
            failing = mid;
        }
    }
    Some(passing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::erlang_b;

    /// Straightforward O(N) evaluation in log space, summing every state from
    /// zero: an independent reference for the mode-centred, truncated walk.
    fn reference_blocking(a: f64, width: u32, tries: u32) -> f64 {
        let k = i32::try_from(tries).unwrap_or(i32::MAX);
        let nf = f64::from(width);
        let mut logs = vec![0.0f64];
        for i in 0..width {
            let pass = 1.0 - (f64::from(i) / nf).powi(k);
            let last = logs[logs.len() - 1];
            logs.push(last + (a * pass / (f64::from(i) + 1.0)).ln());
        }
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut sum, mut blocked) = (0.0, 0.0);
        for (n, l) in logs.iter().enumerate() {
            let w = (l - top).exp();
            let held = f64::from(u32::try_from(n).unwrap_or(u32::MAX));
            sum += w;
            blocked += w * (held / nf).powi(k);
        }
        blocked / sum
    }

    #[test]
    fn check_values() {
        assert_eq!(random_try_min_width(10.0, 0.01, 9), Some(22));
        assert_eq!(random_try_min_width(100.0, 0.01, 9), Some(172));
        // Independently computed (Python, full log-space sum, bisection).
        assert_eq!(random_try_min_width(1000.0, 0.01, 9), Some(1658));
        assert_eq!(random_try_min_width(10_000.0, 0.001, 9), Some(21_532));
        let b = random_try_blocking(10.0, 22, 9);
        assert!((b - 0.007896).abs() < 5e-7, "{b}");
        let b = random_try_blocking(1000.0, 1200, 9);
        assert!((b - 0.08714).abs() < 5e-6, "{b}");
    }

    #[test]
    fn single_try_is_binomial() {
        // With k = 1 the birth rate λ(N−n)/N is that of N sources, the chain
        // is binomial and the blocking is E[n]/N = A/(N + A).
        for &(a, n) in &[(10.0, 50u32), (3.0, 4), (500.0, 200), (0.2, 1000)] {
            let expected = a / (f64::from(n) + a);
            let b = random_try_blocking(a, n, 1);
            assert!((b - expected).abs() <= 1e-12 * expected, "A={a} N={n}: {b}");
        }
    }

    #[test]
    fn matches_reference_sum() {
        for &(a, n) in &[
            (0.5, 3u32),
            (10.0, 12),
            (10.0, 40),
            (100.0, 90),
            (100.0, 400),
            (2500.0, 2000),
            (2500.0, 6000),
        ] {
            for &k in &[2u32, 9, 30] {
                let fast = random_try_blocking(a, n, k);
                let slow = reference_blocking(a, n, k);
                assert!(
                    (fast - slow).abs() <= 1e-9 * slow,
                    "A={a} N={n} k={k}: {fast} vs {slow}"
                );
            }
        }
    }

    #[test]
    fn matches_reference_sum_from_light_to_overloaded() {
        // The walks stop where the rest of a tail can no longer move the result: whatever the
        // load, the width and the tries, nothing that matters is cut off.
        for &a in &[0.05, 1.0, 7.0, 60.0] {
            for factor in [0.5, 1.0, 2.0, 6.0, 25.0] {
                let n = ((a * factor) as u32).max(1);
                for &k in &[1u32, 3, 9, 40, 120] {
                    let fast = random_try_blocking(a, n, k);
                    let slow = reference_blocking(a, n, k);
                    assert!(
                        (fast - slow).abs() <= 1e-12 * slow,
                        "A={a} N={n} k={k}: {fast:e} vs {slow:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn many_tries_converge_to_erlang_b() {
        for &(a, n) in &[(10.0, 18u32), (10.0, 12), (100.0, 117), (100.0, 128)] {
            let random = random_try_blocking(a, n, 1000);
            let scan = erlang_b(a, n);
            assert!((random - scan).abs() <= 1e-3 * scan, "A={a} N={n}");
        }
        // And far from it with the real k = 9.
        assert!(random_try_blocking(10.0, 18, 9) > 3.0 * erlang_b(10.0, 18));
    }

    #[test]
    fn never_below_erlang_b() {
        for &a in &[0.3, 5.0, 10.0, 100.0, 1000.0] {
            for n in (1..=3000).step_by(7) {
                for &k in &[1u32, 3, 9, 50] {
                    let random = random_try_blocking(a, n, k);
                    let scan = erlang_b(a, n);
                    assert!(random >= scan * (1.0 - 1e-12), "A={a} N={n} k={k}");
                }
            }
        }
    }

    #[test]
    fn monotone_and_bounded() {
        for &a in &[0.1, 10.0, 100.0, 3000.0] {
            let mut previous = 1.0;
            for n in 0..=8000 {
                let b = random_try_blocking(a, n, 9);
                assert!((0.0..=1.0).contains(&b));
                assert!(b <= previous, "A={a}: rises at width {n}");
                previous = b;
            }
        }
        for &n in &[1u32, 22, 172, 1500] {
            let mut previous = 0.0;
            for i in 1..=100 {
                let b = random_try_blocking(f64::from(i) * 0.03 * f64::from(n), n, 9);
                assert!(b > previous, "N={n}: falls with load at step {i}");
                previous = b;
            }
        }
    }

    #[test]
    fn limits() {
        assert_eq!(random_try_blocking(10.0, 0, 9), 1.0);
        assert_eq!(random_try_blocking(0.0, 0, 9), 1.0);
        assert_eq!(random_try_blocking(0.0, 10, 9), 0.0);
        assert_eq!(random_try_blocking(-1.0, 10, 9), 0.0);
        assert_eq!(random_try_blocking(10.0, 10, 0), 1.0);
        assert_eq!(random_try_blocking(f64::INFINITY, 10, 9), 1.0);
        assert!(random_try_blocking(f64::NAN, 10, 9).is_nan());
        // Light load on one port: blocked iff it is held, like Erlang B.
        assert!((random_try_blocking(1e-6, 1, 9) - 1e-6).abs() < 1e-11);
        // Huge loads and widths stay finite.
        let b = random_try_blocking(1e6, 1_500_000, 9);
        assert!(b > 0.0 && b < 1.0);
        assert!((random_try_blocking(1e6, 100, 9) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn fail_probability() {
        assert_eq!(random_try_fail_probability(0, 10, 9), 0.0);
        assert_eq!(random_try_fail_probability(10, 10, 9), 1.0);
        assert_eq!(random_try_fail_probability(0, 0, 9), 1.0);
        assert_eq!(random_try_fail_probability(3, 10, 0), 1.0);
        let p = random_try_fail_probability(8, 10, 9);
        assert!((p - 0.8f64.powi(9)).abs() < 1e-15);
        assert!((p - 0.134_217_728).abs() < 1e-12);
    }

    #[test]
    fn a_nearly_full_range_keeps_the_digits_of_the_success_share() {
        // 1 − (1 − x)^k by its binomial series (alternating, terms falling by x·k): a reference
        // that shares nothing with the code's logarithms.
        let series = |x: f64, k: u32| {
            let (mut term, mut sum) = (1.0f64, 0.0f64);
            for j in 1..=k {
                term *= f64::from(k - j + 1) / f64::from(j) * x;
                sum += if j % 2 == 1 { term } else { -term };
            }
            sum
        };
        // Held shares of 1 − 1e-6 and 1 − 1e-3 of a billion ports: ln(n/N) of the rounded
        // share would lose 2e-10 and 2e-13 of the success share; ln_1p keeps them.
        let width = 1_000_000_000u32;
        for free in [1_000u32, 1_000_000] {
            let x = f64::from(free) / f64::from(width);
            for tries in [9u32, 40] {
                let (fail, pass) = fail_and_pass(width - free, width, tries);
                let expected = series(x, tries);
                assert!(
                    (pass - expected).abs() <= 1e-14 * expected,
                    "{free} free, {tries} tries: {pass:e} vs {expected:e}"
                );
                assert!((fail + pass - 1.0).abs() < 1e-15);
            }
        }
        // Less than half full, the plain share is exact enough: a quarter held.
        let (fail, pass) = fail_and_pass(250, 1_000, 40);
        assert!((fail - 0.25f64.powi(40)).abs() <= 1e-15 * fail, "{fail:e}");
        assert!((pass - 1.0).abs() < 1e-15);
    }

    #[test]
    fn inverse_is_tight() {
        for &a in &[0.05, 1.0, 10.0, 42.0, 100.0, 777.0, 10_000.0] {
            for &t in &[0.3, 0.01, 0.001, 1e-6] {
                for &k in &[1u32, 2, 9, 100] {
                    if k == 1 && a / t > 4.0e9 {
                        continue; // needs more than u32::MAX ports
                    }
                    let Some(n) = random_try_min_width(a, t, k) else {
                        panic!("A={a} t={t} k={k}: no width");
                    };
                    assert!(n >= 1);
                    assert!(random_try_blocking(a, n, k) <= t, "A={a} t={t} k={k}");
                    assert!(random_try_blocking(a, n - 1, k) > t, "A={a} t={t} k={k}");
                }
            }
        }
    }

    #[test]
    fn inverse_domain() {
        assert_eq!(random_try_min_width(0.0, 0.01, 9), Some(0));
        assert_eq!(random_try_min_width(10.0, 1.0, 9), Some(0));
        assert_eq!(random_try_min_width(10.0, 0.0, 9), None);
        assert_eq!(random_try_min_width(10.0, -1.0, 9), None);
        assert_eq!(random_try_min_width(10.0, 0.01, 0), None);
        assert_eq!(random_try_min_width(f64::NAN, 0.01, 9), None);
        assert_eq!(random_try_min_width(f64::INFINITY, 0.01, 9), None);
        // A load that is no number is refused before a target of 1 would answer "no ports".
        assert_eq!(random_try_min_width(f64::NAN, 1.0, 9), None);
        assert_eq!(random_try_min_width(f64::INFINITY, 1.0, 9), None);
        // A target that is no share is refused even with no traffic.
        assert_eq!(random_try_min_width(0.0, f64::NAN, 9), None);
        assert_eq!(random_try_min_width(0.0, -1.0, 9), None);
        // No traffic meets even a zero target: nothing is ever refused.
        assert_eq!(random_try_min_width(0.0, 0.0, 9), Some(0));
        assert_eq!(random_try_min_width(-1.0, 0.0, 9), Some(0));
        // k = 1 needs N >= A(1−t)/t: beyond u32 for a tiny target.
        assert_eq!(random_try_min_width(1000.0, 1e-9, 1), None);
    }
}
