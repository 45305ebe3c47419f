//! The discrete-event simulator that predicts, for any range width and any load, how many
//! sessions and PASVs fail: the primary predictor behind `plan`, `sweep` and `run`'s
//! recommendation. The analytic models in [`crate::model`] (Erlang B, Engset, the random-try
//! chain) stay as cross-checks; [`synthetic`] shows the simulator agrees with them where
//! their assumptions (independent arrivals, exponential times) hold.
//!
//! - [`server`]: what the server does with its range (pick order, hold, race window,
//!   admission, reaction to exhaustion), each value with where it came from.
//! - [`trace`]: a run directory as the replay needs it.
//! - [`pool`]: the range's state and one PASV's exact odds.
//! - [`replay`]: the run's own connections and PASVs replayed against any width, scaled by
//!   copies.
//! - [`stall`]: the TIME_WAITs on the range, and how a one-loop server slows down for them.
//! - [`contention`]: how holds lengthen when more sessions share the host's CPU.
//! - [`race_window`]: the bind-race window a run's races call for.
//! - [`calibrate`]: the server's race window and release lag, fitted so that the replay at
//!   the run's own width reproduces the run's own refusals.

pub mod calibrate;
pub mod contention;
pub mod pool;
pub mod race_window;
pub mod replay;
pub mod server;
pub mod stall;
pub mod synthetic;
pub mod time_wait;
pub mod trace;

pub use replay::{Counts, Workload};
pub use server::{ServerKind, ServerModel};
pub use time_wait::TimeWaits;
pub use trace::Trace;

use serde::{Deserialize, Serialize};

/// What the simulator predicts at one width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Prediction {
    pub width: u32,
    /// Share of PASVs refused, colliding or granted outside the range.
    pub pasv_failure: f64,
    /// Share of sessions with any failure, including those that fail at every width.
    pub session_failure: f64,
    /// Share of the other sessions that the range makes fail: what a width can change.
    pub session_failure_at_range: f64,
    /// The same in the run's busy stretches (see [`replay::BUSY_QUANTILE`]): what the grade
    /// of service is checked against.
    #[serde(default)]
    pub session_failure_busy: f64,
    /// Shares of PASVs that found the range exhausted, and that collided in a bind race.
    pub pasv_exhausted: f64,
    pub pasv_collided: f64,
    /// Control connections refused by an admission cap, per session.
    pub refused_connections_per_session: f64,
}

/// A run's load, scaled and expanded into replications, ready to be asked about any width.
pub struct Predictor {
    workloads: Vec<Workload>,
    pub model: ServerModel,
    pub scale: f64,
}

/// More replications when the load is one copy (only the pick is random), fewer when many
/// copies already average out their shifts.
pub fn default_replications(scale: f64) -> u32 {
    if scale <= 1.0 {
        4
    } else {
        (8.0 / scale.ceil()).ceil().clamp(2.0, 4.0) as u32
    }
}

impl Predictor {
    /// What the server would see under this load for good: with the TIME_WAITs of a load
    /// that has lasted longer than Linux keeps them.
    pub fn new(trace: &Trace, model: ServerModel, scale: f64, replications: u32, seed: u64) -> Predictor {
        Predictor::with(trace, model, scale, replications, seed, TimeWaits::Steady)
    }

    /// The run's own load under the run's own conditions: for fitting the model to the run.
    pub fn as_run(trace: &Trace, model: ServerModel, replications: u32, seed: u64) -> Predictor {
        Predictor::with(trace, model, 1.0, replications, seed, TimeWaits::AsRun)
    }

    fn with(
        trace: &Trace,
        model: ServerModel,
        scale: f64,
        replications: u32,
        seed: u64,
        time_waits: TimeWaits,
    ) -> Predictor {
        let workloads = (0..replications.max(1))
            .map(|r| {
                let seed = seed.wrapping_add(u64::from(r) * 0x9E37_79B9);
                Workload::build(trace, &model, scale, seed, time_waits)
            })
            .collect();
        Predictor {
            workloads,
            model,
            scale,
        }
    }

    pub fn counts(&self, width: u32) -> Counts {
        let mut total = Counts::default();
        for w in &self.workloads {
            total.add(&w.run(width));
        }
        total
    }

    pub fn at(&self, width: u32) -> Prediction {
        let c = self.counts(width);
        let per = |x: f64| if c.attempts > 0.0 { x / c.attempts } else { 0.0 };
        Prediction {
            width,
            pasv_failure: c.pasv_failure(),
            session_failure: c.session_failure(),
            session_failure_at_range: c.session_failure_at_range(),
            session_failure_busy: c.session_failure_busy(),
            pasv_exhausted: per(c.exhausted),
            pasv_collided: per(c.collided),
            refused_connections_per_session: if c.sessions > 0.0 {
                c.refused_connections / c.sessions
            } else {
                0.0
            },
        }
    }

    /// PASVs replayed per replication.
    pub fn attempts(&self) -> usize {
        self.workloads.first().map_or(0, Workload::attempts)
    }
}
