//! Replaying a run against a range of any width: the run's own control connections, opened
//! and closed when they were, sending their PASVs when they did, each holding its port for
//! as long as the server would (by the server model's hold rule and lag), against a pool
//! picking ports the server's way.
//!
//! Keeping the measured times keeps what no distribution captures: closed-loop sessions
//! synchronise (logins contend for the server's CPU and finish in waves), so PASVs come in
//! bursts, and bursts are what fail. A simulation drawing each time independently from the
//! run's distributions loses them and predicts almost no failures where the run had many.
//!
//! Other loads are copies of the run: `scale` 2 replays every session twice. Copies keep
//! their sessions' synchronisation at the scale of logins and sessions, but are shifted
//! against each other by a random fraction of one file cycle, so that two copies of one PASV
//! never arrive at the same microsecond. Measured on vsftpd: fitted on 32 connections, this
//! predicted 6.4% of sessions failing at 60 ports with 64 connections, where a run measured
//! 7.1%. A fractional scale keeps a random share of the last copy's sessions.
//!
//! What the replay does not redo: a refused PASV does not make its connection move on
//! sooner, and a session dropped early is not followed sooner by the next. At the widths a
//! recommendation is about, failures are rare and this changes nothing; where they are
//! common it overstates them somewhat.

use super::pool::{PickOutcome, PortPool};
use super::server::{Admission, HoldEnd, HoldStart, OnExhausted, OnRefusal, ServerModel};
use super::time_wait::{capped_horizon_s, run_horizon_s, TimeWaits};
use super::trace::{AttemptResult, Trace, TraceAttempt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Open,
    Attempt,
    Close,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Event {
    pub(super) t: u64,
    pub(super) kind: Kind,
    pub(super) connection: u32,
    pub(super) session: u32,
    pub(super) hold_end: u64,
}

/// One copy-expanded, time-sorted load, ready to run against any width.
pub struct Workload {
    pub(super) events: Vec<Event>,
    connections: usize,
    /// Per global session: failed in the run for a reason no width cures.
    background: Vec<bool>,
    included: Vec<bool>,
    /// Per global session, the stretch of the run it started in (see [`BUSY_STRETCH_US`]).
    stretch: Vec<u16>,
    stretches: usize,
    admission: Admission,
    on_exhausted: OnExhausted,
    on_refusal: OnRefusal,
    pick: super::server::PickOrder,
    pub(super) model: ServerModel,
    /// Data connections the server closes first per second (downloads, listings): each
    /// leaves a TIME_WAIT on its port, which lengthens the bind race.
    pub(super) closes_per_s: f64,
    /// The same in the run itself, unscaled: the stall the run's own timings already hold.
    pub(super) run_closes_per_s: f64,
    /// The run's median time between two PASVs on one connection, and the seconds of
    /// TIME_WAITs its range held on average (see [`Workload::stall`]).
    pub(super) cycle_us: f64,
    pub(super) run_horizon_s: f64,
    pub(super) run_width: Option<u32>,
    pub(super) time_waits: TimeWaits,
    /// The most TIME_WAITs the server's host keeps (see [`Trace::time_wait_cap`]).
    pub(super) time_wait_cap: Option<u32>,
    /// A one-loop server's share of its core in the run, when the run measured the server's
    /// own CPU ([`Trace::server_cpu_cores`]) and that was busier than the host: its binds'
    /// walks are then more demand on that core (see [`Workload::stall`]).
    pub(super) loop_busy: Option<f64>,
    /// The run's PASVs per second, unscaled, and the scale and exchange share the load was
    /// built for: what the loop's demand is reckoned from.
    pub(super) run_pasv_per_s: f64,
    pub(super) scale: f64,
    pub(super) active_share: f64,
    seed: u64,
}

/// Sessions are grouped by the stretch of the run they started in, this long (at least five
/// stretches, at most ten): the grade of service is checked in the busy stretches, not only on
/// average, as telephone trunks are sized for the busy hour. Runs of one closed-loop load
/// differ twofold to fourfold in how bunched their sessions are; the stretches of one run
/// show that spread.
pub const BUSY_STRETCH_US: u64 = 2_000_000;
/// The share of stretches the target must hold in.
pub const BUSY_QUANTILE: f64 = 0.8;
/// A stretch with fewer sessions says too little to count.
const MIN_STRETCH_SESSIONS: f64 = 20.0;

/// Expected counts of one replay (probabilities added up, not sampled failures).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub attempts: f64,
    pub exhausted: f64,
    pub collided: f64,
    pub refused_connections: f64,
    pub sessions: f64,
    pub sessions_failed: f64,
    /// Sessions that failed in the run for other reasons, and so fail at every width.
    pub sessions_failed_otherwise: f64,
    /// Per stretch of the run: sessions (failing for other reasons left out) and those the
    /// range makes fail.
    pub stretch_sessions: Vec<f64>,
    pub stretch_failed: Vec<f64>,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.attempts += o.attempts;
        self.exhausted += o.exhausted;
        self.collided += o.collided;
        self.refused_connections += o.refused_connections;
        self.sessions += o.sessions;
        self.sessions_failed += o.sessions_failed;
        self.sessions_failed_otherwise += o.sessions_failed_otherwise;
        for (mine, theirs) in [
            (&mut self.stretch_sessions, &o.stretch_sessions),
            (&mut self.stretch_failed, &o.stretch_failed),
        ] {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0.0);
            }
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
    }

    /// Session failure at the range in the busy stretches: the [`BUSY_QUANTILE`] of the
    /// stretches' rates (the overall rate when no stretch has enough sessions).
    pub fn session_failure_busy(&self) -> f64 {
        let mut rates: Vec<f64> = self
            .stretch_sessions
            .iter()
            .zip(&self.stretch_failed)
            .filter(|(n, _)| **n >= MIN_STRETCH_SESSIONS)
            .map(|(n, f)| (f / n).clamp(0.0, 1.0))
            .collect();
        if rates.is_empty() {
            return self.session_failure_at_range();
        }
        rates.sort_by(f64::total_cmp);
        let rank = ((BUSY_QUANTILE * rates.len() as f64).ceil() as usize).clamp(1, rates.len());
        rates[rank - 1].max(self.session_failure_at_range())
    }

    pub fn pasv_failure(&self) -> f64 {
        if self.attempts > 0.0 {
            ((self.exhausted + self.collided) / self.attempts).min(1.0)
        } else {
            0.0
        }
    }

    pub fn session_failure(&self) -> f64 {
        if self.sessions > 0.0 {
            (self.sessions_failed / self.sessions).min(1.0)
        } else {
            0.0
        }
    }

    /// Session failure the range causes: the sessions that fail at every width left out.
    pub fn session_failure_at_range(&self) -> f64 {
        let rest = self.sessions - self.sessions_failed_otherwise;
        if rest > 0.0 {
            ((self.sessions_failed - self.sessions_failed_otherwise) / rest).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

fn hold_bounds(trace: &Trace, a: &TraceAttempt, next_sent: Option<u64>, model: &ServerModel) -> (u64, u64) {
    let reply = a.t_reply.unwrap_or(a.t_sent);
    let start = match model.hold_start.value {
        HoldStart::PasvSent => a.t_sent,
        HoldStart::PasvReply => reply,
    };
    // A PASV refused in the run has no later phases: it gets the run's typical ones.
    let off = trace.offsets(a.is_stor);
    let granted = matches!(a.result, AttemptResult::Granted | AttemptResult::GrantedOutside);
    let or_typical = |t: Option<u64>, offset: u64| match t {
        Some(t) if granted => t,
        _ => reply + offset,
    };
    let end = match model.hold_end.value {
        HoldEnd::DataConnected => or_typical(a.t_connected, off.connected),
        HoldEnd::TransferCommand => {
            let connected = or_typical(a.t_connected, off.connected);
            let first = or_typical(a.t_first_byte.or(a.t_connected), off.first_byte).max(connected);
            connected + ((first - connected) as f64 * model.command_taken_share) as u64
        }
        HoldEnd::DataClosed => or_typical(a.t_closed, off.closed),
        HoldEnd::FinalReply => or_typical(a.t_final.or(a.t_closed), off.final_reply),
        HoldEnd::NextCommand => next_sent.unwrap_or_else(|| trace.connections[a.connection as usize].t_close),
    };
    let end = (end.max(start) as f64 + model.release_lag_us.value).round();
    (start, (end.max(start as f64)) as u64)
}

/// Each PASV the run answered, with the stretch the server would hold its port for under
/// `model` (whether or not the run granted it).
pub(super) fn holds<'a>(trace: &'a Trace, model: &'a ServerModel) -> impl Iterator<Item = (usize, (u64, u64))> + 'a {
    trace
        .attempts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.result != AttemptResult::NoAnswer)
        .map(move |(i, a)| {
            let next_sent = trace
                .attempts
                .get(i + 1)
                .filter(|n| n.connection == a.connection)
                .map(|n| n.t_sent);
            (i, hold_bounds(trace, a, next_sent, model))
        })
}

/// When a server whose session processes race bind() and listen() bound the port of one
/// PASV: somewhere between our PASV and its 227, uniformly (our 227 timestamps bunch the
/// replies a burst brings in one read of the event loop, which made two PASVs look
/// simultaneous far more often than the server's binds were).
fn bind_time(a: &TraceAttempt, start: u64, rng: &mut StdRng) -> u64 {
    match a.t_reply {
        Some(reply) if reply > a.t_sent && start >= a.t_sent => rng.random_range(a.t_sent..=reply).min(start),
        _ => start,
    }
}

/// A deterministic share of sessions for the fractional copy.
fn keeps(session: u32, copy: u32, share: f64, seed: u64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let mut x = seed ^ (u64::from(session) << 20) ^ u64::from(copy).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser: a well-spread hash of the three inputs.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x as f64 / u64::MAX as f64) < share
}

