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
//! k is then estimated by maximum likelihood over every request of every round.

use super::link::{ask_port, close, quit_and_wait, GrantOutcome, Link, SETTLE};
use crate::ftp::passive::PassiveGrant;
use crate::ftp::ControlConnection;
use crate::port_range::PortRange;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tokio::task::JoinSet;

/// Requests per round made at the top of the climb, each released before the next.
const TRIALS_PER_ROUND: u32 = 10;
/// Largest k the likelihood is evaluated for; a server trying more ports than this on a small
/// range is indistinguishable from a scan.
pub const MAX_K: u32 = 64;
/// Half the 95% quantile of χ²(1): the profile-likelihood interval's drop.
const INTERVAL_DROP: f64 = 1.92;
/// The common try count (vsftpd, libunftp), used when the estimate cannot rule it out.
pub const COMMON_K: u32 = 9;
/// A "scan" verdict needs this little chance that a 9-try server would have looked the same.
const SCAN_EVIDENCE: f64 = 0.05;

/// One PASV of the exhaustion step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExhaustionStep {
    pub round: u32,
    /// Ports of the range we held pending when this request was sent.
    pub held: u32,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TryModel {
    /// Never failed before every port was held.
    Scan,
    /// Failed with free ports left: k random tries.
    RandomTries,
    /// Not enough evidence either way.
    Undetermined,
}

/// The estimate of how the server searches its range, from every request's held count and
/// result. Rough: a few rounds on a small range pin k down to a wide interval only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TryEstimate {
    pub model: TryModel,
    /// Maximum-likelihood k (random tries only).
    pub k_hat: Option<u32>,
    /// 95% profile-likelihood interval for k (random tries only); an upper end of
    /// [`MAX_K`] means "at least the lower end".
    pub k_low: Option<u32>,
    pub k_high: Option<u32>,
    /// Requests the estimate used.
    pub requests: u32,
    /// Of them, failures with free ports left.
    pub failures_before_full: u32,
    /// Chance that a 9-try random server would have failed none of the requests that
    /// succeeded here: how strongly a "scan" verdict is supported.
    pub p_no_failure_if_9_tries: f64,
    pub caveat: String,
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
    for round in 1..=rounds {
        if Instant::now() >= deadline {
            notes.push(format!("out of time after {rounds_done} rounds"));
            break;
        }
        let end = one_round(link, range, max_pending, round, deadline, &mut steps).await;
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
    let at_exhaustion = summarise(&steps, &first_failure_held);
    let observations: Vec<(u32, bool)> = steps
        .iter()
        .filter(|s| !matches!(s.outcome, GrantOutcome::Error { .. }))
        .map(|s| (s.held, s.outcome.is_capacity_failure()))
        .collect();
    Exhaustion {
        width: Some(w),
        max_pending,
        rounds_done,
        first_failure_held,
        at_exhaustion,
        estimate: estimate(&observations, w),
        steps,
        notes,
    }
}

type Held = Vec<(ControlConnection, PassiveGrant)>;

async fn one_round(
    link: &Link,
    range: PortRange,
    max_pending: u32,
    round: u32,
    deadline: Instant,
    steps: &mut Vec<ExhaustionStep>,
) -> ClimbEnd {
    let mut held: Held = Vec::new();
    let end = climb(link, range, max_pending, round, deadline, steps, &mut held).await;
    if let ClimbEnd::Failure { held: at } = end {
        if at > 0 {
            trials(link, range, max_pending, round, deadline, steps, &mut held).await;
        }
    }
    release_all(held).await;
    end
}

