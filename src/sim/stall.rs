//! What TIME_WAIT sockets do to a server's range over a load's first minute, as the replay
//! needs it: how many the run had (its own piling up, and those earlier loads left), and how
//! a server with one event loop for all sessions (pyftpdlib) slows every session down while
//! a bind() walks them. The race window's stretch is
//! [`super::server::ServerModel::window_at`].

use super::replay::{Event, Kind, Workload};
use super::server::{HoldStart, TIME_WAIT_BIND_CPU_US, TIME_WAIT_S};
use super::time_wait::TimeWaits;

/// A one-loop server's bind stall at one width, beyond what the run itself had.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stall {
    /// How much longer each file's cycle on a connection takes: its own bind's stall, and
    /// the longer hold of its transfer.
    pub(super) per_attempt_us: f64,
    /// The factor the run's timeline stretches by: every session slows down at once, so the
    /// load's bursts stay bursts, only further apart.
    pub(super) dilation: f64,
    /// The factor each hold lengthens by (before `hold_us` is added).
    pub(super) hold_factor: f64,
    /// How much later a PASV's reply comes.
    pub(super) reply_us: f64,
    /// How much longer its port is held after that.
    pub(super) hold_us: f64,
}

/// A stall shorter than this moves no event by a whole microsecond.
const MIN_STALL_US: f64 = 0.5;

impl Workload {
    /// Seconds' worth of TIME_WAITs on the range: see [`TimeWaits`].
    pub(super) fn horizon_s(&self) -> f64 {
        match self.time_waits {
            TimeWaits::Steady => TIME_WAIT_S,
            TimeWaits::AsRun => self.run_horizon_s,
        }
    }

    /// A one-loop server's bind stall at `width`, beyond the run's own: every PASV's reply
    /// waits for its bind, and the other sessions' transfer commands wait in the loop behind
    /// it (see [`super::server::TIME_WAIT_BIND_US`]). The load is closed, so slower cycles
    /// send fewer PASVs and leave fewer TIME_WAITs: the stall is the fixed point of the two.
    /// `None` when the server has a process or thread per session.
    pub(super) fn stall(&self, width: u32) -> Option<Stall> {
        if !self.model.one_event_loop.value || self.closes_per_s <= 0.0 || self.cycle_us <= 0.0 {
            return None;
        }
        if let Some(busy) = self.loop_busy {
            return self.loop_stall(width, busy);
        }
        let horizon = self.horizon_s();
        // Both as far as the host's TIME_WAIT cap lets them pile up (see
        // [`super::time_wait::capped_horizon_s`]).
        let baseline = self.run_width.map_or(0.0, |w| {
            let horizon = self.capped(self.run_horizon_s, self.run_closes_per_s);
            self.model.bind_stall_us(w, self.run_closes_per_s, horizon)
        });
        let share = super::server::STALL_HOLD_SHARE;
        let extra_at = |per_attempt: f64| {
            let closes = self.closes_per_s * self.cycle_us / (self.cycle_us + per_attempt);
            self.model.bind_stall_us(width, closes, self.capped(horizon, closes)) - baseline
        };
        // per_attempt = (1 + share) · extra(per_attempt), extra falling as per_attempt grows:
        // bisection on the difference, which rises.
        // A range wider than the run's can at most take away the stall the run had: the
        // bracket's low end, where the difference is never above zero.
        let gap = |d: f64| d - (1.0 + share) * extra_at(d);
        let (mut lo, mut hi) = (-(1.0 + share) * baseline.min(self.cycle_us / 2.0), self.cycle_us);
        while gap(hi) < 0.0 && hi < 1e9 {
            hi *= 2.0;
        }
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if gap(mid) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let per_attempt = (lo + hi) / 2.0;
        if per_attempt.abs() < MIN_STALL_US {
            // Nothing to move: keep the run's own order of simultaneous events.
            return None;
        }
        let extra = per_attempt / (1.0 + share);
        let dilation = (self.cycle_us + per_attempt) / self.cycle_us;
        Some(Stall {
            per_attempt_us: per_attempt,
            dilation,
            hold_factor: dilation,
            reply_us: extra,
            hold_us: share * extra,
        })
    }

