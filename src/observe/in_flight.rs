//! Transfers under way, by when they began. The collector receives records in completion
//! order but the summary's peaks and ledger need them in time order; the start of the oldest
//! transfer whose record has not been received yet is how far that order is final (the
//! watermark).
//!
//! The clock is read under the lock on both sides, so a transfer that begins after the
//! watermark was read cannot have begun before it.

use crate::clock::RunClock;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct InFlight {
    /// Start time (µs) → how many transfers began then.
    started: Mutex<BTreeMap<u64, u32>>,
}

/// One transfer in flight: registered from before its PASV until its record is handed to the
/// collector (or the transfer is abandoned), whichever way that goes.
#[must_use = "the transfer counts as in flight until the ticket is dropped"]
pub struct Ticket<'a> {
    registry: &'a InFlight,
    t_us: u64,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, u32>> {
        // The map is consistent after every statement: a panicked holder leaves nothing half
        // done.
        self.started.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a transfer beginning now; every timestamp it records comes after this.
    pub fn begin(&self, clock: &RunClock) -> Ticket<'_> {
        let mut started = self.lock();
        let t_us = clock.now_us();
        *started.entry(t_us).or_default() += 1;
        Ticket { registry: self, t_us }
    }

    /// No transfer whose record is still to come began before this instant. Read it, then
    /// drain the records already sent, then fold up to it: a ticket is dropped only after its
    /// record was sent.
    pub fn watermark(&self, clock: &RunClock) -> u64 {
        let started = self.lock();
        started.keys().next().copied().unwrap_or_else(|| clock.now_us())
    }

    pub fn len(&self) -> usize {
        self.lock().values().map(|&n| n as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut started = self.registry.lock();
        if let Some(n) = started.get_mut(&self.t_us) {
            *n -= 1;
            if *n == 0 {
                started.remove(&self.t_us);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_oldest_transfer_still_in_flight() {
        let clock = RunClock::start();
        let registry = InFlight::default();
        let first = registry.begin(&clock);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = registry.begin(&clock);
        let twin = Ticket {
            registry: &registry,
            t_us: second.t_us,
        };
        *registry.lock().entry(second.t_us).or_default() += 1;
        assert_eq!(registry.len(), 3);
        assert_eq!(registry.watermark(&clock), first.t_us);
        drop(first);
        assert_eq!(registry.watermark(&clock), second.t_us);
        drop(second);
        assert_eq!(registry.watermark(&clock), twin.t_us, "two transfers began at once");
        drop(twin);
        assert!(registry.is_empty());
        let idle = registry.watermark(&clock);
        assert!(idle >= 2_000, "with nothing in flight the watermark is now: {idle}");
    }
}
