//! The swarm engine: starts sessions by the profile's load model and stops them cleanly.
//!
//! Three signals end a run: `no_new_sessions` (duration or session count reached, or Ctrl-C)
//! lets sessions in flight finish their files; `stop_files` (Ctrl-C) also stops them taking
//! new files; and after the drain period the client's `cut` stops whatever still runs where
//! it is, recorded as `interrupted`.

pub mod files;
pub mod remote;
mod session;
pub mod sources;

use crate::event::{FailureClass, Record};
use crate::ftp::ClientConfig;
use crate::observe::LiveCounters;
use crate::profile::{Arrival, LoadModel, Profile};
use files::FilePlan;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct SwarmContext {
    pub profile: Profile,
    pub client: Arc<ClientConfig>,
    pub addr: SocketAddr,
    pub files: FilePlan,
    pub sources: sources::SourcePorts,
    pub records: mpsc::Sender<Record>,
    pub live: Arc<LiveCounters>,
    pub stop_files: CancellationToken,
    pub next_connection_id: AtomicU64,
}

/// How the load phase ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmOutcome {
    pub sessions_started: u64,
    pub sessions_dropped: u64,
    pub interrupted: bool,
    /// Sessions still running when the drain period ran out: cut, and recorded as
    /// `interrupted`.
    pub sessions_cut_off: u64,
    /// Cut sessions that did not write their records within a grace period (lost).
    pub sessions_unrecorded: u64,
    /// Why the load stopped before its limits, when it stopped itself.
    pub stopped: Option<String>,
    /// Control connections per source address (ephemeral ports).
    pub sources: sources::SourceUse,
}

/// Runs the load until the profile's limits or `interrupt`. Session ids start at 1.
pub async fn run(ctx: Arc<SwarmContext>, interrupt: CancellationToken) -> SwarmOutcome {
    let load = &ctx.profile.load;
    let start = Instant::now();
    let deadline = load.duration.map(|d| start + d.0);
    let no_new_sessions = interrupt.child_token();
    let mut tasks = JoinSet::new();

    match load.model {
        LoadModel::Closed => {
            let n = load.sessions.max(1);
            let shard = ctx.profile.shard();
            for worker in 0..n {
                // A shard's workers start between the other shards' ones: together, the
                // whole load's ramp.
                let offset = ctx
                    .profile
                    .ramp_up()
                    .mul_f64(shard.stagger(u64::from(worker), u64::from(n)));
                tasks.spawn(closed_worker(
                    ctx.clone(),
                    start + offset,
                    deadline,
                    no_new_sessions.clone(),
                ));
            }
        }
        LoadModel::Open => {
            let ctx2 = ctx.clone();
            let stop = no_new_sessions.clone();
            tasks.spawn(async move { open_arrivals(ctx2, start, deadline, stop).await });
        }
    }

    // The end: every session done; or an interrupt, which also stops sessions taking new
    // files; or the duration, after which sessions in flight finish the files they have. Either
    // way they get `load.drain`; then whatever still runs is cut where it is and recorded as
    // interrupted, so `--duration` bounds the wall time even with an hour of think time.
    let mut stopped = None;
    let (interrupted, cut_off, unrecorded) = {
        let finished = async { while tasks.join_next().await.is_some() {} };
        tokio::pin!(finished);
        let past_duration = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let done = tokio::select! {
            _ = &mut finished => true,
            _ = interrupt.cancelled() => false,
            _ = past_duration => false,
            reason = watchdog(&ctx.live) => {
                tracing::warn!("stopping the load: {reason}");
                stopped = Some(reason);
                no_new_sessions.cancel();
                ctx.stop_files.cancel();
                false
            }
        };
        // Both can be ready at once (an interrupt that stopped the workers also finished
        // them); a run an interrupt cut short is partial whichever branch won.
        let interrupted = interrupt.is_cancelled();
        let (mut cut_off, mut unrecorded) = (0, 0);
        // A finished future must not be polled again.
        if !done {
            if interrupted {
                ctx.stop_files.cancel();
            }
            let drained = tokio::select! {
                r = tokio::time::timeout(load.drain.0, &mut finished) => r.is_ok(),
                // An interrupt during the duration's drain stops new files too.
                _ = interrupt.cancelled(), if !interrupted => {
                    ctx.stop_files.cancel();
                    tokio::time::timeout(load.drain.0, &mut finished).await.is_ok()
                }
            };
            if !drained {
                cut_off = ctx.live.sessions_active.load(Ordering::Relaxed).max(0) as u64;
                ctx.stop_files.cancel();
                ctx.client.cut.cancel();
                // Cut sessions write their records at once; any that cannot are counted.
                if tokio::time::timeout(CUT_GRACE, &mut finished).await.is_err() {
                    unrecorded = ctx.live.sessions_active.load(Ordering::Relaxed).max(0) as u64;
                }
            }
        }
        (interrupt.is_cancelled(), cut_off, unrecorded)
    };
    tasks.abort_all();
    SwarmOutcome {
        sessions_started: ctx.live.sessions_started.load(Ordering::Relaxed),
        sessions_dropped: ctx.live.sessions_dropped.load(Ordering::Relaxed),
        interrupted,
        sessions_cut_off: cut_off,
        sessions_unrecorded: unrecorded,
        stopped,
        sources: ctx.sources.usage(),
    }
}

