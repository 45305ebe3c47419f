//! `ftpswarm sweep`: the same load at several range widths, to judge the plan by measurement.
//! Per width: the share of sessions that failed (any step, a refused login included) and of
//! PASVs, each with a Clopper–Pearson 95% interval, beside what the simulator predicts from the
//! plan made on the widest width. The verdict is the smallest width whose session interval's
//! upper bound meets the target. `--search` bisects to it.

mod server;
pub mod stats;

use crate::event::FailureClass;
use crate::model::{self, PortPickPolicy};
use crate::plan::{self, PlanRequest, Recommendation};
use crate::profile::{PortRange, ProfileOverrides};
use crate::run::{run, RunOptions};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use server::SweepServer;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use crate::rundir::{SWEEP_CSV, SWEEP_JSON};

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
    /// Time for the whole sweep.
    pub budget: Duration,
    /// Relative standard error wanted on each width's session failure rate.
    pub precision: f64,
    /// Share of sessions allowed to fail.
    pub gos: f64,
    pub pick: Option<PortPickPolicy>,
    /// The server the model assumes, when its greeting does not name it.
    pub server: Option<crate::sim::ServerKind>,
    /// Also measure the plan's recommended width and 0.7 × it, once the widest width has
    /// given the plan: the check that the recommendation meets the target and a narrower
    /// range does not.
    pub verify_model: bool,
    /// Bisect to the smallest width meeting the target with 95% confidence, between the
    /// widest width given (assumed to meet it) and none.
    pub search: bool,
    pub out: PathBuf,
    /// Write into a non-empty `out`.
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WidthResult {
    pub width: u32,
    pub range: String,
    pub runs: u32,
    pub seconds: f64,
    /// Sessions that ended, and those with any failure (a refused login counts).
    pub sessions: u64,
    pub sessions_failed: u64,
    pub session_failure: f64,
    pub session_ci_low: f64,
    pub session_ci_high: f64,
    /// The simulator's prediction for this width, from the plan made on the widest width.
    pub predicted_session_failure: Option<f64>,
    pub attempts: u64,
    /// PASVs refused (425/500 …), granted outside the range, or whose data connection failed.
    pub failures: u64,
    pub failure_rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub model_blocking: Option<f64>,
    /// Sessions the precision asked for, and whether the time budget cut the width short.
    pub attempts_needed: u64,
    pub precision_met: bool,
    pub runs_dirs: Vec<String>,
    /// Why no session could be measured, when a run could not even start (e.g. the server
    /// refused the preflight login): the width then counts as 100% failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SweepResult {
    pub schema_version: u32,
    pub profile: String,
    pub gos_per_session: f64,
    pub gos_per_pasv: f64,
    pub precision: f64,
    pub widths: Vec<WidthResult>,
    /// The plan made from the widest width's first run (the least blocked).
    pub model: Option<Recommendation>,
    /// Smallest measured width whose session failure's 95% upper bound meets the target.
    pub measured_width: Option<u32>,
    /// Set when the sweep stopped early (Ctrl-C, a server that would not start): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    pub notes: Vec<String>,
}

const PASV_FAILURE_CLASSES: [FailureClass; 4] = [
    FailureClass::PasvRejected,
    FailureClass::PasvOutOfRange,
    FailureClass::DataConnectTimeout,
    FailureClass::DataConnectRefused,
];

/// What one width measured so far.
#[derive(Default)]
struct Tally {
    runs: u32,
    sessions: u64,
    sessions_failed: u64,
    attempts: u64,
    failures: u64,
    dirs: Vec<String>,
    error: Option<String>,
}

impl Tally {
    fn add(&mut self, s: &crate::summary::Summary) {
        // Sessions the run's end cut off reached no verdict.
        self.sessions += s.sessions.completed - s.sessions.interrupted.min(s.sessions.completed);
        self.sessions_failed += s.sessions.failed;
        self.attempts += s.transfers.attempted;
        self.failures += PASV_FAILURE_CLASSES
            .iter()
            .filter_map(|c| s.failures.get(c.as_str()))
            .sum::<u64>();
    }

