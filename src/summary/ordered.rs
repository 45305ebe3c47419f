//! The parts of the summary that need transfers in time order (peak concurrency, peak ports
//! held, the port ledger) fed by records that arrive in completion order.
//!
//! A record waits in a reorder buffer until the watermark passes its grant: the watermark is
//! the start of the oldest transfer whose record has not arrived yet
//! ([`crate::observe::in_flight`]), so no later record can belong before it. Memory is then
//! bounded by what is in flight, not by the length of the run: an hour of load is millions of
//! transfers. Without a watermark (a run read back from its CSVs) everything waits until
//! [`OrderedFolds::finish`], which gives the same figures.

use crate::summary::ledger::{Grant, LedgerFold, LedgerSummary};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// What one transfer contributes once its turn comes.
struct Waiting {
    grant: Option<Grant>,
    /// Data connection open → closed.
    data: Option<(u64, u64)>,
}

#[derive(Default)]
pub struct OrderedFolds {
    /// Keyed by (grant time, or data connect time without a grant; arrival number).
    waiting: BTreeMap<(u64, u64), Waiting>,
    arrivals: u64,
    watermark: u64,
    /// Records that arrived behind the watermark: folded anyway, but the peaks may be off by
    /// as many. Zero unless a transfer was never registered as in flight.
    late: u64,
    data: PeakFold,
    held: DistinctPeakFold,
    ledger: LedgerFold,
}

pub struct OrderedFigures {
    pub peak_data_connections: u64,
    pub peak_ports_held: u64,
    pub ledger: LedgerSummary,
    pub late: u64,
}

impl OrderedFolds {
    pub fn add(&mut self, grant: Option<Grant>, data: Option<(u64, u64)>) {
        let Some(key) = grant.map(|g| g.t_granted_us).or(data.map(|(from, _)| from)) else {
            return;
        };
        if key < self.watermark {
            self.late += 1;
        }
        self.arrivals += 1;
        self.waiting.insert((key, self.arrivals), Waiting { grant, data });
    }

    /// No record still to come starts before `t_us`: fold everything before it.
    pub fn advance(&mut self, t_us: u64) {
        self.watermark = self.watermark.max(t_us);
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 >= self.watermark {
                break;
            }
            let w = entry.remove();
            if let Some((from, to)) = w.data {
                self.data.push(from, to);
            }
            if let Some(g) = w.grant {
                // A grant given up on the instant it came holds nothing.
                if g.t_released_us > g.t_granted_us {
                    self.held.push(g.t_granted_us, g.t_released_us, g.port);
                }
                self.ledger.add(&g);
            }
        }
        // Every edge before the watermark is now known: the ones left all come later.
        self.data.advance(self.watermark);
        self.held.advance(self.watermark);
        self.ledger.advance(self.watermark);
    }

    /// Transfers waiting for the watermark.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn finish(mut self, width: u32) -> OrderedFigures {
        self.advance(u64::MAX);
        // Edges at u64::MAX itself are not instants of a real run; close what is left.
        self.data.advance_all();
        self.held.advance_all();
        OrderedFigures {
            peak_data_connections: self.data.max,
            peak_ports_held: self.held.max,
            ledger: self.ledger.finish(width),
            late: self.late,
        }
    }
}

/// Highest running sum of +1/-1 edges; at equal times closings count first, so back-to-back
/// intervals do not overlap.
#[derive(Default)]
struct PeakFold {
    edges: BinaryHeap<Reverse<(u64, i32)>>,
    current: i64,
    max: u64,
}

impl PeakFold {
    fn push(&mut self, from: u64, to: u64) {
        self.edges.push(Reverse((from, 1)));
        self.edges.push(Reverse((to.max(from), -1)));
    }

    fn advance(&mut self, t_us: u64) {
        while let Some(&Reverse((t, d))) = self.edges.peek() {
            if t >= t_us {
                break;
            }
            self.edges.pop();
            self.step(d);
        }
    }

    fn advance_all(&mut self) {
        while let Some(Reverse((_, d))) = self.edges.pop() {
            self.step(d);
        }
    }

    fn step(&mut self, d: i32) {
        self.current += i64::from(d);
        self.max = self.max.max(self.current.max(0) as u64);
    }
}

/// Most distinct ports held at one instant. A port granted again while a grant of it is still
/// held (a server that hands one port to several clients, or a grant abandoned and re-granted)
/// is one port, not two: the range's width is what it is measured against.
struct DistinctPeakFold {
    edges: BinaryHeap<Reverse<(u64, i32, u16)>>,
    holders: Box<[u32]>,
    held: u64,
    max: u64,
}

impl Default for DistinctPeakFold {
    fn default() -> Self {
        DistinctPeakFold {
            edges: BinaryHeap::new(),
            holders: vec![0; usize::from(u16::MAX) + 1].into_boxed_slice(),
            held: 0,
            max: 0,
        }
    }
}

impl DistinctPeakFold {
    fn push(&mut self, from: u64, to: u64, port: u16) {
        self.edges.push(Reverse((from, 1, port)));
        self.edges.push(Reverse((to, -1, port)));
    }

    fn advance(&mut self, t_us: u64) {
        while let Some(&Reverse((t, d, port))) = self.edges.peek() {
            if t >= t_us {
                break;
            }
            self.edges.pop();
            self.step(d, port);
        }
    }

    fn advance_all(&mut self) {
        while let Some(Reverse((_, d, port))) = self.edges.pop() {
            self.step(d, port);
        }
    }

    fn step(&mut self, d: i32, port: u16) {
        let n = &mut self.holders[usize::from(port)];
        if d > 0 {
            *n += 1;
            if *n == 1 {
                self.held += 1;
                self.max = self.max.max(self.held);
            }
        } else if *n > 0 {
            *n -= 1;
            if *n == 0 {
                self.held -= 1;
            }
        }
    }
}
