//! Step 1: the order in which a server picks passive ports, from a series of PASVs each
//! released before the next, so every pick sees the whole range free.
//!
//! With nothing held, a random picker's choices are independent uniform draws; a shuffled
//! scan (a permutation of the range, walked one port per PASV) hands every port out once
//! before any repeats; a sequential server steps by one; a first-free server hands out the
//! same (lowest) port again and again. Random against shuffled is decided by how evenly the
//! picks spread over the range, against what independent uniform picks would show
//! (simulated with a fixed seed, so the same picks always get the same verdict).

use super::link::{ask_port, release, GrantOutcome, Link};
use crate::port_range::PortRange;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Significance for calling picks too even (or too uneven) to be uniform.
const ALPHA: f64 = 0.001;
/// Simulated uniform sequences the p-values come from (smallest p ≈ 1/4001).
const SIMULATIONS: u32 = 4000;
/// Share of +1 steps from which picks count as sequential (uniform picks: 1/W).
const SEQUENTIAL_SHARE: f64 = 0.6;
/// Share of picks equal to the previous one from which the server hands out a first free port.
const SAME_SHARE: f64 = 0.8;
/// Fewer picks than this tell nothing.
const MIN_PICKS: usize = 8;
/// Consecutive failed PASVs after which the step gives up.
const MAX_FAILURES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PickVerdict {
    /// Next port = previous + 1 (wrapping at the end of the range).
    Sequential,
    /// Independent uniform picks (vsftpd, libunftp; pyftpdlib and ProFTPD too, since they
    /// shuffle the whole range anew for every PASV).
    Random,
    /// No repeats until the range is used up: a walk through a permutation.
    ShuffledScan,
    /// The same port again whenever it is free: the first free port of a fixed order.
    FirstFree,
    /// Random, but far from uniform (some ports much more often than others).
    NonUniform,
    /// Too few picks, or picks that fit none of the above.
    Undetermined,
}

impl PickVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            PickVerdict::Sequential => "sequential",
            PickVerdict::Random => "random",
            PickVerdict::ShuffledScan => "shuffled scan",
            PickVerdict::FirstFree => "first free port",
            PickVerdict::NonUniform => "random, not uniform",
            PickVerdict::Undetermined => "undetermined",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PickOrder {
    pub verdict: PickVerdict,
    /// Ports granted, in order.
    pub ports: Vec<u16>,
    pub distinct: u32,
    /// Picks that were the previous pick + 1 (wrapping inside the range).
    pub successor_steps: u32,
    /// Picks equal to the previous pick.
    pub same_as_previous: u32,
    pub out_of_range: u32,
    /// PASVs that got no port (refused, dropped, unanswered).
    pub failed: u32,
    /// Chance that uniform picks spread at least this evenly (small: a scan avoiding repeats).
    pub p_even: Option<f64>,
    /// Chance that uniform picks spread at least this unevenly (small: a biased picker).
    pub p_uneven: Option<f64>,
    /// One line of reasoning behind the verdict.
    pub detail: String,
}

/// How many picks to ask for: enough that a perfectly even spread (a shuffled scan) would be
/// rare for uniform picks, i.e. about 12 per port, within a bound for wide ranges.
pub(crate) fn picks_for(width: Option<u32>) -> usize {
    match width {
        Some(w) => (12 * w as usize).clamp(24, 160),
        None => 64,
    }
}

/// Takes `count` picks on one connection (reopened if the server drops it) and classifies
/// them against `range` (the given one, or `None` to infer it from the picks).
pub(crate) async fn measure(link: &Link, range: Option<PortRange>, count: usize, deadline: Instant) -> PickOrder {
    let mut ports = Vec::with_capacity(count);
    let mut failed = 0u32;
    let mut consecutive_failures = 0u32;
    let mut last_problem = String::new();
    let mut conn = None;
    while ports.len() < count && consecutive_failures < MAX_FAILURES && Instant::now() < deadline {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match link.open().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    consecutive_failures += 1;
                    last_problem = e.to_string();
                    continue;
                }
            },
        };
        let (outcome, grant) = ask_port(c, range, link.reply_timeout()).await;
        match (outcome.port(), grant) {
            (Some(port), Some(g)) => {
                ports.push(port);
                consecutive_failures = 0;
                if let Err(e) = release(c, &g).await {
                    last_problem = e.to_string();
                    conn = None;
                }
            }
            _ => {
                failed += 1;
                consecutive_failures += 1;
                last_problem = outcome.describe();
                if !matches!(
                    outcome,
                    GrantOutcome::Refused {
                        session_dropped: false,
                        ..
                    }
                ) {
                    conn = None;
                }
            }
        }
    }
    if let Some(c) = conn {
        super::link::quit_and_wait(c).await;
    }
    let mut order = classify(&ports, range.or_else(|| inferred_range(&ports)));
    order.failed = failed;
    if consecutive_failures >= MAX_FAILURES {
        order.detail = format!(
            "{}; stopped after {MAX_FAILURES} failed PASVs: {last_problem}",
            order.detail
        );
    }
    order
}

