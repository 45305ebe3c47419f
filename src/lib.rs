//! ftpswarm: a load generator and passive-port capacity planner for FTP servers.
//!
//! The binary is a thin shell over [`cli::main`]; tests drive [`run::run`] in-process.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod event;
pub mod fd_limit;
pub mod ftp;
pub mod merge;
pub mod model;
pub mod observe;
pub mod plan;
pub mod port_range;
pub mod printable;
pub mod probe;
pub mod profile;
pub mod report;
pub mod run;
pub mod rundir;
pub mod server;
pub mod signals;
pub mod sim;
pub mod summary;
pub mod swarm;
pub mod sweep;
pub mod target;
pub mod tls;