impl Workload {
    /// The run scaled by `scale` (1 = the run's own load), for one replication `seed`.
    pub fn build(trace: &Trace, model: &ServerModel, scale: f64, seed: u64, time_waits: TimeWaits) -> Workload {
        let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        let copies = scale.ceil().max(1.0) as u32;
        let last_share = scale - f64::from(copies - 1);
        let n_sessions = trace.sessions.len();
        let n_connections = trace.connections.len();
        let mut rng = StdRng::seed_from_u64(seed);
        let cycle = trace.median_cycle_us.max(1);
        let mut events = Vec::with_capacity((trace.attempts.len() + 2 * n_connections) * copies as usize);
        let mut included = vec![false; n_sessions * copies as usize];
        let mut background = vec![false; n_sessions * copies as usize];
        // Whether a greeting refused in the run is the range's doing (an admission cap tied
        // to the width) or the server's for other reasons.
        let refusal_is_background = model.admission.value == Admission::Unlimited;
        // Holds stretch with the CPU contention, and a closed load's connections go round
        // slower by as much as their exchanges take longer: the host's CPU, or a one-loop
        // server's one core when that was the busier.
        let one_loop = model.one_event_loop.value;
        let busy = super::contention::busy_share(trace.host_cpu_busy, trace.server_cpu_cores, one_loop);
        let (stretch, dilation) = super::contention::closed_loop(busy, scale, trace.active_share);
        let loop_busy =
            busy.filter(|_| super::contention::loop_bound(trace.host_cpu_busy, trace.server_cpu_cores, one_loop));
        let origin = trace.connections.iter().map(|c| c.t_open).min().unwrap_or(0);
        let at = |t: u64| origin + ((t.saturating_sub(origin)) as f64 * dilation).round() as u64;
        for copy in 0..copies {
            let share = if copy + 1 == copies { last_share } else { 1.0 };
            let shift = if copy == 0 { 0 } else { rng.random_range(0..cycle) };
            let s_base = copy as usize * n_sessions;
            let c_base = copy as usize * n_connections;
            for (s, session) in trace.sessions.iter().enumerate() {
                let keep = keeps(s as u32, copy, share, seed);
                included[s_base + s] = keep;
                background[s_base + s] =
                    session.failed_otherwise || (session.greeting_refused && refusal_is_background);
            }
            for (c, conn) in trace.connections.iter().enumerate() {
                if !included[s_base + conn.session as usize] {
                    continue;
                }
                let (connection, session) = ((c_base + c) as u32, (s_base + conn.session as usize) as u32);
                events.push(Event {
                    t: at(conn.t_open) + shift,
                    kind: Kind::Open,
                    connection,
                    session,
                    hold_end: 0,
                });
                events.push(Event {
                    t: at(conn.t_close) + shift,
                    kind: Kind::Close,
                    connection,
                    session,
                    hold_end: 0,
                });
            }
            for (i, (start, end)) in holds(trace, model) {
                let a = &trace.attempts[i];
                if !included[s_base + a.session as usize] {
                    continue;
                }
                let start = if model.races() {
                    bind_time(a, start, &mut rng)
                } else {
                    start
                };
                let held = ((end - start) as f64 * stretch).round() as u64;
                let start = at(start);
                events.push(Event {
                    t: start + shift,
                    kind: Kind::Attempt,
                    connection: (c_base + a.connection as usize) as u32,
                    session: (s_base + a.session as usize) as u32,
                    hold_end: start + held + shift,
                });
            }
        }
        events.sort_unstable_by_key(|e| (e.t, e.kind));
        let closes = trace
            .attempts
            .iter()
            .filter(|a| !a.is_stor && a.result != AttemptResult::NoAnswer)
            .count() as f64
            * scale;
        let span_s = trace.span().map_or(0.0, |(lo, hi)| (hi - lo) as f64 / 1e6);
        let closes_per_s = if span_s > 0.0 {
            closes / (span_s * dilation)
        } else {
            0.0
        };
        let run_closes_per_s = if span_s > 0.0 { closes / scale / span_s } else { 0.0 };
        let run_pasv_per_s = if span_s > 0.0 {
            trace.attempts.len() as f64 / span_s
        } else {
            0.0
        };
        let run_horizon_s = run_horizon_s(span_s, run_closes_per_s, trace.time_waits_at_start);
        // Each session's stretch, from its first connection's opening.
        let mut started = vec![u64::MAX; n_sessions];
        for c in &trace.connections {
            let s = &mut started[c.session as usize];
            *s = (*s).min(c.t_open);
        }
        let first = started.iter().copied().filter(|&t| t != u64::MAX).min().unwrap_or(0);
        let last = started.iter().copied().filter(|&t| t != u64::MAX).max().unwrap_or(0);
        let stretches = ((last - first) / BUSY_STRETCH_US).clamp(5, 10) as usize;
        let length = ((last - first) / stretches as u64).max(1);
        let stretch: Vec<u16> = (0..copies as usize)
            .flat_map(|_| started.iter())
            .map(|&t| {
                if t == u64::MAX {
                    0
                } else {
                    (((t - first) / length) as usize).min(stretches - 1) as u16
                }
            })
            .collect();
        Workload {
            events,
            connections: n_connections * copies as usize,
            background,
            included,
            stretch,
            stretches,
            admission: model.admission.value,
            on_exhausted: model.on_exhausted.value,
            on_refusal: model.on_refusal.value,
            pick: model.pick.value,
            model: model.clone(),
            closes_per_s,
            run_closes_per_s,
            cycle_us: trace.median_cycle_us as f64,
            run_horizon_s,
            run_width: trace.run_width,
            time_waits,
            time_wait_cap: trace.time_wait_cap,
            loop_busy,
            run_pasv_per_s,
            scale,
            active_share: trace.active_share,
            seed,
        }
    }

