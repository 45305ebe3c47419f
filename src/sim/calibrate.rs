//! Fitting what the run can tell about the server: the bind-race window from the run's
//! collisions (weighed against the typical window), and the release lag from its refusals
//! (chosen so that replaying the run at its own width reproduces them). A run on a wide range
//! that saw neither keeps the known values.

use super::server::{OnExhausted, ServerModel, Source};
use super::trace::{AttemptResult, Trace};
use super::Predictor;

/// How many collisions' worth of evidence the typical race window counts for.
const PRIOR_COLLISIONS: f64 = 3.0;
/// Fewer refusals than this say too little to fit a lag on.
const MIN_REFUSALS_FOR_LAG: usize = 3;
/// The refusal count the lag is fitted to: this quantile of the rate the run's count tells
/// (Jeffreys posterior, Gamma(k + 1/2, 1)), so that a lucky run does not size the range. 18
/// refusals are fitted as 22.
const LAG_QUANTILE: f64 = 0.8;
const REPLICATIONS: u32 = 3;

fn expected(trace: &Trace, model: &ServerModel, width: u32, seed: u64, f: fn(&super::Counts) -> f64) -> f64 {
    let p = Predictor::as_run(trace, model.clone(), REPLICATIONS, seed);
    f(&p.counts(width)) / f64::from(REPLICATIONS)
}

/// Calibrates `model` on `trace`, recorded at `run_width` ports. Returns notes for the plan.
pub fn calibrate(trace: &Trace, model: &mut ServerModel, run_width: u32, seed: u64) -> Vec<String> {
    let mut notes = Vec::new();
    let count = |r: AttemptResult| trace.attempts.iter().filter(|a| a.result == r).count();
    let offered = trace
        .attempts
        .iter()
        .filter(|a| a.result != AttemptResult::NoAnswer)
        .count();
    if offered == 0 {
        return notes;
    }
    let calibratable =
        |s: &Source| !matches!(s, Source::Given) && !matches!(s, Source::Measured(w) if w.contains("probe"));

    if model.may_collide() && calibratable(&model.collision_window_us.source) {
        // Collisions are rare on a wide range (0 to 2 in a 10 s run at 100 ports), far too few
        // to size a range on alone: the run's count updates the typical window (a Gamma prior
        // worth PRIOR_COLLISIONS collisions) rather than replacing it.
        let seen = count(AttemptResult::Collided);
        let prior = model.collision_window_us.value.max(1e-3);
        // Expected collisions grow in proportion to the base window (the TIME_WAIT stretch
        // multiplies it). Collisions are rare on a wide range (0 to 4 in a 10 s run at 100
        // ports), too few to size on alone: a Gamma prior worth PRIOR_COLLISIONS collisions at
        // the typical base, updated by the run's count.
        let per_us = expected(trace, model, run_width, seed, |c| c.collided) / prior;
        let shape = PRIOR_COLLISIONS + seen as f64;
        let rate = PRIOR_COLLISIONS / prior + per_us;
        let quantile = |q: f64| {
            statrs::distribution::Gamma::new(shape, rate)
                .map(|g| statrs::distribution::ContinuousCDF::inverse_cdf(&g, q))
                .unwrap_or(shape / rate)
        };
        // At the server's quantile: above the median where collisions vary widely between
        // runs, since a width sized on a lucky run is the one a sweep refutes.
        let window = quantile(model.collision_window_quantile);
        model.collision_window_us.value = window;
        model.collision_window_us.source = Source::Measured(format!(
            "{seen} bind races in the run's {offered} PASVs at {run_width} ports, where the typical {prior:.0} µs \
             gives {:.1}; base window {:.0}–{:.0} µs (20–80%, the typical one weighing as {PRIOR_COLLISIONS:.0} \
             races), sized on {window:.0} ({:.0}%)",
            per_us * prior,
            quantile(0.2),
            quantile(0.8),
            model.collision_window_quantile * 100.0
        ));
    }

    if calibratable(&model.release_lag_us.source) {
        let seen = match model.on_exhausted.value {
            OnExhausted::Refuse => count(AttemptResult::Refused),
            OnExhausted::GrantOutside => count(AttemptResult::GrantedOutside),
        };
        if seen > 0 && seen < MIN_REFUSALS_FOR_LAG {
            notes.push(format!(
                "the run had {seen} refusal(s) at {run_width} ports, too few to calibrate the server's release lag on"
            ));
        }
        if seen >= MIN_REFUSALS_FOR_LAG {
            let at = |lag: f64| {
                let mut m = model.clone();
                m.release_lag_us.value = lag;
                expected(trace, &m, run_width, seed, |c| c.exhausted)
            };
            let without = at(0.0);
            let goal = statrs::distribution::Gamma::new(seen as f64 + 0.5, 1.0)
                .map(|g| statrs::distribution::ContinuousCDF::inverse_cdf(&g, LAG_QUANTILE))
                .unwrap_or(seen as f64);
            // The lag (either sign) at which the replay at the run's own width refuses as
            // often as the run did, at the count's upper quantile: a bisection on a count that
            // grows with the lag.
            let (mut lo, mut hi) = if without < goal { (0.0, 1e4) } else { (-1e4, 0.0) };
            while at(hi) < goal && hi < 1e7 {
                (lo, hi) = (hi, hi * 4.0);
            }
            while at(lo) > goal && lo > -1e7 {
                (lo, hi) = (lo * 4.0, lo);
            }
            for _ in 0..30 {
                let mid = (lo + hi) / 2.0;
                if at(mid) < goal {
                    lo = mid;
                } else {
                    hi = mid;
                }
                if hi - lo < 10.0 {
                    break;
                }
            }
            let lag = (lo + hi) / 2.0;
            model.release_lag_us.value = lag;
            model.release_lag_us.source = Source::Measured(format!(
                "calibrated: {lag_ms:+.2} ms on the hold makes the replay at the run's {run_width} ports refuse \
                 {goal:.0} times, the {q:.0}% upper quantile of the run's {seen} refusals ({without:.0} without it)",
                lag_ms = lag / 1e3,
                q = LAG_QUANTILE * 100.0
            ));
        }
    }
    notes
}
