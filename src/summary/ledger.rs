//! The passive-port ledger: what happened to every port, and what the server's behaviour
//! must be to explain it.
//!
//! The key question for sizing is how long the *server* holds a port. Some servers close the
//! passive listener as soon as the client connects (libunftp, pyftpdlib, ProFTPD), others keep
//! it until the transfer ends (vsftpd). From the client we can tell them apart: a server that
//! releases at accept will sooner or later grant a port again while our earlier data
//! connection on it is still open; one that holds it never will. "Never" is only evidence when
//! it would have been likely: we compute how many such re-grants a release-at-accept server
//! with random picks would have produced (each grant lands on one of our in-progress
//! transfers' ports with probability busy/width) and call the server "held through the
//! transfer" only when that expectation is large and we saw none. "In progress" is judged
//! conservatively from the client (see [`Grant`]), so short downloads give little evidence and
//! long uploads a lot.

use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// One grant as the ledger needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub port: u16,
    pub t_granted_us: u64,
    pub t_connected_us: Option<u64>,
    /// When our data connection closed, or when we gave up on the grant.
    pub t_released_us: u64,
    /// Until when the server's side of the data connection was certainly still open. For STOR
    /// that is our last byte (the server reads until our FIN). For RETR and LIST the server
    /// may have closed long before we drained its data from the socket buffers, so only the
    /// first byte is certain. Re-grants are judged against this, not against our release.
    pub t_server_open_until_us: Option<u64>,
    /// From when the transfer was certainly under way on the server (data flowing: our first
    /// byte sent or received). Servers that free the port "at accept" may in fact keep the
    /// listener until they have processed the transfer command (libunftp does), so only from
    /// here on would such a server certainly have freed it.
    pub t_transfer_started_us: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleasePolicy {
    /// A port was granted again while our data connection on it was open.
    AtAccept,
    /// Re-grants while open were likely under release-at-accept, yet none happened.
    HeldDuringTransfer,
    /// Too little reuse to tell.
    Undetermined,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PortLedger {
    pub port: u16,
    pub grants: u64,
    pub mean_pending_hold_us: f64,
    pub max_pending_hold_us: u64,
    pub mean_transfer_hold_us: f64,
    pub max_transfer_hold_us: u64,
    /// Shortest time from our release of the port to its next grant; negative when the server
    /// granted it again while we still held it.
    pub min_reuse_gap_us: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerSummary {
    /// Grants of a port we had been granted before.
    pub reuses: u64,
    /// Re-granted while our earlier grant of it was still ours (pending or open).
    pub regranted_while_open: u64,
    /// Of those, re-granted before our connect had completed as our task saw it: the server
    /// accepted a moment before we noticed, or handed one pending port out twice.
    pub regranted_while_pending: u64,
    pub regranted_after_close: u64,
    /// How many while-open re-grants a release-at-accept server picking at random would have
    /// produced here.
    pub expected_regrants_if_released_at_accept: f64,
    pub release_policy: ReleasePolicy,
    pub min_reuse_gap_us: Option<i64>,
    /// Grant to data connection (or to giving up).
    pub mean_pending_hold_us: f64,
    /// Data connection open to closed.
    pub mean_transfer_hold_us: f64,
    pub ports: Vec<PortLedger>,
}

/// Below this expectation, seeing no while-open re-grant is no evidence (P(0) = e^-x > 5%).
const EVIDENCE: f64 = 3.0;

/// Analyses grants; `width` is the range the server picks from (the expected range, or the
/// spread of ports seen).
pub fn analyse(grants: &[Grant], width: u32) -> LedgerSummary {
    let mut ordered: Vec<&Grant> = grants.iter().collect();
    ordered.sort_by_key(|g| g.t_granted_us);
    let mut fold = LedgerFold::default();
    for g in ordered {
        fold.add(g);
    }
    fold.finish(width)
}

/// One port's history so far.
#[derive(Default)]
struct PortFold {
    grants: u64,
    pending_sum: u128,
    pending_max: u64,
    transfer_sum: u128,
    transfer_n: u64,
    transfer_max: u64,
    min_reuse_gap_us: Option<i64>,
    /// Earlier grants a later one can still land on (connection pending, or the server's side
    /// still open). The rest can never match again, so each grant is compared with the few
    /// still live, not with the whole history (hours of load are millions of grants).
    live: Vec<Grant>,
    latest_release: Option<u64>,
}

/// The ledger built one grant at a time, so that a long run folds its grants as they become
/// final instead of keeping them all. Grants must come in grant order (ties in the order they
/// arrived); [`LedgerFold::advance`] says how far that order is final.
#[derive(Default)]
pub struct LedgerFold {
    ports: BTreeMap<u16, PortFold>,
    reuses: u64,
    while_pending: u64,
    while_open: u64,
    after_close: u64,
    opportunity: RegrantOpportunity,
}

impl LedgerFold {
    pub fn add(&mut self, g: &Grant) {
        self.opportunity.add(g);
        let p = self.ports.entry(g.port).or_default();
        let pending = g
            .t_connected_us
            .unwrap_or(g.t_released_us)
            .saturating_sub(g.t_granted_us);
        p.grants += 1;
        p.pending_sum += u128::from(pending);
        p.pending_max = p.pending_max.max(pending);
        if let Some(c) = g.t_connected_us {
            let t = g.t_released_us.saturating_sub(c);
            p.transfer_sum += u128::from(t);
            p.transfer_n += 1;
            p.transfer_max = p.transfer_max.max(t);
        }
        if let Some(latest) = p.latest_release {
            self.reuses += 1;
            let gap = g.t_granted_us as i64 - latest as i64;
            p.min_reuse_gap_us = Some(p.min_reuse_gap_us.map_or(gap, |m| m.min(gap)));
            p.live.retain(|e| live_until(e) > g.t_granted_us);
            // Compare with every earlier grant still held: with release-at-accept several of
            // our connections can sit on one port at once. A grant still live either had not
            // connected yet (pending) or had, and was then still open on the server's side
            // (`live_until` is past this grant).
            let (mut pending_hit, mut open_hit) = (false, false);
            for e in &p.live {
                if e.t_connected_us.is_some_and(|c| c > g.t_granted_us) {
                    pending_hit = true;
                } else {
                    open_hit = true;
                }
            }
            // Both mean the server no longer held the port: a re-grant "while pending" is a
            // server that had accepted our connection a moment before our task saw the connect
            // complete (or one that hands a pending port out twice).
            if pending_hit || open_hit {
                self.while_open += 1;
                if pending_hit && !open_hit {
                    self.while_pending += 1;
                }
            } else {
                self.after_close += 1;
            }
        }
        p.latest_release = Some(p.latest_release.map_or(g.t_released_us, |l| l.max(g.t_released_us)));
        if g.t_connected_us.is_some() {
            p.live.push(*g);
        }
    }

    /// Every grant before `t_us` has been added.
    pub fn advance(&mut self, t_us: u64) {
        self.opportunity.advance(t_us);
    }

    pub fn finish(mut self, width: u32) -> LedgerSummary {
        self.opportunity.advance(u64::MAX);
        // The one edge time `advance` leaves, u64::MAX, cannot be a real instant.
        let expected = self.opportunity.expected(width);
        let (mut pending_sum, mut pending_n, mut transfer_sum, mut transfer_n) = (0u128, 0u64, 0u128, 0u64);
        let mut min_gap: Option<i64> = None;
        let mut ports = Vec::with_capacity(self.ports.len());
        for (port, p) in self.ports {
            pending_sum += p.pending_sum;
            pending_n += p.grants;
            transfer_sum += p.transfer_sum;
            transfer_n += p.transfer_n;
            if let Some(g) = p.min_reuse_gap_us {
                min_gap = Some(min_gap.map_or(g, |m| m.min(g)));
            }
            ports.push(PortLedger {
                port,
                grants: p.grants,
                mean_pending_hold_us: mean(p.pending_sum, p.grants),
                max_pending_hold_us: p.pending_max,
                mean_transfer_hold_us: mean(p.transfer_sum, p.transfer_n),
                max_transfer_hold_us: p.transfer_max,
                min_reuse_gap_us: p.min_reuse_gap_us,
            });
        }
        let release_policy = if self.while_open > 0 {
            ReleasePolicy::AtAccept
        } else if expected >= EVIDENCE {
            ReleasePolicy::HeldDuringTransfer
        } else {
            ReleasePolicy::Undetermined
        };
        LedgerSummary {
            reuses: self.reuses,
            regranted_while_pending: self.while_pending,
            regranted_while_open: self.while_open,
            regranted_after_close: self.after_close,
            expected_regrants_if_released_at_accept: (expected * 100.0).round() / 100.0,
            release_policy,
            min_reuse_gap_us: min_gap,
            mean_pending_hold_us: mean(pending_sum, pending_n),
            mean_transfer_hold_us: mean(transfer_sum, transfer_n),
            ports,
        }
    }
}

fn mean(sum: u128, n: u64) -> f64 {
    if n > 0 {
        sum as f64 / n as f64
    } else {
        0.0
    }
}

/// Until when a grant can still be landed on by a later one: while its connection is pending
/// or the server's side is open.
fn live_until(e: &Grant) -> u64 {
    match e.t_connected_us {
        Some(c) => c.max(e.t_server_open_until_us.unwrap_or(0)),
        None => 0,
    }
}

/// Σ over grants of (our transfers certainly under way on the server at that instant / width):
/// the expected number of grants that would land on a port in use if the server freed ports
/// before transfers end and picked uniformly. Swept in time order as grants become final.
#[derive(Default)]
struct RegrantOpportunity {
    /// (time, kind, delta); at equal times: releases (0), then grants (1), then transfers
    /// starting (2).
    edges: BinaryHeap<Reverse<(u64, u8, i32)>>,
    open: i64,
    /// Σ over grants of the transfers open at the grant.
    open_at_grants: u128,
}

impl RegrantOpportunity {
    fn add(&mut self, g: &Grant) {
        self.edges.push(Reverse((g.t_granted_us, 1, 0)));
        if let (Some(from), Some(until)) = (g.t_transfer_started_us, g.t_server_open_until_us) {
            if from < until {
                self.edges.push(Reverse((from, 2, 1)));
                self.edges.push(Reverse((until, 0, -1)));
            }
        }
    }

    fn advance(&mut self, t_us: u64) {
        while let Some(&Reverse((t, kind, delta))) = self.edges.peek() {
            if t >= t_us {
                break;
            }
            self.edges.pop();
            if kind == 1 {
                self.open_at_grants += self.open.max(0) as u128;
            } else {
                self.open += i64::from(delta);
            }
        }
    }

    fn expected(&self, width: u32) -> f64 {
        if width == 0 {
            return 0.0;
        }
        self.open_at_grants as f64 / f64::from(width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The ledger's re-grant counts as first written: every grant against every earlier one.
    fn brute_force(grants: &[Grant]) -> (u64, u64, u64, u64, Option<i64>) {
        let mut by_port: BTreeMap<u16, Vec<&Grant>> = BTreeMap::new();
        for g in grants {
            by_port.entry(g.port).or_default().push(g);
        }
        let (mut reuses, mut pending, mut open, mut after, mut gap_min) = (0, 0, 0, 0, None::<i64>);
        for (_, mut list) in by_port {
            list.sort_by_key(|g| g.t_granted_us);
            for i in 1..list.len() {
                let g = list[i];
                reuses += 1;
                let latest = list[..i].iter().map(|e| e.t_released_us).max().unwrap_or(0);
                let gap = g.t_granted_us as i64 - latest as i64;
                gap_min = Some(gap_min.map_or(gap, |m| m.min(gap)));
                let (mut p_hit, mut o_hit) = (false, false);
                for e in &list[..i] {
                    match (e.t_connected_us, e.t_server_open_until_us) {
                        (Some(c), Some(u)) if c <= g.t_granted_us && g.t_granted_us < u => o_hit = true,
                        (Some(c), _) if g.t_granted_us < c => p_hit = true,
                        _ => {}
                    }
                }
                if p_hit || o_hit {
                    open += 1;
                    if p_hit && !o_hit {
                        pending += 1;
                    }
                } else {
                    after += 1;
                }
            }
        }
        (reuses, pending, open, after, gap_min)
    }

    #[test]
    fn comparing_with_live_grants_only_counts_what_comparing_with_all_did() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..50 {
            let ports = rng.random_range(1..6u16);
            let grants: Vec<Grant> = (0..rng.random_range(1..400))
                .map(|_| {
                    let granted = rng.random_range(0..10_000u64);
                    let connected = rng.random_bool(0.8).then(|| granted + rng.random_range(0..300));
                    let released = connected.unwrap_or(granted) + rng.random_range(0..500);
                    Grant {
                        port: 30000 + rng.random_range(0..ports),
                        t_granted_us: granted,
                        t_connected_us: connected,
                        t_released_us: released,
                        t_server_open_until_us: connected
                            .and_then(|c| rng.random_bool(0.7).then(|| c + rng.random_range(0..400))),
                        t_transfer_started_us: connected,
                    }
                })
                .collect();
            let s = analyse(&grants, u32::from(ports));
            let got = (
                s.reuses,
                s.regranted_while_pending,
                s.regranted_while_open,
                s.regranted_after_close,
                s.min_reuse_gap_us,
            );
            assert_eq!(got, brute_force(&grants), "round {round}");
        }
    }

    fn g(port: u16, granted: u64, connected: Option<u64>, released: u64) -> Grant {
        Grant {
            port,
            t_granted_us: granted,
            t_connected_us: connected,
            t_released_us: released,
            t_server_open_until_us: connected.map(|_| released),
            t_transfer_started_us: connected,
        }
    }

    #[test]
    fn a_download_drained_after_the_server_closed_is_not_evidence() {
        // We read port 1's data until 1000, but the server was only surely open until the
        // first byte at 20; a re-grant at 500 says nothing about release-at-accept.
        let first = Grant {
            t_server_open_until_us: Some(20),
            ..g(1, 0, Some(10), 1000)
        };
        let s = analyse(&[first, g(1, 500, Some(510), 600)], 10);
        assert_eq!((s.regranted_while_open, s.regranted_after_close), (0, 1));
        assert_eq!(s.min_reuse_gap_us, Some(-500), "the client-view gap is still reported");
    }

    #[test]
    fn regrant_while_open_means_release_at_accept() {
        // Port 1 granted at 0, connected at 10, transfer until 1000; granted again at 500.
        let s = analyse(
            &[g(1, 0, Some(10), 1000), g(1, 500, Some(510), 600), g(2, 0, Some(5), 50)],
            10,
        );
        assert_eq!((s.reuses, s.regranted_while_open, s.regranted_after_close), (1, 1, 0));
        assert_eq!(s.release_policy, ReleasePolicy::AtAccept);
        assert_eq!(s.min_reuse_gap_us, Some(-500));
        let p1 = &s.ports[0];
        assert_eq!(
            (p1.port, p1.grants, p1.max_pending_hold_us, p1.max_transfer_hold_us),
            (1, 2, 10, 990)
        );
        assert_eq!(p1.mean_pending_hold_us, 10.0);
        assert_eq!(p1.mean_transfer_hold_us, (990.0 + 90.0) / 2.0);
        // The run's means weigh every grant of every port.
        assert!((s.mean_pending_hold_us - (10.0 + 10.0 + 5.0) / 3.0).abs() < 1e-9);
        assert_eq!(s.mean_transfer_hold_us, (990.0 + 90.0 + 45.0) / 3.0);
    }

    /// A transfer that starts and ends in the same microsecond was never open: a grant at
    /// that instant sees only the transfers really under way.
    #[test]
    fn an_instant_transfer_is_no_opportunity() {
        let instant = Grant {
            port: 2,
            t_granted_us: 400,
            t_connected_us: Some(500),
            t_released_us: 500,
            t_server_open_until_us: Some(500),
            t_transfer_started_us: Some(500),
        };
        // Port 1 is open from 1 to 1000; grants at 0 (nothing open), 400 and 500 (port 1).
        let s = analyse(&[g(1, 0, Some(1), 1000), instant, g(3, 500, Some(501), 600)], 1);
        assert_eq!(s.expected_regrants_if_released_at_accept, 2.0);
    }

    /// `advance` is what keeps a long run's fold small: what is before the watermark is
    /// counted and dropped, and the counts come out as if it had all been kept.
    #[test]
    fn advancing_the_fold_keeps_only_what_is_not_final() {
        let transfers: Vec<Grant> = (0..1000u64)
            .map(|i| g((i % 7) as u16, i * 100, Some(i * 100 + 1), i * 100 + 50))
            .collect();
        let mut fold = LedgerFold::default();
        for t in &transfers[..500] {
            fold.add(t);
        }
        fold.advance(transfers[450].t_granted_us);
        // Only the edges at or after the watermark wait: about 50 transfers' three each.
        let waiting = fold.opportunity.edges.len();
        assert!((100..=160).contains(&waiting), "{waiting} edges wait");
        for t in &transfers[500..] {
            fold.add(t);
        }
        assert_eq!(fold.finish(7), analyse(&transfers, 7));
    }

    #[test]
    fn regrants_at_the_very_microsecond_of_a_connect_or_a_close() {
        // Port 3 granted at 0 and connected at 100, its server side open until 200.
        let first = g(3, 0, Some(100), 200);
        let at = |t: u64| {
            let grants = [first, g(3, t, Some(t + 1), t + 2)];
            let s = analyse(&grants, 10);
            let b = brute_force(&grants);
            assert_eq!(
                (s.regranted_while_pending, s.regranted_while_open),
                (b.1, b.2),
                "at {t}"
            );
            (
                s.regranted_while_pending,
                s.regranted_while_open,
                s.regranted_after_close,
            )
        };
        // Before the connect: pending. At the connect and until the close: open. At the
        // close itself and after: the port was free.
        assert_eq!(at(99), (1, 1, 0));
        assert_eq!(at(100), (0, 1, 0));
        assert_eq!(at(199), (0, 1, 0));
        assert_eq!(at(200), (0, 0, 1));
    }

    #[test]
    fn regrant_while_pending_is_flagged_separately() {
        let s = analyse(&[g(7, 0, Some(100), 200), g(7, 50, Some(150), 300)], 10);
        assert_eq!((s.regranted_while_pending, s.regranted_while_open), (1, 1));
        assert_eq!(s.release_policy, ReleasePolicy::AtAccept);
    }

    #[test]
    fn no_regrant_while_open_with_much_opportunity_means_held() {
        // Width 2, one long transfer always open on port 1 while port 2 is granted 20 times:
        // an at-accept random server would have re-granted port 1 about 20 × 1/2 = 10 times.
        let mut grants = vec![g(1, 0, Some(1), 10_000)];
        for i in 0..20 {
            let t = 100 + i * 100;
            grants.push(g(2, t, Some(t + 1), t + 50));
        }
        let s = analyse(&grants, 2);
        assert_eq!(s.regranted_while_open, 0);
        assert_eq!(s.regranted_after_close, 19);
        assert!(
            (s.expected_regrants_if_released_at_accept - 10.0).abs() < 1e-9,
            "{}",
            s.expected_regrants_if_released_at_accept
        );
        assert_eq!(s.release_policy, ReleasePolicy::HeldDuringTransfer);
        assert_eq!(s.min_reuse_gap_us, Some(50));
    }

    #[test]
    fn little_opportunity_is_undetermined() {
        let s = analyse(&[g(1, 0, Some(1), 10), g(1, 20, Some(21), 30)], 100);
        assert_eq!(s.release_policy, ReleasePolicy::Undetermined);
        assert_eq!(s.regranted_after_close, 1);
    }

    #[test]
    fn abandoned_grants_count_as_pending_only() {
        let s = analyse(&[g(3, 0, None, 400)], 10);
        assert_eq!(s.ports[0].max_pending_hold_us, 400);
        assert_eq!(s.ports[0].max_transfer_hold_us, 0);
        assert_eq!(s.mean_transfer_hold_us, 0.0);
    }
}
