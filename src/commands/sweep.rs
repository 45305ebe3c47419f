//! `ftpswarm sweep`: signals in, the sweep, its table and verdict printed; the chart and
//! report.md are drawn after every width, so an interrupted sweep keeps them.

use crate::sweep::{render, sweep, SweepOptions, SweepResult, SWEEP_CSV, SWEEP_JSON};
use tokio_util::sync::CancellationToken;

/// `ftpswarm sweep` from the command line: Ctrl-C stops after the current run, and whatever
/// was measured is written.
pub async fn command(opts: SweepOptions) -> anyhow::Result<()> {
    let interrupt = CancellationToken::new();
    crate::signals::cancel_on_signal(
        interrupt.clone(),
        "finishing the current run, then writing what was measured",
    );
    let result = sweep_and_report(&opts, interrupt).await?;
    print!("{}", render(&result));
    println!(
        "written: {} ({}, {}, report.md, charts/sweep.png)",
        opts.out.display(),
        SWEEP_CSV,
        SWEEP_JSON
    );
    Ok(())
}

/// The sweep with its chart and report.md redrawn after every width: what `ftpswarm sweep`
/// does, for tests that drive it in-process.
pub async fn sweep_and_report(opts: &SweepOptions, interrupt: CancellationToken) -> anyhow::Result<SweepResult> {
    let mut draw = |dir: &std::path::Path, result: &SweepResult| -> anyhow::Result<()> {
        crate::report::sweep_report(dir, result)?;
        Ok(())
    };
    sweep(opts, interrupt, &mut draw).await
}
