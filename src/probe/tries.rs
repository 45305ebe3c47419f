//! What a probe's requests say about how the server searches its range: each request's held
//! count and result, weighed by likelihood. A server that tries k random ports fails a request
//! with n of its W ports held with probability (n/W)^k; a scanning server never fails before
//! all W are held. Pure maths, apart from the network rounds in [`super::exhaustion`].

use serde::{Deserialize, Serialize};

/// Largest k the likelihood is evaluated for; a server trying more ports than this on a small
/// range is indistinguishable from a scan.
pub const MAX_K: u32 = 64;
/// Half the 95% quantile of χ²(1): the profile-likelihood interval's drop.
const INTERVAL_DROP: f64 = 1.92;
/// The common try count (vsftpd, libunftp), used when the estimate cannot rule it out.
pub const COMMON_K: u32 = 9;
/// A "scan" verdict needs this little chance that a 9-try server would have looked the same.
const SCAN_EVIDENCE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TryModel {
    /// Never failed before every port was held.
    Scan,
    /// Failed with free ports left: k random tries.
    RandomTries,
    /// Not enough evidence either way.
    Undetermined,
}

/// The estimate of how the server searches its range, from every request's held count and
/// result. Rough: a few rounds on a small range pin k down to a wide interval only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TryEstimate {
    pub model: TryModel,
    /// Maximum-likelihood k (random tries only).
    pub k_hat: Option<u32>,
    /// 95% profile-likelihood interval for k (random tries only); an upper end of
    /// [`MAX_K`] means "at least the lower end".
    pub k_low: Option<u32>,
    pub k_high: Option<u32>,
    /// Requests the estimate used.
    pub requests: u32,
    /// Of them, failures with free ports left.
    pub failures_before_full: u32,
    /// Chance that a 9-try random server would have failed none of the requests that
    /// succeeded here: how strongly a "scan" verdict is supported.
    pub p_no_failure_if_9_tries: f64,
    pub caveat: String,
}

/// log P(observations | k tries) for requests `(held, failed)` on a range of `w` ports.
fn log_likelihood(obs: &[(u32, bool)], w: u32, k: u32) -> f64 {
    obs.iter()
        .map(|&(n, failed)| {
            let p_fail = (f64::from(n) / f64::from(w)).powi(k as i32);
            if failed {
                p_fail.ln()
            } else {
                (1.0 - p_fail).ln()
            }
        })
        .sum()
}

/// The requests either model can explain: no failure with nothing held, no port of the range
/// granted with all of it held.
fn usable(obs: &[(u32, bool)], w: u32) -> Vec<(u32, bool)> {
    obs.iter()
        .copied()
        .filter(|&(n, f)| if f { n > 0 } else { n < w })
        .collect()
}

/// How far below the best fit the likelihood of `k` tries lies (natural log): the
/// likelihood-ratio statistic halved. k is outside the 95% interval above 1.92 and would be
/// rejected at the 99.9% level above 5.41 (χ²(1) quantiles halved).
pub fn log_likelihood_drop(obs: &[(u32, bool)], w: u32, k: u32) -> Option<f64> {
    let usable = usable(obs, w);
    if w == 0 || usable.is_empty() || k == 0 {
        return None;
    }
    let best = (1..=MAX_K.max(k))
        .map(|j| log_likelihood(&usable, w, j))
        .fold(f64::NEG_INFINITY, f64::max);
    Some(best - log_likelihood(&usable, w, k))
}