    fn session_rate(&self) -> f64 {
        if self.sessions > 0 {
            self.sessions_failed as f64 / self.sessions as f64
        } else {
            0.0
        }
    }
}

/// Called with the sweep directory and the result so far after every width: the command
/// draws the chart and report.md with it, so a killed sweep keeps them too.
pub type OnSaved<'a> = &'a mut dyn FnMut(&std::path::Path, &SweepResult) -> anyhow::Result<()>;

/// The sweep as it goes: every width measured, the plan, and whether it stopped early.
struct Progress<'a> {
    opts: &'a SweepOptions,
    saved: OnSaved<'a>,
    profile_name: String,
    gos_per_pasv: f64,
    results: Vec<WidthResult>,
    model: Option<Recommendation>,
    plan_dir: Option<PathBuf>,
    notes: Vec<String>,
    partial: Option<String>,
    /// The profile asks for explicit FTPS: the embedded server offers it too.
    embedded_tls: bool,
}

impl Progress<'_> {
    fn result(&self) -> SweepResult {
        let mut widths = self.results.clone();
        widths.sort_by_key(|r| r.width);
        let measured_width = widths
            .iter()
            .find(|r| r.sessions > 0 && r.session_ci_high <= self.opts.gos)
            .map(|r| r.width);
        SweepResult {
            schema_version: crate::rundir::SCHEMA_VERSION,
            profile: self.profile_name.clone(),
            gos_per_session: self.opts.gos,
            gos_per_pasv: self.gos_per_pasv,
            precision: self.opts.precision,
            widths,
            model: self.model.clone(),
            measured_width,
            partial: self.partial.clone(),
            notes: self.notes.clone(),
        }
    }

    /// Writes sweep.csv and sweep.json with what is known now, then hands them on (the
    /// report), so a sweep that is killed keeps every width it finished.
    fn save(&mut self) -> anyhow::Result<SweepResult> {
        if let Some(dir) = &self.plan_dir {
            let widths: Vec<u32> = self.results.iter().map(|r| r.width).collect();
            match plan::predict_at(dir, &self.plan_request(), &widths) {
                Ok(predictions) => {
                    for (r, p) in self.results.iter_mut().zip(predictions) {
                        r.predicted_session_failure = Some(p.session_failure_at_range);
                        r.model_blocking = Some(p.pasv_failure);
                    }
                }
                Err(e) => tracing::warn!("no predictions for the measured widths: {e}"),
            }
        }
        let result = self.result();
        write(&self.opts.out, &result)?;
        (self.saved)(&self.opts.out, &result)?;
        Ok(result)
    }

    fn plan_request(&self) -> PlanRequest {
        PlanRequest {
            pick: self.opts.pick,
            server: self.opts.server,
            gos: plan::GradeOfService::PerSession(self.opts.gos),
            ..PlanRequest::default()
        }
    }
}

