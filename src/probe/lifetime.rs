//! Step 5: how long the server keeps the listener of a PASV nobody connects to, i.e. how
//! long an abandoned request holds its port.
//!
//! Several connections each take a port at the same moment; each then waits its own time t
//! (1, 2, 5, 10, 20, 40… s, up to `--max-wait`) and tries to connect. A connection that
//! succeeds shows the listener was still there at t. All requests are made at once, so no
//! port can be freed by one waiter and granted to another before the first checks it.
//!
//! A successful connect only shows the kernel still has a listening socket: vsftpd, which
//! accepts only once a transfer command arrives, keeps it for the whole session.

use super::link::{ask_port, connect_plain, quit_and_wait, Link};
use crate::port_range::PortRange;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// How long the check's own connect may take: on loopback a closed port answers at once.
const CONNECT_LIMIT: Duration = Duration::from_secs(3);
/// Attempts at getting a port per waiter (a random-try server may refuse now and then).
const ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifetimeVerdict {
    /// Alive at `lower_s`, gone at `upper_s`.
    Between,
    /// Alive at every wait, up to `lower_s` (the longest).
    LongerThan,
    /// Gone already at `upper_s` (the shortest wait).
    ShorterThan,
    /// Gone at a shorter wait but alive at a longer one.
    Inconsistent,
    Undetermined,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LifetimeCheck {
    pub wait_s: f64,
    pub port: Option<u16>,
    /// Whether a connection to the port succeeded after the wait; `None`: not tested.
    pub alive: Option<bool>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lifetime {
    pub verdict: LifetimeVerdict,
    pub lower_s: Option<f64>,
    pub upper_s: Option<f64>,
    pub max_wait_s: f64,
    pub checks: Vec<LifetimeCheck>,
    pub detail: String,
}

impl Lifetime {
    pub(crate) fn skipped(max_wait: Duration, detail: impl Into<String>) -> Lifetime {
        Lifetime {
            verdict: LifetimeVerdict::Skipped,
            lower_s: None,
            upper_s: None,
            max_wait_s: max_wait.as_secs_f64(),
            checks: Vec::new(),
            detail: detail.into(),
        }
    }
}

/// 1, 2, 5, 10, 20, 40, 80… s up to `max_wait`, which is always the last; at most `slots`
/// of them, keeping the longest (the upper bound matters most) and dropping short ones.
pub(crate) fn waits(max_wait: Duration, slots: usize) -> Vec<Duration> {
    let mut out: Vec<Duration> = [1u64, 2, 5]
        .into_iter()
        .chain((0..).map(|i| 10u64 << i).take_while(|&s| s < 100_000))
        .map(Duration::from_secs)
        .take_while(|&d| d < max_wait)
        .collect();
    if !max_wait.is_zero() {
        out.push(max_wait);
    }
    let drop = out.len().saturating_sub(slots.max(1));
    out.drain(..drop);
    out
}

pub(crate) async fn measure(link: &Link, range: Option<PortRange>, max_pending: u32, max_wait: Duration) -> Lifetime {
    if max_wait.is_zero() {
        return Lifetime::skipped(max_wait, "--max-wait is 0");
    }
    // Holding half the range at once keeps a random-try server's refusals rare (0.2% per
    // request at k = 9), and the rest is left for the waiters' own requests.
    let by_range = range.map_or(usize::MAX, |r| (r.width() as usize / 2).max(1));
    let slots = by_range.min(max_pending as usize);
    let plan = waits(max_wait, slots);
    let barrier = Arc::new(Barrier::new(plan.len()));
    let mut set = JoinSet::new();
    for (i, wait) in plan.iter().copied().enumerate() {
        let link = link.clone();
        let barrier = barrier.clone();
        set.spawn(async move { (i, check_one(link, range, wait, barrier).await) });
    }
    let mut checks: Vec<Option<LifetimeCheck>> = vec![None; plan.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((i, check)) = done {
            checks[i] = Some(check);
        }
    }
    let checks: Vec<LifetimeCheck> = checks.into_iter().flatten().collect();
    let mut l = interpret(checks, max_wait);
    if plan.len() < waits(max_wait, usize::MAX).len() {
        l.detail = format!(
            "{}; only {} waits at once (half the range, or --max-pending)",
            l.detail,
            plan.len()
        );
    }
    l
}

async fn check_one(link: Link, range: Option<PortRange>, wait: Duration, barrier: Arc<Barrier>) -> LifetimeCheck {
    let mut check = LifetimeCheck {
        wait_s: wait.as_secs_f64(),
        port: None,
        alive: None,
        detail: String::new(),
    };
    let mut got = None;
    for _ in 0..ATTEMPTS {
        let mut conn = match link.open().await {
            Ok(c) => c,
            Err(e) => {
                check.detail = format!("could not log in: {e}");
                continue;
            }
        };
        let (outcome, grant) = ask_port(&mut conn, range, link.reply_timeout()).await;
        match grant {
            Some(g) if outcome.port().is_some_and(|p| range.is_none_or(|r| r.contains(p))) => {
                got = Some((conn, g));
                break;
            }
            Some(g) => {
                check.detail = outcome.describe();
                super::link::close(conn, Some(&g)).await;
            }
            None => {
                check.detail = outcome.describe();
                drop(conn);
            }
        }
    }
    // Everyone starts the clock together, whether or not they got a port, so the barrier
    // never waits for a waiter that gave up.
    barrier.wait().await;
    let Some((conn, grant)) = got else {
        return check;
    };
    check.port = Some(grant.port);
    tokio::time::sleep(wait).await;
    match connect_plain(grant.data_addr, CONNECT_LIMIT).await {
        Ok(stream) => {
            check.alive = Some(true);
            check.detail = format!("connected to port {} after {:?}", grant.port, wait);
            drop(stream);
        }
        Err(e) => {
            check.alive = Some(false);
            check.detail = format!("port {} after {:?}: {e}", grant.port, wait);
        }
    }
    quit_and_wait(conn).await;
    check
}

/// The bracket the checks put the lifetime in.
pub(crate) fn interpret(checks: Vec<LifetimeCheck>, max_wait: Duration) -> Lifetime {
    let alive_max = checks
        .iter()
        .filter(|c| c.alive == Some(true))
        .map(|c| c.wait_s)
        .fold(None, |m: Option<f64>, w| Some(m.map_or(w, |m| m.max(w))));
    let dead_min = checks
        .iter()
        .filter(|c| c.alive == Some(false))
        .map(|c| c.wait_s)
        .fold(None, |m: Option<f64>, w| Some(m.map_or(w, |m| m.min(w))));
    let (verdict, detail) = match (alive_max, dead_min) {
        (None, None) => (LifetimeVerdict::Undetermined, "no check got a port".to_string()),
        (Some(a), None) => (LifetimeVerdict::LongerThan, format!("still listening after {a} s")),
        (None, Some(d)) => (LifetimeVerdict::ShorterThan, format!("gone already after {d} s")),
        (Some(a), Some(d)) if a < d => (
            LifetimeVerdict::Between,
            format!("still listening after {a} s, gone after {d} s"),
        ),
        (Some(a), Some(d)) => (
            LifetimeVerdict::Inconsistent,
            format!("gone after {d} s but listening after {a} s"),
        ),
    };
    Lifetime {
        verdict,
        lower_s: alive_max,
        upper_s: dead_min,
        max_wait_s: max_wait.as_secs_f64(),
        checks,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[Duration]) -> Vec<f64> {
        v.iter().map(Duration::as_secs_f64).collect()
    }

    #[test]
    fn wait_ladder() {
        let s = Duration::from_secs;
        assert_eq!(secs(&waits(s(30), 99)), [1.0, 2.0, 5.0, 10.0, 20.0, 30.0]);
        assert_eq!(secs(&waits(s(20), 99)), [1.0, 2.0, 5.0, 10.0, 20.0]);
        assert_eq!(secs(&waits(s(30), 5)), [2.0, 5.0, 10.0, 20.0, 30.0]);
        assert_eq!(secs(&waits(Duration::from_millis(500), 3)), [0.5]);
        assert_eq!(secs(&waits(s(100), 99)), [1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 100.0]);
        assert!(waits(Duration::ZERO, 5).is_empty());
    }

    #[test]
    fn brackets() {
        let c = |w: f64, alive| LifetimeCheck {
            wait_s: w,
            port: Some(1),
            alive,
            detail: String::new(),
        };
        let max = Duration::from_secs(20);
        let l = interpret(vec![c(1.0, Some(true)), c(10.0, Some(true)), c(20.0, Some(false))], max);
        assert_eq!(
            (l.verdict, l.lower_s, l.upper_s),
            (LifetimeVerdict::Between, Some(10.0), Some(20.0))
        );
        let l = interpret(vec![c(1.0, Some(true)), c(20.0, Some(true))], max);
        assert_eq!(l.verdict, LifetimeVerdict::LongerThan);
        let l = interpret(vec![c(1.0, Some(false)), c(20.0, None)], max);
        assert_eq!(l.verdict, LifetimeVerdict::ShorterThan);
        let l = interpret(vec![c(1.0, Some(false)), c(20.0, Some(true))], max);
        assert_eq!(l.verdict, LifetimeVerdict::Inconsistent);
    }
}
