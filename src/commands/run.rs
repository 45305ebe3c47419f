//! `ftpswarm run`: signals in, the run, then its summary, recommendation and report printed.

use crate::run::{run, RunOptions};
use crate::signals::{InterruptedBefore, INTERRUPTED_EXIT};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// `ftpswarm run` from the command line: Ctrl-C handling and the printed summary.
pub async fn command(opts: RunOptions, json: bool) -> anyhow::Result<ExitCode> {
    let interrupt = CancellationToken::new();
    crate::signals::cancel_on_signal(
        interrupt.clone(),
        "no new sessions; draining sessions in flight, then writing results",
    );
    let draw_report = opts.report;
    let report = match run(opts, interrupt).await {
        Ok(r) => r,
        Err(e) if e.is::<InterruptedBefore>() => {
            eprintln!("{e}");
            return Ok(ExitCode::from(INTERRUPTED_EXIT));
        }
        Err(e) => return Err(e),
    };
    let partial = report.manifest.partial_reason.is_some();
    if json {
        println!("{}", serde_json::to_string_pretty(&report.summary)?);
        return Ok(if partial {
            ExitCode::from(INTERRUPTED_EXIT)
        } else {
            ExitCode::SUCCESS
        });
    }
    let p = &report.profile;
    println!("ftpswarm run {} -> {}", p.name, report.dir.display());
    println!(
        "target       {}{}",
        report.manifest.target,
        if report.manifest.embedded_server {
            " (embedded server)"
        } else {
            ""
        }
    );
    print!(
        "{}",
        crate::summary::render(
            &report.summary,
            report.manifest.expected_pasv_range.map(|r| r.to_string()).as_deref()
        )
    );
    if let Some(st) = &report.sampler {
        println!(
            "timeline     {} samples; server sockets: {} live (netlink, {} failed, {:.1} ms CPU), TIME_WAIT read {} times ({:.1} ms CPU), listeners counted {} times ({:.1} ms CPU)",
            st.samples,
            st.diag_samples,
            st.diag_errors,
            st.diag_cpu.as_secs_f64() * 1e3,
            st.socket_reads,
            st.socket_cpu.as_secs_f64() * 1e3,
            st.listener_dumps,
            st.listener_time.as_secs_f64() * 1e3,
        );
    }
    // The recommendation for the load just observed; a run it cannot plan from (no grants,
    // say) is still a run.
    match crate::plan::plan_and_store(&report.dir, &crate::plan::PlanRequest::default()) {
        Ok((rec, write_error)) => {
            if let Some(e) = write_error {
                tracing::warn!("{e}");
            }
            print!("{}", crate::plan::render(&rec));
        }
        Err(e) => println!("recommendation    none: {e}"),
    }
    if draw_report {
        match crate::report::generate(&report.dir) {
            Ok(out) => println!(
                "report       {} ({} charts, PNG and SVG)",
                out.report.display(),
                out.charts.len()
            ),
            Err(e) => println!("report       not written: {e}"),
        }
    }
    if report.swarm.sessions_dropped > 0 {
        println!(
            "dropped      {} arrivals (max_in_flight reached)",
            report.swarm.sessions_dropped
        );
    }
    let src = &report.swarm.sources;
    // Said when the load spread over several addresses or came near one address's ports.
    let near = src
        .ephemeral_ports
        .is_some_and(|p| f64::from(src.peak_per_address) > f64::from(p) / 2.0);
    if src.addresses > 1 || near {
        println!(
            "sources      {}: at most {} control connections at once on one{}",
            match src.addresses {
                0 | 1 => "one address".to_string(),
                n => format!("{n} addresses"),
            },
            src.peak_per_address,
            src.ephemeral_ports
                .map(|p| format!(", of its {p} ephemeral ports"))
                .unwrap_or_default()
        );
    }
    if report.cleanup_failures > 0 {
        println!(
            "cleanup      {} remote files or directories could not be removed",
            report.cleanup_failures
        );
    }
    if let Some(reason) = &report.manifest.partial_reason {
        println!("status       partial: {reason}");
        return Ok(ExitCode::from(INTERRUPTED_EXIT));
    }
    Ok(ExitCode::SUCCESS)
}
