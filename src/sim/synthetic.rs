//! Synthetic loads with the analytic models' assumptions: Poisson arrivals (Erlang B, the
//! random-try chain) or finite sources with exponential idle times (Engset), exponential
//! holds, and blocked requests cleared. Run through the same [`PortPool`] as the replay, they
//! show that the simulator reproduces each formula where the formula applies.

use super::pool::{PickOutcome, PortPool};
use super::server::PickOrder;
use super::trace::{AttemptResult, Trace, TraceAttempt, TraceConnection, TraceSession};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// Infinitely many sources: PASVs at `rate` per second whatever the range's state.
    Poisson { rate: f64 },
    /// `sources` connections, each asking for a port after an idle time of mean `idle_s`,
    /// counted from its last release or refusal.
    FiniteSources { sources: u32, idle_s: f64 },
}

fn exp<R: Rng>(rng: &mut R, mean_s: f64) -> u64 {
    let u: f64 = rng.random();
    (-(1.0 - u).ln() * mean_s * 1e6).round() as u64
}

/// Share of PASVs that find no port (call congestion), over `attempts` requests after a
/// warm-up of a tenth as many.
pub fn blocking(arrivals: Arrivals, hold_s: f64, width: u32, pick: PickOrder, attempts: u64, seed: u64) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pool = PortPool::new(width, pick, 0.0);
    let warm_up = attempts / 10;
    let (mut seen, mut failed) = (0u64, 0.0f64);
    let mut record = |i: u64, p: f64| {
        if i >= warm_up {
            seen += 1;
            failed += p;
        }
    };
    match arrivals {
        Arrivals::Poisson { rate } => {
            let mut t = 0u64;
            for i in 0..attempts + warm_up {
                t += exp(&mut rng, 1.0 / rate);
                let hold = t + exp(&mut rng, hold_s);
                record(i, pool.request(t, hold, &mut rng).p_exhausted);
            }
        }
        Arrivals::FiniteSources { sources, idle_s } => {
            let mut next: BinaryHeap<Reverse<(u64, u32)>> =
                (0..sources).map(|s| Reverse((exp(&mut rng, idle_s), s))).collect();
            for i in 0..attempts + warm_up {
                let Some(Reverse((t, s))) = next.pop() else { break };
                let end = t + exp(&mut rng, hold_s);
                let pick = pool.request(t, end, &mut rng);
                record(i, pick.p_exhausted);
                let free_at = match pick.outcome {
                    PickOutcome::Granted(_) => end,
                    _ => t,
                };
                next.push(Reverse((free_at + exp(&mut rng, idle_s), s)));
            }
        }
    }
    if seen > 0 {
        failed / seen as f64
    } else {
        0.0
    }
}

/// A load described by a profile alone, for `plan --what-if`: the shape of the sessions, and
/// assumed times where a run would have measured them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileLoad {
    /// Closed model: this many sessions at once; open model: `None`, and `rate` arrivals/s.
    pub sessions: Option<u32>,
    pub rate: f64,
    pub parallel: u32,
    pub files: u32,
    /// Mean time the server holds a port per PASV.
    pub hold_s: f64,
    /// Mean time one file takes on a connection, at least the hold.
    pub per_file_s: f64,
    pub think_s: f64,
    pub login_s: f64,
    pub ramp_up_s: f64,
    pub duration_s: f64,
}