/// Measures one width: runs until the precision or the width's share of the budget.
async fn measure(
    opts: &SweepOptions,
    width: u32,
    per_width: Duration,
    interrupt: &CancellationToken,
    progress: &mut Progress<'_>,
) -> anyhow::Result<WidthResult> {
    let range = PortRange {
        min: opts.range_start,
        max: opts.range_start + (width - 1) as u16,
    };
    let server = SweepServer::start(opts, range, progress.embedded_tls).await?;
    // The embedded server's certificate is made at its start: each width's runs trust it.
    let ca_file = match server.certificate() {
        Some(c) => {
            let path = opts.out.join("embedded-cert.pem");
            std::fs::write(&path, &c.pem).with_context(|| format!("cannot write {}", path.display()))?;
            Some(path.display().to_string())
        }
        None => opts.overrides.ca_file.clone(),
    };
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut needed;
    loop {
        let dir = opts
            .out
            .join(format!("w{width:05}"))
            .join(format!("run{:03}", tally.runs));
        let run_opts = RunOptions {
            profile: opts.profile.clone(),
            overrides: ProfileOverrides {
                pasv_range: Some(range),
                ca_file: ca_file.clone(),
                ..opts.overrides.clone()
            },
            target: Some(server.url()),
            // A real server needs files to RETR; each run uploads its own and removes them.
            prepare: opts.server_cmd.is_some(),
            out: Some(dir.clone()),
            // A width measured twice after an error must be able to reuse its directory.
            force: true,
            report: false,
            ..RunOptions::default()
        };
        match run(run_opts, interrupt.clone()).await {
            Ok(report) => {
                tally.runs += 1;
                tally.dirs.push(dir.display().to_string());
                tally.add(&report.summary);
                if progress.plan_dir.is_none() && report.summary.passive.grants > 0 {
                    // The first run of the widest width gives the plan the rest is checked against.
                    match plan::plan_from_run(&dir, &progress.plan_request()) {
                        Ok(rec) => {
                            progress.model = Some(rec);
                            progress.plan_dir = Some(dir.clone());
                        }
                        Err(e) => progress.notes.push(format!("no plan from width {width}: {e}")),
                    }
                }
            }
            // A width where not even the preflight can log in is a result: every session fails.
            Err(e) if tally.sessions == 0 => {
                let message = crate::printable::error_line(&e);
                progress.notes.push(format!(
                    "width {width}: no run could start ({message}); counted as 100% failed"
                ));
                tally.error = Some(message);
                tally.sessions = 1;
                tally.sessions_failed = 1;
                break;
            }
            Err(e) => {
                progress.notes.push(format!(
                    "width {width}: run {} failed ({}); keeping the runs before it",
                    tally.runs,
                    crate::printable::error_line(&e)
                ));
                break;
            }
        }
        // Near the target is where precision matters: with no failures seen yet, enough
        // sessions to tell the target apart from zero.
        needed = stats::attempts_for_precision(tally.session_rate().max(opts.gos).min(0.5), opts.precision);
        if tally.sessions >= needed || started.elapsed() >= per_width || interrupt.is_cancelled() {
            break;
        }
    }
    server.stop(opts).await;
    needed = stats::attempts_for_precision(tally.session_rate().max(opts.gos).min(0.5), opts.precision);
    let precision_met = tally.sessions >= needed;
    if !precision_met && tally.error.is_none() {
        progress.notes.push(format!(
            "width {width}: the time budget ({:.0} s per width) allowed {} of the {needed} sessions the precision asks for",
            per_width.as_secs_f64(),
            tally.sessions
        ));
    }
    let (session_ci_low, session_ci_high) = stats::clopper_pearson(tally.sessions_failed, tally.sessions, 0.05);
    let (ci_low, ci_high) = stats::clopper_pearson(tally.failures, tally.attempts, 0.05);
    Ok(WidthResult {
        width,
        range: range.to_string(),
        runs: tally.runs,
        seconds: started.elapsed().as_secs_f64(),
        sessions: tally.sessions,
        sessions_failed: tally.sessions_failed,
        session_failure: tally.session_rate(),
        session_ci_low,
        session_ci_high,
        predicted_session_failure: None,
        attempts: tally.attempts,
        failures: tally.failures,
        failure_rate: if tally.attempts > 0 {
            tally.failures as f64 / tally.attempts as f64
        } else {
            0.0
        },
        ci_low,
        ci_high,
        model_blocking: None,
        attempts_needed: needed,
        precision_met,
        runs_dirs: tally.dirs,
        error: tally.error,
    })
}

