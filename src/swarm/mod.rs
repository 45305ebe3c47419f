//! The swarm engine: starts sessions by the profile's load model and stops them cleanly.
//!
//! Two signals end a run: `no_new_sessions` (duration or session count reached, or Ctrl-C)
//! lets sessions in flight finish their files; `stop_files` (Ctrl-C) also stops them taking
//! new files, and after the drain period whatever still runs is cut off and counted.

pub mod files;
pub mod remote;
mod session;

use crate::event::Record;
use crate::ftp::ClientConfig;
use crate::observe::LiveCounters;
use crate::profile::{Arrival, LoadModel, Profile};
use files::FilePlan;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use std::net::{IpAddr, SocketAddr};
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
    pub sources: Vec<IpAddr>,
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
    /// Sessions still running when the drain period ran out (their records are lost).
    pub sessions_cut_off: u64,
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
            for worker in 0..n {
                let offset = load.ramp_up.0.mul_f64(f64::from(worker) / f64::from(n));
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

    let (interrupted, cut_off) = {
        let finished = async { while tasks.join_next().await.is_some() {} };
        tokio::pin!(finished);
        let done = tokio::select! {
            _ = &mut finished => true,
            _ = interrupt.cancelled() => false,
        };
        // Both can be ready at once (an interrupt that stopped the workers also finished
        // them); a run an interrupt cut short is partial whichever branch won.
        let interrupted = interrupt.is_cancelled();
        let mut cut_off = 0;
        // A finished future must not be polled again.
        if interrupted && !done {
            ctx.stop_files.cancel();
            if tokio::time::timeout(load.drain.0, &mut finished).await.is_err() {
                cut_off = ctx.live.sessions_active.load(Ordering::Relaxed).max(0) as u64;
            }
        }
        (interrupted, cut_off)
    };
    tasks.abort_all();
    SwarmOutcome {
        sessions_started: ctx.live.sessions_started.load(Ordering::Relaxed),
        sessions_dropped: ctx.live.sessions_dropped.load(Ordering::Relaxed),
        interrupted,
        sessions_cut_off: cut_off,
    }
}

/// Claims the next session id, or `None` when `total_sessions` is reached.
fn claim_session(ctx: &SwarmContext) -> Option<u64> {
    let n = ctx.live.sessions_started.fetch_add(1, Ordering::Relaxed);
    match ctx.profile.load.total_sessions {
        Some(total) if n >= total => {
            ctx.live.sessions_started.fetch_sub(1, Ordering::Relaxed);
            None
        }
        _ => Some(n + 1),
    }
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
    loop {
        if stop.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let Some(id) = claim_session(&ctx) else { return };
        let intended = ctx.client.clock.now_us();
        session::run_session(ctx.clone(), id, intended).await;
    }
}

async fn open_arrivals(ctx: Arc<SwarmContext>, start: Instant, deadline: Option<Instant>, stop: CancellationToken) {
    let load = &ctx.profile.load;
    let mut rng = StdRng::seed_from_u64(ctx.profile.seed ^ 0x0A11_7E55);
    let exp = Exp::new(load.rate).ok();
    let mut sessions = JoinSet::new();
    let mut next = start;
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
        sessions.spawn(session::run_session(ctx.clone(), id, intended));
    }
    while sessions.join_next().await.is_some() {}
}
