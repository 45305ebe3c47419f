//! The run's clock: monotonic microseconds since the run started, plus the wall-clock time of
//! that start so that runs made on several machines can be aligned later.

use std::time::{Instant, SystemTime};

#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
    wall_start: SystemTime,
}

impl RunClock {
    pub fn start() -> Self {
        RunClock {
            start: Instant::now(),
            wall_start: SystemTime::now(),
        }
    }

    /// Microseconds since the run started (saturating; a run does not last 584,000 years).
    pub fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    pub fn us_at(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    pub fn instant_at_us(&self, us: u64) -> Instant {
        self.start + std::time::Duration::from_micros(us)
    }

    pub fn wall_start(&self) -> SystemTime {
        self.wall_start
    }
}

/// A wall-clock time as RFC 3339 in UTC, as every manifest writes it: the manifests of shards
/// run in several time zones compare at a glance.
pub fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
