//! Step 3: what the server does when its range runs out, and how many random ports it tries
//! before giving up.
//!
//! Each round holds pending PASVs on separate control connections (a second PASV on one
//! connection would free the first on most servers), one more at a time, until a request
//! gets no port from the range. A server that tries k random ports fails a request with n of
//! its W ports held with probability (n/W)^k; a scanning server never fails before all W are
//! held. A climb alone separates the two poorly on a small range (a 9-try server fills all 10
//! ports without a failure half of the time), so each round ends with a few *trials* near the
//! top: the same number of ports held, one more request at a time, each released again.
//! k is then estimated by maximum likelihood over every request of every round
//! ([`super::tries`]).
//!
//! A released port is not free the moment we release it: the server closes its listener when
//! it gets to it, which on a busy host can be after our next request. Each such straggler
//! looks like a failure with a free port left and reads k low (k̂ 5 for libunftp's 9 tries in
//! one CI run). When the server is on this host, each request therefore waits (bounded) until
//! the kernel lists no more listeners on the range than we hold, and records the kernel's
//! count, which is what the server's bind() saw.

use super::link::{ask_port, close, quit_and_wait, GrantOutcome, Link, SETTLE};
use super::tries::{estimate, TryEstimate};
use crate::ftp::passive::PassiveGrant;
use crate::ftp::ControlConnection;
use crate::observe::sockdiag::SockDiag;
use crate::port_range::PortRange;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Requests per round made at the top of the climb, each released before the next.
pub(crate) const TRIALS_PER_ROUND: u32 = 10;
/// Longest wait for the server to close listeners we released, before a request.
const STRAGGLER_WAIT: Duration = Duration::from_millis(500);
const STRAGGLER_POLL: Duration = Duration::from_millis(2);

/// One PASV of the exhaustion step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExhaustionStep {
    pub round: u32,
    /// Ports of the range we held pending when this request was sent.
    pub held: u32,
    /// Listeners on the range the kernel listed just before the request (a server on this
    /// host only): `held` plus ports held by others or not closed yet. The estimate uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listening: Option<u32>,
    /// A trial at the top of the climb (released again) rather than a step of the climb.
    pub trial: bool,
    pub outcome: GrantOutcome,
}