/// Scan or k random tries, from every request's held count and result.
pub(crate) fn estimate(obs: &[(u32, bool)], w: u32) -> Option<TryEstimate> {
    if w == 0 {
        return None;
    }
    let mut caveats = vec!["rough: a few rounds on one range".to_string()];
    // Neither model explains a failure with nothing held, or a port of the range granted
    // while all of it is held; such requests say something else is going on.
    let unexplained_failures = obs.iter().filter(|&&(n, f)| f && n == 0).count();
    let overfull = obs.iter().filter(|&&(n, f)| !f && n >= w).count();
    if unexplained_failures > 0 {
        caveats.push(format!(
            "{unexplained_failures} request(s) failed with none of our ports held: other clients or processes hold ports, or the server limits something else"
        ));
    }
    if overfull > 0 {
        caveats.push(format!(
            "{overfull} request(s) got a port of the range with all {w} held: the range is wider than assumed"
        ));
    }
    let usable = usable(obs, w);
    if usable.is_empty() {
        return None;
    }
    let failures_before_full = usable.iter().filter(|&&(n, f)| f && n < w).count() as u32;
    let p9 = usable
        .iter()
        .filter(|&&(_, f)| !f)
        .map(|&(n, _)| 1.0 - (f64::from(n) / f64::from(w)).powi(COMMON_K as i32))
        .product::<f64>();
    let mut est = TryEstimate {
        model: TryModel::Undetermined,
        k_hat: None,
        k_low: None,
        k_high: None,
        requests: usable.len() as u32,
        failures_before_full,
        p_no_failure_if_9_tries: p9,
        caveat: String::new(),
    };
    if failures_before_full == 0 {
        if p9 < SCAN_EVIDENCE {
            est.model = TryModel::Scan;
        } else {
            caveats.push("too few requests near a full range to tell a scan from random tries".into());
        }
    } else {
        let ll: Vec<f64> = (1..=MAX_K).map(|k| log_likelihood(&usable, w, k)).collect();
        let (best, best_ll) = ll.iter().enumerate().fold(
            (0, f64::NEG_INFINITY),
            |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
        );
        let within: Vec<u32> = (1..=MAX_K)
            .zip(&ll)
            .filter(|(_, &v)| v >= best_ll - INTERVAL_DROP)
            .map(|(k, _)| k)
            .collect();
        est.model = TryModel::RandomTries;
        est.k_hat = Some(best as u32 + 1);
        est.k_low = within.first().copied();
        est.k_high = within.last().copied();
    }
    est.caveat = caveats.join("; ");
    Some(est)
}