    /// TIME_WAITs per port at `width` for the target load, and on the run's own range in
    /// the run, as far as the host's cap lets them pile up.
    fn time_waits_per_port(&self, width: u32) -> (f64, f64) {
        let target = self.closes_per_s * self.capped(self.horizon_s(), self.closes_per_s) / f64::from(width.max(1));
        let run = self.run_width.map_or(0.0, |w| {
            self.run_closes_per_s * self.capped(self.run_horizon_s, self.run_closes_per_s) / f64::from(w.max(1))
        });
        (target, run)
    }

    /// The stall of a one-loop server whose own CPU the run measured: every bind's walk of
    /// its port's TIME_WAITs ([`TIME_WAIT_BIND_CPU_US`] each, beyond what the run's range had)
    /// is more demand on the one core every connection queues for, by as much as the walks
    /// take over the run's PASV rate, and processor sharing says what that does
    /// ([`super::contention::closed_loop`] at the load's scale raised by that demand): holds
    /// stretch as the loop nears its core's end, and a closed load's cycle slows by as much
    /// as its exchanges do. pyftpdlib's realistic load at twice its 20
    /// sessions on 9 ports: its loop went from 0.56 of a core with few TIME_WAITs to
    /// 0.75–1.0 with 3,400 a port, its holds from 1.6 to 2–7 ms, and 2.5% of sessions failed,
    /// where the fixed stall per TIME_WAIT predicted 0.1%. With no think time the loop is
    /// full already and the walks only slow the whole load (pyftpdlib's burst profile: its
    /// PASV rate fell from 2,540/s to 1,000/s and its holds grew from 2.3 to 5 ms while the
    /// share of PASVs granted outside the range stayed at 0.1–0.2%).
    fn loop_stall(&self, width: u32, busy: f64) -> Option<Stall> {
        use super::contention::closed_loop;
        let (target, run) = self.time_waits_per_port(width);
        let walk_s = TIME_WAIT_BIND_CPU_US * (target - run) / 1e6;
        // The walks add demand in proportion to the PASV rate, as the load's own work does.
        let demand = 1.0 + self.run_pasv_per_s * walk_s / busy;
        if !demand.is_finite() || demand <= 1.0 {
            return None;
        }
        let (stretch0, dilation0) = closed_loop(Some(busy), self.scale, self.active_share);
        let (stretch1, dilation1) = closed_loop(Some(busy), self.scale * demand, self.active_share);
        let (hold_factor, dilation) = (stretch1 / stretch0, dilation1 / dilation0);
        if hold_factor - 1.0 < 1e-6 && dilation - 1.0 < 1e-6 {
            return None;
        }
        Some(Stall {
            per_attempt_us: (dilation - 1.0) * self.cycle_us,
            dilation,
            hold_factor,
            reply_us: 0.0,
            hold_us: 0.0,
        })
    }