/// Runs the sweep and writes `sweep.csv` and `sweep.json` into `out` after every width, then
/// calls `saved`, so whatever happens the widths measured are kept.
pub async fn sweep(
    opts: &SweepOptions,
    interrupt: CancellationToken,
    saved: OnSaved<'_>,
) -> anyhow::Result<SweepResult> {
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
    crate::rundir::refuse_non_empty(&opts.out, opts.force)?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;
    let profile = crate::profile::Profile::load_with_overrides(opts.profile.as_deref(), &opts.overrides)?;
    let files = profile.session.files_per_session.max(1);
    let mut widths = opts.widths.clone();
    // The widest first: its run is the least blocked, so it measures the offered load.
    widths.sort_unstable_by(|a, b| b.cmp(a));
    widths.dedup();
    let planned = if opts.search {
        // Bisection from the widest width down to one port.
        widths.len() + (f64::from(widths[0]).log2().ceil() as usize).max(1)
    } else {
        widths.len() + if opts.verify_model { 2 } else { 0 }
    };
    let per_width = opts.budget.div_f64(planned as f64);
    let mut progress = Progress {
        opts,
        saved,
        profile_name: profile.name.clone(),
        gos_per_pasv: model::per_pasv_target(opts.gos, files).unwrap_or(opts.gos),
        results: Vec::new(),
        model: None,
        plan_dir: None,
        notes: Vec::new(),
        partial: None,
        embedded_tls: opts.server_cmd.is_none() && profile.target.tls == Some(crate::profile::TlsMode::Explicit),
    };
    let outcome = sweep_widths(opts, widths, per_width, &interrupt, &mut progress).await;
    if let Err(e) = &outcome {
        progress.partial = Some(format!("stopped by an error: {}", crate::printable::error_line(e)));
    } else if interrupt.is_cancelled() {
        progress.partial = Some("interrupted".into());
    }
    let result = progress.save()?;
    outcome.map(|()| result)
}

fn verdict(r: &WidthResult, gos: f64) -> Option<bool> {
    if r.sessions == 0 {
        None
    } else if r.session_ci_high <= gos {
        Some(true)
    } else if r.session_ci_low > gos {
        Some(false)
    } else {
        None
    }
}

async fn sweep_widths(
    opts: &SweepOptions,
    widths: Vec<u32>,
    per_width: Duration,
    interrupt: &CancellationToken,
    progress: &mut Progress<'_>,
) -> anyhow::Result<()> {
    let measured = |p: &Progress, w: u32| p.results.iter().any(|r| r.width == w);
    let mut queue: VecDeque<u32> = widths.iter().copied().collect();
    // Search: (largest width known to miss, smallest known to meet).
    let mut bracket = (0u32, widths[0]);
    loop {
        let next = match queue.pop_front() {
            Some(w) => Some(w),
            None if opts.search && bracket.1 - bracket.0 > 1 => Some(bracket.0 + (bracket.1 - bracket.0) / 2),
            None => None,
        };
        let Some(w) = next else { break };
        if measured(progress, w) {
            continue;
        }
        if interrupt.is_cancelled() {
            progress.notes.push(format!("interrupted before width {w}"));
            break;
        }
        let had_plan = progress.model.is_some();
        let result = measure(opts, w, per_width, interrupt, progress).await?;
        if opts.search {
            match verdict(&result, opts.gos) {
                Some(true) if w < bracket.1 => bracket.1 = w,
                // Inconclusive counts as a miss: the search must end on a width that met the
                // target with 95% confidence.
                Some(false) | None if w > bracket.0 && w < bracket.1 => bracket.0 = w,
                _ => {}
            }
        }
        progress.results.push(result);
        if !had_plan {
            if let Some(rec) = &progress.model {
                if opts.verify_model || opts.search {
                    let narrow = ((f64::from(rec.model_width) * 0.7).round() as u32).max(1);
                    for extra in [rec.model_width, narrow] {
                        let fits = u32::from(opts.range_start) + extra - 1 <= 65535;
                        if fits && !queue.contains(&extra) && !measured(progress, extra) && extra <= widths[0] * 4 {
                            queue.push_back(extra);
                        }
                    }
                }
            }
        }
        progress.save()?;
    }
    if opts.search {
        let (lo, hi) = bracket;
        progress.notes.push(if hi - lo <= 1 {
            format!("search: {hi} ports is the smallest width that met the target with 95% confidence ({lo} did not)")
        } else {
            format!("search: stopped between {lo} (missed or unsure) and {hi} (met) ports")
        });
    }
    Ok(())
}