impl TryEstimate {
    /// The try count to plan with. A few rounds on a small range rarely pin k down, so:
    /// 9 (vsftpd, libunftp) while the 95% interval includes it; k̂ when the interval lies below
    /// 9 (fewer tries, more refusals: planning with 9 would be unsafe); the interval's lower end
    /// when it lies above 9 (the fewest tries the evidence allows is the safe side, and k̂ alone
    /// overshoots now and then: a 3-round probe of vsftpd once gave k̂ = 16, interval 10–26).
    pub fn tries_to_plan_with(&self) -> Option<u32> {
        if self.model != TryModel::RandomTries {
            return None;
        }
        match (self.k_hat, self.k_low, self.k_high) {
            (Some(k), Some(_), Some(hi)) if hi < COMMON_K => Some(k),
            (Some(_), Some(lo), Some(_)) if lo > COMMON_K => Some(lo),
            _ => Some(COMMON_K),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::exhaustion::TRIALS_PER_ROUND;
    use rand::{Rng, SeedableRng};

    /// Simulated climbs and trials against a server trying `k` random ports (None: scan).
    fn simulate(k: Option<u32>, w: u32, rounds: u32, seed: u64) -> Vec<(u32, bool)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut obs = Vec::new();
        let fails = |n: u32, rng: &mut rand::rngs::StdRng| match k {
            None => n >= w,
            Some(k) => (0..k).all(|_| rng.random_range(0..w) < n),
        };
        for _ in 0..rounds {
            let mut n = 0;
            loop {
                let f = fails(n, &mut rng);
                obs.push((n, f));
                if f {
                    break;
                }
                n += 1;
            }
            let level = if n >= w { w - 1 } else { n };
            for _ in 0..TRIALS_PER_ROUND {
                let f = fails(level, &mut rng);
                obs.push((level, f));
            }
        }
        obs
    }

    #[test]
    fn a_scan_is_recognised() {
        let est = estimate(&simulate(None, 10, 3, 1), 10).unwrap();
        assert_eq!(est.model, TryModel::Scan, "{est:?}");
        assert!(est.p_no_failure_if_9_tries < 1e-3, "{est:?}");
        assert_eq!(est.tries_to_plan_with(), None);
    }

    #[test]
    fn nine_random_tries_are_recognised_every_time_and_covered_as_often_as_claimed() {
        let mut covered = 0;
        for seed in 0..200 {
            let est = estimate(&simulate(Some(9), 10, 3, seed), 10).unwrap();
            assert_eq!(est.model, TryModel::RandomTries, "seed {seed}: {est:?}");
            if (est.k_low.unwrap()..=est.k_high.unwrap()).contains(&9) {
                covered += 1;
            }
        }
        // A 95% interval covers the true k in about 190 of 200 probes; 180 leaves room for
        // the profile likelihood's approximation, not for an interval that misses it.
        assert!(
            covered >= 180,
            "the 95% interval covered k = 9 in {covered} of 200 probes"
        );
    }

    #[test]
    fn the_likelihood_drop_agrees_with_the_interval() {
        for seed in 0..20 {
            let obs = simulate(Some(9), 10, 3, seed);
            let est = estimate(&obs, 10).unwrap();
            let (lo, hi) = (est.k_low.unwrap(), est.k_high.unwrap());
            for k in 1..=MAX_K {
                let drop = log_likelihood_drop(&obs, 10, k).unwrap();
                assert!(drop >= 0.0, "seed {seed} k {k}: {drop}");
                assert_eq!(
                    (lo..=hi).contains(&k),
                    drop <= INTERVAL_DROP,
                    "seed {seed} k {k}: {drop} {est:?}"
                );
            }
            assert_eq!(log_likelihood_drop(&obs, 10, est.k_hat.unwrap()), Some(0.0));
        }
        // Rejected outright: a scanning server's requests never fail early.
        let scan = simulate(Some(1), 10, 3, 5);
        assert!(log_likelihood_drop(&scan, 10, 9).unwrap() > 5.41);
        assert_eq!(log_likelihood_drop(&[], 10, 9), None);
    }

    #[test]
    fn k_is_roughly_right_on_a_wider_range() {
        let est = estimate(&simulate(Some(3), 40, 5, 11), 40).unwrap();
        assert_eq!(est.model, TryModel::RandomTries);
        let (lo, hi) = (est.k_low.unwrap(), est.k_high.unwrap());
        assert!((lo..=hi).contains(&3) && hi < COMMON_K, "{est:?}");
        assert_eq!(est.tries_to_plan_with(), est.k_hat);
    }

    #[test]
    fn planning_uses_nine_unless_the_evidence_rules_it_out() {
        let est = |k_hat, lo, hi| TryEstimate {
            model: TryModel::RandomTries,
            k_hat: Some(k_hat),
            k_low: Some(lo),
            k_high: Some(hi),
            requests: 50,
            failures_before_full: 5,
            p_no_failure_if_9_tries: 0.0,
            caveat: String::new(),
        };
        assert_eq!(est(12, 6, 20).tries_to_plan_with(), Some(9));
        assert_eq!(est(16, 10, 26).tries_to_plan_with(), Some(10));
        assert_eq!(est(3, 2, 5).tries_to_plan_with(), Some(3));
        assert_eq!(est(40, 20, MAX_K).tries_to_plan_with(), Some(20));
    }

    #[test]
    fn impossible_requests_are_set_aside_with_a_caveat() {
        let est = estimate(&[(0, true), (1, false), (10, false)], 10).unwrap();
        assert_eq!(est.requests, 1);
        assert!(est.caveat.contains("none of our ports held"), "{}", est.caveat);
        assert!(est.caveat.contains("wider than assumed"), "{}", est.caveat);
        assert!(estimate(&[], 10).is_none());
    }
}
