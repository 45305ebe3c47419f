//! The commands as a user runs them: typed options in, an engine called, its result printed.
//! Signals, printing and the report drawn after a run or a sweep live here, so the engines
//! (`run`, `sweep`, `merge`, `probe`, `plan`, `report`) return values and never call one another's
//! front ends.

pub mod merge;
pub mod plan;
pub mod probe;
pub mod report;
pub mod run;
pub mod serve;
pub mod sweep;
