//! Shared test support.

pub mod schemas;
pub mod servers;