/// What the server answers once the range is used up (the climb's first failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AtExhaustion {
    /// A negative reply (libunftp: 425; vsftpd: `500 OOPS: vsf_sysutil_bind`, then it drops
    /// the session).
    Refuses {
        code: u16,
        text: String,
        session_dropped: bool,
    },
    /// A port outside the range, i.e. a kernel-assigned one (pyftpdlib, ProFTPD): the client
    /// sees success and a firewall opened for the range drops the data connection.
    FallsBackOutsideRange { port: u16 },
    /// The control connection closed without a reply.
    DropsSession,
    /// No reply within the timeout: the request waits for a free port.
    Waits { after_s: f64 },
    /// Different answers in different rounds.
    Mixed { answers: Vec<String> },
    /// No round got that far.
    NotReached { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Exhaustion {
    pub width: Option<u32>,
    pub max_pending: u32,
    pub rounds_done: u32,
    /// Per round, the ports held when the climb first got no port from the range.
    pub first_failure_held: Vec<Option<u32>>,
    pub at_exhaustion: AtExhaustion,
    pub estimate: Option<TryEstimate>,
    pub steps: Vec<ExhaustionStep>,
    /// Why rounds stopped early, when they did.
    pub notes: Vec<String>,
}

impl Exhaustion {
    /// Each answered request as (ports held when it was sent, failed for want of a port): the
    /// kernel's count of listeners where we had it, else our own.
    pub fn observations(&self) -> Vec<(u32, bool)> {
        let w = self.width.unwrap_or(u32::MAX);
        self.steps
            .iter()
            .filter(|s| !matches!(s.outcome, GrantOutcome::Error { .. }))
            .map(|s| (s.listening.unwrap_or(s.held).min(w), s.outcome.is_capacity_failure()))
            .collect()
    }

    pub(crate) fn skipped(reason: &str, max_pending: u32) -> Exhaustion {
        Exhaustion {
            width: None,
            max_pending,
            rounds_done: 0,
            first_failure_held: Vec::new(),
            at_exhaustion: AtExhaustion::NotReached { reason: reason.into() },
            estimate: None,
            steps: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// How a climb ended.
enum ClimbEnd {
    /// No port from the range with `held` ports held.
    Failure {
        held: u32,
    },
    MaxPending,
    OutOfTime,
    Error(String),
}

pub(crate) async fn measure(
    link: &Link,
    range: PortRange,
    max_pending: u32,
    rounds: u32,
    deadline: Instant,
) -> Exhaustion {
    let w = range.width();
    let mut steps = Vec::new();
    let mut first_failure_held = Vec::new();
    let mut notes = Vec::new();
    let mut rounds_done = 0;
    let mut view = RangeView::open(link, range);
    for round in 1..=rounds {
        if Instant::now() >= deadline {
            notes.push(format!("out of time after {rounds_done} rounds"));
            break;
        }
        let mut round_ctx = Round {
            link,
            range,
            max_pending,
            round,
            deadline,
            view: view.as_mut(),
        };
        let end = one_round(&mut round_ctx, &mut steps).await;
        rounds_done += 1;
        first_failure_held.push(match &end {
            ClimbEnd::Failure { held } => Some(*held),
            _ => None,
        });
        match end {
            ClimbEnd::Failure { .. } => {}
            ClimbEnd::MaxPending => notes.push(format!(
                "round {round}: stopped at --max-pending {max_pending} without a failure"
            )),
            ClimbEnd::OutOfTime => notes.push(format!("round {round}: out of time")),
            ClimbEnd::Error(e) => {
                notes.push(format!("round {round}: {e}"));
                // An error (not a capacity answer) will most likely repeat; stop.
                break;
            }
        }
    }
    if let Some(v) = &view {
        notes.push(v.describe(&steps));
    }
    let at_exhaustion = summarise(&steps, &first_failure_held);
    let mut exhaustion = Exhaustion {
        width: Some(w),
        max_pending,
        rounds_done,
        first_failure_held,
        at_exhaustion,
        estimate: None,
        steps,
        notes,
    };
    exhaustion.estimate = estimate(&exhaustion.observations(), w);
    exhaustion
}

type Held = Vec<(ControlConnection, PassiveGrant)>;

/// What every request of one round shares.
struct Round<'a> {
    link: &'a Link,
    range: PortRange,
    max_pending: u32,
    round: u32,
    deadline: Instant,
    view: Option<&'a mut RangeView>,
}

impl Round<'_> {
    /// Opens a connection and asks for a port with `held` ports of ours pending, first letting
    /// the server close what we released (when we can see its listeners).
    async fn request(
        &mut self,
        held: u32,
        trial: bool,
        steps: &mut Vec<ExhaustionStep>,
    ) -> Result<(ControlConnection, GrantOutcome, Option<PassiveGrant>), String> {
        let mut conn = self.link.open().await.map_err(|e| e.to_string())?;
        let listening = match self.view.as_deref_mut() {
            Some(v) => v.settled(held).await,
            None => None,
        };
        let (outcome, grant) = ask_port(&mut conn, Some(self.range), self.link.reply_timeout()).await;
        steps.push(ExhaustionStep {
            round: self.round,
            held,
            listening,
            trial,
            outcome: outcome.clone(),
        });
        Ok((conn, outcome, grant))
    }
}

async fn one_round(r: &mut Round<'_>, steps: &mut Vec<ExhaustionStep>) -> ClimbEnd {
    let mut held: Held = Vec::new();
    let end = climb(r, steps, &mut held).await;
    if let ClimbEnd::Failure { held: at } = end {
        if at > 0 {
            trials(r, steps, &mut held).await;
        }
    }
    release_all(held).await;
    end
}

async fn climb(r: &mut Round<'_>, steps: &mut Vec<ExhaustionStep>, held: &mut Held) -> ClimbEnd {
    loop {
        if held.len() as u32 >= r.max_pending {
            return ClimbEnd::MaxPending;
        }
        if Instant::now() >= r.deadline {
            return ClimbEnd::OutOfTime;
        }
        let n = held.len() as u32;
        let (conn, outcome, grant) = match r.request(n, false, steps).await {
            Ok(asked) => asked,
            Err(e) => return ClimbEnd::Error(format!("control connection {} failed: {e}", n + 1)),
        };
        match (outcome, grant) {
            (GrantOutcome::InRange { .. }, Some(g)) => held.push((conn, g)),
            (GrantOutcome::Error { detail }, _) => {
                drop(conn);
                return ClimbEnd::Error(detail);
            }
            (outcome, grant) => {
                // A port outside the range is pending too, and not ours to keep.
                finish(conn, &outcome, grant.as_ref()).await;
                return ClimbEnd::Failure { held: n };
            }
        }
    }
}

/// Requests at the top of the climb, each released before the next, so they all see the
/// same number of ports held: where the climb failed, or one below full when it only failed
/// with every port held (the last free port is where a random picker and a scan differ most).
async fn trials(r: &mut Round<'_>, steps: &mut Vec<ExhaustionStep>, held: &mut Held) {
    if held.len() as u32 >= r.range.width() {
        if let Some((conn, g)) = held.pop() {
            close(conn, Some(&g)).await;
            tokio::time::sleep(SETTLE).await;
        }
    }
    let n = held.len() as u32;
    for _ in 0..TRIALS_PER_ROUND {
        if n + 1 > r.max_pending || Instant::now() >= r.deadline {
            return;
        }
        let Ok((conn, outcome, grant)) = r.request(n, true, steps).await else {
            return;
        };
        let stop = matches!(outcome, GrantOutcome::Wait { .. } | GrantOutcome::Error { .. });
        finish(conn, &outcome, grant.as_ref()).await;
        tokio::time::sleep(SETTLE).await;
        if stop {
            // Each wait costs a full timeout, and an error will repeat.
            return;
        }
    }
}

/// The kernel's listeners on the range, for a server on this host (loopback).
pub(crate) struct RangeView {
    diag: SockDiag,
    range: PortRange,
    /// Requests that found more listeners than ports we held, and how many of them were still
    /// there after [`STRAGGLER_WAIT`].
    waited: u32,
    still_there: u32,
}

impl RangeView {
    fn open(link: &Link, range: PortRange) -> Option<RangeView> {
        if !link.addr.ip().is_loopback() {
            return None;
        }
        let mut diag = SockDiag::open().ok()?;
        // A host that refuses the dump (no sock_diag) is one we cannot see: fall back to our
        // own count rather than record zeros.
        diag.count_listeners(range).ok()?;
        Some(RangeView {
            diag,
            range,
            waited: 0,
            still_there: 0,
        })
    }

    /// Waits until no more than `ours` ports listen (bounded), and returns the count then.
    async fn settled(&mut self, ours: u32) -> Option<u32> {
        let give_up = Instant::now() + STRAGGLER_WAIT;
        let mut first = true;
        loop {
            let n = self.diag.count_listeners(self.range).ok()?;
            if n <= ours {
                return Some(n);
            }
            if first {
                self.waited += 1;
                first = false;
            }
            if Instant::now() >= give_up {
                self.still_there += 1;
                return Some(n);
            }
            tokio::time::sleep(STRAGGLER_POLL).await;
        }
    }

    fn describe(&self, steps: &[ExhaustionStep]) -> String {
        let others = steps.iter().filter(|s| s.listening.is_some_and(|l| l > s.held)).count();
        format!(
            "held ports counted from the kernel's listeners (server on this host): {} of {} requests \
             waited for listeners the server had not closed yet, {} found more listeners than ports \
             we held ({} still after {} ms)",
            self.waited,
            steps.len(),
            others,
            self.still_there,
            STRAGGLER_WAIT.as_millis()
        )
    }
}

/// Ends a connection whose request we do not keep, releasing its port if it got one.
async fn finish(conn: ControlConnection, outcome: &GrantOutcome, grant: Option<&PassiveGrant>) {
    match outcome {
        GrantOutcome::InRange { .. } | GrantOutcome::OutOfRange { .. } => close(conn, grant).await,
        GrantOutcome::Refused {
            session_dropped: false, ..
        } => quit_and_wait(conn).await,
        // Closed, or out of sync after a timeout: nothing to say to it.
        _ => drop(conn),
    }
}

/// Releases every held port and quits, all at once, then lets the server catch up.
async fn release_all(held: Held) {
    let mut set = JoinSet::new();
    for (conn, g) in held {
        set.spawn(async move { close(conn, Some(&g)).await });
    }
    while set.join_next().await.is_some() {}
    tokio::time::sleep(SETTLE * 5).await;
}

/// The climb's first failures across rounds, as one description.
fn summarise(steps: &[ExhaustionStep], first_failure_held: &[Option<u32>]) -> AtExhaustion {
    let firsts: Vec<&GrantOutcome> = steps
        .iter()
        .filter(|s| !s.trial && s.outcome.is_capacity_failure())
        .map(|s| &s.outcome)
        .collect();
    let Some(first) = firsts.first() else {
        let reason = if first_failure_held.is_empty() {
            "no round ran".to_string()
        } else {
            "no round ran out of ports (see notes)".to_string()
        };
        return AtExhaustion::NotReached { reason };
    };
    let same_kind = |a: &GrantOutcome, b: &GrantOutcome| match (a, b) {
        (GrantOutcome::Refused { code: x, .. }, GrantOutcome::Refused { code: y, .. }) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    };
    if firsts.iter().all(|o| same_kind(o, first)) {
        return match first {
            GrantOutcome::Refused {
                code,
                text,
                session_dropped,
            } => AtExhaustion::Refuses {
                code: *code,
                text: text.clone(),
                // Dropped in any round means the server drops sessions at exhaustion.
                session_dropped: *session_dropped
                    || firsts.iter().any(|o| {
                        matches!(
                            o,
                            GrantOutcome::Refused {
                                session_dropped: true,
                                ..
                            }
                        )
                    }),
            },
            GrantOutcome::OutOfRange { port } => AtExhaustion::FallsBackOutsideRange { port: *port },
            GrantOutcome::SessionKilled { .. } => AtExhaustion::DropsSession,
            GrantOutcome::Wait { after_s } => AtExhaustion::Waits { after_s: *after_s },
            other => AtExhaustion::Mixed {
                answers: vec![other.describe()],
            },
        };
    }
    let mut answers: Vec<String> = firsts.iter().map(|o| o.describe()).collect();
    answers.sort();
    answers.dedup();
    AtExhaustion::Mixed { answers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_first_failures() {
        let step = |outcome| ExhaustionStep {
            round: 1,
            held: 9,
            listening: None,
            trial: false,
            outcome,
        };
        let refused = |dropped| GrantOutcome::Refused {
            code: 500,
            text: "OOPS: vsf_sysutil_bind".into(),
            session_dropped: dropped,
        };
        let s = summarise(&[step(refused(false)), step(refused(true))], &[Some(9), Some(9)]);
        assert!(matches!(
            s,
            AtExhaustion::Refuses {
                code: 500,
                session_dropped: true,
                ..
            }
        ));
        let mixed = summarise(
            &[step(refused(true)), step(GrantOutcome::OutOfRange { port: 40000 })],
            &[Some(9), Some(10)],
        );
        assert!(matches!(mixed, AtExhaustion::Mixed { .. }));
        assert!(matches!(summarise(&[], &[None]), AtExhaustion::NotReached { .. }));
    }
}
