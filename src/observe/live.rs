//! Live counters the engine and the instrumented client update as things happen, and the
//! sampler and progress display read. Relaxed atomics only: a few per transfer, no locks on
//! the hot path.

use super::in_flight::InFlight;
use crate::event::FailureClass;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};

#[derive(Debug)]
pub struct LiveCounters {
    pub sessions_started: AtomicU64,
    pub sessions_active: AtomicI64,
    pub sessions_done: AtomicU64,
    pub sessions_dropped: AtomicU64,
    /// Control connections that logged in.
    pub logins: AtomicU64,
    pub control_open: AtomicI64,
    /// PASV/EPSV answered with a port, data connection not yet open.
    pub pasv_pending: AtomicI64,
    pub data_open: AtomicI64,
    /// Distinct server ports we hold (client view: from the grant until our data connection
    /// closes). A server that re-grants a port still in use does not double-count it.
    pub ports_held: AtomicI64,
    pub grants: AtomicU64,
    pub out_of_range: AtomicU64,
    pub transfers_done: AtomicU64,
    pub bytes: AtomicU64,
    failures: [AtomicU64; FailureClass::ALL.len()],
    /// Per port: how many of our grants of it are currently held.
    port_refs: Box<[AtomicU32]>,
    /// Transfers whose record the collector has not received yet, by start.
    pub in_flight: InFlight,
}

impl Default for LiveCounters {
    fn default() -> Self {
        LiveCounters {
            sessions_started: AtomicU64::new(0),
            sessions_active: AtomicI64::new(0),
            sessions_done: AtomicU64::new(0),
            sessions_dropped: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            control_open: AtomicI64::new(0),
            pasv_pending: AtomicI64::new(0),
            data_open: AtomicI64::new(0),
            ports_held: AtomicI64::new(0),
            grants: AtomicU64::new(0),
            out_of_range: AtomicU64::new(0),
            transfers_done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failures: std::array::from_fn(|_| AtomicU64::new(0)),
            port_refs: (0..=u16::MAX).map(|_| AtomicU32::new(0)).collect(),
            in_flight: InFlight::default(),
        }
    }
}

fn class_index(class: FailureClass) -> usize {
    FailureClass::ALL.iter().position(|c| *c == class).unwrap_or(0)
}

impl LiveCounters {
    pub fn failure(&self, class: FailureClass) {
        self.failures[class_index(class)].fetch_add(1, Relaxed);
    }

    pub fn failures_of(&self, class: FailureClass) -> u64 {
        self.failures[class_index(class)].load(Relaxed)
    }

    pub fn failures_total(&self) -> u64 {
        self.failures.iter().map(|f| f.load(Relaxed)).sum()
    }

    /// A PASV/EPSV reply granted `port`.
    pub fn granted(&self, port: u16, in_range: Option<bool>) {
        self.grants.fetch_add(1, Relaxed);
        if in_range == Some(false) {
            self.out_of_range.fetch_add(1, Relaxed);
        }
        self.pasv_pending.fetch_add(1, Relaxed);
        if self.port_refs[usize::from(port)].fetch_add(1, Relaxed) == 0 {
            self.ports_held.fetch_add(1, Relaxed);
        }
    }

    /// The data connection for a grant opened.
    pub fn data_connected(&self) {
        self.pasv_pending.fetch_sub(1, Relaxed);
        self.data_open.fetch_add(1, Relaxed);
    }

    /// We are done with a grant: its data connection closed (`was_connected`) or was never
    /// made.
    pub fn released(&self, port: u16, was_connected: bool) {
        if was_connected {
            self.data_open.fetch_sub(1, Relaxed);
        } else {
            self.pasv_pending.fetch_sub(1, Relaxed);
        }
        if self.port_refs[usize::from(port)].fetch_sub(1, Relaxed) == 1 {
            self.ports_held.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_held_counts_distinct_ports() {
        let c = LiveCounters::default();
        c.granted(30000, Some(true));
        c.data_connected();
        // A release-at-accept server hands the same port out again while we still use it.
        c.granted(30000, Some(true));
        c.granted(31000, Some(false));
        assert_eq!(c.ports_held.load(Relaxed), 2);
        assert_eq!(c.pasv_pending.load(Relaxed), 2);
        assert_eq!(c.data_open.load(Relaxed), 1);
        assert_eq!(c.out_of_range.load(Relaxed), 1);
        c.released(30000, true);
        assert_eq!(c.ports_held.load(Relaxed), 2, "30000 is still held by the second grant");
        c.released(30000, false);
        c.released(31000, false);
        assert_eq!(c.ports_held.load(Relaxed), 0);
        assert_eq!((c.pasv_pending.load(Relaxed), c.data_open.load(Relaxed)), (0, 0));
    }

    #[test]
    fn failures_by_class() {
        let c = LiveCounters::default();
        c.failure(FailureClass::PasvRejected);
        c.failure(FailureClass::PasvRejected);
        c.failure(FailureClass::Timeout);
        assert_eq!(c.failures_of(FailureClass::PasvRejected), 2);
        assert_eq!(c.failures_total(), 3);
    }
}
