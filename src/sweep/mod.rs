//! `ftpswarm sweep`: the same load at several range widths, to check the model against
//! measurement. Per width: the failure rate of PASVs with a Clopper–Pearson 95% interval,
//! beside what the model predicts for the load fitted on the widest width. The verdict is
//! the smallest width whose interval's upper bound meets the target.

mod server;
pub mod stats;

use crate::model::{self, PortPickPolicy};
use crate::plan::{self, PlanRequest, Recommendation};
use crate::profile::{PortRange, ProfileOverrides};
use crate::run::{run, RunOptions};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use server::SweepServer;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const SWEEP_CSV: &str = "sweep.csv";
pub const SWEEP_JSON: &str = "sweep.json";

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub profile: Option<PathBuf>,
    pub overrides: ProfileOverrides,
    pub widths: Vec<u32>,
    pub range_start: u16,
    /// A real server: `ftp://user@host` whose port the command template sets.
    pub target: Option<String>,
    pub server_cmd: Option<String>,
    pub stop_cmd: Option<String>,
    /// Time for the whole sweep; each width gets an equal share.
    pub budget: Duration,
    /// Relative standard error wanted on each width's failure rate.
    pub precision: f64,
    /// Share of sessions allowed to see a failed PASV.
    pub gos: f64,
    pub pick: Option<PortPickPolicy>,
    /// Also measure the model's recommended width and 0.6 × it, once the widest width has
    /// given the fit: the check that the recommendation meets the target and a narrower range
    /// does not.
    pub verify_model: bool,
    pub out: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthResult {
    pub width: u32,
    pub range: String,
    pub runs: u32,
    pub seconds: f64,
    pub attempts: u64,
    /// PASVs refused (425/500 …), granted outside the range, or whose data connection failed.
    pub failures: u64,
    pub failure_rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The model's per-PASV blocking at this width for the fitted load.
    pub model_blocking: Option<f64>,
    /// Attempts the precision asked for, and whether the time budget cut the run short of them.
    pub attempts_needed: u64,
    pub precision_met: bool,
    pub runs_dirs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub schema_version: u32,
    pub profile: String,
    pub gos_per_session: f64,
    pub gos_per_pasv: f64,
    pub precision: f64,
    pub widths: Vec<WidthResult>,
    /// The plan made from the widest width's first run (the least blocked: carried ≈ offered).
    pub model: Option<Recommendation>,
    /// Smallest measured width whose upper bound meets the per-PASV target.
    pub measured_width: Option<u32>,
    pub notes: Vec<String>,
}

const FAILURE_CLASSES: [&str; 4] = [
    "pasv_rejected",
    "pasv_out_of_range",
    "data_connect_timeout",
    "data_connect_refused",
];

