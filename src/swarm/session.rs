//! One simulated client session: `parallel_connections` logged-in control connections working
//! one shared queue of files, as FileZilla, WinSCP and lftp do. When a connection dies its
//! remaining work moves to the others; what nobody could do is counted as not attempted.

use super::sources::Source;
use super::SwarmContext;
use crate::event::{ConnectionRecord, FailureClass, Outcome, Record, SessionRecord};
use crate::ftp::transfer::TransferIds;
use crate::ftp::{ConnectTimes, ControlConnection, TransferRequest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

type FileQueue = Arc<Mutex<VecDeque<(u32, TransferRequest)>>>;

/// Earliest failure seen, which becomes the session's outcome.
#[derive(Debug, Clone)]
struct FirstFailure {
    t_us: u64,
    class: FailureClass,
    detail: String,
}

fn earlier(a: Option<FirstFailure>, b: Option<FirstFailure>) -> Option<FirstFailure> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.t_us < x.t_us { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

struct ConnectionResult {
    /// Cut off by the end of the run, mid-login or mid-transfer.
    interrupted: bool,
    login_done_us: Option<u64>,
    ok: u32,
    failed: u32,
    bytes: u64,
    first_failure: Option<FirstFailure>,
}

/// Seeds differ per session and connection yet follow from the profile's seed alone.
fn sub_seed(seed: u64, a: u64, b: u64) -> u64 {
    seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// How a session ended, as the load model needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnd {
    /// No connection got as far as logging in because the server refused it (connect,
    /// greeting or login): the closed model backs off before the next session.
    pub refused: bool,
}

pub async fn run_session(ctx: Arc<SwarmContext>, session_id: u64, intended_start_us: u64) -> SessionEnd {
    let clock = ctx.client.clock;
    let t_start_us = clock.now_us();
    ctx.live.sessions_active.fetch_add(1, Ordering::Relaxed);
    let mut rng = StdRng::seed_from_u64(sub_seed(ctx.profile.seed, session_id, 0));
    let requests = ctx.files.session_requests(&ctx.profile, session_id, &mut rng);
    let planned = requests.len() as u32;
    let queue: FileQueue = Arc::new(Mutex::new((0u32..).zip(requests).collect()));
    let source = ctx.sources.for_session(session_id);

    let connections = ctx.profile.session.parallel_connections;
    let mut set = JoinSet::new();
    for c in 0..connections {
        let ctx = ctx.clone();
        let queue = queue.clone();
        let think_rng = StdRng::seed_from_u64(sub_seed(ctx.profile.seed, session_id, u64::from(c) + 1));
        set.spawn(async move { run_connection(ctx, session_id, queue, source, think_rng).await });
    }

    let (mut ok, mut failed, mut bytes) = (0u32, 0u32, 0u64);
    let mut login_done: Option<u64> = None;
    let mut first_failure = None;
    let mut interrupted = false;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => {
                ok += r.ok;
                failed += r.failed;
                bytes += r.bytes;
                login_done = login_done.max(r.login_done_us);
                interrupted |= r.interrupted;
                first_failure = earlier(first_failure, r.first_failure);
            }
            Err(e) => {
                first_failure = earlier(
                    first_failure,
                    Some(FirstFailure {
                        t_us: clock.now_us(),
                        class: FailureClass::ProtocolError,
                        detail: format!("connection task failed: {e}"),
                    }),
                );
            }
        }
    }
    let not_attempted = queue.lock().map(|q| q.len() as u32).unwrap_or(0);
    let (outcome, detail) = match first_failure {
        Some(f) => (Outcome::Failed(f.class), f.detail),
        None if interrupted || not_attempted > 0 => (
            Outcome::Interrupted,
            format!("the run ended before this session did: {not_attempted} of {planned} files not attempted"),
        ),
        None => (Outcome::OK, String::new()),
    };
    let record = SessionRecord {
        session_id,
        t_intended_start_us: intended_start_us,
        t_start_us,
        t_login_done_us: login_done,
        t_end_us: clock.now_us(),
        connections,
        files_planned: planned,
        files_ok: ok,
        files_failed: failed,
        files_not_attempted: not_attempted,
        bytes,
        outcome,
        detail,
    };
    ctx.live.sessions_active.fetch_sub(1, Ordering::Relaxed);
    ctx.live.sessions_done.fetch_add(1, Ordering::Relaxed);
    let refused = record.t_login_done_us.is_none()
        && matches!(
            record.outcome.failure(),
            Some(
                FailureClass::ConnectRefused
                    | FailureClass::ConnectTimeout
                    | FailureClass::GreetingRejected
                    | FailureClass::LoginFailed
            )
        );
    let _ = ctx.records.send(Record::Session(record)).await;
    SessionEnd { refused }
}

