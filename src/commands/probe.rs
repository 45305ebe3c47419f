//! `ftpswarm probe`: the fingerprint printed, or written as JSON.

use crate::probe::{probe, render, ProbeOptions};
use std::path::PathBuf;

/// `ftpswarm probe`: runs the probe, writes the JSON to `out` if given, and prints the text
/// (or the JSON with `json`).
pub async fn command(opts: ProbeOptions, json: bool, out: Option<PathBuf>) -> anyhow::Result<()> {
    let f = probe(&opts).await?;
    if let Some(path) = &out {
        crate::rundir::write_json(path, &f)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&f)?);
    } else {
        print!("{}", render(&f));
        if let Some(path) = &out {
            println!("written to {}", path.display());
        }
    }
    Ok(())
}
