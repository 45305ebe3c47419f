//! Fitting what the run can tell about the server: the bind-race window from the run's
//! collisions (weighed against the typical window), and the release lag from its refusals
//! (chosen so that replaying the run at its own width reproduces them) or, on a range too wide
//! to refuse, from the server's own listeners (chosen so that the replayed holds add up to
//! the ports it was seen holding). A remote server on a wide range keeps the known values.

use super::race_window::{fit_race_window, PRIOR_COLLISIONS};
use super::server::{OnExhausted, OnRefusal, ServerModel, Source};
use super::trace::{AttemptResult, Trace};
use super::Predictor;

/// Fewer refusals than this say too little to fit a lag on.
const MIN_REFUSALS_FOR_LAG: usize = 3;
/// The refusal count the lag is fitted to: this quantile of the rate the run's count tells
/// (Jeffreys posterior, Gamma(k + 1/2, 1)), so that a lucky run does not size the range. 18
/// refusals are fitted as 22.
const LAG_QUANTILE: f64 = 0.8;
const REPLICATIONS: u32 = 3;
/// Fewer fast listener counts than this (about a second of sampling) say too little to fit a
/// lag on.
const MIN_LISTENER_SAMPLES: u32 = 250;
/// The standard normal quantile of [`LAG_QUANTILE`]: the listener fit sizes on the same upper
/// quantile as the refusal fit.
const LAG_QUANTILE_Z: f64 = 0.8416;
/// Counts below this share of what the run's grants held by our own timestamps cannot be the
/// server's listeners: no server frees a port nine tenths of the way before our 227 says it has
/// it.
const MIN_SEEN_SHARE: f64 = 0.1;
/// The largest lag, either way, a listener fit may find (1 s).
const LAG_BOUND_US: f64 = 1e6;

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
        let races_at = |window: f64| {
            let mut m = model.clone();
            m.collision_window_us.value = window;
            expected(trace, &m, run_width, seed, |c| c.collided)
        };
        let at_prior = races_at(prior);
        let fit = fit_race_window(seen, prior, model.collision_window_quantile, races_at);
        model.collision_window_us.value = fit.window_us;
        model.collision_window_us.source = Source::Measured(format!(
            "{seen} bind race{} in the run's {offered} PASVs at {run_width} ports, where the typical {prior:.0} µs \
             gives {at_prior:.1}; base window {:.1}–{:.1} µs (20–80%, the typical one weighing as \
             {PRIOR_COLLISIONS:.0} races), sized on {:.1} ({:.0}%), where the replay races {:.1} times",
            if seen == 1 { "" } else { "s" },
            fit.low_us,
            fit.high_us,
            fit.window_us,
            model.collision_window_quantile * 100.0,
            fit.races,
        ));
    }

    if calibratable(&model.release_lag_us.source) {
        let seen = match model.on_exhausted.value {
            OnExhausted::Refuse => refusals_the_range_made(trace, model.on_refusal.value),
            OnExhausted::GrantOutside => count(AttemptResult::GrantedOutside),
        };
        let on_listeners = if seen < MIN_REFUSALS_FOR_LAG {
            fit_lag_on_listeners(trace, model)
        } else {
            None
        };
        let fitted = match on_listeners {
            // Longer holds than the known lag are taken; shorter ones only where our view of
            // the holds is known to run late (see [`fit_lag_on_listeners`]).
            Some(Ok(fit)) if fit.lag_us > model.release_lag_us.value || model.holds_seen_late(trace.host_cpu_busy) => {
                model.release_lag_us.value = fit.lag_us;
                model.release_lag_us.source = Source::Measured(fit.describe(model));
                true
            }
            Some(Ok(fit)) => {
                notes.push(format!(
                    "{}; the known {:+.2} ms is kept, since a narrow range fails on the holds that are long when it is \
                     busy, which a mean does not show",
                    fit.describe(model),
                    model.release_lag_us.value / 1e3
                ));
                false
            }
            Some(Err(why)) => {
                notes.push(format!(
                    "the server's listener counts were not used for its release lag: {why}"
                ));
                false
            }
            None => false,
        };
        if !fitted && seen > 0 && seen < MIN_REFUSALS_FOR_LAG {
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

/// The refusals a replay can be compared with. A server that ends the session with its
/// refusal (vsftpd) answers the connection's next commands with the remains of that session
/// (`500 OOPS: priv_sock_get_int` from its other process, then a closed socket), which runs
/// before this build's client recorded as refused PASVs too: 2.3–2.8 per dropped connection
/// in sixteen vsftpd sweep runs, every first one a `vsf_sysutil_bind`. The replay marks the
/// connection dead at its first refusal, so only that one counts.
pub(super) fn refusals_the_range_made(trace: &Trace, on_refusal: OnRefusal) -> usize {
    let refused = trace.attempts.iter().filter(|a| a.result == AttemptResult::Refused);
    match on_refusal {
        OnRefusal::Continue => refused.count(),
        OnRefusal::DropConnection => refused
            .map(|a| a.connection)
            .collect::<std::collections::HashSet<_>>()
            .len(),
    }
}

/// The release lag that makes the replayed holds add up to the ports the server was seen
/// holding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenerFit {
    pub lag_us: f64,
    /// Mean ports held over the sampled ticks: seen, by the hold rule alone, and sized on.
    pub seen: f64,
    pub by_rule: f64,
    pub sized_on: f64,
    pub samples: u32,
    pub seconds: f64,
}

impl ListenerFit {
    fn describe(&self, model: &ServerModel) -> String {
        format!(
            "the server's listeners on the range, counted {} times over {:.0} s of the run: {:.2} ports held on \
             average, where holding {} gives {:.2}; {:+.2} ms on each hold matches them at their {:.0}% upper \
             bound ({:.2})",
            self.samples,
            self.seconds,
            self.seen,
            model.hold_end.value.describe(),
            self.by_rule,
            self.lag_us / 1e3,
            LAG_QUANTILE * 100.0,
            self.sized_on,
        )
    }
}

/// Fits the release lag on the server's own listener counts (see [`ListenerFit`]): by Little's
/// law the mean number of ports held is the PASV rate times the mean hold, so the counts pin
/// the mean of the server's holds down where our timestamps only bracket them. Each tick's
/// shortfall against the replay is one batch: their spread gives the fit's uncertainty, and
/// the lag is sized on [`LAG_QUANTILE`] of it, as the refusal fit is.
///
/// Calibration takes the fit only where it lengthens the server's known hold, or where our
/// timestamps of the holds are known to run late ([`ServerModel::holds_seen_late`]: the
/// embedded server, in our own runtime, on a busy host). A mean is not the tail a narrow range fails on: on
/// loopback, vsftpd refused PASVs at 4 ports while its listeners averaged 0.47 of them around
/// the refusals, and the plan made with the shorter holds the mean gave vsftpd was refuted at
/// twice the sessions: 10.8% of sessions failing at 6 ports, 0.20% predicted. (The embedded
/// server's plan for the same check, 6 ports, is what its known hold plans too; that 3.4%
/// did not recur in three more runs: 0.46–0.83%.)
///
/// `None` without enough
/// counts (a remote server, or a build that did not take them); an error when the counts
/// cannot be the server's (far fewer than its grants must have held: another address family,
/// a container's proxy, another range).
pub fn fit_lag_on_listeners(trace: &Trace, model: &ServerModel) -> Option<Result<ListenerFit, String>> {
    let (lo, hi) = trace.span()?;
    let ticks: Vec<_> = trace
        .listening
        .iter()
        .filter(|t| t.from_us >= lo && t.to_us <= hi && t.to_us > t.from_us && t.samples > 0)
        .copied()
        .collect();
    let samples: u32 = ticks.iter().map(|t| t.samples).sum();
    if samples < MIN_LISTENER_SAMPLES || ticks.len() < 3 {
        return None;
    }
    let mut rule = model.clone();
    rule.release_lag_us.value = 0.0;
    // The ports the run's granted PASVs held on the range, by the hold rule, without a lag.
    let held: Vec<(u64, u64)> = super::replay::holds(trace, &rule)
        .filter(|(i, _)| trace.attempts[*i].result == AttemptResult::Granted)
        .map(|(_, h)| h)
        .collect();
    let per_tick = |lag: f64| -> Vec<f64> {
        let mut area = vec![0.0; ticks.len()];
        for &(start, end) in &held {
            let (s, e) = (start as f64, (end as f64 + lag).max(start as f64));
            let first = ticks.partition_point(|t| (t.to_us as f64) <= s);
            for (k, t) in ticks.iter().enumerate().skip(first) {
                if t.from_us as f64 >= e {
                    break;
                }
                area[k] += e.min(t.to_us as f64) - s.max(t.from_us as f64);
            }
        }
        area
    };
    let seen: Vec<f64> = ticks.iter().map(|t| t.mean * (t.to_us - t.from_us) as f64).collect();
    let total_seen: f64 = seen.iter().sum();
    let duration: f64 = ticks.iter().map(|t| (t.to_us - t.from_us) as f64).sum();
    let by_rule = per_tick(0.0).iter().sum::<f64>();
    if total_seen < MIN_SEEN_SHARE * by_rule {
        return Some(Err(format!(
            "they average {:.2} ports where the run's grants held {:.2} by our timestamps",
            total_seen / duration,
            by_rule / duration
        )));
    }
    // The lag at which the replayed area reaches `goal`: the area only grows with the lag.
    let solve = |goal: f64| -> Option<f64> {
        let total = |lag: f64| per_tick(lag).iter().sum::<f64>();
        let (mut a, mut b) = (-LAG_BOUND_US, LAG_BOUND_US);
        if total(b) < goal || total(a) >= goal {
            return None;
        }
        while b - a > 1.0 {
            let mid = (a + b) / 2.0;
            if total(mid) < goal {
                a = mid;
            } else {
                b = mid;
            }
        }
        Some((a + b) / 2.0)
    };
    let out_of_bounds = || format!("no lag within ±{:.0} s matches them", LAG_BOUND_US / 1e6);
    let Some(central) = solve(total_seen) else {
        return Some(Err(out_of_bounds()));
    };
    let residuals: Vec<f64> = per_tick(central).iter().zip(&seen).map(|(sim, s)| s - sim).collect();
    let n = residuals.len() as f64;
    let mean_residual = residuals.iter().sum::<f64>() / n;
    let variance = residuals.iter().map(|r| (r - mean_residual).powi(2)).sum::<f64>() / (n - 1.0);
    let sized_on = total_seen + LAG_QUANTILE_Z * (variance * n).sqrt();
    let Some(lag_us) = solve(sized_on) else {
        return Some(Err(out_of_bounds()));
    };
    Some(Ok(ListenerFit {
        lag_us,
        seen: total_seen / duration,
        by_rule: by_rule / duration,
        sized_on: sized_on / duration,
        samples,
        seconds: duration / 1e6,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::server::ServerKind;
    use crate::sim::trace::{ListenerTick, TraceAttempt, TraceConnection, TraceSession};

    /// vsftpd holds from its 227 to its 226 plus a lag. The trace's PASVs hold 900 µs by that
    /// rule; the "server" below really held each 2 ms longer.
    const TRUE_LAG_US: u64 = 2_000;
    const TICK_US: u64 = 100_000;

    fn trace() -> Trace {
        let mut trace = Trace::default();
        let connections = 4u32;
        for c in 0..connections {
            trace.sessions.push(TraceSession::default());
            trace.connections.push(TraceConnection {
                session: c,
                t_open: 0,
                t_close: 5_100_000,
                greeting_refused: false,
            });
            // Irregular gaps, so holds overlap and straddle tick edges.
            let mut t = 1_000 + u64::from(c) * 333;
            let mut i = 0u64;
            while t < 5_000_000 {
                trace.attempts.push(TraceAttempt {
                    session: c,
                    connection: c,
                    is_stor: false,
                    t_sent: t,
                    t_reply: Some(t + 100),
                    t_connected: Some(t + 300),
                    t_first_byte: Some(t + 500),
                    t_closed: Some(t + 900),
                    t_final: Some(t + 1_000),
                    result: AttemptResult::Granted,
                });
                i += 1;
                t += 3_500 + (i * 7_919 + u64::from(c) * 104_729) % 2_000;
            }
        }
        trace
    }

    /// What a sampler would have seen: each tick's mean count of ports held, counted on a
    /// 10 µs grid from the true holds (reply to final reply plus the true lag).
    fn seen(trace: &Trace, from_us: u64, to_us: u64) -> Vec<ListenerTick> {
        let holds: Vec<(u64, u64)> = trace
            .attempts
            .iter()
            .map(|a| (a.t_reply.unwrap(), a.t_final.unwrap() + TRUE_LAG_US))
            .collect();
        (from_us / TICK_US..to_us / TICK_US)
            .map(|k| {
                let (from, to) = (k * TICK_US, (k + 1) * TICK_US);
                let grid: Vec<u64> = (from..to).step_by(10).collect();
                let held = grid
                    .iter()
                    .map(|&t| holds.iter().filter(|&&(s, e)| s <= t && t < e).count())
                    .sum::<usize>();
                ListenerTick {
                    from_us: from,
                    to_us: to,
                    mean: held as f64 / grid.len() as f64,
                    samples: 30,
                }
            })
            .collect()
    }

    #[test]
    fn the_servers_listeners_give_back_the_lag_its_holds_had() {
        let mut trace = trace();
        trace.listening = seen(&trace, 0, 5_000_000);
        let model = ServerModel::known(ServerKind::Vsftpd);
        let fit = fit_lag_on_listeners(&trace, &model).unwrap().unwrap();
        // The first and last ticks start before the first PASV or end after the last: left out.
        assert_eq!(fit.samples, 30 * 48);
        // Hold 900 µs by the rule, 2,900 in truth: the counts say so (to the grid's 10 µs),
        // and the lag sized on their upper bound is a little above, never below.
        let ratio = fit.seen / fit.by_rule;
        assert!((ratio - 2_900.0 / 900.0).abs() < 0.05, "{fit:?}");
        assert!(
            fit.lag_us >= TRUE_LAG_US as f64 - 20.0 && fit.lag_us < TRUE_LAG_US as f64 + 100.0,
            "{fit:?}"
        );
        assert!(fit.sized_on >= fit.seen, "{fit:?}");

        // Counts from outside the replayed span (a long run planned on its busiest stretch)
        // are not compared with holds the replay does not have.
        let mut padded = trace.clone();
        padded.listening.push(ListenerTick {
            from_us: 6_000_000,
            to_us: 6_100_000,
            mean: 50.0,
            samples: 30,
        });
        assert_eq!(fit_lag_on_listeners(&padded, &model), Some(Ok(fit)));
    }

    #[test]
    fn shorter_holds_than_our_timestamps_give_a_negative_lag() {
        let mut trace = trace();
        trace.listening = seen(&trace, 0, 5_000_000);
        // Our 226s arrive 3 ms later than the ones the holds above ended on, so the server
        // freed each port 1 ms before we saw its 226.
        let model = ServerModel::known(ServerKind::Vsftpd);
        for t in &mut trace.attempts {
            t.t_final = t.t_final.map(|f| f + 3_000);
        }
        let fit = fit_lag_on_listeners(&trace, &model).unwrap().unwrap();
        assert!((fit.lag_us - (TRUE_LAG_US as f64 - 3_000.0)).abs() < 100.0, "{fit:?}");
        assert!(fit.lag_us < 0.0);
    }

    #[test]
    fn a_shorter_fit_shortens_the_hold_only_where_our_view_of_the_holds_runs_late() {
        let mut trace = trace();
        // The server's listeners held a tenth of what our timestamps say it held.
        trace.listening = seen(&trace, 0, 5_000_000)
            .into_iter()
            .map(|t| ListenerTick {
                mean: t.mean / 10.0,
                ..t
            })
            .collect();
        trace.host_cpu_busy = Some(0.96);
        let calibrated = |kind, trace: &Trace| {
            let mut model = ServerModel::known(kind);
            let known = model.release_lag_us.value;
            let notes = calibrate(trace, &mut model, 100, 1);
            (known, model, notes)
        };
        // vsftpd: the known lag stays, and the plan says why.
        let (known, vsftpd, notes) = calibrated(ServerKind::Vsftpd, &trace);
        assert_eq!(vsftpd.release_lag_us.value, known);
        assert!(notes.iter().any(|n| n.contains("is kept")), "{notes:?}");
        // The embedded server shares our runtime, which the busy host held up: its
        // listeners are taken.
        let (known, embedded, _) = calibrated(ServerKind::Embedded, &trace);
        assert!(
            embedded.release_lag_us.value < known - 100.0,
            "{:?}",
            embedded.release_lag_us
        );
        assert!(matches!(embedded.release_lag_us.source, Source::Measured(_)));
        // On an idle host (or one not measured) our view is not late: the known lag stays.
        for busy in [Some(0.08), None] {
            trace.host_cpu_busy = busy;
            let (known, embedded, _) = calibrated(ServerKind::Embedded, &trace);
            assert_eq!(embedded.release_lag_us.value, known, "{busy:?}");
        }
    }

    #[test]
    fn only_the_ports_the_run_was_granted_in_the_range_are_held() {
        let mut trace = trace();
        trace.listening = seen(&trace, 0, 5_000_000);
        let model = ServerModel::known(ServerKind::Vsftpd);
        let fit = fit_lag_on_listeners(&trace, &model).unwrap().unwrap();
        // PASVs refused, colliding, granted outside the range or never answered held nothing
        // on the range: adding them changes nothing.
        let extra: Vec<TraceAttempt> = [
            AttemptResult::Refused,
            AttemptResult::Collided,
            AttemptResult::GrantedOutside,
            AttemptResult::NoAnswer,
        ]
        .iter()
        .enumerate()
        .flat_map(|(k, &result)| {
            (0..200u64).map(move |i| TraceAttempt {
                session: 0,
                connection: 0,
                is_stor: false,
                t_sent: 200_000 + i * 20_000 + k as u64 * 5_000,
                t_reply: Some(200_100 + i * 20_000 + k as u64 * 5_000),
                t_connected: None,
                t_first_byte: None,
                t_closed: None,
                t_final: None,
                result,
            })
        })
        .collect();
        let mut with = trace.clone();
        with.attempts.extend(extra);
        with.attempts.sort_by_key(|a| (a.connection, a.t_sent));
        let other = fit_lag_on_listeners(&with, &model).unwrap().unwrap();
        assert!((other.lag_us - fit.lag_us).abs() < 2.0, "{fit:?} vs {other:?}");
    }

    #[test]
    fn the_upper_bound_grows_with_the_counts_scatter_as_a_mean_does() {
        use rand::{Rng, SeedableRng};
        let mut trace = trace();
        trace.listening = seen(&trace, 0, 5_000_000);
        let model = ServerModel::known(ServerKind::Vsftpd);
        let exact = fit_lag_on_listeners(&trace, &model).unwrap().unwrap();
        // Each tick's mean off by independent noise of standard deviation 0.3 ports: the mean of
        // the 48 fitted ticks is then uncertain by 0.3 / √48, and its 80% upper bound lies
        // 0.8416 of that above it.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let sd = 0.3;
        for t in &mut trace.listening {
            let normal: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
            t.mean = (t.mean + sd * normal).max(0.0);
        }
        let noisy = fit_lag_on_listeners(&trace, &model).unwrap().unwrap();
        let margin = noisy.sized_on - noisy.seen;
        let expected = 0.8416 * sd / 48f64.sqrt();
        assert!(
            margin > 0.6 * expected && margin < 1.5 * expected,
            "{margin} vs {expected}"
        );
        assert!(exact.sized_on - exact.seen < 0.1 * expected, "{exact:?}");
    }

    #[test]
    fn counts_that_cannot_be_the_servers_are_not_used() {
        let mut trace = trace();
        trace.listening = seen(&trace, 0, 5_000_000);
        // The sampler watched another family or range: hardly anything listening.
        for t in &mut trace.listening {
            t.mean *= 0.02;
        }
        let model = ServerModel::known(ServerKind::Vsftpd);
        match fit_lag_on_listeners(&trace, &model) {
            Some(Err(why)) => assert!(why.contains("ports where the run's grants held"), "{why}"),
            other => panic!("{other:?}"),
        }
        let mut calibrated = model.clone();
        let notes = calibrate(&trace, &mut calibrated, 100, 1);
        assert_eq!(calibrated.release_lag_us, model.release_lag_us);
        assert!(
            notes.iter().any(|n| n.contains("listener counts were not used")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_server_that_drops_the_session_refuses_once_per_connection() {
        // Connection 0 is vsftpd's dropped session: its bind OOPS, then the other process's
        // OOPS and a closed socket answering the next two PASVs. Connection 1 was refused
        // once, connection 2 never.
        let mut trace = Trace::default();
        for (connection, results) in [
            (
                0u32,
                vec![
                    AttemptResult::Granted,
                    AttemptResult::Refused,
                    AttemptResult::Refused,
                    AttemptResult::Refused,
                ],
            ),
            (1, vec![AttemptResult::Refused]),
            (2, vec![AttemptResult::Granted, AttemptResult::Granted]),
        ] {
            for (i, result) in results.into_iter().enumerate() {
                let t = 1_000 * i as u64;
                trace.attempts.push(TraceAttempt {
                    session: connection,
                    connection,
                    is_stor: false,
                    t_sent: t,
                    t_reply: Some(t + 100),
                    t_connected: None,
                    t_first_byte: None,
                    t_closed: None,
                    t_final: None,
                    result,
                });
            }
        }
        assert_eq!(refusals_the_range_made(&trace, OnRefusal::DropConnection), 2);
        assert_eq!(refusals_the_range_made(&trace, OnRefusal::Continue), 4);
    }

    #[test]
    fn without_enough_counts_the_known_lag_stays() {
        let mut trace = trace();
        let model = ServerModel::known(ServerKind::Vsftpd);
        assert_eq!(fit_lag_on_listeners(&trace, &model), None);
        // 250 counts are needed: 8 ticks of 30 are not enough.
        trace.listening = seen(&trace, 100_000, 900_000);
        assert_eq!(fit_lag_on_listeners(&trace, &model), None);
        let mut calibrated = model.clone();
        calibrate(&trace, &mut calibrated, 100, 1);
        assert_eq!(calibrated.release_lag_us, model.release_lag_us);

        // With them, and no refusals to go by, calibration takes the listeners' lag where it
        // lengthens the known one (0 here), and says so.
        trace.listening = seen(&trace, 0, 5_000_000);
        let mut shorter = model.clone();
        shorter.release_lag_us.value = 0.0;
        let mut calibrated = shorter.clone();
        calibrate(&trace, &mut calibrated, 100, 1);
        assert!((calibrated.release_lag_us.value - TRUE_LAG_US as f64).abs() < 100.0);
        match &calibrated.release_lag_us.source {
            Source::Measured(why) => assert!(why.contains("listeners on the range"), "{why}"),
            other => panic!("{other:?}"),
        }
        // A known lag longer than the 2 ms the counts show stays, and the plan says what the
        // counts said.
        let mut longer = model.clone();
        longer.release_lag_us.value = 3_000.0;
        let mut calibrated = longer.clone();
        let notes = calibrate(&trace, &mut calibrated, 100, 1);
        assert_eq!(calibrated.release_lag_us, longer.release_lag_us);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("listeners on the range") && n.contains("+3.00 ms is kept")),
            "{notes:?}"
        );
        // A lag given on the command line is the user's to keep.
        let mut given = model.clone();
        given.release_lag_us = crate::sim::server::Sourced::new(500.0, Source::Given);
        calibrate(&trace, &mut given, 100, 1);
        assert_eq!(given.release_lag_us.value, 500.0);
    }
}
