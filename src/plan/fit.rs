//! Fitting the offered load from a run: PASV rate in the busiest window, hold time under the
//! server's release policy, A = λ·E[H] (Little's law) cross-checked against the time-average
//! of ports held, and how ports held track concurrent data connections.

use super::observed::{busiest_window, Attempt, LoggedIn, Observed};
pub use crate::model::HoldPolicy;
use crate::summary::ledger::ReleasePolicy;
use serde::{Deserialize, Serialize};

// The hold as this run's records measure it; the policy itself is the model's.
impl HoldPolicy {
    pub fn from_ledger(p: ReleasePolicy) -> (HoldPolicy, &'static str) {
        match p {
            ReleasePolicy::AtAccept => (HoldPolicy::UntilTransferStarts, "observed in the ledger"),
            ReleasePolicy::HeldDuringTransfer => (HoldPolicy::UntilTransferEnds, "observed in the ledger"),
            // The longer hold is the safe assumption: it can only widen the range.
            ReleasePolicy::Undetermined => (
                HoldPolicy::UntilTransferEnds,
                "assumed: the ledger could not tell, and the longer hold is the safe side",
            ),
        }
    }

    /// The hold of one granted attempt, in µs.
    pub fn hold_us(&self, a: &Attempt) -> Option<u64> {
        let granted = a.t_granted_us?;
        let released = a.t_released_us.unwrap_or(granted);
        let end = match self {
            HoldPolicy::UntilTransferStarts => a.t_first_byte_us.or(a.t_connected_us).unwrap_or(released),
            HoldPolicy::UntilTransferEnds => released,
            HoldPolicy::ThroughTimeWait { time_wait_s } => {
                let tw = if a.is_stor || a.t_connected_us.is_none() {
                    0
                } else {
                    (time_wait_s * 1e6) as u64
                };
                released + tw
            }
        };
        Some(end.max(granted) - granted)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Regression {
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
    pub samples: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fit {
    pub window_s: f64,
    pub busiest_window_start_s: f64,
    /// PASV/EPSV attempts per second in the busiest window (blocked ones included: the
    /// offered load, not the carried load).
    pub pasv_per_s: f64,
    pub hold_policy: HoldPolicy,
    pub hold_policy_source: String,
    pub mean_hold_s: f64,
    /// A = λ·E[H].
    pub offered_erlangs: f64,
    /// Time-average of ports held in the busiest window under the same policy (what Little's
    /// law says A should equal).
    pub time_average_held: f64,
    /// |A − time average| / time average.
    pub little_disagreement: f64,
    /// Mean logged-in control connections in the busiest window.
    pub control_connections: f64,
    pub peak_control_connections: u64,
    /// λ per logged-in control connection: what scales to other user counts.
    pub pasv_per_s_per_connection: f64,
    /// Ports held (client view) against open data connections, from the timeline.
    pub ports_vs_data_connections: Option<Regression>,
    /// Sockets on the range that were not ours, seen before the load began.
    pub held_by_others: u32,
    /// The server's own listening sockets on the range, time-averaged over the busiest window
    /// (less those there before the load), when the sampler could see them: the ports the
    /// server really keeps, whatever the client sees.
    #[serde(default)]
    pub server_listening: Option<f64>,
    pub attempts: u64,
    pub blocked: u64,
}

/// Time-average number of the intervals [start, end) overlapping [from, from + w).
pub fn time_average(intervals: impl Iterator<Item = (u64, u64)>, from: u64, w: u64) -> f64 {
    if w == 0 {
        return 0.0;
    }
    let to = from + w;
    let covered: u128 = intervals
        .map(|(s, e)| u128::from(e.min(to).saturating_sub(s.max(from))))
        .sum();
    covered as f64 / w as f64
}

fn regression(points: &[(f64, f64)]) -> Option<Regression> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in points {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy == 0.0 { 1.0 } else { (sxy * sxy) / (sxx * syy) };
    Some(Regression {
        slope,
        intercept: my - slope * mx,
        r2,
        samples: points.len(),
    })
}

/// Fits the run. `window` is the busiest-window length; a run shorter than it uses its whole
/// length. `policy` overrides the ledger's verdict.
pub fn fit(obs: &Observed, window: std::time::Duration, policy: Option<HoldPolicy>) -> Result<Fit, String> {
    let mut sent: Vec<u64> = obs.attempts.iter().map(|a| a.t_sent_us).collect();
    if sent.is_empty() {
        return Err("the run has no PASV/EPSV attempts to plan from".into());
    }
    sent.sort_unstable();
    let first = sent[0];
    let last = obs
        .attempts
        .iter()
        .filter_map(|a| a.t_released_us.or(Some(a.t_sent_us)))
        .max()
        .unwrap_or(first);
    let span = last.saturating_sub(first).max(1);
    let w = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).min(span).max(1);
    let (start, count) = busiest_window(&sent, w);
    let pasv_per_s = count as f64 / (w as f64 / 1e6);

    let (hold_policy, source) = match policy {
        Some(p) => (p, "given on the command line".to_string()),
        None => {
            let (p, s) = HoldPolicy::from_ledger(obs.release_policy);
            (p, s.to_string())
        }
    };
    let holds: Vec<(u64, u64)> = obs
        .attempts
        .iter()
        .filter_map(|a| Some((a.t_granted_us?, hold_policy.hold_us(a)?)))
        .map(|(g, h)| (g, g + h))
        .collect();
    if holds.is_empty() {
        return Err("no PASV/EPSV was ever granted a port: nothing to measure hold times from".into());
    }
    let mean_hold_s = holds.iter().map(|(s, e)| (e - s) as f64).sum::<f64>() / holds.len() as f64 / 1e6;
    let offered = pasv_per_s * mean_hold_s;
    let held = time_average(holds.iter().copied(), start, w);
    let control = time_average(
        obs.connections.iter().map(|c: &LoggedIn| (c.from_us, c.to_us)),
        start,
        w,
    );
    let peak_control = obs
        .head
        .timeline
        .iter()
        .map(|r| r.control_open.max(0) as u64)
        .max()
        .unwrap_or(0);
    let points: Vec<(f64, f64)> = obs
        .head
        .timeline
        .iter()
        .map(|r| (r.data_open.max(0) as f64, r.ports_held.max(0) as f64))
        .collect();
    // Before the load, anything listening or connected on the range belongs to someone else.
    let held_by_others = obs
        .head
        .timeline
        .iter()
        .find(|r| r.server_sockets.is_some())
        .filter(|r| r.grants_total == 0)
        .and_then(|r| r.server_sockets)
        .map_or(0, |s| s.listen + s.established);
    let baseline_listen = obs
        .head
        .timeline
        .iter()
        .find(|r| r.server_sockets.is_some())
        .filter(|r| r.grants_total == 0)
        .and_then(|r| r.server_sockets)
        .map_or(0, |s| s.listen);
    let in_window: Vec<f64> = obs
        .head
        .timeline
        .iter()
        .filter(|r| r.t_us >= start && r.t_us <= start + w && r.grants_total > 0)
        .filter_map(|r| {
            r.server_sockets
                .map(|s| f64::from(s.listen.saturating_sub(baseline_listen)))
        })
        .collect();
    // A handful of samples is too few to average a quantity that jumps with every grant.
    let server_listening = (in_window.len() >= 5).then(|| in_window.iter().sum::<f64>() / in_window.len() as f64);
    Ok(Fit {
        window_s: w as f64 / 1e6,
        busiest_window_start_s: start as f64 / 1e6,
        pasv_per_s,
        hold_policy,
        hold_policy_source: source,
        mean_hold_s,
        offered_erlangs: offered,
        time_average_held: held,
        little_disagreement: if held > 0.0 { (offered - held).abs() / held } else { 0.0 },
        control_connections: control,
        peak_control_connections: peak_control,
        pasv_per_s_per_connection: if control > 0.0 { pasv_per_s / control } else { 0.0 },
        ports_vs_data_connections: regression(&points),
        held_by_others,
        server_listening,
        attempts: obs.attempts.len() as u64,
        blocked: obs.attempts.iter().filter(|a| a.blocked).count() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::timeline::TimelineRow;

    fn attempt(granted: u64, connected: u64, first: u64, released: u64, stor: bool) -> Attempt {
        Attempt {
            is_stor: stor,
            port: Some(30000),
            t_sent_us: granted - 10,
            t_granted_us: Some(granted),
            t_connected_us: Some(connected),
            t_first_byte_us: Some(first),
            t_transfer_done_us: Some(released),
            t_released_us: Some(released),
            blocked: false,
            in_range: Some(true),
        }
    }

    #[test]
    fn hold_policies() {
        let a = attempt(1000, 1100, 1300, 5000, false);
        assert_eq!(HoldPolicy::UntilTransferStarts.hold_us(&a), Some(300));
        assert_eq!(HoldPolicy::UntilTransferEnds.hold_us(&a), Some(4000));
        assert_eq!(
            HoldPolicy::ThroughTimeWait { time_wait_s: 60.0 }.hold_us(&a),
            Some(60_004_000)
        );
        // The client closes STOR connections first: no TIME_WAIT on the server's port.
        let s = attempt(1000, 1100, 1300, 5000, true);
        assert_eq!(
            HoldPolicy::ThroughTimeWait { time_wait_s: 60.0 }.hold_us(&s),
            Some(4000)
        );
    }

    #[test]
    fn time_average_clips_to_the_window() {
        // Two intervals of 50 inside [0,100) and one half in: (50 + 50 + 25) / 100.
        let iv = [(0, 50), (50, 100), (75, 200)];
        assert!((time_average(iv.into_iter(), 0, 100) - 1.25).abs() < 1e-12);
        assert_eq!(time_average(iv.into_iter(), 300, 100), 0.0);
    }

    #[test]
    fn the_servers_listeners_override_a_shorter_client_view() {
        let fit = Fit {
            window_s: 10.0,
            busiest_window_start_s: 0.0,
            pasv_per_s: 1000.0,
            hold_policy: HoldPolicy::UntilTransferEnds,
            hold_policy_source: String::new(),
            mean_hold_s: 0.002,
            offered_erlangs: 2.0,
            time_average_held: 2.0,
            little_disagreement: 0.0,
            control_connections: 32.0,
            peak_control_connections: 32,
            pasv_per_s_per_connection: 31.25,
            ports_vs_data_connections: None,
            held_by_others: 0,
            server_listening: Some(8.0),
            attempts: 10_000,
            blocked: 0,
        };
        // 8 listening at 1000 PASV/s: 8 ms per PASV, not the 2 ms the client saw.
        let (hold, note) = crate::plan::effective_hold(&fit);
        assert!((hold - 0.008).abs() < 1e-12);
        assert!(note.is_some_and(|n| n.contains("8.00 ports listening")));
        // A server that releases sooner than the client sees keeps the (safer) client view.
        let early = Fit {
            server_listening: Some(0.5),
            ..fit.clone()
        };
        assert_eq!(crate::plan::effective_hold(&early), (0.002, None));
        let unseen = Fit {
            server_listening: None,
            ..fit
        };
        assert_eq!(crate::plan::effective_hold(&unseen).0, 0.002);
    }

    fn row(t_us: u64, control: i64, data: i64, held: i64, grants: u64, sockets: Option<(u32, u32)>) -> TimelineRow {
        TimelineRow {
            control_open: control,
            data_open: data,
            ports_held: held,
            grants_total: grants,
            server_sockets: sockets.map(|(listen, established)| crate::observe::sockdiag::SocketCounts {
                listen,
                established,
                time_wait: None,
                other: 0,
            }),
            ..TimelineRow::empty(t_us)
        }
    }

    /// The fit of a run with every kind of attempt (`observed::tests::every_kind_of_attempt`),
    /// figured by hand.
    #[test]
    fn a_run_is_fitted_to_figures_worked_out_by_hand() {
        use crate::plan::observed::tests::{every_kind_of_attempt, S};
        let tmp = tempfile::tempdir().unwrap();
        every_kind_of_attempt(tmp.path());
        let mut obs = crate::plan::observed::read(tmp.path()).unwrap();
        let f = fit(
            &obs,
            std::time::Duration::from_secs(1),
            Some(HoldPolicy::UntilTransferEnds),
        )
        .unwrap();
        // Eight PASVs were sent in 1.0–2.0 s, the busiest second.
        assert_eq!((f.window_s, f.busiest_window_start_s, f.pasv_per_s), (1.0, 1.0, 8.0));
        assert_eq!(f.hold_policy, HoldPolicy::UntilTransferEnds);
        assert_eq!(f.hold_policy_source, "given on the command line");
        // Holds from the 227 to the release: nine of 1,910 µs, the unused grant's 0, the one
        // released at its 226 2,000 µs; the refused PASV has none.
        let mean_hold_us = (9.0 * 1910.0 + 2000.0) / 11.0;
        assert!((f.mean_hold_s - mean_hold_us / 1e6).abs() < 1e-15, "{}", f.mean_hold_s);
        assert!((f.offered_erlangs - 8.0 * mean_hold_us / 1e6).abs() < 1e-15);
        // In the window: five holds of 1,910 µs, 0 and 2,000.
        assert!((f.time_average_held - 0.01155).abs() < 1e-15, "{}", f.time_average_held);
        let disagreement = (8.0 * mean_hold_us / 1e6 - 0.01155) / 0.01155;
        assert!((f.little_disagreement - disagreement).abs() < 1e-12);
        // Connection 1 logged in all second, connection 2 from 1.5 s + 30 µs.
        assert!(
            (f.control_connections - 1.499_97).abs() < 1e-12,
            "{}",
            f.control_connections
        );
        assert!((f.pasv_per_s_per_connection - 8.0 / 1.499_97).abs() < 1e-9);
        assert_eq!((f.attempts, f.blocked), (12, 2));
        // No timeline: nothing about sockets or the server's listeners.
        assert_eq!((f.peak_control_connections, f.held_by_others), (0, 0));
        assert_eq!((f.ports_vs_data_connections.clone(), f.server_listening), (None, None));
        // Releases at the first byte: 200 µs for the ten that had one, 0 for the unused grant.
        let starts = fit(
            &obs,
            std::time::Duration::from_secs(1),
            Some(HoldPolicy::UntilTransferStarts),
        )
        .unwrap();
        assert!((starts.mean_hold_s - 2000.0 / 11.0 / 1e6).abs() < 1e-15);
        // The ledger's verdict, when none is given.
        let (policy, source) = HoldPolicy::from_ledger(obs.release_policy);
        let f = fit(&obs, std::time::Duration::from_secs(1), None).unwrap();
        assert_eq!((f.hold_policy, f.hold_policy_source.as_str()), (policy, source));
        // A window longer than the run is the run: 12 PASVs over 1.0 s to 25.00201 s.
        let f = fit(
            &obs,
            std::time::Duration::from_secs(100),
            Some(HoldPolicy::UntilTransferEnds),
        )
        .unwrap();
        assert_eq!(f.window_s, 24.002_01);
        assert!((f.pasv_per_s - 12.0 / 24.002_01).abs() < 1e-12);

        // Socket counts: the first row with them, before any grant, is other processes' (2
        // listening, 1 connected); the server's listeners in the window are counted past them.
        // Rows at the window's edges count, rows outside it or before a grant do not.
        obs.head.timeline = vec![
            row(S - 100_000, 1, -1, 0, 0, Some((2, 1))),
            row(S - 1, 2, 0, -3, 5, Some((100, 0))),
            row(S, 2, 1, 2, 1, Some((7, 0))),
            row(S + S / 4, 2, 2, 4, 2, Some((6, 0))),
            row(S + S / 2, 2, 0, 0, 0, Some((50, 0))),
            row(S + 3 * S / 4, 3, 3, 6, 3, Some((5, 0))),
            row(S + 9 * S / 10, 2, 0, 0, 4, Some((4, 0))),
            row(2 * S, 2, 0, 0, 5, Some((3, 0))),
            row(2 * S + 1, -7, 0, 0, 6, Some((90, 0))),
        ];
        let f = fit(
            &obs,
            std::time::Duration::from_secs(1),
            Some(HoldPolicy::UntilTransferEnds),
        )
        .unwrap();
        assert_eq!(f.held_by_others, 3);
        assert_eq!(f.server_listening, Some(3.0), "(5 + 4 + 3 + 2 + 1) / 5");
        assert_eq!(f.peak_control_connections, 3, "a negative count is no count");
        let r = f.ports_vs_data_connections.unwrap();
        // Held = 2 × open, negative counts read as 0.
        assert!((r.slope - 2.0).abs() < 1e-12 && r.intercept.abs() < 1e-12 && (r.r2 - 1.0).abs() < 1e-12);
        assert_eq!(r.samples, 9);
        // Grants before the first socket row: nothing is known to be someone else's.
        obs.head.timeline[0].grants_total = 1;
        let f = fit(
            &obs,
            std::time::Duration::from_secs(1),
            Some(HoldPolicy::UntilTransferEnds),
        )
        .unwrap();
        assert_eq!((f.held_by_others, f.server_listening), (0, Some(5.0)));
        // Four samples are too few to average.
        obs.head.timeline.remove(7);
        let f = fit(
            &obs,
            std::time::Duration::from_secs(1),
            Some(HoldPolicy::UntilTransferEnds),
        )
        .unwrap();
        assert_eq!(f.server_listening, None);

        // A busiest second of refusals only, and no one logged in: nothing was held in it and
        // no connection shares its rate, so both ratios are 0, not x/0.
        let (refused, granted) = (obs.attempts[5], obs.attempts[11]);
        let again = Attempt {
            t_sent_us: refused.t_sent_us + 1,
            ..refused
        };
        obs.attempts = vec![refused, again, granted];
        obs.connections.clear();
        let f = fit(
            &obs,
            std::time::Duration::from_secs(1),
            Some(HoldPolicy::UntilTransferEnds),
        )
        .unwrap();
        assert_eq!((f.pasv_per_s, f.busiest_window_start_s), (2.0, 1.5));
        assert!(f.offered_erlangs > 0.0);
        assert_eq!((f.time_average_held, f.little_disagreement), (0.0, 0.0));
        assert_eq!((f.control_connections, f.pasv_per_s_per_connection), (0.0, 0.0));

        // Nothing to fit: no PASV, or none granted.
        obs.attempts.retain(|a| a.t_granted_us.is_none());
        let e = fit(&obs, std::time::Duration::from_secs(1), None).unwrap_err();
        assert!(e.contains("was ever granted a port"), "{e}");
        obs.attempts.clear();
        let e = fit(&obs, std::time::Duration::from_secs(1), None).unwrap_err();
        assert!(e.contains("no PASV/EPSV attempts"), "{e}");
    }

    #[test]
    fn regression_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 2.0 * x as f64 + 1.0)).collect();
        let r = regression(&pts).unwrap();
        assert!((r.slope - 2.0).abs() < 1e-12 && (r.intercept - 1.0).abs() < 1e-12 && (r.r2 - 1.0).abs() < 1e-12);
        assert!(
            regression(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none(),
            "no spread in x"
        );
        // Three points are enough, two are not.
        let three = regression(&[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]);
        assert_eq!(three.map(|r| (r.slope, r.samples)), Some((1.0, 3)));
        assert!(regression(&[(0.0, 0.0), (1.0, 1.0)]).is_none());
        // Flat: every point explained (r² 1), not 0/0.
        let flat = regression(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]).unwrap();
        assert_eq!((flat.slope, flat.intercept, flat.r2), (0.0, 5.0, 1.0));
        // Scattered points far from the origin, where the sums must be taken about the means
        // (Σx² − n·x̄² would lose every digit): check values from exact rational arithmetic
        // on these doubles (Python fractions).
        let xs = [1e12, 1e12 + 0.1, 1e12 + 0.2, 1e12 + 0.3, 1e12 + 0.4, 1e12 + 0.5];
        let noise = [0.0, 0.05, -0.05, 0.1, -0.1, 0.0];
        let pts: Vec<(f64, f64)> = xs.iter().zip(noise).map(|(&x, e)| (x, 2.0 * x + 1.0 + e)).collect();
        let r = regression(&pts).unwrap();
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-9 * want.abs();
        assert!(close(r.slope, 1.914_234_923_618_791_2), "{r:?}");
        assert!(close(r.intercept, 85_765_076_382.230_21), "{r:?}");
        assert!(close(r.r2, 0.964_274_032_537_192), "{r:?}");
    }
}
