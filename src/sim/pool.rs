//! The passive range itself: which ports are held, until when, and what a PASV arriving now
//! gets under the server's pick order. Every request returns the exact probabilities of
//! running out and of colliding given the current state, besides the sampled outcome: the
//! simulator adds up the probabilities (a conditional expectation, far less noisy than
//! counting sampled failures) and lets the sample decide how the state moves on.

use super::server::PickOrder;
use rand::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickOutcome {
    Granted(u32),
    /// No port could be had: a refusal, or a grant outside the range.
    Exhausted,
    /// The port looked free but another session had just bound it: listen() failed.
    Collided,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub p_exhausted: f64,
    pub p_collided: f64,
    pub outcome: PickOutcome,
}

impl Pick {
    pub fn p_failed(&self) -> f64 {
        (self.p_exhausted + self.p_collided).min(1.0)
    }
}

pub struct PortPool {
    width: u32,
    pick: PickOrder,
    window_us: f64,
    busy: Vec<bool>,
    /// Free ports, and each port's index in it, for O(1) uniform picks and removals.
    free: Vec<u32>,
    position: Vec<u32>,
    /// Until when a held port still looks free to another session's bind (the race window).
    window_until: Vec<f64>,
    in_window: Vec<u32>,
    releases: BinaryHeap<Reverse<(u64, u32)>>,
}

const NOT_FREE: u32 = u32::MAX;

impl PortPool {
    pub fn new(width: u32, pick: PickOrder, window_us: f64) -> PortPool {
        let width = width.max(1);
        PortPool {
            width,
            pick,
            window_us: window_us.max(0.0),
            busy: vec![false; width as usize],
            free: (0..width).collect(),
            position: (0..width).collect(),
            window_until: vec![0.0; width as usize],
            in_window: Vec::new(),
            releases: BinaryHeap::new(),
        }
    }

    pub fn held(&self) -> u32 {
        self.width - self.free.len() as u32
    }

    /// Frees every port whose hold ended by `t`.
    pub fn advance(&mut self, t: u64) {
        while let Some(&Reverse((end, port))) = self.releases.peek() {
            if end > t {
                break;
            }
            self.releases.pop();
            let p = port as usize;
            self.busy[p] = false;
            self.window_until[p] = 0.0;
            self.position[p] = self.free.len() as u32;
            self.free.push(port);
        }
        let now = t as f64;
        let until = &self.window_until;
        self.in_window.retain(|&p| until[p as usize] > now);
    }

    fn take(&mut self, port: u32, t: u64, hold_end: u64) {
        let p = port as usize;
        let at = self.position[p] as usize;
        let last = self.free.len() - 1;
        self.free.swap(at, last);
        let moved = self.free[at];
        self.position[moved as usize] = at as u32;
        self.free.pop();
        self.position[p] = NOT_FREE;
        self.busy[p] = true;
        if self.window_us > 0.0 {
            self.window_until[p] = t as f64 + self.window_us;
            self.in_window.push(port);
        }
        self.releases.push(Reverse((hold_end.max(t), port)));
    }

    fn bindable(&self, p: usize) -> bool {
        !self.busy[p] || self.window_until[p] > 0.0
    }

    /// P(a random start, scanning upwards, first meets a port in its race window).
    fn scan_collision(&self) -> f64 {
        let n = self.width as usize;
        let mut hits = 0usize;
        for &j in &self.in_window {
            // Starts on j itself or on the busy, unbindable ports just below it reach j.
            let mut run = 0usize;
            let mut i = (j as usize + n - 1) % n;
            while run < n - 1 && !self.bindable(i) {
                run += 1;
                i = (i + n - 1) % n;
            }
            hits += run + 1;
        }
        (hits as f64 / n as f64).min(1.0)
    }

    fn random_start_scan<R: Rng>(&self, rng: &mut R) -> Option<u32> {
        let n = self.width as usize;
        for _ in 0..64 {
            let mut i = rng.random_range(0..n);
            for _ in 0..n {
                if self.bindable(i) {
                    break;
                }
                i = (i + 1) % n;
            }
            if !self.busy[i] {
                return Some(i as u32);
            }
        }
        None
    }

