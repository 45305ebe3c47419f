//! Observation: live counters, the timeline sampler (with the kernel's socket view of the
//! passive range), the transfers in flight, the latency interval log, and the collector that
//! writes every record as it arrives and feeds the summary.

pub mod collector;
pub mod hlog;
pub mod in_flight;
pub mod live;
pub mod metrics;
pub mod progress;
pub mod server_process;
pub mod sockdiag;
pub mod timeline;

pub use live::LiveCounters;