fn write(dir: &std::path::Path, r: &SweepResult) -> anyhow::Result<()> {
    crate::rundir::write_json(&dir.join(SWEEP_JSON), r)?;
    let path = dir.join(SWEEP_CSV);
    let mut w = csv::Writer::from_path(&path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "width_ports",
        "range",
        "runs",
        "seconds",
        "sessions",
        "sessions_failed",
        "session_failure",
        "session_ci95_low",
        "session_ci95_high",
        "predicted_session_failure",
        "pasv_attempts",
        "pasv_failures",
        "pasv_failure",
        "pasv_ci95_low",
        "pasv_ci95_high",
        "predicted_pasv_failure",
        "sessions_needed",
        "precision_met",
        "error",
    ])?;
    let opt = |x: Option<f64>| x.map(|b| format!("{b:.6}")).unwrap_or_default();
    for x in &r.widths {
        w.write_record([
            x.width.to_string(),
            x.range.clone(),
            x.runs.to_string(),
            format!("{:.1}", x.seconds),
            x.sessions.to_string(),
            x.sessions_failed.to_string(),
            format!("{:.6}", x.session_failure),
            format!("{:.6}", x.session_ci_low),
            format!("{:.6}", x.session_ci_high),
            opt(x.predicted_session_failure),
            x.attempts.to_string(),
            x.failures.to_string(),
            format!("{:.6}", x.failure_rate),
            format!("{:.6}", x.ci_low),
            format!("{:.6}", x.ci_high),
            opt(x.model_blocking),
            x.attempts_needed.to_string(),
            x.precision_met.to_string(),
            x.error.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Human text: the table and the verdict.
pub fn render(r: &SweepResult) -> String {
    use std::fmt::Write;
    let pct = |x: f64| format!("{:.3}%", x * 100.0);
    let mut out = String::new();
    if let Some(reason) = &r.partial {
        let _ = writeln!(out, "partial sweep: {reason}");
    }
    let _ = writeln!(
        out,
        "sweep {}: target ≤ {} of sessions failing (≤ {:.4}% of PASVs)",
        r.profile,
        pct(r.gos_per_session),
        r.gos_per_pasv * 100.0
    );
    let _ = writeln!(
        out,
        "{:>6} {:>9} {:>8} {:>9} {:>19} {:>10} {:>9} {:>9} {:>10} {:>8}",
        "width", "sessions", "failed", "rate", "95% interval", "predicted", "PASVs", "rate", "predicted", "precise"
    );
    for x in &r.widths {
        let _ = writeln!(
            out,
            "{:>6} {:>9} {:>8} {:>9} {:>9}–{:>9} {:>10} {:>9} {:>9} {:>10} {:>8}",
            x.width,
            x.sessions,
            x.sessions_failed,
            pct(x.session_failure),
            pct(x.session_ci_low),
            pct(x.session_ci_high),
            x.predicted_session_failure.map(pct).unwrap_or_else(|| "—".into()),
            x.attempts,
            pct(x.failure_rate),
            x.model_blocking.map(pct).unwrap_or_else(|| "—".into()),
            if x.precision_met { "yes" } else { "no" }
        );
    }
    match (&r.model, r.measured_width) {
        (Some(m), Some(w)) => {
            let _ = writeln!(
                out,
                "verdict: measured {w} ports meet the target; the plan recommends {}",
                m.model_width
            );
        }
        (Some(m), None) => {
            let _ = writeln!(
                out,
                "verdict: no measured width meets the target; the plan recommends {}",
                m.model_width
            );
        }
        (None, w) => {
            let _ = writeln!(out, "verdict: measured {w:?}; no plan");
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