/// Runs the sweep and writes `sweep.csv`, `sweep.json`, a chart and `report.md` into `out`.
pub async fn sweep(opts: &SweepOptions, interrupt: CancellationToken) -> anyhow::Result<SweepResult> {
    if opts.widths.is_empty() {
        anyhow::bail!("--widths: give at least one width, e.g. 2,4,8,16");
    }
    if opts
        .widths
        .iter()
        .any(|&w| w == 0 || u32::from(opts.range_start) + w - 1 > 65535)
    {
        anyhow::bail!(
            "--widths: every width must be at least 1 and fit above --range-start {}",
            opts.range_start
        );
    }
    if !(opts.gos > 0.0 && opts.gos < 1.0) {
        anyhow::bail!("--gos: is {}; allowed: more than 0 and less than 1", opts.gos);
    }
    std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;
    let profile = crate::profile::Profile::load_with_overrides(opts.profile.as_deref(), &opts.overrides)?;
    let files = profile.session.files_per_session.max(1);
    let gos_per_pasv = model::per_pasv_target(opts.gos, files).unwrap_or(opts.gos);
    let planned = opts.widths.len() + if opts.verify_model { 2 } else { 0 };
    let per_width = opts.budget.div_f64(planned as f64);
    let mut widths = opts.widths.clone();
    // The widest first: its run is the least blocked, so it measures the offered load.
    widths.sort_unstable_by(|a, b| b.cmp(a));
    widths.dedup();
    let mut notes = Vec::new();
    let mut results = Vec::new();
    let mut model_rec: Option<Recommendation> = None;
    let mut policy: Option<(PortPickPolicy, f64, u32)> = None;

    let mut queue: std::collections::VecDeque<u32> = widths.iter().copied().collect();
    while let Some(w) = queue.pop_front() {
        if interrupt.is_cancelled() {
            notes.push(format!("interrupted before width {w}"));
            break;
        }
        let range = PortRange {
            min: opts.range_start,
            max: opts.range_start + (w - 1) as u16,
        };
        let server = SweepServer::start(opts, range).await?;
        let started = Instant::now();
        let (mut attempts, mut failures, mut runs, mut dirs) = (0u64, 0u64, 0u32, Vec::new());
        let mut needed;
        loop {
            let dir = opts.out.join(format!("w{w:05}")).join(format!("run{runs:03}"));
            let run_opts = RunOptions {
                profile: opts.profile.clone(),
                overrides: ProfileOverrides {
                    pasv_range: Some(range),
                    ..opts.overrides.clone()
                },
                target: Some(server.url()),
                // A real server needs files to RETR; each run uploads its own and removes them.
                prepare: opts.server_cmd.is_some(),
                out: Some(dir.clone()),
                ..RunOptions::default()
            };
            let report = run(run_opts, interrupt.clone()).await?;
            runs += 1;
            dirs.push(dir.display().to_string());
            attempts += report.summary.transfers.attempted;
            failures += FAILURE_CLASSES
                .iter()
                .filter_map(|c| report.summary.failures.get(*c))
                .sum::<u64>();
            if policy.is_none() {
                // The first run of the widest width fits the load the model predicts from.
                match plan::plan_from_run(
                    &dir,
                    &PlanRequest {
                        pick: opts.pick,
                        ..PlanRequest::default()
                    },
                ) {
                    Ok(rec) => {
                        let sources = rec.inputs.control_connections.ceil().max(1.0) as u32;
                        let pick = opts.pick.unwrap_or(if opts.server_cmd.is_none() {
                            PortPickPolicy::LIBUNFTP
                        } else {
                            PortPickPolicy::VSFTPD
                        });
                        policy = Some((plan::model_policy(pick, sources), rec.target.offered_erlangs, sources));
                        if opts.verify_model {
                            let narrow = ((f64::from(rec.model_width) * 0.6).round() as u32).max(1);
                            for extra in [rec.model_width, narrow] {
                                let fits = u32::from(opts.range_start) + extra - 1 <= 65535;
                                if fits && extra != w && !widths.contains(&extra) && !queue.contains(&extra) {
                                    queue.push_back(extra);
                                }
                            }
                        }
                        model_rec = Some(rec);
                    }
                    Err(e) => notes.push(format!("no model fit from width {w}: {e}")),
                }
            }
            let p_hat = if attempts > 0 {
                failures as f64 / attempts as f64
            } else {
                0.0
            };
            // Near the target is where precision matters: with no failures seen yet, enough
            // attempts to tell the target apart from zero.
            needed = stats::attempts_for_precision(p_hat.max(gos_per_pasv).min(0.5), opts.precision);
            if attempts >= needed || started.elapsed() >= per_width || interrupt.is_cancelled() {
                break;
            }
        }
        server.stop(opts).await;
        let (ci_low, ci_high) = stats::clopper_pearson(failures, attempts, 0.05);
        let precision_met = attempts >= needed;
        if !precision_met {
            notes.push(format!(
                "width {w}: the time budget ({:.0} s per width) allowed {attempts} of the {needed} attempts the precision asks for",
                per_width.as_secs_f64()
            ));
        }
        results.push(WidthResult {
            width: w,
            range: range.to_string(),
            runs,
            seconds: started.elapsed().as_secs_f64(),
            attempts,
            failures,
            failure_rate: if attempts > 0 {
                failures as f64 / attempts as f64
            } else {
                0.0
            },
            ci_low,
            ci_high,
            model_blocking: policy.map(|(p, a, s)| plan::bounded_blocking(p, a, w, s)),
            attempts_needed: needed,
            precision_met,
            runs_dirs: dirs,
        });
    }
    results.sort_by_key(|r| r.width);
    let measured_width = results
        .iter()
        .find(|r| r.attempts > 0 && r.ci_high <= gos_per_pasv)
        .map(|r| r.width);
    let result = SweepResult {
        schema_version: crate::output::SCHEMA_VERSION,
        profile: profile.name.clone(),
        gos_per_session: opts.gos,
        gos_per_pasv,
        precision: opts.precision,
        widths: results,
        model: model_rec,
        measured_width,
        notes,
    };
    write(&opts.out, &result)?;
    Ok(result)
}

