//! The TIME_WAIT sockets on a server's range, as the replay counts them: its own load's, piling
//! up over the 60 s Linux keeps them, and those earlier loads left.

use super::server::TIME_WAIT_S;

/// How many TIME_WAIT sockets the replay's server has on its range: as many as the run's
/// load leaves in the 60 s Linux keeps them (a server under this load for good, what a
/// recommendation is for), or as many as the run itself had piled up (to compare a replay
/// with the run it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaits {
    Steady,
    AsRun,
}

/// How many seconds' worth of its own TIME_WAITs the run's range held on average: a run
/// piles them up for 60 s (on average over its span, min(t, 60 s)), on top of those earlier
/// loads left, which expire over the next 60 s (taken as evenly aged).
pub fn run_horizon_s(span_s: f64, closes_per_s: f64, time_waits_at_start: Option<u32>) -> f64 {
    let own = if span_s <= TIME_WAIT_S {
        span_s / 2.0
    } else {
        TIME_WAIT_S - TIME_WAIT_S * TIME_WAIT_S / 2.0 / span_s
    };
    let inherited = match time_waits_at_start {
        Some(n) if n > 0 && closes_per_s > 0.0 => {
            // The share of them still there, on average over the span: n (1 - t/60) at t.
            let still = if span_s <= TIME_WAIT_S {
                1.0 - span_s / (2.0 * TIME_WAIT_S)
            } else {
                TIME_WAIT_S / (2.0 * span_s)
            };
            f64::from(n) * still / closes_per_s
        }
        _ => 0.0,
    };
    (own + inherited).min(TIME_WAIT_S)
}

/// The seconds' worth of a load's closes its range can hold as TIME_WAITs: `horizon_s`, or
/// fewer where `closes_per_s` that long would pass the host's cap (`net.ipv4.tcp_max_tw_buckets`:
/// Linux destroys a closing socket at once, and counts `TCPTimeWaitOverflow`, once the host
/// keeps that many). The cap is the host's, shared with every other TIME_WAIT on it (control
/// connections, the client's own on loopback), so the whole of it on the range is the most
/// the range can carry. Measured on the embedded server, burst profile (2026-12-06, a host
/// capped at 131,072): 9,000 closes/s, which 60 s would pile up to 540,000, left 120,000 to
/// 124,000 TIME_WAITs on its 27- and 39-port ranges once the load had run for a minute.
pub fn capped_horizon_s(horizon_s: f64, closes_per_s: f64, cap: Option<u32>) -> f64 {
    match cap {
        Some(cap) if closes_per_s > 0.0 => horizon_s.min(f64::from(cap) / closes_per_s),
        _ => horizon_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_time_wait_cap_bounds_what_a_fast_load_piles_up() {
        // 9,000 closes/s for 60 s would be 540,000; a host capped at 131,072 keeps those.
        let h = capped_horizon_s(TIME_WAIT_S, 9_000.0, Some(131_072));
        assert!((h * 9_000.0 - 131_072.0).abs() < 1e-6, "{h}");
        // A load that stays below the cap, no cap known, or no closes: unchanged.
        assert_eq!(capped_horizon_s(TIME_WAIT_S, 1_000.0, Some(131_072)), TIME_WAIT_S);
        assert_eq!(capped_horizon_s(TIME_WAIT_S, 9_000.0, None), TIME_WAIT_S);
        assert_eq!(capped_horizon_s(10.0, 0.0, Some(10)), 10.0);
    }

    #[test]
    fn a_runs_time_waits_are_its_own_piling_up_and_those_it_inherited_expiring() {
        // A 20 s run on a clean range: 10 s of its closes on average; 60 s at most however
        // long it runs, and 45 s on average over two minutes.
        assert_eq!(run_horizon_s(20.0, 300.0, None), 10.0);
        assert_eq!(run_horizon_s(20.0, 300.0, Some(0)), 10.0);
        assert!((run_horizon_s(120.0, 300.0, None) - 45.0).abs() < 1e-9);
        // 6,000 TIME_WAITs left by an earlier load are 20 s of 300 closes/s, of which 5/6
        // remain on average over 20 s.
        assert!((run_horizon_s(20.0, 300.0, Some(6_000)) - (10.0 + 20.0 * 5.0 / 6.0)).abs() < 1e-9);
        // Never more than Linux keeps.
        assert_eq!(run_horizon_s(20.0, 300.0, Some(1_000_000)), TIME_WAIT_S);
    }
}