/// A trace of `load` with exponential holds and file times: what the replay would see of a
/// run whose sessions are independent. Real runs are burstier (see [`super::replay`]), so a
/// plan from this is a floor to confirm with a run.
pub fn trace_for(load: &ProfileLoad, seed: u64) -> Trace {
    let mut rng = StdRng::seed_from_u64(seed);
    let until = (load.duration_s * 1e6) as u64;
    let mut trace = Trace::default();
    let parallel = load.parallel.max(1);
    let session_at = |trace: &mut Trace, rng: &mut StdRng, start: u64| -> u64 {
        let session = trace.sessions.len() as u32;
        trace.sessions.push(TraceSession::default());
        let login_done = start + exp(rng, load.login_s);
        let mut end = login_done;
        for c in 0..parallel {
            let connection = trace.connections.len() as u32;
            let files = load.files / parallel + u32::from(c < load.files % parallel);
            let mut t = login_done;
            for _ in 0..files {
                let hold = exp(rng, load.hold_s);
                let file = exp(rng, load.per_file_s).max(hold);
                trace.attempts.push(TraceAttempt {
                    session,
                    connection,
                    is_stor: false,
                    t_sent: t,
                    t_reply: Some(t),
                    t_connected: Some(t + hold),
                    t_first_byte: Some(t + hold),
                    t_closed: Some(t + file),
                    t_final: Some(t + file),
                    result: AttemptResult::Granted,
                });
                t += file + exp(rng, load.think_s);
            }
            trace.connections.push(TraceConnection {
                session,
                t_open: start,
                t_close: t,
                greeting_refused: false,
            });
            end = end.max(t);
        }
        end
    };
    match load.sessions {
        Some(slots) => {
            for slot in 0..slots {
                let mut t = (load.ramp_up_s * 1e6 * f64::from(slot) / f64::from(slots.max(1))) as u64;
                while t < until {
                    t = session_at(&mut trace, &mut rng, t).max(t + 1);
                }
            }
        }
        None if load.rate > 0.0 => {
            let mut t = exp(&mut rng, 1.0 / load.rate);
            while t < until {
                session_at(&mut trace, &mut rng, t);
                t += exp(&mut rng, 1.0 / load.rate).max(1);
            }
        }
        None => {}
    }
    trace.attempts.sort_by_key(|a| (a.connection, a.t_sent));
    let cycles: Vec<u64> = trace
        .attempts
        .windows(2)
        .filter(|w| w[0].connection == w[1].connection)
        .map(|w| w[1].t_sent - w[0].t_sent)
        .collect();
    trace.active_share = super::trace::active_share(&trace.attempts);
    trace.median_cycle_us = if cycles.is_empty() {
        1
    } else {
        let mut c = cycles;
        let mid = c.len() / 2;
        *c.select_nth_unstable(mid).1
    };
    trace
}

/// The realistic profile's shape: 20 sessions × 2 connections, 8 files, 0.6 ms holds and
/// ~110 ms think time, run on 100 ports (what several of the simulator's tests replay).
#[cfg(test)]
pub(crate) fn realistic_trace() -> Trace {
    let load = ProfileLoad {
        sessions: Some(20),
        rate: 0.0,
        parallel: 2,
        files: 8,
        hold_s: 0.0006,
        per_file_s: 0.0015,
        think_s: 0.11,
        login_s: 0.005,
        ramp_up_s: 2.0,
        duration_s: 20.0,
    };
    let mut trace = trace_for(&load, 7);
    trace.run_width = Some(100);
    trace
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    const N: u64 = 400_000;

    fn close(sim: f64, formula: f64, rel: f64) {
        assert!(
            (sim - formula).abs() <= rel * formula,
            "simulated {sim:.6} vs formula {formula:.6} (tolerance {:.0}%)",
            rel * 100.0
        );
    }

    #[test]
    fn poisson_arrivals_on_a_scanned_range_are_erlang_b() {
        // A = 10 erlangs on 17 ports: B = 0.01295 (a check value in ARCHITECTURE.md).
        let sim = blocking(Arrivals::Poisson { rate: 1000.0 }, 0.010, 17, PickOrder::AnyFree, N, 1);
        close(sim, model::erlang_b(10.0, 17), 0.06);
        close(sim, 0.01295, 0.06);
    }

    #[test]
    fn finite_sources_on_a_scanned_range_are_engset() {
        // S = 50, N = 18, β = 0.25: 0.003005 (a check value in ARCHITECTURE.md). β = hold / idle.
        let arrivals = Arrivals::FiniteSources {
            sources: 50,
            idle_s: 0.040,
        };
        let sim = blocking(arrivals, 0.010, 18, PickOrder::AnyFree, N, 2);
        close(sim, model::engset_blocking(50, 18, 0.25), 0.10);
        close(sim, 0.003005, 0.10);
    }

    #[test]
    fn poisson_arrivals_with_nine_random_tries_follow_the_chain() {
        let sim = blocking(
            Arrivals::Poisson { rate: 1000.0 },
            0.010,
            20,
            PickOrder::RandomTries { tries: 9 },
            N,
            3,
        );
        close(sim, model::random_try_blocking(10.0, 20, 9), 0.06);
        // And it needs far more ports than a scan for the same load.
        assert!(sim > 5.0 * model::erlang_b(10.0, 20));
    }

    #[test]
    fn a_random_start_scan_blocks_exactly_like_any_free_port() {
        // Both fail only when every port is held, so their blocking is the same Erlang B.
        let sim = blocking(
            Arrivals::Poisson { rate: 1000.0 },
            0.010,
            17,
            PickOrder::RandomStartThenScan,
            N,
            4,
        );
        close(sim, model::erlang_b(10.0, 17), 0.06);
    }
}
