//! Poisson quantile: a sanity check on the loss formulas.
//!
//! If the range were unlimited, the number of ports held at once would be
//! Poisson with mean `A` (the M/G/∞ queue, again insensitive to the holding
//! time distribution). Sizing the range at a high quantile of that count is
//! the naive "cover the peaks" rule. It ignores that refused requests go
//! away, so it is a little conservative: Erlang B at width `N` never exceeds
//! `P(X >= N)` (because `B = p_N / P(X <= N)` and `p_N <= P(X <= N)`), hence
//! the Erlang B width for target `1 − q` is at most the `q`-quantile plus one.
//! A disagreement beyond that bound points at a bug or at mismatched inputs.

/// Terms below this share of the running sum cannot change a quantile.
const NEGLIGIBLE: f64 = 1e-17;

/// Smallest `k` with `P(X <= k) >= q` for `X ~ Poisson(mean)`.
///
/// For a large mean the probabilities at zero underflow (`e^−A`), so the
/// sum is anchored at the mode with weight 1 and walked outward until a
/// geometric bound on the remaining tail is negligible; only the
/// `O(√A)` terms that matter are visited, and nothing can overflow.
///
/// Returns `Some(0)` for `q <= 0` and for a zero or negative mean (all mass
/// at zero). Returns `None` for NaN inputs, an infinite mean, `q > 1`,
/// `q = 1` with a positive mean (the support is unbounded), or a quantile
/// beyond `u32::MAX`.
///
/// ```
/// use ftpswarm::model::poisson_quantile;
/// assert_eq!(poisson_quantile(100.0, 0.99), Some(124));
/// ```
#[must_use]
pub fn poisson_quantile(mean: f64, q: f64) -> Option<u32> {
    if mean.is_nan() || mean == f64::INFINITY || q.is_nan() || q > 1.0 {
        return None;
    }
    let mean = mean.max(0.0);
    if q <= 0.0 || mean == 0.0 {
        return Some(0);
    }
    if q >= 1.0 || mean >= f64::from(u32::MAX) {
        return None;
    }
    // Truncation is intended: 0 < mean < u32::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mode = mean.floor() as u32;

    // Walk down from the mode: p_{k−1}/p_k = k/A <= 1 and falling, so the
    // rest below is at most t·r/(1−r).
    let mut sum = 1.0;
    let (mut term, mut k) = (1.0, mode);
    while k > 0 {
        let r = f64::from(k) / mean;
        if r < 1.0 && term * r / (1.0 - r) <= NEGLIGIBLE * sum {
            break;
        }
        term *= r;
        k -= 1;
        sum += term;
    }
    let (low, low_term) = (k, term);

    // Walk up from the mode: p_{k+1}/p_k = A/(k+1) < 1 and falling.
    let (mut term, mut k) = (1.0, mode);
    loop {
        let r = mean / (f64::from(k) + 1.0);
        if term * r / (1.0 - r) <= NEGLIGIBLE * sum {
            break;
        }
        if k == u32::MAX {
            return None;
        }
        term *= r;
        k += 1;
        sum += term;
    }
    let high = k;

    // Re-sum left to right so that the prefix sums below reach exactly the
    // same total: the last prefix then always meets `q · total`.
    let ascending = || {
        (low..=high).scan(low_term, move |term, k| {
            let here = *term;
            *term *= mean / (f64::from(k) + 1.0);
            Some((k, here))
        })
    };
    let total: f64 = ascending().map(|(_, t)| t).sum();
    let goal = q * total;
    let mut prefix = 0.0;
    for (k, t) in ascending() {
        prefix += t;
        if prefix >= goal {
            return Some(k);
        }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::erlang_b_min_width;

    #[test]
    fn check_values() {
        assert_eq!(poisson_quantile(10.0, 0.99), Some(18));
        assert_eq!(poisson_quantile(100.0, 0.99), Some(124));
        // Independently computed (Python, lgamma pmf summed from zero).
        assert_eq!(poisson_quantile(1000.0, 0.999), Some(1099));
        assert_eq!(poisson_quantile(10_000.0, 0.99), Some(10_233));
        assert_eq!(poisson_quantile(1e6, 0.999), Some(1_003_092));
        assert_eq!(poisson_quantile(0.5, 0.5), Some(0));
        assert_eq!(poisson_quantile(0.01, 0.999), Some(1));
    }

    #[test]
    fn lower_quantiles_keep_the_left_tail() {
        // Below the mode the sum walks down from it: a walk stopped early loses that mass and
        // every low quantile moves up to the mode. Independently computed (Python, lgamma pmf
        // summed from zero).
        assert_eq!(poisson_quantile(100.0, 0.01), Some(77));
        assert_eq!(poisson_quantile(100.0, 0.5), Some(100));
        assert_eq!(poisson_quantile(10.0, 0.05), Some(5));
        assert_eq!(poisson_quantile(50.0, 0.25), Some(45));
        assert_eq!(poisson_quantile(1000.0, 0.001), Some(904));
        assert_eq!(poisson_quantile(10_000.0, 0.01), Some(9768));
    }

    #[test]
    fn small_means_against_closed_form() {
        // P(X = 0) = e^−A: the quantile moves off zero exactly there.
        let a: f64 = 0.7;
        let p0 = (-a).exp();
        assert_eq!(poisson_quantile(a, p0 * (1.0 - 1e-9)), Some(0));
        assert_eq!(poisson_quantile(a, p0 * (1.0 + 1e-9)), Some(1));
        let p1 = p0 * (1.0 + a);
        assert_eq!(poisson_quantile(a, p1 * (1.0 - 1e-9)), Some(1));
        assert_eq!(poisson_quantile(a, p1 * (1.0 + 1e-9)), Some(2));
    }

    #[test]
    fn monotone_in_q_and_mean() {
        for &a in &[0.3, 4.0, 50.0, 5000.0] {
            let mut previous = 0;
            for i in 0..=99 {
                let k = poisson_quantile(a, f64::from(i) / 100.0).unwrap_or(u32::MAX);
                assert!(k >= previous && k < u32::MAX);
                previous = k;
            }
        }
        let mut previous = 0;
        for i in 1..=500 {
            let k = poisson_quantile(f64::from(i) * 0.7, 0.99).unwrap_or(u32::MAX);
            assert!(k >= previous && k < u32::MAX);
            previous = k;
        }
    }

    #[test]
    fn bounds_erlang_b_width() {
        for &a in &[0.5, 3.0, 10.0, 100.0, 1000.0, 10_000.0] {
            for &q in &[0.9, 0.99, 0.999, 0.999_999] {
                let scan = erlang_b_min_width(a, 1.0 - q).unwrap_or(u32::MAX);
                let naive = poisson_quantile(a, q).unwrap_or(0);
                assert!(scan <= naive + 1, "A={a} q={q}: {scan} vs {naive}");
            }
        }
    }

    #[test]
    fn domain() {
        assert_eq!(poisson_quantile(10.0, 0.0), Some(0));
        assert_eq!(poisson_quantile(10.0, -1.0), Some(0));
        assert_eq!(poisson_quantile(0.0, 0.5), Some(0));
        assert_eq!(poisson_quantile(0.0, 1.0), Some(0));
        assert_eq!(poisson_quantile(-3.0, 0.5), Some(0));
        assert_eq!(poisson_quantile(10.0, 1.0), None);
        assert_eq!(poisson_quantile(10.0, 1.5), None);
        assert_eq!(poisson_quantile(10.0, f64::NAN), None);
        assert_eq!(poisson_quantile(f64::NAN, 0.5), None);
        assert_eq!(poisson_quantile(f64::INFINITY, 0.5), None);
        assert_eq!(poisson_quantile(5e9, 0.5), None);
        // Close to u32::MAX but representable.
        let k = poisson_quantile(4e9, 0.5).unwrap_or(0);
        assert!(k.abs_diff(4_000_000_000) <= 1);
    }
}