async fn climb(
    link: &Link,
    range: PortRange,
    max_pending: u32,
    round: u32,
    deadline: Instant,
    steps: &mut Vec<ExhaustionStep>,
    held: &mut Held,
) -> ClimbEnd {
    loop {
        if held.len() as u32 >= max_pending {
            return ClimbEnd::MaxPending;
        }
        if Instant::now() >= deadline {
            return ClimbEnd::OutOfTime;
        }
        let n = held.len() as u32;
        let mut conn = match link.open().await {
            Ok(c) => c,
            Err(e) => return ClimbEnd::Error(format!("control connection {} failed: {e}", n + 1)),
        };
        let (outcome, grant) = ask_port(&mut conn, Some(range), link.reply_timeout()).await;
        steps.push(ExhaustionStep {
            round,
            held: n,
            trial: false,
            outcome: outcome.clone(),
        });
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
async fn trials(
    link: &Link,
    range: PortRange,
    max_pending: u32,
    round: u32,
    deadline: Instant,
    steps: &mut Vec<ExhaustionStep>,
    held: &mut Held,
) {
    if held.len() as u32 >= range.width() {
        if let Some((conn, g)) = held.pop() {
            close(conn, Some(&g)).await;
            tokio::time::sleep(SETTLE).await;
        }
    }
    let n = held.len() as u32;
    for _ in 0..TRIALS_PER_ROUND {
        if n + 1 > max_pending || Instant::now() >= deadline {
            return;
        }
        let Ok(mut conn) = link.open().await else {
            return;
        };
        let (outcome, grant) = ask_port(&mut conn, Some(range), link.reply_timeout()).await;
        steps.push(ExhaustionStep {
            round,
            held: n,
            trial: true,
            outcome: outcome.clone(),
        });
        let stop = matches!(outcome, GrantOutcome::Wait { .. } | GrantOutcome::Error { .. });
        finish(conn, &outcome, grant.as_ref()).await;
        tokio::time::sleep(SETTLE).await;
        if stop {
            // Each wait costs a full timeout, and an error will repeat.
            return;
        }
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

/// log P(observations | k tries) for requests `(held, failed)` on a range of `w` ports.
fn log_likelihood(obs: &[(u32, bool)], w: u32, k: u32) -> f64 {
    obs.iter()
        .map(|&(n, failed)| {
            let p_fail = (f64::from(n) / f64::from(w)).powi(k as i32);
            if failed {
                p_fail.ln()
            } else {
                (1.0 - p_fail).ln()
            }
        })
        .sum()
}

/// Scan or k random tries, from every request's held count and result.
pub(crate) fn estimate(obs: &[(u32, bool)], w: u32) -> Option<TryEstimate> {
    if w == 0 {
        return None;
    }
    let mut caveats = vec!["rough: a few rounds on one range".to_string()];
    // Neither model explains a failure with nothing held, or a port of the range granted
    // while all of it is held; such requests say something else is going on.
    let unexplained_failures = obs.iter().filter(|&&(n, f)| f && n == 0).count();
    let overfull = obs.iter().filter(|&&(n, f)| !f && n >= w).count();
    if unexplained_failures > 0 {
        caveats.push(format!(
            "{unexplained_failures} request(s) failed with none of our ports held: other clients or processes hold ports, or the server limits something else"
        ));
    }
    if overfull > 0 {
        caveats.push(format!(
            "{overfull} request(s) got a port of the range with all {w} held: the range is wider than assumed"
        ));
    }
    let usable: Vec<(u32, bool)> = obs
        .iter()
        .copied()
        .filter(|&(n, f)| if f { n > 0 } else { n < w })
        .collect();
    if usable.is_empty() {
        return None;
    }
    let failures_before_full = usable.iter().filter(|&&(n, f)| f && n < w).count() as u32;
    let p9 = usable
        .iter()
        .filter(|&&(_, f)| !f)
        .map(|&(n, _)| 1.0 - (f64::from(n) / f64::from(w)).powi(COMMON_K as i32))
        .product::<f64>();
    let mut est = TryEstimate {
        model: TryModel::Undetermined,
        k_hat: None,
        k_low: None,
        k_high: None,
        requests: usable.len() as u32,
        failures_before_full,
        p_no_failure_if_9_tries: p9,
        caveat: String::new(),
    };
    if failures_before_full == 0 {
        if p9 < SCAN_EVIDENCE {
            est.model = TryModel::Scan;
        } else {
            caveats.push("too few requests near a full range to tell a scan from random tries".into());
        }
    } else {
        let ll: Vec<f64> = (1..=MAX_K).map(|k| log_likelihood(&usable, w, k)).collect();
        let (best, best_ll) = ll.iter().enumerate().fold(
            (0, f64::NEG_INFINITY),
            |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
        );
        let within: Vec<u32> = (1..=MAX_K)
            .zip(&ll)
            .filter(|(_, &v)| v >= best_ll - INTERVAL_DROP)
            .map(|(k, _)| k)
            .collect();
        est.model = TryModel::RandomTries;
        est.k_hat = Some(best as u32 + 1);
        est.k_low = within.first().copied();
        est.k_high = within.last().copied();
    }
    est.caveat = caveats.join("; ");
    Some(est)
}

impl TryEstimate {
    /// The try count to plan with. A few rounds on a small range rarely pin k down, so:
    /// 9 (vsftpd, libunftp) while the 95% interval includes it; k̂ when the interval lies below
    /// 9 (fewer tries, more refusals: planning with 9 would be unsafe); the interval's lower end
    /// when it lies above 9 (the fewest tries the evidence allows is the safe side, and k̂ alone
    /// overshoots now and then: a 3-round probe of vsftpd once gave k̂ = 16, interval 10–26).
    pub fn tries_to_plan_with(&self) -> Option<u32> {
        if self.model != TryModel::RandomTries {
            return None;
        }
        match (self.k_hat, self.k_low, self.k_high) {
            (Some(k), Some(_), Some(hi)) if hi < COMMON_K => Some(k),
            (Some(_), Some(lo), Some(_)) if lo > COMMON_K => Some(lo),
            _ => Some(COMMON_K),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Simulated climbs and trials against a server trying `k` random ports (None: scan).
    fn simulate(k: Option<u32>, w: u32, rounds: u32, seed: u64) -> Vec<(u32, bool)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut obs = Vec::new();
        let fails = |n: u32, rng: &mut rand::rngs::StdRng| match k {
            None => n >= w,
            Some(k) => (0..k).all(|_| rng.random_range(0..w) < n),
        };
        for _ in 0..rounds {
            let mut n = 0;
            loop {
                let f = fails(n, &mut rng);
                obs.push((n, f));
                if f {
                    break;
                }
                n += 1;
            }
            let level = if n >= w { w - 1 } else { n };
            for _ in 0..TRIALS_PER_ROUND {
                let f = fails(level, &mut rng);
                obs.push((level, f));
            }
        }
        obs
    }

    #[test]
    fn a_scan_is_recognised() {
        let est = estimate(&simulate(None, 10, 3, 1), 10).unwrap();
        assert_eq!(est.model, TryModel::Scan, "{est:?}");
        assert!(est.p_no_failure_if_9_tries < 1e-3, "{est:?}");
        assert_eq!(est.tries_to_plan_with(), None);
    }

    #[test]
    fn nine_random_tries_are_recognised_every_time_and_covered_as_often_as_claimed() {
        let mut covered = 0;
        for seed in 0..200 {
            let est = estimate(&simulate(Some(9), 10, 3, seed), 10).unwrap();
            assert_eq!(est.model, TryModel::RandomTries, "seed {seed}: {est:?}");
            if (est.k_low.unwrap()..=est.k_high.unwrap()).contains(&9) {
                covered += 1;
            }
        }
        // A 95% interval covers the true k in about 190 of 200 probes; 180 leaves room for
        // the profile likelihood's approximation, not for an interval that misses it.
        assert!(
            covered >= 180,
            "the 95% interval covered k = 9 in {covered} of 200 probes"
        );
    }

    #[test]
    fn k_is_roughly_right_on_a_wider_range() {
        let est = estimate(&simulate(Some(3), 40, 5, 11), 40).unwrap();
        assert_eq!(est.model, TryModel::RandomTries);
        let (lo, hi) = (est.k_low.unwrap(), est.k_high.unwrap());
        assert!((lo..=hi).contains(&3) && hi < COMMON_K, "{est:?}");
        assert_eq!(est.tries_to_plan_with(), est.k_hat);
    }

    #[test]
    fn planning_uses_nine_unless_the_evidence_rules_it_out() {
        let est = |k_hat, lo, hi| TryEstimate {
            model: TryModel::RandomTries,
            k_hat: Some(k_hat),
            k_low: Some(lo),
            k_high: Some(hi),
            requests: 50,
            failures_before_full: 5,
            p_no_failure_if_9_tries: 0.0,
            caveat: String::new(),
        };
        assert_eq!(est(12, 6, 20).tries_to_plan_with(), Some(9));
        assert_eq!(est(16, 10, 26).tries_to_plan_with(), Some(10));
        assert_eq!(est(3, 2, 5).tries_to_plan_with(), Some(3));
        assert_eq!(est(40, 20, MAX_K).tries_to_plan_with(), Some(20));
    }

    #[test]
    fn impossible_requests_are_set_aside_with_a_caveat() {
        let est = estimate(&[(0, true), (1, false), (10, false)], 10).unwrap();
        assert_eq!(est.requests, 1);
        assert!(est.caveat.contains("none of our ports held"), "{}", est.caveat);
        assert!(est.caveat.contains("wider than assumed"), "{}", est.caveat);
        assert!(estimate(&[], 10).is_none());
    }

    #[test]
    fn summary_of_first_failures() {
        let step = |outcome| ExhaustionStep {
            round: 1,
            held: 9,
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