    /// A PASV at `t` whose port, if granted, is held until `hold_end`.
    pub fn request<R: Rng>(&mut self, t: u64, hold_end: u64, rng: &mut R) -> Pick {
        self.advance(t);
        let n = f64::from(self.width);
        let window = self.in_window.len() as f64;
        let free = self.free.len() as f64;
        let (p_exhausted, p_collided) = match self.pick {
            PickOrder::RandomTries { tries } => {
                let stuck = (n - free - window) / n;
                let exhausted = stuck.powi(tries.max(1) as i32);
                // Collide on try i after i − 1 tries on busy, unbindable ports.
                let reach = if stuck < 1.0 {
                    (1.0 - exhausted) / (1.0 - stuck)
                } else {
                    f64::from(tries)
                };
                (exhausted, window / n * reach)
            }
            PickOrder::AnyFree => {
                if free + window == 0.0 {
                    (1.0, 0.0)
                } else {
                    (0.0, window / (free + window))
                }
            }
            PickOrder::RandomStartThenScan => {
                if free + window == 0.0 {
                    (1.0, 0.0)
                } else {
                    (0.0, self.scan_collision())
                }
            }
        };
        let u: f64 = rng.random();
        let outcome = if u < p_exhausted {
            PickOutcome::Exhausted
        } else if u < p_exhausted + p_collided {
            PickOutcome::Collided
        } else if self.free.is_empty() {
            // Only reachable through rounding: the odds above said a free port existed.
            PickOutcome::Exhausted
        } else {
            let port = match self.pick {
                PickOrder::RandomStartThenScan => self.random_start_scan(rng),
                _ => None,
            }
            .unwrap_or_else(|| self.free[rng.random_range(0..self.free.len())]);
            self.take(port, t, hold_end);
            PickOutcome::Granted(port)
        };
        Pick {
            p_exhausted,
            p_collided,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_full_range_refuses_and_a_released_port_is_granted_again() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut pool = PortPool::new(2, PickOrder::AnyFree, 0.0);
        assert!(matches!(
            pool.request(0, 100, &mut rng).outcome,
            PickOutcome::Granted(_)
        ));
        assert!(matches!(pool.request(1, 50, &mut rng).outcome, PickOutcome::Granted(_)));
        let full = pool.request(2, 60, &mut rng);
        assert_eq!((full.outcome, full.p_exhausted), (PickOutcome::Exhausted, 1.0));
        assert_eq!(pool.held(), 2);
        // The second hold ends at 50: free again at 50, not before.
        assert_eq!(pool.request(49, 60, &mut rng).outcome, PickOutcome::Exhausted);
        assert!(matches!(
            pool.request(50, 60, &mut rng).outcome,
            PickOutcome::Granted(_)
        ));
    }

    #[test]
    fn random_tries_fail_with_free_ports_left_exactly_as_often_as_k_misses() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut pool = PortPool::new(10, PickOrder::RandomTries { tries: 3 }, 0.0);
        for t in 0..6 {
            pool.request(t, 1_000, &mut rng);
        }
        let p = pool.request(10, 1_000, &mut rng);
        assert!((p.p_exhausted - 0.6f64.powi(3)).abs() < 1e-12, "{p:?}");
        assert_eq!(p.p_collided, 0.0);
    }

    #[test]
    fn the_race_window_makes_a_just_bound_port_collide() {
        let mut rng = StdRng::seed_from_u64(3);
        // One port: the second PASV within the window finds it bindable and collides.
        let mut pool = PortPool::new(1, PickOrder::AnyFree, 5.0);
        assert!(matches!(
            pool.request(100, 1_000, &mut rng).outcome,
            PickOutcome::Granted(0)
        ));
        let p = pool.request(103, 1_000, &mut rng);
        assert_eq!(
            (p.p_exhausted, p.p_collided, p.outcome),
            (0.0, 1.0, PickOutcome::Collided)
        );
        // After the window the port is simply held.
        let p = pool.request(106, 1_000, &mut rng);
        assert_eq!((p.p_exhausted, p.outcome), (1.0, PickOutcome::Exhausted));
    }

    #[test]
    fn a_scan_collides_from_the_starts_that_reach_the_bound_port() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut pool = PortPool::new(4, PickOrder::RandomStartThenScan, 1e9);
        for t in 0..2 {
            pool.request(t, 10_000, &mut rng);
        }
        // Two ports held, both in their windows; two free. Each window port is reached from
        // its own start only (the port below it is bindable), so 2 of 4 starts collide.
        let p = pool.request(3, 10_000, &mut rng);
        assert!((p.p_collided - 0.5).abs() < 1e-12, "{p:?}");
    }
}
