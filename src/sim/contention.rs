//! How a server's holds lengthen when more sessions share the host's CPU.
//!
//! A plan for more sessions than the run had replays copies of the run, each PASV holding its
//! port as long as in the run. On a host whose CPU the server (and, on loopback, the load
//! generator) shares, twice the sessions also make every step slower: vsftpd's holds, from
//! our 227 to its 226, were 0.34 ms on average at 20 sessions × 2 connections and 0.74 ms at
//! twice that (realistic profile, the second run past its first minute; the 90th percentile
//! 0.56 and 1.7 ms), and the plan for twice the sessions that kept the run's holds was refuted.
//!
//! Processor sharing says by how much: a request that needs the CPU for `s` takes
//! `s / (1 - U)` on a host busy a share `U` of the time, so going from `U` to `scale × U`
//! stretches it by `(1 - U) / (1 - scale × U)`. The run's own busy share is measured (the
//! timeline's `host_cpu_busy`) when the server ran on this host; a server elsewhere keeps the
//! run's holds, and the plan says it assumed so.
//!
//! A closed load then also goes round slower: each connection's cycle is its exchanges (which
//! stretch) and its think time (which does not), so its PASVs come less often by
//! [`cycle_dilation`]. Without it, a burst profile at twice the sessions on a busy host was
//! planned as twice the PASVs each held twice as long, four times the ports where the host
//! could give two: the embedded server's burst plan for 2 × was 79 ports where 55 lost 0.12%
//! of sessions (18.6% predicted).

/// The CPU a server's requests queue for, as a busy share: the host's, or, for a server that
/// serves every session from one event loop (`one_event_loop`), that loop's one core when it
/// is the busier. pyftpdlib's realistic load at 20 sessions kept its loop 0.20–0.28 of a core
/// busy, the 2-core host 16–21%; at twice the sessions on 8–9 ports its loop ran at 0.75–1.0
/// (the host 0.5) and 2.5–4.4% of sessions failed, where the plan on the host's share had
/// predicted 0.21% at 9 ports: the loop saturated, the host did not. `None` when neither was
/// measured.
pub fn busy_share(host: Option<f64>, server_cores: Option<f64>, one_event_loop: bool) -> Option<f64> {
    let server_loop = measured(server_cores).filter(|_| one_event_loop).map(|c| c.min(1.0));
    match (measured(host), server_loop) {
        (Some(h), Some(l)) => Some(h.max(l)),
        (h, l) => h.or(l),
    }
}

/// Whether [`busy_share`] is the server's loop's rather than the host's.
pub fn loop_bound(host: Option<f64>, server_cores: Option<f64>, one_event_loop: bool) -> bool {
    one_event_loop && measured(server_cores).is_some_and(|c| c.min(1.0) > measured(host).unwrap_or(0.0))
}

/// A CPU share or core count as read, or `None` where it is not a number one can use.
fn measured(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
}

/// The busy share past which processor sharing stops describing a host (it queues without
/// bound at 1): targets beyond it are planned at this share, and the plan says the host
/// saturates.
pub const MAX_BUSY: f64 = 0.95;

/// The factor the run's holds lengthen by at `scale` times its load, on a host that was
/// `busy` (0 to 1) during the run. Never below 1: a plan for fewer sessions keeps the run's
/// holds, the safe side.
pub fn hold_stretch(busy: Option<f64>, scale: f64) -> f64 {
    let Some(u) = busy.filter(|u| u.is_finite() && *u > 0.0) else {
        return 1.0;
    };
    if !scale.is_finite() || scale <= 1.0 {
        return 1.0;
    }
    let u = u.min(MAX_BUSY);
    let target = (u * scale).min(MAX_BUSY);
    ((1.0 - u) / (1.0 - target)).max(1.0)
}

/// How much longer a closed load's cycle on a connection takes when its exchanges (a share
/// `active` of the cycle, the rest think time) take `stretch` times as long: its connections
/// then send their PASVs that much less often. Without think time a burst's rate falls by the
/// whole stretch and its ports stay as busy as in the run; with long think time it barely
/// falls.
pub fn cycle_dilation(stretch: f64, active: f64) -> f64 {
    let active = if active.is_finite() {
        active.clamp(0.0, 1.0)
    } else {
        0.0
    };
    1.0 + (stretch.max(1.0) - 1.0) * active
}

