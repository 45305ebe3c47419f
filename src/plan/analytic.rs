//! The analytic cross-check beside the simulator: Little's law gives the offered load, and the
//! loss formula for the server's pick order (Engset for a scan over few connections, the
//! random-try chain for random picks) gives the width they would recommend. These formulas
//! assume independent (Poisson-like) PASVs; measured runs come in bursts, so where the two
//! disagree the simulator, which replays the bursts, is the one to trust.

use crate::model::{self, PortPickPolicy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetLoad {
    pub pasv_per_s: f64,
    pub mean_hold_s: f64,
    pub offered_erlangs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnalyticCheck {
    pub target: TargetLoad,
    /// The loss model, e.g. "9 random tries (birth-death chain)".
    pub policy: String,
    /// The smallest width the formula says meets the per-PASV target, if any does.
    pub width: Option<u32>,
    pub blocking_per_pasv: Option<f64>,
    /// The widest range these control connections can ever need under the formula.
    pub ceiling: Option<u32>,
    /// With unlimited ports the number in use is Poisson(A): its quantile at 1 − target.
    pub poisson_check: Option<u32>,
}

pub fn policy_name(p: PortPickPolicy) -> String {
    match p {
        PortPickPolicy::Scan => "scan (Erlang B)".into(),
        PortPickPolicy::ScanFewSources { sources } => format!("scan, {sources} sources (Engset)"),
        PortPickPolicy::RandomTries { tries } => format!("{tries} random tries (birth-death chain)"),
    }
}

/// Blocking at `width` with only `sources` control connections. The loss models assume
/// unlimited clients; with S connections at most S−1 others can hold ports when one asks, so a
/// random-try server fails at most ((S−1)/N)^k and a scanning server never once N ≥ S.
pub fn bounded_blocking(policy: PortPickPolicy, offered: f64, width: u32, sources: u32) -> f64 {
    let modelled = model::blocking(policy, offered, width);
    let bound = match policy {
        PortPickPolicy::RandomTries { tries } => {
            model::random_try_fail_probability(sources.saturating_sub(1), width, tries)
        }
        PortPickPolicy::Scan | PortPickPolicy::ScanFewSources { .. } => {
            if width >= sources {
                0.0
            } else {
                1.0
            }
        }
    };
    modelled.min(bound)
}

/// Scanning servers with few connections are Engset; random-try servers the chain.
pub fn model_policy(pick: PortPickPolicy, sources: u32) -> PortPickPolicy {
    match pick {
        PortPickPolicy::Scan => PortPickPolicy::ScanFewSources { sources },
        other => other,
    }
}

pub fn check(pick: PortPickPolicy, pasv_per_s: f64, mean_hold_s: f64, sources: u32, gos_pasv: f64) -> AnalyticCheck {
    let offered = pasv_per_s * mean_hold_s;
    let policy = model_policy(pick, sources);
    let width = model::capped_min_width(policy, offered, gos_pasv, sources);
    AnalyticCheck {
        target: TargetLoad {
            pasv_per_s,
            mean_hold_s,
            offered_erlangs: offered,
        },
        policy: policy_name(policy),
        width,
        blocking_per_pasv: width.map(|w| bounded_blocking(policy, offered, w, sources)),
        ceiling: policy.width_ceiling(sources, gos_pasv),
        poisson_check: model::poisson_quantile(offered, 1.0 - gos_pasv),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PortPickPolicy::{RandomTries, Scan, ScanFewSources};

    #[test]
    fn each_policy_is_named_by_its_formula() {
        assert_eq!(policy_name(Scan), "scan (Erlang B)");
        assert_eq!(policy_name(ScanFewSources { sources: 12 }), "scan, 12 sources (Engset)");
        assert_eq!(
            policy_name(RandomTries { tries: 9 }),
            "9 random tries (birth-death chain)"
        );
    }

    #[test]
    fn a_scanning_server_is_modelled_with_its_connections_as_sources() {
        assert_eq!(model_policy(Scan, 7), ScanFewSources { sources: 7 });
        assert_eq!(model_policy(RandomTries { tries: 3 }, 7), RandomTries { tries: 3 });
        assert_eq!(
            model_policy(ScanFewSources { sources: 2 }, 7),
            ScanFewSources { sources: 2 }
        );
    }

    #[test]
    fn blocking_is_bounded_by_what_the_connections_can_hold() {
        // Erlang B by its recursion B_n = A·B_(n-1) / (n + A·B_(n-1)): 2/3, 0.4, 0.8/3.8.
        let scan = bounded_blocking(Scan, 2.0, 3, 10);
        assert!((scan - 0.8 / 3.8).abs() < 1e-12, "{scan}");
        // Three connections: while one asks, at most two hold ports, and a scan finds the third.
        assert_eq!(bounded_blocking(Scan, 2.0, 3, 3), 0.0);
        assert_eq!(bounded_blocking(ScanFewSources { sources: 3 }, 2.0, 3, 3), 0.0);
        // One port short of the connections: the formula's own value stands.
        assert!((bounded_blocking(Scan, 2.0, 3, 4) - 0.8 / 3.8).abs() < 1e-12);
        // 40 erlangs on 4 ports block 90.6% of PASVs in the birth-death chain (p_(n+1) = p_n·A·
        // (1 − (n/4)²)/(n+1), blocking Σ p_n (n/4)²; Python), but three connections leave at most
        // two ports held while one asks: (2/4)² = 0.25.
        let bounded = bounded_blocking(RandomTries { tries: 2 }, 40.0, 4, 3);
        assert!((bounded - 0.25).abs() < 1e-12, "{bounded}");
        // At 0.1 erlangs the chain's own 0.0067786 is below that bound and is what counts.
        let light = bounded_blocking(RandomTries { tries: 2 }, 0.1, 4, 3);
        assert!((light - 0.006_778_633_457_415_751).abs() < 1e-12, "{light}");
    }

    #[test]
    fn the_cross_check_of_a_scanning_server_has_check_values() {
        // 100 PASVs/s held 20 ms: 2 erlangs from 10 connections, β = 0.2/0.8 per idle source.
        // Engset over the 9 others (C(9,N)·β^N / Σ_(i≤N) C(9,i)·β^i, Python): 1.66% at 5 ports,
        // 0.2753% at 6, so 6 meets 1%. Poisson(2): P(X ≤ 5) = 0.9834, P(X ≤ 6) = 0.9955.
        let c = check(Scan, 100.0, 0.02, 10, 0.01);
        assert!((c.target.offered_erlangs - 2.0).abs() < 1e-12);
        assert_eq!((c.target.pasv_per_s, c.target.mean_hold_s), (100.0, 0.02));
        assert_eq!(c.policy, "scan, 10 sources (Engset)");
        assert_eq!(c.width, Some(6));
        let blocking = c.blocking_per_pasv.unwrap_or(f64::NAN);
        assert!((blocking - 0.002_753_376_163_629_212).abs() < 1e-12, "{blocking}");
        assert_eq!(c.ceiling, Some(10));
        assert_eq!(c.poisson_check, Some(6));
    }

    #[test]
    fn the_cross_check_of_a_random_try_server_is_capped_by_its_connections() {
        // 3 connections, one try: the chain at 40 erlangs would need about 4,000 ports, but two
        // held ports of N refuse 2/N ≤ 1% from N = 200 on, which is the ceiling too.
        let c = check(RandomTries { tries: 1 }, 2000.0, 0.02, 3, 0.01);
        assert_eq!(c.policy, "1 random tries (birth-death chain)");
        assert_eq!(c.ceiling, Some(200));
        assert_eq!(c.width, Some(200));
        let blocking = c.blocking_per_pasv.unwrap_or(f64::NAN);
        assert!((blocking - 0.01).abs() < 1e-12, "{blocking}");
        // Poisson(40): P(X ≤ 54) < 0.99 ≤ P(X ≤ 55) = 0.99032 (Python, lgamma sums).
        assert_eq!(c.poisson_check, Some(55));
    }
}
