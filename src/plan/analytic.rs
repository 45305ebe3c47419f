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
