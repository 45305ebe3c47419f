//! Shared test support.

pub mod servers;