async fn run_connection(
    ctx: Arc<SwarmContext>,
    session_id: u64,
    queue: FileQueue,
    source: Source,
    mut think_rng: StdRng,
) -> ConnectionResult {
    let clock = ctx.client.clock;
    let connection_id = ctx
        .profile
        .shard()
        .global_id(ctx.next_connection_id.fetch_add(1, Ordering::Relaxed));
    let _local_port = ctx.sources.occupy(source);
    let mut times = ConnectTimes::default();
    let mut result = ConnectionResult {
        interrupted: false,
        login_done_us: None,
        ok: 0,
        failed: 0,
        bytes: 0,
        first_failure: None,
    };
    let record = |times: &ConnectTimes, result: &ConnectionResult, outcome: Outcome, detail: String| ConnectionRecord {
        session_id,
        connection_id,
        t_connect_start_us: times.t_connect_start_us,
        t_connected_us: times.t_connected_us,
        t_greeting_us: times.t_greeting_us,
        t_tls_us: times.t_tls_us,
        t_login_done_us: result.login_done_us,
        t_closed_us: clock.now_us(),
        transfers_ok: result.ok,
        transfers_failed: result.failed,
        outcome,
        detail,
    };

    let opened = {
        // Boxed, as the transfer below: the connect, TLS and login states live on the heap
        // only while they run, so an idle connection's task stays small (10,000 idle
        // sessions are 10,000 of these).
        let mut login = Box::pin(open_and_login(&ctx, source.ip, &mut times));
        tokio::select! {
            opened = &mut login => Some(opened),
            _ = ctx.client.cut.cancelled() => None,
        }
    };
    let Some(opened) = opened else {
        result.interrupted = true;
        let detail = "cut off at the end of the run's drain period, before logging in".to_string();
        let rec = record(&times, &result, Outcome::Interrupted, detail);
        emit(&ctx, Record::Connection(rec)).await;
        return result;
    };
    let mut conn = match opened {
        Ok(c) => {
            result.login_done_us = Some(clock.now_us());
            ctx.live.logins.fetch_add(1, Ordering::Relaxed);
            c
        }
        Err(e) => {
            return Box::pin(connection_failed(
                &ctx,
                record(&times, &result, Outcome::Failed(e.class), e.detail.clone()),
                result,
                e.class,
                e.detail,
            ))
            .await;
        }
    };
    ctx.live.control_open.fetch_add(1, Ordering::Relaxed);

    let mut lost = None;
    let mut first_file = true;
    loop {
        if ctx.stop_files.is_cancelled() {
            break;
        }
        let job = match queue.lock() {
            Ok(mut q) => q.pop_front(),
            Err(_) => None,
        };
        let Some((seq, req)) = job else { break };
        if !first_file {
            let pause = think_time(&ctx, &mut think_rng);
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = ctx.stop_files.cancelled() => {
                        if let Ok(mut q) = queue.lock() { q.push_front((seq, req)); }
                        break;
                    }
                }
            }
        }
        first_file = false;
        // Until the collector has the record, the summary must not fold past its start.
        let in_flight = ctx.live.in_flight.begin(&clock);
        let out = Box::pin(conn.transfer(
            &req,
            TransferIds {
                session_id,
                connection_id,
                seq_in_session: seq,
            },
        ))
        .await;
        let ev = out.event;
        result.bytes += ev.bytes;
        ctx.live.bytes.fetch_add(ev.bytes, Ordering::Relaxed);
        match ev.outcome.failure() {
            None if ev.outcome.is_interrupted() => result.interrupted = true,
            None => result.ok += 1,
            Some(class) => {
                result.failed += 1;
                ctx.live.failure(class);
                let t = ev.t_final_reply_us.or(ev.t_pasv_reply_us).unwrap_or(ev.t_pasv_sent_us);
                result.first_failure = earlier(
                    result.first_failure.take(),
                    Some(FirstFailure {
                        t_us: t,
                        class,
                        detail: ev.detail.clone(),
                    }),
                );
            }
        }
        ctx.live.transfers_done.fetch_add(1, Ordering::Relaxed);
        emit(&ctx, Record::Transfer(ev)).await;
        drop(in_flight);
        if out.control_lost {
            if !result.interrupted {
                lost = result.first_failure.clone();
            }
            break;
        }
    }
    ctx.live.control_open.fetch_sub(1, Ordering::Relaxed);
    let (outcome, detail) = match &lost {
        Some(f) => (
            Outcome::Failed(f.class),
            format!("control connection lost: {}", f.detail),
        ),
        None if result.interrupted => (
            Outcome::Interrupted,
            "cut off at the end of the run's drain period, mid-transfer".to_string(),
        ),
        None => {
            Box::pin(conn.quit()).await;
            (Outcome::OK, String::new())
        }
    };
    let rec = record(&times, &result, outcome, detail);
    emit(&ctx, Record::Connection(rec)).await;
    result
}

