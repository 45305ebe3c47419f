//! `ftpswarm merge DIR… --out DIR`: the shards of one load as one run, then its summary,
//! recommendation and report, as after `run`.

use crate::merge::{merge, MergeOptions};
use crate::signals::INTERRUPTED_EXIT;
use std::process::ExitCode;

pub fn command(opts: MergeOptions, report: bool) -> anyhow::Result<ExitCode> {
    let merged = merge(&opts)?;
    let m = &merged.manifest;
    println!(
        "ftpswarm merge {} shards -> {}",
        m.merged_from.len(),
        merged.dir.display()
    );
    for s in &m.merged_from {
        println!(
            "shard {:<6} {} ({}, started {}{})",
            s.shard.to_string(),
            s.dir,
            s.host.as_deref().unwrap_or("host unknown"),
            s.started_at,
            match s.status {
                crate::rundir::RunStatus::Complete => String::new(),
                crate::rundir::RunStatus::Partial => ", partial".to_string(),
            }
        );
    }
    println!("target       {}", m.target);
    print!(
        "{}",
        crate::summary::render(&merged.summary, m.expected_pasv_range.map(|r| r.to_string()).as_deref())
    );
    match crate::plan::plan_and_store(&merged.dir, &crate::plan::PlanRequest::default()) {
        Ok((rec, write_error)) => {
            if let Some(e) = write_error {
                tracing::warn!("{e}");
            }
            print!("{}", crate::plan::render(&rec));
        }
        Err(e) => println!("recommendation    none: {e}"),
    }
    if report {
        match crate::report::generate(&merged.dir) {
            Ok(out) => println!(
                "report       {} ({} charts, PNG and SVG)",
                out.report.display(),
                out.charts.len()
            ),
            Err(e) => println!("report       not written: {e}"),
        }
    }
    if let Some(reason) = &m.partial_reason {
        println!("status       partial: {reason}");
        return Ok(ExitCode::from(INTERRUPTED_EXIT));
    }
    Ok(ExitCode::SUCCESS)
}