/// The smallest range holding every pick.
pub(crate) fn inferred_range(ports: &[u16]) -> Option<PortRange> {
    let min = *ports.iter().min()?;
    let max = *ports.iter().max()?;
    Some(PortRange { min, max })
}

/// The verdict for a sequence of picks over `range`.
pub(crate) fn classify(ports: &[u16], range: Option<PortRange>) -> PickOrder {
    let mut order = PickOrder {
        verdict: PickVerdict::Undetermined,
        ports: ports.to_vec(),
        distinct: 0,
        successor_steps: 0,
        same_as_previous: 0,
        out_of_range: 0,
        failed: 0,
        p_even: None,
        p_uneven: None,
        detail: String::new(),
    };
    let mut seen: Vec<u16> = ports.to_vec();
    seen.sort_unstable();
    seen.dedup();
    order.distinct = seen.len() as u32;
    let Some(range) = range else {
        order.detail = "no ports granted".into();
        return order;
    };
    let w = range.width();
    let inside: Vec<u32> = ports
        .iter()
        .filter(|p| range.contains(**p))
        .map(|p| u32::from(*p) - u32::from(range.min))
        .collect();
    order.out_of_range = (ports.len() - inside.len()) as u32;
    for pair in inside.windows(2) {
        if pair[1] == (pair[0] + 1) % w {
            order.successor_steps += 1;
        }
        if pair[1] == pair[0] {
            order.same_as_previous += 1;
        }
    }
    let n = inside.len();
    if n < MIN_PICKS {
        order.detail = format!("only {n} picks inside {range}: too few to tell");
        return order;
    }
    let steps = (n - 1) as f64;
    if f64::from(order.same_as_previous) >= SAME_SHARE * steps {
        order.verdict = PickVerdict::FirstFree;
        order.detail = format!(
            "{} of {} picks repeat the previous port: a released port is handed out again first",
            order.same_as_previous,
            n - 1
        );
        return order;
    }
    if w > 1 && f64::from(order.successor_steps) >= SEQUENTIAL_SHARE * steps {
        order.verdict = PickVerdict::Sequential;
        order.detail = format!("{} of {} picks are the previous port + 1", order.successor_steps, n - 1);
        return order;
    }
    let spread = Spread::simulate(&inside, w);
    order.p_even = Some(spread.p_even);
    order.p_uneven = Some(spread.p_uneven);
    let (verdict, detail) = if spread.p_even < ALPHA {
        (
            PickVerdict::ShuffledScan,
            format!(
                "{n} picks spread over {} of {w} ports more evenly than uniform picks would (p = {:.4}): \
                 the range is used up before ports repeat",
                order.distinct, spread.p_even
            ),
        )
    } else if spread.p_uneven < ALPHA {
        (
            PickVerdict::NonUniform,
            format!(
                "{n} picks repeat some ports far more often than uniform picks would (p = {:.4})",
                spread.p_uneven
            ),
        )
    } else if spread.p_most_even < ALPHA {
        (
            PickVerdict::Random,
            format!(
                "{n} picks over {w} ports, {} distinct, repeating like independent uniform picks \
                 (a shuffled scan would have spread them evenly)",
                order.distinct
            ),
        )
    } else {
        (
            PickVerdict::Undetermined,
            format!("{n} picks over {w} ports cannot tell random picks from a shuffled scan"),
        )
    };
    order.verdict = verdict;
    order.detail = detail;
    order
}

/// How evenly picks spread, as the sum of squared counts per port (the number of repeated
/// pairs, up to constants), against simulated uniform picks of the same number.
struct Spread {
    p_even: f64,
    p_uneven: f64,
    /// p_even of the most even spread possible: whether the test could tell at all.
    p_most_even: f64,
}