/// Sends a record to the collector; only when the channel is full does it wait, in a boxed
/// send future: inline, that future would take its size in every connection task, idle or not.
async fn emit(ctx: &SwarmContext, record: Record) {
    match ctx.records.try_send(record) {
        Err(tokio::sync::mpsc::error::TrySendError::Full(record)) => {
            let _ = Box::pin(ctx.records.send(record)).await;
        }
        // Sent, or the collector is gone (the run is ending): nothing more to do.
        Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// Connects and logs in; a refused login still says QUIT.
async fn open_and_login(
    ctx: &SwarmContext,
    source: Option<IpAddr>,
    times: &mut ConnectTimes,
) -> Result<ControlConnection, crate::ftp::ClientError> {
    let mut c = ControlConnection::open(ctx.client.clone(), ctx.addr, source, times).await?;
    match c.login().await {
        Ok(()) => Ok(c),
        Err(e) => {
            c.quit().await;
            Err(e)
        }
    }
}

async fn connection_failed(
    ctx: &SwarmContext,
    rec: ConnectionRecord,
    mut result: ConnectionResult,
    class: FailureClass,
    detail: String,
) -> ConnectionResult {
    ctx.live.failure(class);
    result.first_failure = Some(FirstFailure {
        t_us: rec.t_closed_us,
        class,
        detail,
    });
    let _ = ctx.records.send(Record::Connection(rec)).await;
    result
}

fn think_time(ctx: &SwarmContext, rng: &mut StdRng) -> Duration {
    let s = &ctx.profile.session;
    match s.think_time_max {
        Some(max) if max.0 > s.think_time.0 => rng.random_range(s.think_time.0..=max.0),
        _ => s.think_time.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, C, D, E, F: std::future::Future>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A connection's task is allocated whole for its life, idle or not: 10,000 idle sessions
    /// are 10,000 of them. Its connect, login and transfer states are boxed while they run
    /// (inline, the task was 8.7 KiB in this build; boxed, 2.5 KiB).
    #[test]
    fn an_idle_connection_task_stays_small() {
        let size = future_size(run_connection);
        assert!(size <= 4096, "run_connection's future is {size} bytes");
    }
}