    /// The events as a server stalled by `stall` spaces them: the timeline stretched (holds
    /// too: a loop that takes longer over every request takes longer over the transfer
    /// command), each PASV answered later and its port held longer, in time order again.
    /// Measured on pyftpdlib, burst profile, 18 ports, 90 s: as the TIME_WAITs piled up its
    /// PASV rate fell from 2,540/s to about 1,000/s and its holds grew from 2.3 to 5 ms,
    /// while the share of PASVs granted outside the range stayed at 0.1–0.2%: the whole
    /// closed load slowed down, its occupancy unchanged.
    pub(super) fn stalled(&self, stall: Stall) -> Vec<Event> {
        let origin = self.events.first().map_or(0, |e| e.t);
        let stretched = |t: u64| origin as f64 + t.saturating_sub(origin) as f64 * stall.dilation;
        let at = |t: f64| t.max(0.0).round() as u64;
        let reply = if self.model.hold_start.value == HoldStart::PasvReply {
            stall.reply_us
        } else {
            0.0
        };
        let mut events: Vec<Event> = self
            .events
            .iter()
            .map(|e| match e.kind {
                Kind::Open | Kind::Close => Event {
                    t: at(stretched(e.t)),
                    ..*e
                },
                Kind::Attempt => {
                    let sent = stretched(e.t);
                    let held = e.hold_end.saturating_sub(e.t) as f64 * stall.hold_factor;
                    let t = at(sent + reply);
                    let hold_end = at(sent + stall.reply_us + held + stall.hold_us).max(t);
                    Event { t, hold_end, ..*e }
                }
            })
            .collect();
        events.sort_unstable_by_key(|e| (e.t, e.kind));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::server::{ServerKind, ServerModel, STALL_HOLD_SHARE, TIME_WAIT_BIND_US};
    use crate::sim::synthetic::realistic_trace;
    use crate::sim::Predictor;

    fn without_loop(kind: ServerKind) -> ServerModel {
        let mut m = ServerModel::known(kind);
        m.one_event_loop.value = false;
        m
    }

    #[test]
    fn a_one_loop_server_fails_more_on_a_narrow_range_as_its_time_waits_pile_up() {
        let trace = realistic_trace();
        let one_loop = Predictor::new(&trace, ServerModel::known(ServerKind::Pyftpdlib), 1.0, 2, 1);
        let threads = Predictor::new(&trace, without_loop(ServerKind::Pyftpdlib), 1.0, 2, 1);
        // At 4 ports the steady TIME_WAITs (~300 closes/s × 60 s / 4) stall each bind by
        // about a millisecond: longer holds, more exhaustion.
        let (stalled, plain) = (one_loop.at(4), threads.at(4));
        assert!(
            plain.pasv_exhausted > 0.0,
            "the load must reach the range's end at 4 ports"
        );
        assert!(
            stalled.pasv_exhausted > 1.5 * plain.pasv_exhausted,
            "stalled {stalled:?} against {plain:?}"
        );
        // The run's own width under the run's own conditions has no stall beyond the run's:
        // the replay is the run's.
        let as_run = Predictor::as_run(&trace, ServerModel::known(ServerKind::Pyftpdlib), 2, 1);
        let threads_as_run = Predictor::as_run(&trace, without_loop(ServerKind::Pyftpdlib), 2, 1);
        assert_eq!(as_run.counts(100), threads_as_run.counts(100));
        // A server with a thread per session is not stalled by other sessions' binds; the
        // same server with one loop would be.
        let threads = Predictor::new(&trace, ServerModel::known(ServerKind::Libunftp), 1.0, 2, 1);
        let mut one_loop = ServerModel::known(ServerKind::Libunftp);
        one_loop.one_event_loop.value = true;
        let one_loop = Predictor::new(&trace, one_loop, 1.0, 2, 1);
        let (stalled, plain) = (one_loop.at(4), threads.at(4));
        assert!(
            stalled.pasv_exhausted > plain.pasv_exhausted,
            "{stalled:?} against {plain:?}"
        );
    }

    #[test]
    fn no_more_time_waits_stall_a_bind_than_the_host_keeps() {
        // The embedded server, burst profile (2026-12-06): 9,000 closes/s would pile up 540,000
        // TIME_WAITs in 60 s, but a host capped at 131,072 (net.ipv4.tcp_max_tw_buckets) kept
        // 120,000–124,000 on the 27- and 39-port ranges once the load had run a minute. The
        // cap holds for any server whose binds stall: pyftpdlib's here.
        let trace = realistic_trace();
        let model = ServerModel::known(ServerKind::Pyftpdlib);
        let open = Workload::build(&trace, &model, 1.0, 1, TimeWaits::Steady);
        let steady = open.closes_per_s * TIME_WAIT_S;
        assert!(steady > 1_000.0, "the trace closes {steady} in a minute");
        let stall_at = |cap: Option<u32>, width: u32| {
            let mut t = trace.clone();
            t.time_wait_cap = cap;
            Workload::build(&t, &model, 1.0, 1, TimeWaits::Steady).stall(width)
        };
        let uncapped = stall_at(None, 4).map(|s| s.reply_us);
        // A cap the load stays below changes nothing.
        assert_eq!(stall_at(Some((10.0 * steady) as u32), 4).map(|s| s.reply_us), uncapped);
        // A cap at a tenth of what a minute of the load leaves: the bind walks at most that
        // many, spread over the range, beyond what the run itself had.
        let cap = (steady / 10.0) as u32;
        let Some(capped) = stall_at(Some(cap), 4) else {
            panic!("a stall at 4 ports under the cap")
        };
        let Some(uncapped) = uncapped else {
            panic!("a stall at 4 ports without a cap")
        };
        assert!(capped.reply_us < uncapped / 2.0, "{capped:?} vs {uncapped}");
        // Less the stall the run itself had on its own range, which the cap bounds too.
        let had = open.run_closes_per_s * open.run_horizon_s;
        assert!(had > f64::from(cap), "the run itself had {had} TIME_WAITs");
        let baseline = open
            .run_width
            .map_or(0.0, |w| TIME_WAIT_BIND_US * f64::from(cap) / f64::from(w));
        let most = TIME_WAIT_BIND_US * f64::from(cap) / 4.0 - baseline;
        assert!(capped.reply_us <= most + 1e-6, "{capped:?} vs at most {most}");
        assert!(capped.reply_us > 0.9 * most, "{capped:?}: the cap is reached");
        // The narrower the range, the more of the capped TIME_WAITs each port carries.
        let wider = stall_at(Some(cap), 8).map_or(0.0, |s| s.reply_us);
        assert!(wider < capped.reply_us);
    }

    #[test]
    fn the_stall_slows_the_closed_load_that_causes_it() {
        let trace = realistic_trace();
        let model = ServerModel::known(ServerKind::Pyftpdlib);
        let w = Workload::build(&trace, &model, 1.0, 1, TimeWaits::Steady);
        let at_100 = w.run_horizon_s;
        assert!(
            at_100 > 9.0 && at_100 < 11.0,
            "a 20 s run holds TIME_WAITs for 10 s on average"
        );
        for width in [2, 4, 8] {
            let Some(stall) = w.stall(width) else {
                panic!("pyftpdlib stalls at {width} ports")
            };
            // The fixed point: the stall is what the slowed load's TIME_WAITs cause.
            let closes = w.closes_per_s * w.cycle_us / (w.cycle_us + stall.per_attempt_us);
            let baseline = model.bind_stall_us(100, w.closes_per_s, at_100);
            let extra = TIME_WAIT_BIND_US * closes * TIME_WAIT_S / f64::from(width) - baseline;
            assert!(
                (stall.reply_us - extra).abs() < 1e-3 * extra,
                "{width}: {stall:?} vs {extra}"
            );
            assert!((stall.hold_us - STALL_HOLD_SHARE * extra).abs() < 1e-3 * extra);
            assert!((stall.per_attempt_us - stall.reply_us - stall.hold_us).abs() < 1e-3 * extra);
            // Slower cycles mean fewer closes than the run had.
            assert!(closes < w.closes_per_s);
        }
        // Halving the width less than doubles the stall: the load slows down.
        let (s4, s2) = (w.stall(4).map(|s| s.reply_us), w.stall(2).map(|s| s.reply_us));
        let (Some(s4), Some(s2)) = (s4, s2) else {
            panic!("stalls at 2 and 4 ports")
        };
        assert!(s2 > s4 && s2 < 2.0 * s4 + 1.0, "2 ports: {s2} µs, 4 ports: {s4} µs");
        // The whole timeline stretches by the slower cycle: the run's bursts stay bursts.
        let Some(stall) = w.stall(4) else {
            panic!("a stall at 4 ports")
        };
        assert!((stall.dilation - (w.cycle_us + stall.per_attempt_us) / w.cycle_us).abs() < 1e-12);
        let moved = w.stalled(stall);
        let span = |events: &[Event]| {
            let closes = events.iter().filter(|e| e.kind == Kind::Close).map(|e| e.t);
            closes.max().unwrap_or(0) - events.first().map_or(0, |e| e.t)
        };
        let ratio = span(&moved) as f64 / span(&w.events) as f64;
        assert!(
            (ratio - stall.dilation).abs() < 1e-3,
            "stretched {ratio}, dilation {}",
            stall.dilation
        );
        // Each port is held longer: by the stall's share, and stretched with the timeline.
        let attempts = |events: &[Event]| -> Vec<(u32, f64)> {
            let mut a: Vec<(u32, u64, f64)> = events
                .iter()
                .filter(|e| e.kind == Kind::Attempt)
                .map(|e| (e.connection, e.t, (e.hold_end - e.t) as f64))
                .collect();
            a.sort_by_key(|x| (x.0, x.1));
            a.into_iter().map(|(c, _, h)| (c, h)).collect()
        };
        let (before, after) = (attempts(&w.events), attempts(&moved));
        assert_eq!(before.len(), after.len());
        for ((c, b), (d, a)) in before.iter().zip(&after) {
            assert_eq!(c, d);
            let expected = b * stall.dilation + stall.hold_us;
            assert!((a - expected).abs() <= 1.0, "held {a} µs, expected {expected}");
        }
        // On a range wider than a narrow run's, the loop is faster than in the run, but by no
        // more than the stall the run itself had.
        let mut narrow = trace.clone();
        narrow.run_width = Some(4);
        let n = Workload::build(&narrow, &model, 1.0, 1, TimeWaits::AsRun);
        let had = model.bind_stall_us(4, n.run_closes_per_s, n.run_horizon_s);
        let Some(faster) = n.stall(100) else {
            panic!("a run at 4 ports stalls more than 100 ports would")
        };
        assert!(faster.per_attempt_us < 0.0 && faster.dilation < 1.0, "{faster:?}");
        assert!(
            faster.per_attempt_us >= -(1.0 + STALL_HOLD_SHARE) * had - 1e-6,
            "{faster:?} vs {had}"
        );
        // At the run's own width: none beyond the run's under the run's conditions, some in
        // steady state, where TIME_WAITs have piled up for 60 s rather than 10 on average.
        let as_run = Workload::build(&trace, &model, 1.0, 1, TimeWaits::AsRun);
        assert!(as_run.stall(100).is_none());
        assert!(w.stall(100).is_some_and(|s| s.reply_us > 0.0));
    }

    #[test]
    fn a_measured_loop_takes_the_walks_as_demand_on_its_core() {
        // pyftpdlib's realistic trace with its loop measured at 0.3 of a core, busier than
        // the host: the walks are more demand on that core.
        let mut trace = realistic_trace();
        trace.host_cpu_busy = Some(0.2);
        trace.server_cpu_cores = Some(0.3);
        // All of the cycle thinking: the cycle does not slow, and the stretch is processor
        // sharing's (1 - U) / (1 - U - ΔU) for the walks' ΔU, an independent closed form.
        trace.active_share = 0.0;
        let model = ServerModel::known(ServerKind::Pyftpdlib);
        let w = Workload::build(&trace, &model, 1.0, 1, TimeWaits::Steady);
        assert_eq!(w.loop_busy, Some(0.3));
        let mut factors = Vec::new();
        for width in [4, 6, 8, 16] {
            let Some(stall) = w.stall(width) else {
                panic!("the walks at {width} ports are more demand")
            };
            let (target, run) = w.time_waits_per_port(width);
            let added = w.run_pasv_per_s * TIME_WAIT_BIND_CPU_US * (target - run) / 1e6;
            let expected = if added < 0.69 { 0.7 / (0.7 - added) } else { 0.7 / 0.01 };
            assert!(
                (stall.hold_factor - expected).abs() < 1e-6 * expected,
                "{width}: {stall:?}, expected {expected}"
            );
            // No reply delay of its own: the hold starts at the 227, the queue is in the hold.
            assert_eq!((stall.reply_us, stall.hold_us), (0.0, 0.0));
            assert!((stall.dilation - 1.0).abs() < 1e-9, "{stall:?}");
            factors.push(stall.hold_factor);
        }
        assert!(
            factors.windows(2).all(|f| f[0] > f[1]),
            "narrower stretches more: {factors:?}"
        );
        // The same walks on a busier loop stretch more: it is nearer its core's end.
        let mut busier = trace.clone();
        busier.server_cpu_cores = Some(0.5);
        let b = Workload::build(&busier, &model, 1.0, 1, TimeWaits::Steady);
        let stretch = |w: &Workload| w.stall(8).map_or(1.0, |s| s.hold_factor);
        assert!(stretch(&b) > stretch(&w), "{} vs {}", stretch(&b), stretch(&w));
        // With no think time the cycle slows as much as the holds stretch: the ports stay as
        // busy, the load only goes slower.
        let mut burst = trace.clone();
        burst.active_share = 1.0;
        let Some(s) = Workload::build(&burst, &model, 1.0, 1, TimeWaits::Steady).stall(8) else {
            panic!("a stall at 8 ports")
        };
        assert!((s.hold_factor - s.dilation).abs() < 1e-9 && s.dilation > 1.0, "{s:?}");
        // A loop idler than the host, or a server with a process per session: not this model.
        let mut idle = trace.clone();
        idle.server_cpu_cores = Some(0.1);
        assert_eq!(
            Workload::build(&idle, &model, 1.0, 1, TimeWaits::Steady).loop_busy,
            None
        );
        let threads = Workload::build(&trace, &without_loop(ServerKind::Pyftpdlib), 1.0, 1, TimeWaits::Steady);
        assert_eq!(threads.loop_busy, None);
        assert!(threads.stall(8).is_none());
    }
}