impl Spread {
    fn simulate(picks: &[u32], width: u32) -> Spread {
        let n = picks.len();
        let observed = squared_counts(picks.iter().copied(), width, &mut Vec::new());
        // The most even spread: every port q or q+1 times.
        let (q, r) = ((n as u64) / u64::from(width), (n as u64) % u64::from(width));
        let most_even = (u64::from(width) - r) * q * q + r * (q + 1) * (q + 1);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x0f7e_5ee0);
        let mut scratch = Vec::new();
        let (mut le, mut ge, mut le_best) = (0u32, 0u32, 0u32);
        for _ in 0..SIMULATIONS {
            let draws = (0..n).map(|_| rng.random_range(0..width)).collect::<Vec<_>>();
            let s = squared_counts(draws.into_iter(), width, &mut scratch);
            le += u32::from(s <= observed);
            ge += u32::from(s >= observed);
            le_best += u32::from(s <= most_even);
        }
        let p = |k: u32| f64::from(k + 1) / f64::from(SIMULATIONS + 1);
        Spread {
            p_even: p(le),
            p_uneven: p(ge),
            p_most_even: p(le_best),
        }
    }
}

/// Σ count² over the ports picked. `scratch` avoids a fresh allocation of `width` counters
/// per simulated sequence for wide ranges: only touched counters are reset.
fn squared_counts(picks: impl Iterator<Item = u32>, width: u32, scratch: &mut Vec<u32>) -> u64 {
    if scratch.len() < width as usize {
        scratch.resize(width as usize, 0);
    }
    let mut touched = Vec::new();
    for p in picks {
        let c = &mut scratch[p as usize];
        if *c == 0 {
            touched.push(p);
        }
        *c += 1;
    }
    let mut sum = 0u64;
    for p in touched {
        let c = u64::from(scratch[p as usize]);
        sum += c * c;
        scratch[p as usize] = 0;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: PortRange = PortRange { min: 31000, max: 31009 };

    fn ports(idx: impl IntoIterator<Item = u32>) -> Vec<u16> {
        idx.into_iter().map(|i| 31000 + i as u16).collect()
    }

    #[test]
    fn sequential_and_first_free() {
        let seq = classify(&ports((0..40).map(|i| (i + 3) % 10)), Some(R));
        assert_eq!(seq.verdict, PickVerdict::Sequential, "{}", seq.detail);
        let same = classify(&ports([0; 30]), Some(R));
        assert_eq!(same.verdict, PickVerdict::FirstFree, "{}", same.detail);
    }

    #[test]
    fn uniform_picks_are_random() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut randoms = 0;
        for _ in 0..20 {
            let picks = ports((0..120).map(|_| rng.random_range(0..10)));
            let o = classify(&picks, Some(R));
            randoms += u32::from(o.verdict == PickVerdict::Random);
        }
        assert_eq!(randoms, 20);
    }

    #[test]
    fn permutations_are_a_shuffled_scan_even_out_of_phase() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut idx = Vec::new();
        for _ in 0..13 {
            let mut cycle: Vec<u32> = (0..10).collect();
            // Fisher–Yates with our own rng, so the test needs no extra trait.
            for i in (1..cycle.len()).rev() {
                cycle.swap(i, rng.random_range(0..=i));
            }
            idx.extend(cycle);
        }
        // Start mid-cycle, as a client joining a busy server would.
        let o = classify(&ports(idx[4..124].iter().copied()), Some(R));
        assert_eq!(o.verdict, PickVerdict::ShuffledScan, "{}", o.detail);
    }

    #[test]
    fn few_picks_over_a_wide_range_are_undetermined() {
        let wide = PortRange { min: 20000, max: 29999 };
        let o = classify(&(0..30).map(|i| 20000 + i * 331).collect::<Vec<_>>(), Some(wide));
        assert_eq!(o.verdict, PickVerdict::Undetermined, "{}", o.detail);
        assert_eq!(classify(&[], None).verdict, PickVerdict::Undetermined);
    }

    #[test]
    fn out_of_range_picks_are_counted_not_classified() {
        let mut p = ports((0..30).map(|i| (i * 7) % 10));
        p.push(45000);
        let o = classify(&p, Some(R));
        assert_eq!(o.out_of_range, 1);
        assert_eq!(inferred_range(&[5, 9, 7]), Some(PortRange { min: 5, max: 9 }));
    }
}