/// A closed load at `scale` times the run's sessions on a host `busy` during the run: the hold
/// stretch and the cycle dilation that agree with each other. Slower cycles send fewer PASVs,
/// which leaves the host less busy than `scale × busy`, which stretches less: the fixed point
/// of the processor-sharing stretch at the busy share the dilated rate gives and
/// [`cycle_dilation`] of that stretch. With no think time the dilation is 1 + busy (scale − 1),
/// the rate the host can still give; with long think time it is the open load's
/// [`hold_stretch`]. (Taking the stretch at `scale × busy` and slowing the cycle by it
/// besides planned Pure-FTPd's burst at twice the sessions, on a host 75% busy, at a quarter
/// of the run's PASV rate: 141 ports, where 3.0% of sessions failed.)
pub fn closed_loop(busy: Option<f64>, scale: f64, active: f64) -> (f64, f64) {
    let Some(u) = busy.filter(|u| u.is_finite() && *u > 0.0) else {
        return (1.0, 1.0);
    };
    if !scale.is_finite() || scale <= 1.0 {
        return (1.0, 1.0);
    }
    let u = u.min(MAX_BUSY);
    let stretch_at = |dilation: f64| ((1.0 - u) / (1.0 - (u * scale / dilation).min(TARGET_MAX_BUSY))).max(1.0);
    // The gap falls as the dilation grows: at 1 it is at least 0, at `scale` at most 0.
    let gap = |d: f64| cycle_dilation(stretch_at(d), active) - d;
    let (mut lo, mut hi) = (1.0, scale);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if gap(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let dilation = (lo + hi) / 2.0;
    (stretch_at(dilation), dilation)
}

/// The busiest a closed load's fixed point may make the host: above [`MAX_BUSY`], so that a
/// run already at it still has room to settle (at 95% busy and twice the sessions, the cycle
/// takes 1.95 × as long with the host 97.4% busy).
const TARGET_MAX_BUSY: f64 = 0.99;

/// Whether `scale` times the run's load takes the host past [`MAX_BUSY`].
pub fn saturates(busy: Option<f64>, scale: f64) -> bool {
    busy.is_some_and(|u| u.is_finite() && u * scale > MAX_BUSY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_sharing_stretches_holds_by_the_busy_share() {
        // A host 35% busy at twice the load: (1 - 0.35) / (1 - 0.7) = 2.17, what vsftpd's
        // mean hold did (0.34 -> 0.74 ms).
        assert!((hold_stretch(Some(0.35), 2.0) - 0.65 / 0.30).abs() < 1e-12);
        // An idle host barely changes; the run's own load not at all.
        assert!((hold_stretch(Some(0.05), 2.0) - 0.95 / 0.90).abs() < 1e-12);
        assert_eq!(hold_stretch(Some(0.35), 1.0), 1.0);
        // Fewer sessions keep the run's holds, and an unknown host too.
        assert_eq!(hold_stretch(Some(0.35), 0.5), 1.0);
        assert_eq!(hold_stretch(None, 2.0), 1.0);
        assert_eq!(hold_stretch(Some(f64::NAN), 2.0), 1.0);
        // Past saturation the target is held at MAX_BUSY: finite, and the plan says so.
        let s = hold_stretch(Some(0.8), 2.0);
        assert!((s - 0.2 / 0.05).abs() < 1e-9, "{s}");
        assert!(saturates(Some(0.8), 2.0) && !saturates(Some(0.35), 2.0) && !saturates(None, 2.0));
        // It grows with the scale.
        assert!(hold_stretch(Some(0.3), 1.5) < hold_stretch(Some(0.3), 2.0));
    }

    #[test]
    fn a_one_loop_server_queues_for_its_own_core_when_that_is_busier_than_the_host() {
        // pyftpdlib's realistic run: its loop 0.65 of a core, the 2-core host 45% busy.
        assert_eq!(busy_share(Some(0.45), Some(0.65), true), Some(0.65));
        assert!(loop_bound(Some(0.45), Some(0.65), true));
        // A server with a process per session spreads over the host: its master's share is
        // not its sessions' queue.
        assert_eq!(busy_share(Some(0.45), Some(0.65), false), Some(0.45));
        assert!(!loop_bound(Some(0.45), Some(0.65), false));
        // An idle loop on a busy host: the host.
        assert_eq!(busy_share(Some(0.45), Some(0.2), true), Some(0.45));
        assert!(!loop_bound(Some(0.45), Some(0.2), true));
        // A loop past one core (threads beside it) is still one core's queue.
        assert_eq!(busy_share(None, Some(1.4), true), Some(1.0));
        assert_eq!(busy_share(None, None, true), None);
        // An unreadable host share is no share: the loop's is taken, and said to be.
        assert_eq!(busy_share(Some(f64::NAN), Some(0.3), true), Some(0.3));
        assert!(loop_bound(Some(f64::NAN), Some(0.3), true));
        assert!(!loop_bound(Some(0.2), Some(f64::NAN), true));
    }

    #[test]
    fn a_closed_loop_settles_where_its_slower_cycle_and_the_hosts_busy_share_agree() {
        // No think time: the dilation is 1 + U (s - 1), the stretch the same, and the host
        // runs at U s / D.
        let (stretch, dilation) = closed_loop(Some(0.75), 2.0, 1.0);
        assert!((dilation - 1.75).abs() < 1e-9, "{dilation}");
        assert!((stretch - 1.75).abs() < 1e-9, "{stretch}");
        // Long think time: the open load's stretch, the cycle barely slower.
        let (stretch, dilation) = closed_loop(Some(0.35), 2.0, 0.0);
        assert!((stretch - hold_stretch(Some(0.35), 2.0)).abs() < 1e-9);
        assert_eq!(dilation, 1.0);
        // In between, both in between, and consistent.
        let (stretch, dilation) = closed_loop(Some(0.5), 2.0, 0.5);
        assert!(stretch > 1.0 && stretch < hold_stretch(Some(0.5), 2.0), "{stretch}");
        assert!((dilation - cycle_dilation(stretch, 0.5)).abs() < 1e-6);
        // Nothing to go on, or the run's own load: nothing changes.
        assert_eq!(closed_loop(None, 2.0, 1.0), (1.0, 1.0));
        assert_eq!(closed_loop(Some(0.5), 1.0, 1.0), (1.0, 1.0));
        // A saturated host can give no more: the rate stays, holds double with the sessions.
        let (stretch, dilation) = closed_loop(Some(0.95), 2.0, 1.0);
        assert!((dilation - 1.95).abs() < 0.05 && stretch >= 1.0, "{stretch} {dilation}");
    }

    #[test]
    fn a_closed_loop_slows_down_by_its_active_share() {
        assert_eq!(cycle_dilation(2.0, 1.0), 2.0);
        assert_eq!(cycle_dilation(2.0, 0.0), 1.0);
        assert!((cycle_dilation(3.0, 0.25) - 1.5).abs() < 1e-12);
        assert_eq!(cycle_dilation(0.5, 1.0), 1.0, "never faster");
        assert_eq!(cycle_dilation(2.0, f64::NAN), 1.0);
    }

    #[test]
    fn a_busy_host_makes_the_replay_at_twice_the_load_hold_ports_longer() {
        use crate::sim::{Predictor, ServerKind, ServerModel, Workload};
        let mut trace = crate::sim::synthetic::realistic_trace();
        let model = ServerModel::known(ServerKind::Vsftpd);
        let held = |w: &Workload| -> u64 {
            w.events
                .iter()
                .filter(|e| e.kind == crate::sim::replay::Kind::Attempt)
                .map(|e| e.hold_end - e.t)
                .sum()
        };
        let idle = Workload::build(&trace, &model, 2.0, 1, crate::sim::TimeWaits::Steady);
        trace.host_cpu_busy = Some(0.35);
        let busy = Workload::build(&trace, &model, 2.0, 1, crate::sim::TimeWaits::Steady);
        let ratio = held(&busy) as f64 / held(&idle) as f64;
        // Think time leaves the cycle almost as it was, so nearly the open load's 2.17.
        let (stretch, dilation) = closed_loop(Some(0.35), 2.0, trace.active_share);
        assert!((ratio - stretch).abs() < 0.01 && stretch > 2.0, "{ratio} {stretch}");
        assert!(dilation < 1.1, "{dilation}");
        // At the run's own load nothing changes, and the narrow range fails more when busy.
        let own = Workload::build(&trace, &model, 1.0, 1, crate::sim::TimeWaits::Steady);
        trace.host_cpu_busy = None;
        assert_eq!(
            held(&own),
            held(&Workload::build(&trace, &model, 1.0, 1, crate::sim::TimeWaits::Steady))
        );
        let at = |busy: Option<f64>| {
            let mut t = trace.clone();
            t.host_cpu_busy = busy;
            Predictor::new(&t, model.clone(), 2.0, 2, 1).at(6).session_failure
        };
        assert!(at(Some(0.35)) > at(None), "{} vs {}", at(Some(0.35)), at(None));
    }
}