/// Resolves when going on would measure nothing about the server: our own machine failing
/// (`local_error` outnumbering logins and transfers), or a target that stopped accepting
/// connections altogether (a server that died mid-run: nothing but refused or timed-out
/// connects for [`GONE_AFTER`]; backoff thins the attempts, so this counts time, not rate).
async fn watchdog(live: &LiveCounters) -> String {
    const WINDOW: Duration = Duration::from_secs(1);
    let snapshot = || {
        (
            live.failures_of(FailureClass::LocalError),
            live.failures_of(FailureClass::ConnectRefused) + live.failures_of(FailureClass::ConnectTimeout),
            live.logins.load(Ordering::Relaxed) + live.transfers_done.load(Ordering::Relaxed),
        )
    };
    let mut last = snapshot();
    let (mut last_progress, mut refused_since) = (Instant::now(), 0);
    loop {
        tokio::time::sleep(WINDOW).await;
        let now = snapshot();
        let (local, refused, progress) = (now.0 - last.0, now.1 - last.1, now.2 - last.2);
        last = now;
        if local >= 10 && local > progress {
            return format!(
                "{local} local errors in the last second against {progress} logins and transfers: \
                 the load machine, not the server, is failing (see local_error in the results; \
                 raise the file-descriptor limit with `ulimit -n`, check source_addresses, or lower the load)"
            );
        }
        if progress > 0 {
            (last_progress, refused_since) = (Instant::now(), 0);
        } else {
            refused_since += refused;
        }
        let silent = last_progress.elapsed();
        if silent >= GONE_AFTER && refused_since >= 10 {
            return format!(
                "the target went away: {refused_since} connections refused or timed out and none logged in for {:.0} s",
                silent.as_secs_f64()
            );
        }
    }
}

/// How long only refused connects and no progress mean the target is gone.
const GONE_AFTER: Duration = Duration::from_secs(4);

/// How long cut sessions get to write their records before they are abandoned.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// Claims the next session id, or `None` when `total_sessions` is reached. A shard's ids
/// are its own share of the whole run's (see [`crate::profile::Shard::global_id`]).
fn claim_session(ctx: &SwarmContext) -> Option<u64> {
    // Never counted past the total, not even for a moment: the count is a Prometheus counter,
    // which must not go down.
    let total = ctx.profile.load.total_sessions.unwrap_or(u64::MAX);
    ctx.live
        .sessions_started
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < total).then_some(n + 1))
        .ok()
        .map(|n| ctx.profile.shard().global_id(n + 1))
}

