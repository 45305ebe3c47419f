//! `ftpswarm report --run DIR`: the report and charts redrawn from a run or a sweep directory.

use crate::report::{generate, sweep_report, CHARTS_DIR};
use crate::sweep::{SweepResult, SWEEP_JSON};
use anyhow::Context;
use std::path::Path;

/// `ftpswarm report --run DIR`. A sweep directory (one with `sweep.json` and no manifest of
/// its own) gets the sweep's chart and report.
pub fn command(dir: &Path) -> anyhow::Result<()> {
    let sweep_json = dir.join(SWEEP_JSON);
    if !dir.join(crate::rundir::MANIFEST).is_file() && sweep_json.is_file() {
        let result: SweepResult = crate::rundir::read_json(&sweep_json)
            .with_context(|| format!("{} is not a sweep's result", sweep_json.display()))?;
        let report = sweep_report(dir, &result)?;
        println!(
            "{} (sweep chart in {})",
            report.display(),
            dir.join(CHARTS_DIR).display()
        );
        return Ok(());
    }
    let out = generate(dir)?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{} ({} charts in {})",
        out.report.display(),
        out.charts.len(),
        dir.join(CHARTS_DIR).display()
    );
    Ok(())
}
