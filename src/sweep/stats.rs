//! Failure rates with honest uncertainty: Clopper–Pearson intervals and the attempts a
//! precision needs.

use statrs::distribution::{Beta, ContinuousCDF};

/// The exact (Clopper–Pearson) two-sided interval for `failures` out of `attempts` at
/// confidence `1 − alpha`. Conservative: it covers at least the stated confidence, which is
/// what a claim "the width meets the target" needs.
pub fn clopper_pearson(failures: u64, attempts: u64, alpha: f64) -> (f64, f64) {
    if attempts == 0 {
        return (0.0, 1.0);
    }
    let (x, n) = (failures.min(attempts) as f64, attempts as f64);
    let lower = if x == 0.0 {
        0.0
    } else {
        Beta::new(x, n - x + 1.0).map_or(0.0, |b| b.inverse_cdf(alpha / 2.0))
    };
    let upper = if x == n {
        1.0
    } else {
        Beta::new(x + 1.0, n - x).map_or(1.0, |b| b.inverse_cdf(1.0 - alpha / 2.0))
    };
    (lower, upper)
}

/// Attempts needed for a standard error of `relative_error` × p on a rate near `p`:
/// n = (1 − p)/(p·e²), so ±20% at p needs (1 − p)/(p · 0.04).
pub fn attempts_for_precision(p: f64, relative_error: f64) -> u64 {
    if !(p > 0.0 && p < 1.0) || relative_error <= 0.0 {
        return 0;
    }
    ((1.0 - p) / (p * relative_error * relative_error)).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_intervals() {
        // Reference values (R: binom.test(x, n)$conf.int).
        let (lo, hi) = clopper_pearson(5, 100, 0.05);
        assert!((lo - 0.01643).abs() < 5e-5 && (hi - 0.11284).abs() < 5e-5, "{lo} {hi}");
        let (lo, hi) = clopper_pearson(0, 100, 0.05);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.03622).abs() < 5e-5, "{hi}");
        let (lo, hi) = clopper_pearson(10, 10, 0.05);
        assert!((lo - 0.69150).abs() < 5e-5 && hi == 1.0, "{lo}");
        assert_eq!(clopper_pearson(0, 0, 0.05), (0.0, 1.0));
    }

    #[test]
    fn precision_needs() {
        assert_eq!(attempts_for_precision(0.01, 0.2), 2475);
        assert_eq!(attempts_for_precision(0.5, 0.2), 25);
        assert_eq!(attempts_for_precision(0.0, 0.2), 0);
    }
}