    /// `horizon_s` of `closes_per_s`, as far as the host's TIME_WAIT cap lets them pile up.
    pub(super) fn capped(&self, horizon_s: f64, closes_per_s: f64) -> f64 {
        capped_horizon_s(horizon_s, closes_per_s, self.time_wait_cap)
    }

    pub fn attempts(&self) -> usize {
        self.events.iter().filter(|e| e.kind == Kind::Attempt).count()
    }

    /// Replays the load against `width` ports.
    pub fn run(&self, width: u32) -> Counts {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5EED_F00D);
        let window = if self.model.races() {
            let horizon = self.capped(self.horizon_s(), self.closes_per_s);
            self.model.window_at(width, self.closes_per_s, horizon)
        } else {
            0.0
        };
        let mut pool = PortPool::new(self.model.usable(width), self.pick, window);
        let stalled = self.stall(width).map(|s| self.stalled(s));
        let events = stalled.as_deref().unwrap_or(&self.events);
        let cap = self.admission.cap(width);
        let mut admitted = vec![false; self.connections];
        let mut dead = vec![false; self.connections];
        let mut open = 0u32;
        let mut survive_log = vec![0.0f64; self.included.len()];
        let mut refused = vec![false; self.included.len()];
        let mut counts = Counts {
            stretch_sessions: vec![0.0; self.stretches],
            stretch_failed: vec![0.0; self.stretches],
            ..Counts::default()
        };
        for e in events {
            let c = e.connection as usize;
            match e.kind {
                Kind::Open => {
                    if cap.is_some_and(|cap| open >= cap) {
                        dead[c] = true;
                        refused[e.session as usize] = true;
                        counts.refused_connections += 1.0;
                    } else {
                        admitted[c] = true;
                        open += 1;
                    }
                }
                Kind::Close => {
                    if admitted[c] {
                        admitted[c] = false;
                        open -= 1;
                    }
                    dead[c] = true;
                }
                Kind::Attempt => {
                    if dead[c] {
                        continue;
                    }
                    let pick = pool.request(e.t, e.hold_end, &mut rng);
                    counts.attempts += 1.0;
                    counts.exhausted += pick.p_exhausted;
                    counts.collided += pick.p_collided;
                    let p = pick.p_failed();
                    survive_log[e.session as usize] += if p >= 1.0 { f64::NEG_INFINITY } else { (-p).ln_1p() };
                    let refused_here = match pick.outcome {
                        PickOutcome::Granted(_) => false,
                        PickOutcome::Collided => true,
                        PickOutcome::Exhausted => self.on_exhausted == OnExhausted::Refuse,
                    };
                    if refused_here && self.on_refusal == OnRefusal::DropConnection {
                        dead[c] = true;
                    }
                }
            }
        }
        for (s, &inc) in self.included.iter().enumerate() {
            if !inc {
                continue;
            }
            counts.sessions += 1.0;
            if self.background[s] {
                counts.sessions_failed += 1.0;
                counts.sessions_failed_otherwise += 1.0;
                continue;
            }
            let failed = if refused[s] { 1.0 } else { 1.0 - survive_log[s].exp() };
            counts.sessions_failed += failed;
            let k = usize::from(self.stretch[s]).min(self.stretches - 1);
            counts.stretch_sessions[k] += 1.0;
            counts.stretch_failed[k] += failed;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::server::ServerKind;
    use crate::sim::trace::{TraceConnection, TraceSession};
    use crate::sim::TimeWaits;

    /// Two connections whose PASVs go out `spread_us` apart and whose 227s come back in the
    /// same microsecond (one read of a burst), `pairs` times, far apart.
    fn bunched_replies(pairs: u64, spread_us: u64) -> Trace {
        let mut trace = Trace::default();
        let gap = 20_000;
        for c in 0..2u32 {
            trace.sessions.push(TraceSession::default());
            trace.connections.push(TraceConnection {
                session: c,
                t_open: 0,
                t_close: (pairs + 1) * gap,
                greeting_refused: false,
            });
        }
        for i in 1..=pairs {
            let reply = i * gap;
            for c in 0..2u32 {
                trace.attempts.push(TraceAttempt {
                    session: c,
                    connection: c,
                    // Uploads: the client closes first, so no TIME_WAIT stretches the window.
                    is_stor: true,
                    t_sent: reply - spread_us + u64::from(c),
                    t_reply: Some(reply),
                    t_connected: Some(reply + 100),
                    t_first_byte: Some(reply + 200),
                    t_closed: Some(reply + 300),
                    t_final: Some(reply + 400),
                    result: AttemptResult::Granted,
                });
            }
        }
        trace.attempts.sort_by_key(|a| (a.connection, a.t_sent));
        trace
    }

    #[test]
    fn a_racing_server_binds_between_our_pasv_and_its_227_so_bunched_replies_race_as_often_as_the_window_says() {
        let pairs = 20_000;
        let spread = 1_000.0;
        let trace = bunched_replies(pairs, spread as u64);
        let races = |window_us: f64| {
            let mut model = ServerModel::known(ServerKind::Proftpd);
            model.collision_window_us.value = window_us;
            // ProFTPD never hands out its top port: 3 configured, 2 used.
            Workload::build(&trace, &model, 1.0, 7, TimeWaits::Steady)
                .run(3)
                .collided
        };
        // The second bind of a pair comes within the window of the first with probability
        // 2w/T - (w/T)^2 (binds uniform over the T = 1 ms each PASV was in flight); it then
        // picks the first one's port, still looking free, one time in two (shuffled scan
        // over two ports). Were the binds at our 227 timestamps, every pair would come
        // within any window: 10,000 races.
        for w in [10.0, 20.0] {
            let x: f64 = w / spread;
            let expected = pairs as f64 * 0.5 * (2.0 * x - x * x);
            let got = races(w);
            // 4 standard deviations of the binomial count of pairs within the window.
            let sd = 0.5 * (pairs as f64 * (2.0 * x - x * x)).sqrt();
            assert!(
                (got - expected).abs() < 4.0 * sd,
                "window {w} µs: {got} races, expected {expected}"
            );
        }
        // A server that cannot race keeps its holds from the 227 and never collides.
        let vsftpd = ServerModel::known(ServerKind::Vsftpd);
        assert_eq!(
            Workload::build(&trace, &vsftpd, 1.0, 7, TimeWaits::Steady)
                .run(3)
                .collided,
            0.0
        );
    }

    #[test]
    fn the_bind_time_lies_between_our_pasv_and_its_227() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut a = bunched_replies(1, 500).attempts[0];
        let reply = a.t_reply.unwrap_or_default();
        let mut seen = (u64::MAX, 0);
        for _ in 0..10_000 {
            let t = bind_time(&a, reply, &mut rng);
            assert!((a.t_sent..=reply).contains(&t));
            seen = (seen.0.min(t), seen.1.max(t));
        }
        // Spread over the whole flight, not bunched at one end.
        assert!(seen.0 < a.t_sent + 10 && seen.1 > reply - 10, "{seen:?}");
        // No reply, or a hold that starts at the PASV: the hold's own start.
        a.t_reply = None;
        assert_eq!(bind_time(&a, a.t_sent, &mut rng), a.t_sent);
    }

    #[test]
    fn busy_stretches_take_a_high_quantile_of_the_stretches_rates() {
        let c = Counts {
            sessions: 500.0,
            sessions_failed: 10.0,
            stretch_sessions: vec![100.0, 100.0, 100.0, 100.0, 100.0, 5.0],
            stretch_failed: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            ..Counts::default()
        };
        // Five stretches count (the sixth has too few sessions): their 80% quantile is the
        // fourth of 0, 1, 2, 3, 4%.
        assert!((c.session_failure_busy() - 0.03).abs() < 1e-12);
        // Never below the average.
        let flat = Counts {
            sessions: 100.0,
            sessions_failed: 5.0,
            stretch_sessions: vec![50.0, 50.0],
            stretch_failed: vec![0.0, 0.0],
            ..Counts::default()
        };
        assert_eq!(flat.session_failure_busy(), 0.05);
        assert_eq!(Counts::default().session_failure_busy(), 0.0);
    }
}