fn write(dir: &std::path::Path, r: &SweepResult) -> anyhow::Result<()> {
    crate::output::write_json(&dir.join(SWEEP_JSON), r)?;
    let path = dir.join(SWEEP_CSV);
    let mut w = csv::Writer::from_path(&path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "width_ports",
        "range",
        "runs",
        "seconds",
        "pasv_attempts",
        "failures",
        "failure_rate",
        "ci95_low",
        "ci95_high",
        "model_blocking",
        "attempts_needed",
        "precision_met",
    ])?;
    for x in &r.widths {
        w.write_record([
            x.width.to_string(),
            x.range.clone(),
            x.runs.to_string(),
            format!("{:.1}", x.seconds),
            x.attempts.to_string(),
            x.failures.to_string(),
            format!("{:.6}", x.failure_rate),
            format!("{:.6}", x.ci_low),
            format!("{:.6}", x.ci_high),
            x.model_blocking.map(|b| format!("{b:.6}")).unwrap_or_default(),
            x.attempts_needed.to_string(),
            x.precision_met.to_string(),
        ])?;
    }
    w.flush()?;
    crate::report::sweep_report(dir, r)?;
    Ok(())
}

/// Human text: the table and the verdict.
pub fn render(r: &SweepResult) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sweep {}: target ≤ {:.3}% of sessions (≤ {:.4}% per PASV)",
        r.profile,
        r.gos_per_session * 100.0,
        r.gos_per_pasv * 100.0
    );
    let _ = writeln!(
        out,
        "{:>6} {:>10} {:>9} {:>10} {:>21} {:>10} {:>9}",
        "width", "attempts", "failures", "rate", "95% interval", "model", "precise"
    );
    for x in &r.widths {
        let _ = writeln!(
            out,
            "{:>6} {:>10} {:>9} {:>9.4}% {:>9.4}%–{:>9.4}% {:>9} {:>9}",
            x.width,
            x.attempts,
            x.failures,
            x.failure_rate * 100.0,
            x.ci_low * 100.0,
            x.ci_high * 100.0,
            x.model_blocking
                .map(|b| format!("{:.4}%", b * 100.0))
                .unwrap_or_else(|| "—".into()),
            if x.precision_met { "yes" } else { "no" }
        );
    }
    match (&r.model, r.measured_width) {
        (Some(m), Some(w)) => {
            let _ = writeln!(
                out,
                "verdict: measured {w} ports meet the target; the model recommends {}",
                m.model_width
            );
        }
        (Some(m), None) => {
            let _ = writeln!(
                out,
                "verdict: no measured width meets the target; the model recommends {}",
                m.model_width
            );
        }
        (None, w) => {
            let _ = writeln!(out, "verdict: measured {w:?}; no model fit");
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// `ftpswarm sweep` from the command line: Ctrl-C stops after the current run, and whatever
/// was measured is written.
pub async fn sweep_cli(opts: SweepOptions) -> anyhow::Result<()> {
    let interrupt = CancellationToken::new();
    let on_signal = interrupt.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing the current run, then writing what was measured");
            on_signal.cancel();
        }
    });
    let result = sweep(&opts, interrupt).await?;
    print!("{}", render(&result));
    println!(
        "written: {} ({}, {}, report.md, charts/sweep.png)",
        opts.out.display(),
        SWEEP_CSV,
        SWEEP_JSON
    );
    Ok(())
}