async fn closed_worker(
    ctx: Arc<SwarmContext>,
    first_start: Instant,
    deadline: Option<Instant>,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = tokio::time::sleep_until(first_start.into()) => {}
        _ = stop.cancelled() => return,
    }
    let mut backoff = Backoff::new(&ctx.profile, first_start);
    loop {
        if stop.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let Some(id) = claim_session(&ctx) else { return };
        let intended = ctx.client.clock.now_us();
        let end = session::run_session(ctx.clone(), id, intended).await;
        if let Some(wait) = backoff.after(end.refused) {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// Exponential backoff with full jitter after refused sessions, so that a server refusing
/// logins (full, or capped by its range as Pure-FTPd is) sees one attempt per real client
/// and not a flood: measured without it, 110,847 `421`s in 10.6 s against Pure-FTPd at 4 ports.
struct Backoff {
    base: Duration,
    max: Duration,
    refusals_in_a_row: u32,
    rng: StdRng,
}

impl Backoff {
    fn new(profile: &Profile, salt: Instant) -> Backoff {
        let salt = salt.elapsed().subsec_nanos();
        Backoff {
            base: profile.load.backoff.0,
            max: profile.load.backoff_max.0,
            refusals_in_a_row: 0,
            rng: StdRng::seed_from_u64(profile.seed ^ u64::from(salt).wrapping_mul(0x9E37_79B9)),
        }
    }

    /// The wait before the next session, if any.
    fn after(&mut self, refused: bool) -> Option<Duration> {
        if !refused || self.base.is_zero() {
            self.refusals_in_a_row = 0;
            return None;
        }
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.refusals_in_a_row.min(20))
            .min(self.max);
        self.refusals_in_a_row += 1;
        Some(ceiling.mul_f64(rand::Rng::random::<f64>(&mut self.rng)))
    }
}

async fn open_arrivals(ctx: Arc<SwarmContext>, start: Instant, deadline: Option<Instant>, stop: CancellationToken) {
    let load = &ctx.profile.load;
    let shard = ctx.profile.shard();
    // Each shard draws its own arrivals: N independent Poisson streams of rate/N are one of
    // the whole rate.
    let mut rng = StdRng::seed_from_u64((ctx.profile.seed ^ 0x0A11_7E55).wrapping_add(u64::from(shard.index)));
    let exp = Exp::new(load.rate).ok();
    let mut sessions = JoinSet::new();
    // Constant arrivals: the shards' ticks interleave into the whole rate's.
    let mut next = match load.arrival {
        Arrival::Constant => {
            start + Duration::from_secs_f64(shard.stagger(0, 1) / load.rate).min(Duration::from_secs(86_400))
        }
        Arrival::Poisson => start,
    };
    loop {
        let gap = match (load.arrival, &exp) {
            (Arrival::Poisson, Some(e)) => e.sample(&mut rng),
            _ => 1.0 / load.rate,
        };
        next += Duration::from_secs_f64(gap.min(86_400.0));
        if deadline.is_some_and(|d| next >= d) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = stop.cancelled() => break,
        }
        // Reap finished sessions so the set does not grow with the run's length.
        while sessions.try_join_next().is_some() {}
        if ctx.live.sessions_active.load(Ordering::Relaxed) >= i64::from(load.max_in_flight) {
            ctx.live.sessions_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Some(id) = claim_session(&ctx) else { break };
        // Latency is measured from the intended arrival, not from when we got round to it,
        // so a slow server cannot hide its queueing (coordinated omission).
        let intended = ctx.client.clock.us_at(next);
        let session_ctx = ctx.clone();
        // An open model's arrivals come whatever the server did with the last one.
        sessions.spawn(async move {
            session::run_session(session_ctx, id, intended).await;
        });
    }
    while sessions.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_and_resets_after_a_success() {
        let mut p = Profile::default();
        p.load.backoff = crate::profile::HumanDuration(Duration::from_millis(100));
        p.load.backoff_max = crate::profile::HumanDuration(Duration::from_millis(350));
        let mut b = Backoff::new(&p, Instant::now());
        let ceilings = [100, 200, 350, 350];
        for (i, ms) in ceilings.iter().enumerate() {
            let wait = b.after(true).unwrap_or_else(|| panic!("refusal {i} gave no wait"));
            assert!(wait <= Duration::from_millis(*ms), "refusal {i}: {wait:?}");
        }
        assert_eq!(b.after(false), None);
        // After a success the next refusal starts from the base again.
        assert!(b.after(true).unwrap() <= Duration::from_millis(100));
        // Jitter: many waits under one ceiling are not all the same.
        let waits: std::collections::BTreeSet<_> = (0..20)
            .map(|_| {
                b.refusals_in_a_row = 0;
                b.after(true)
            })
            .collect();
        assert!(waits.len() > 10, "{waits:?}");
        p.load.backoff = crate::profile::HumanDuration(Duration::ZERO);
        assert_eq!(Backoff::new(&p, Instant::now()).after(true), None);
    }
}
