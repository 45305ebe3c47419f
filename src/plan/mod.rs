//! `ftpswarm plan`: from an observed run (or a profile alone) to a passive range width that
//! meets a grade of service at a target load, with its reasoning, the rules of thumb side by
//! side, a concrete range and paste-ready snippets.
//!
//! The chain: the run directory is replayed by the simulator ([`crate::sim`]) against the
//! server's behaviour (identified from its greeting, measured by `probe`, calibrated on the
//! run's own refusals); the load is scaled to the target by copies of the run; the
//! recommendation is the smallest width whose predicted share of sessions failing at the
//! range meets the grade of service. The analytic models (Little's law with Erlang B, Engset
//! or the random-try chain) are computed beside it as a cross-check.

pub mod analytic;
pub mod fit;
pub mod observed;
pub mod placement;
mod request;
pub mod snippets;
pub mod text;

pub use analytic::{bounded_blocking, model_policy, AnalyticCheck, TargetLoad};
use request::{input, server_model, MAX_WIDTH};
pub use request::{
    GradeOfService, PlanError, PlanRequest, Probed, WhatIf, DEFAULT_GOS, DEFAULT_GROWTH, DEFAULT_SEED, DEFAULT_WINDOW,
};
pub use text::{reasoning, render, Reason};

use crate::model::{self, PortPickPolicy};
use crate::port_range::PortRange;
use crate::rundir::SCHEMA_VERSION;
use crate::sim::server::{HoldEnd, HoldStart, PickOrder, ServerKind, ServerModel, Source, Sourced};
use crate::sim::{Prediction, Predictor, Trace};
use fit::Fit;
use serde::{Deserialize, Serialize};
use snippets::Snippet;

pub use crate::rundir::RECOMMENDATION;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanInputs {
    pub users: f64,
    pub parallel: u32,
    pub files_per_session: u32,
    /// Control connections at the target: users × parallel × growth.
    pub control_connections: f64,
    /// Control connections the run was configured with (its sessions × parallel, or the open
    /// model's peak): the load the replay copies.
    pub run_control_connections: f64,
    /// Target over run: how many copies of the run the simulator replays.
    pub scale: f64,
    pub growth: f64,
    pub gos_per_session: f64,
    pub gos_per_pasv: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleOfThumb {
    pub name: String,
    pub width: u32,
    /// Predicted by the simulator at this width.
    pub blocking_per_pasv: f64,
    pub session_failure: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PredictorInfo {
    /// `replay of <dir>` or `synthetic sessions from profile <name>`.
    pub method: String,
    pub replications: u32,
    /// PASVs replayed per replication, and the simulator's speed on them.
    pub pasvs_per_replication: u64,
    pub pasvs_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recommendation {
    pub schema_version: u32,
    /// `run <dir>` or `what-if <profile>`.
    pub source: String,
    pub inputs: PlanInputs,
    /// What the server does with its range, each input measured, known or assumed.
    pub server: ServerModel,
    pub predictor: PredictorInfo,
    pub fit: Option<Fit>,
    /// Ports the simulator needs, before adding those held by other processes.
    pub model_width: u32,
    pub held_by_others: u32,
    /// The width to configure.
    pub width: u32,
    pub range: String,
    /// The simulator's prediction at `model_width`.
    pub prediction: Prediction,
    /// Predicted per-PASV and per-session failure (as the targets count them) at the width.
    pub blocking_per_pasv: f64,
    pub session_failure: f64,
    /// Sessions failing in the run for reasons no width changes (timeouts, transfer errors).
    pub session_failure_otherwise: f64,
    /// Predictions around the recommendation, narrowest first: the curve charts draw and the
    /// widths a sweep checks (0.7 × the width among them).
    pub predictions: Vec<Prediction>,
    /// The analytic models' view of the same load.
    pub analytic: AnalyticCheck,
    pub rules_of_thumb: Vec<RuleOfThumb>,
    pub warnings: Vec<String>,
    pub server_snippets: Vec<Snippet>,
    pub firewall_snippets: Vec<Snippet>,
}

/// The analytic policy closest to a pick order.
fn analytic_pick(p: PickOrder) -> PortPickPolicy {
    match p {
        PickOrder::RandomTries { tries } => PortPickPolicy::RandomTries { tries },
        PickOrder::AnyFree | PickOrder::RandomStartThenScan => PortPickPolicy::Scan,
    }
}

/// Which server a run drove: `--server`, the embedded one, or what its greeting names.
fn identify(req: &PlanRequest, manifest: &crate::rundir::Manifest) -> ServerKind {
    req.server.unwrap_or(if manifest.embedded_server {
        ServerKind::Embedded
    } else {
        manifest
            .server_greeting
            .as_deref()
            .map_or(ServerKind::Unknown, ServerKind::from_greeting)
    })
}

/// The grade of service as both targets.
fn targets(gos: GradeOfService, files: u32) -> Result<(f64, f64), PlanError> {
    Ok(match gos {
        GradeOfService::PerSession(g) => (
            g,
            model::per_pasv_target(g, files).ok_or_else(|| PlanError::Model(format!("bad session target {g}")))?,
        ),
        GradeOfService::PerPasv(g) => (model::session_failure(g, files).unwrap_or(g), g),
    })
}

/// Everything known about the load before the simulator runs.
struct Setup {
    source: String,
    method: String,
    trace: Trace,
    model: ServerModel,
    inputs: PlanInputs,
    /// Files per session in the trace: when the target's differ, session failure is derived
    /// from the predicted PASV failure instead of counted per replayed session.
    trace_files: u32,
    fit: Option<Fit>,
    analytic: AnalyticCheck,
    held_by_others: u32,
    preferred_start: Option<u16>,
    control_port: u16,
    warnings: Vec<String>,
}

/// Session failure as the target counts it, from a prediction: in the run's busy stretches.
/// With other files per session than the run's, from the PASV failure (assuming
/// independence), raised by the run's own busy-to-average ratio.
fn session_failure(p: &Prediction, inputs: &PlanInputs, trace_files: u32) -> f64 {
    if inputs.files_per_session == trace_files {
        p.session_failure_busy
    } else {
        let busy = if p.session_failure_at_range > 0.0 {
            p.session_failure_busy / p.session_failure_at_range
        } else {
            1.0
        };
        (model::session_failure(p.pasv_failure, inputs.files_per_session).unwrap_or(1.0) * busy).min(1.0)
    }
}

fn meets(p: &Prediction, gos: GradeOfService, inputs: &PlanInputs, trace_files: u32) -> bool {
    match gos {
        GradeOfService::PerSession(g) => session_failure(p, inputs, trace_files) <= g,
        GradeOfService::PerPasv(g) => p.pasv_failure <= g,
    }
}

/// The widths the plan predicts, in order: from a third of the planned width to twice it
/// (at least 4 more), in about 40 steps, always with the width itself, one port fewer and 0.7 ×
/// it (the widths a sweep checks), and the widths asked for, less the ports other processes
/// hold.
fn curve_widths(model_width: u32, also_predict: &[u32], held_by_others: u32) -> Vec<u32> {
    let (from, to) = (
        (model_width / 3).max(1),
        model_width.saturating_mul(2).max(model_width.saturating_add(4)),
    );
    let step = ((to - from) / 40).max(1);
    let mut grid: Vec<u32> = (from..=to).step_by(step as usize).collect();
    grid.extend([
        model_width,
        model_width.saturating_sub(1).max(1),
        ((f64::from(model_width) * 0.7).round() as u32).max(1),
    ]);
    grid.extend(
        also_predict
            .iter()
            .map(|w| w.saturating_sub(held_by_others).clamp(1, MAX_WIDTH)),
    );
    grid.sort_unstable();
    grid.dedup();
    grid
}

/// Whether the replay needs more than twice the ports the analytic model names: the load's
/// bursts, which the analytic model averages away, are then what sizes the range.
fn beyond_the_analytic_model(analytic_width: u32, model_width: u32) -> bool {
    f64::from(analytic_width) * 2.0 < f64::from(model_width)
}

/// `count` per second of `elapsed_s`; none in no time at all.
fn per_second(count: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        count as f64 / elapsed_s
    } else {
        0.0
    }
}

fn recommend(setup: Setup, req: &PlanRequest) -> Result<Recommendation, PlanError> {
    let Setup {
        source,
        method,
        trace,
        model,
        inputs,
        trace_files,
        fit,
        analytic,
        held_by_others,
        preferred_start,
        control_port,
        mut warnings,
    } = setup;
    let replications = req
        .replications
        .unwrap_or_else(|| crate::sim::default_replications(inputs.scale));
    let started = std::time::Instant::now();
    let stalls = model.one_event_loop.value;
    let predictor = Predictor::new(&trace, model, inputs.scale, replications, req.seed);
    let mut simulated = 0u64;
    let mut at = |w: u32| {
        simulated += predictor.attempts() as u64 * u64::from(replications);
        predictor.at(w)
    };
    // Doubling, then bisection, to the smallest width meeting the target.
    let ok = |p: &Prediction| meets(p, req.gos, &inputs, trace_files);
    let (mut lo, mut hi) = (0u32, 1u32);
    let mut best = at(hi);
    while !ok(&best) {
        if hi >= MAX_WIDTH {
            return Err(PlanError::Model(format!(
                "no width up to {MAX_WIDTH} meets the target at this load (at {MAX_WIDTH} ports: {:.3}% of sessions fail at the range)",
                best.session_failure_busy * 100.0
            )));
        }
        lo = hi;
        hi = hi.saturating_mul(2).min(MAX_WIDTH);
        best = at(hi);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let p = at(mid);
        if ok(&p) {
            (hi, best) = (mid, p);
        } else {
            lo = mid;
        }
    }
    let model_width = hi;
    let grid = curve_widths(model_width, &req.also_predict, held_by_others);
    let rules: Vec<(String, u32)> = {
        let c = inputs.control_connections;
        let pasv_per_s = analytic.target.pasv_per_s;
        let w = |x: f64| {
            if x.is_finite() {
                x.ceil().clamp(1.0, f64::from(MAX_WIDTH)) as u32
            } else {
                1
            }
        };
        vec![
            ("one port per concurrent transfer".into(), w(c)),
            (
                "FileZilla: more ports than transfers in 4 minutes".into(),
                w(pasv_per_s * 240.0),
            ),
            ("Pure-FTPd: clients at most width / 2".into(), w(2.0 * c)),
        ]
    };
    let predictions: Vec<Prediction> = grid.iter().map(|&w| at(w)).collect();
    let rules_of_thumb = rules
        .into_iter()
        .map(|(name, width)| {
            let p = at(width.saturating_sub(held_by_others).max(1));
            RuleOfThumb {
                name,
                width,
                blocking_per_pasv: p.pasv_failure,
                session_failure: session_failure(&p, &inputs, trace_files),
            }
        })
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    if analytic.target.pasv_per_s * 240.0 > f64::from(model_width) * 10.0 {
        warnings.push(
            "the 4-minute rule assumes every port sits in TIME_WAIT for 240 s (Windows); \
             with SO_REUSEADDR servers it overstates the need by far"
                .into(),
        );
    }
    if let Some(w) = analytic.width {
        if beyond_the_analytic_model(w, model_width) {
            warnings.push(format!(
                "the analytic model ({}) would recommend only {w} ports: it assumes independent PASVs, \
                 and this load comes in bursts the replay keeps",
                analytic.policy
            ));
        }
    }
    warnings.extend(text::stall_extrapolation_note(&trace, stalls, model_width));
    let width = model_width + held_by_others;
    let placement = placement::place_range(width, preferred_start, req.server_os).map_err(PlanError::Model)?;
    warnings.extend(placement.warnings.iter().cloned());
    let range: PortRange = placement.range;
    let otherwise = {
        let c = predictor.counts(model_width);
        if c.sessions > 0.0 {
            c.sessions_failed_otherwise / c.sessions
        } else {
            0.0
        }
    };
    if otherwise > 0.0 {
        warnings.push(format!(
            "{:.2}% of the run's sessions failed for reasons no range width changes (see the run's failures); \
             the grade of service counts only the sessions the range makes fail",
            otherwise * 100.0
        ));
    }
    Ok(Recommendation {
        schema_version: SCHEMA_VERSION,
        source,
        server: predictor.model.clone(),
        predictor: PredictorInfo {
            method,
            replications,
            pasvs_per_replication: predictor.attempts() as u64,
            pasvs_per_second: per_second(simulated, elapsed),
        },
        fit,
        model_width,
        held_by_others,
        width,
        range: range.to_string(),
        blocking_per_pasv: best.pasv_failure,
        session_failure: session_failure(&best, &inputs, trace_files),
        session_failure_otherwise: otherwise,
        prediction: best,
        predictions,
        inputs,
        analytic,
        rules_of_thumb,
        warnings,
        server_snippets: snippets::server_snippets(range),
        firewall_snippets: snippets::firewall_snippets(range, control_port),
    })
}

/// The hold per PASV to plan with. The server's own count of listening ports wins when it is
/// clearly more than the client saw held (vsftpd keeps listeners open well past the transfer):
/// Little's law turns it into a hold per PASV. Returns the hold and, when the server's figure
/// was used, a note saying so.
pub fn effective_hold(fit: &Fit) -> (f64, Option<String>) {
    match fit.server_listening {
        Some(listening) if listening > fit.offered_erlangs * 1.1 && fit.pasv_per_s > 0.0 => {
            let hold = listening / fit.pasv_per_s;
            let note = format!(
                "the server kept {listening:.2} ports listening on average, more than the {:.2} the client saw held: \
                 the analytic check plans with the server's figure (hold {:.2} ms per PASV instead of {:.2} ms)",
                fit.offered_erlangs,
                hold * 1e3,
                fit.mean_hold_s * 1e3
            );
            (hold, Some(note))
        }
        _ => (fit.mean_hold_s, None),
    }
}

fn control_port_of(url: &str) -> u16 {
    crate::target::Target::parse(url).map_or(21, |t| t.port)
}

/// The longest stretch of a run a plan reads (see [`observed::busiest_span`]).
pub const PLAN_SPAN_US: u64 = 300_000_000;

/// Plans from a run directory.
pub fn plan_from_run(dir: &std::path::Path, req: &PlanRequest) -> Result<Recommendation, PlanError> {
    recommend(prepare_run(dir, req)?, req)
}

/// Plans from a run directory and stores the plan as the run's `recommendation.json`: the
/// one place that file is written (by `run` at its end, `plan --run`, and `report` when it
/// is missing). A failed write comes back beside the plan, which is still worth printing.
pub fn plan_and_store(
    dir: &std::path::Path,
    req: &PlanRequest,
) -> Result<(Recommendation, Option<crate::rundir::OutputError>), PlanError> {
    let rec = plan_from_run(dir, req)?;
    let written = crate::rundir::write_json(&dir.join(RECOMMENDATION), &rec).err();
    Ok((rec, written))
}

/// The simulator's predictions for a run's load (scaled as `req` asks) at given widths:
/// what `sweep` draws beside its measurements.
pub fn predict_at(dir: &std::path::Path, req: &PlanRequest, widths: &[u32]) -> Result<Vec<Prediction>, PlanError> {
    let setup = prepare_run(dir, req)?;
    let replications = req
        .replications
        .unwrap_or_else(|| crate::sim::default_replications(setup.inputs.scale));
    let predictor = Predictor::new(&setup.trace, setup.model, setup.inputs.scale, replications, req.seed);
    Ok(widths.iter().map(|&w| predictor.at(w)).collect())
}

fn prepare_run(dir: &std::path::Path, req: &PlanRequest) -> Result<Setup, PlanError> {
    req.validate()?;
    // A long run is planned on its busiest stretch: the replay of an hour is no better a
    // predictor than that of its busiest minutes, and would need memory in proportion.
    observed::check(dir)?;
    let span = observed::busiest_span(dir, PLAN_SPAN_US).map_err(observed::ObservedError::from)?;
    let obs = observed::read_within(dir, span)?;
    let fit =
        fit::fit(&obs, req.window, req.hold_policy).map_err(|m| PlanError::Model(format!("{}: {m}", dir.display())))?;
    let mut trace = Trace::read_within(dir, span).map_err(observed::ObservedError::from)?;
    trace.run_width = obs.head.expected_range.map(|r| r.width());
    trace.time_waits_at_start = obs.head.manifest.sockets_before_load.and_then(|s| s.time_wait);
    trace.listening = observed::listener_ticks(
        &obs.head.timeline,
        obs.head.manifest.sockets_before_load.map_or(0, |s| s.listen),
        span,
    );
    // The host's CPU tells how holds grow at more sessions only when the server used it too:
    // when the sampler saw the server's own listeners.
    if !trace.listening.is_empty() {
        trace.host_cpu_busy = observed::host_cpu_busy(&obs.head.timeline, span);
        trace.server_cpu_cores = observed::server_cpu_cores(&obs.head.timeline, span);
        // So does the host's TIME_WAIT cap, which a fast load reaches within its first minute:
        // the run's record of it, or (older runs, which ran here) this host's.
        let recorded = obs.head.manifest.sockets_before_load.and_then(|s| s.host_time_wait_cap);
        trace.time_wait_cap = recorded.or_else(crate::observe::sockdiag::host_time_wait_cap);
    }
    let mut warnings = obs.head.warnings.clone();
    if let Some((from, to)) = span {
        warnings.push(format!(
            "the run is longer than {:.0} s: planned on its busiest {:.0} s ({:.0}–{:.0} s, {} of its {} transfers)",
            PLAN_SPAN_US as f64 / 1e6,
            (to - from) as f64 / 1e6,
            from as f64 / 1e6,
            to as f64 / 1e6,
            obs.attempts.len(),
            obs.head.summary.transfers.attempted
        ));
    }
    warnings.extend(trace.warnings.iter().cloned());
    warnings.extend(text::time_wait_cap_note(
        trace.time_wait_cap,
        trace.server_closes_per_s(),
    ));
    let (run_parallel, run_files) = obs
        .head
        .profile
        .as_ref()
        .map(|p| (p.session.parallel_connections, p.session.files_per_session.max(1)))
        .unwrap_or((1, 1));
    let parallel = req.parallel.unwrap_or(run_parallel);
    let files = req.files.unwrap_or(run_files);
    let run_users = observed::run_sessions(&obs);
    let users = req.users.map_or(run_users, f64::from);
    let run_connections = run_users * f64::from(run_parallel.max(1));
    let control_connections = users * f64::from(parallel) * req.growth;
    let (gos_per_session, gos_per_pasv) = targets(req.gos, files)?;

    let kind = identify(req, &obs.head.manifest);
    let mut model = server_model(kind, req);
    // An unidentified server that the ledger saw re-grant a port while our transfer on it
    // ran frees ports at accept. Held through the transfer tells less: it may hold until the
    // session's next command, so the assumed (longest) hold stays.
    if kind == ServerKind::Unknown
        && model.hold_end.source.is_assumed()
        && obs.release_policy == crate::summary::ledger::ReleasePolicy::AtAccept
    {
        model.hold_end = Sourced::new(
            HoldEnd::DataConnected,
            Source::Measured("the run's ledger: the server re-granted a port while our transfer on it ran".into()),
        );
    }
    if let Some(r) = obs.head.expected_range {
        let notes = crate::sim::calibrate::calibrate(&trace, &mut model, r.width(), req.seed);
        warnings.extend(notes);
        for overlap in placement::ephemeral_overlaps_on(r, req.server_os) {
            warnings.push(format!(
                "the run's passive range {r} overlaps the {overlap} ephemeral range"
            ));
        }
    } else {
        warnings.push(
            "the run had no --pasv-range, so its refusals could not calibrate the server's release lag and bind race"
                .into(),
        );
    }
    if kind == ServerKind::Unknown {
        warnings.push(
            "the server is not one ftpswarm knows (from its greeting): the plan assumes the safe side of every behaviour; \
             `ftpswarm probe` measures them, or --server names the server"
                .into(),
        );
    }
    let (hold_s, server_note) = effective_hold(&fit);
    warnings.extend(server_note);
    warnings.extend(text::ftps_note(
        obs.head.summary.latency_us.get("data_tls"),
        hold_s,
        model.hold_end.value,
    ));
    if fit.little_disagreement > 0.25 {
        warnings.push(format!(
            "Little's law check: λ·E[H] = {:.3} erlangs but ports were held {:.3} on average in the busiest window \
             ({:.0}% apart); the load was not steady",
            fit.offered_erlangs,
            fit.time_average_held,
            fit.little_disagreement * 100.0
        ));
    }
    let scale = control_connections / run_connections.max(1e-9);
    warnings.extend(text::scaling_warning(scale));
    let server_loop = trace.server_cpu_cores.filter(|_| model.one_event_loop.value);
    warnings.extend(text::contention_note(
        trace.host_cpu_busy,
        server_loop,
        scale,
        trace.active_share,
    ));
    // The analytic check scales the busiest window's rate per configured connection.
    let pasv_per_s = fit.pasv_per_s / run_connections.max(1e-9) * control_connections;
    let sources = control_connections.ceil().max(1.0) as u32;
    let analytic = analytic::check(
        analytic_pick(model.pick.value),
        pasv_per_s,
        hold_s,
        sources,
        gos_per_pasv,
    );
    Ok(Setup {
        source: format!("run {}", dir.display()),
        method: format!("replay of the run's {} PASVs", trace.attempts.len()),
        trace,
        model,
        inputs: PlanInputs {
            users,
            parallel,
            files_per_session: files,
            control_connections,
            run_control_connections: run_connections,
            scale,
            growth: req.growth,
            gos_per_session,
            gos_per_pasv,
        },
        trace_files: run_files,
        held_by_others: obs
            .head
            .manifest
            .sockets_before_load
            .map_or(fit.held_by_others, |s| s.listen + s.established),
        fit: Some(fit),
        analytic,
        preferred_start: req.range_start.or(obs.head.expected_range.map(|r| r.min)),
        // The embedded server's port was a free one picked for the run; a real server keeps its.
        control_port: if obs.head.manifest.embedded_server {
            21
        } else {
            control_port_of(&obs.head.manifest.target)
        },
        warnings,
    })
}

/// Plans from a profile and an assumed hold time, with no run at all: the simulator replays
/// synthetic sessions of the profile's shape.
pub fn plan_what_if(w: &WhatIf, req: &PlanRequest) -> Result<Recommendation, PlanError> {
    req.validate()?;
    if w.hold.is_zero() {
        return Err(input("--hold", "is 0; allowed: a positive duration such as \"40ms\""));
    }
    let p = &w.profile;
    let parallel = req.parallel.unwrap_or(p.session.parallel_connections);
    let files = req.files.unwrap_or(p.session.files_per_session.max(1));
    let hold_s = w.hold.as_secs_f64();
    let per_file_s = w.transfer_time.unwrap_or(w.hold).as_secs_f64().max(hold_s);
    let think_s = p.session.think_time.0.as_secs_f64();
    let closed = p.load.model == crate::profile::LoadModel::Closed;
    // Open model: sessions in flight = arrival rate × session time (Little's law again).
    let session_s = f64::from(files) / f64::from(parallel.max(1)) * (per_file_s + think_s);
    let run_users = if closed {
        f64::from(p.load.sessions)
    } else {
        p.load.rate * session_s
    };
    let users = req.users.map_or(run_users, f64::from);
    let control_connections = users * f64::from(parallel) * req.growth;
    let (gos_per_session, gos_per_pasv) = targets(req.gos, files)?;
    // About 50,000 PASVs: enough for a 0.1% target to be seen 50 times.
    let pasvs_per_s = control_connections / (per_file_s + think_s);
    let duration_s = (50_000.0 / pasvs_per_s.max(1e-9))
        .clamp(10.0, 600.0)
        .max(session_s * 5.0);
    let load = crate::sim::synthetic::ProfileLoad {
        sessions: closed.then_some(((users * req.growth).ceil() as u32).max(1)),
        rate: p.load.rate * users / run_users.max(1e-9) * req.growth,
        parallel,
        files,
        hold_s,
        per_file_s,
        think_s,
        login_s: 0.0,
        ramp_up_s: p.ramp_up().as_secs_f64(),
        duration_s,
    };
    let trace = crate::sim::synthetic::trace_for(&load, req.seed);
    let kind = req.server.unwrap_or(ServerKind::Unknown);
    let mut model = server_model(kind, req);
    model.hold_start = Sourced::new(HoldStart::PasvSent, Source::Given);
    model.hold_end = Sourced::new(HoldEnd::DataConnected, Source::Given);
    model.release_lag_us = Sourced::new(req.release_lag.map_or(0.0, |l| l.as_secs_f64() * 1e6), Source::Given);
    let per_connection = 1.0 / (per_file_s + think_s);
    let pasv_per_s = per_connection * control_connections;
    let sources = control_connections.ceil().max(1.0) as u32;
    let analytic = analytic::check(
        analytic_pick(model.pick.value),
        pasv_per_s,
        hold_s,
        sources,
        gos_per_pasv,
    );
    let mut warnings = vec![
        "a what-if plan replays independent synthetic sessions; measured runs come in bursts that need more ports: \
         confirm with a run (`ftpswarm run`, then `ftpswarm plan --run`)"
            .to_string(),
    ];
    if kind == ServerKind::Unknown {
        warnings.push("no --server: the plan assumes the safe side of every server behaviour".into());
    }
    recommend(
        Setup {
            source: format!("what-if {}", p.name),
            method: format!("synthetic sessions from profile {}", p.name),
            trace,
            model,
            inputs: PlanInputs {
                users,
                parallel,
                files_per_session: files,
                control_connections,
                run_control_connections: control_connections,
                scale: 1.0,
                growth: req.growth,
                gos_per_session,
                gos_per_pasv,
            },
            trace_files: files,
            fit: None,
            analytic,
            held_by_others: 0,
            preferred_start: req.range_start.or(p.target.pasv_range.map(|r| r.min)),
            control_port: p.target.url.as_deref().map_or(21, control_port_of),
            warnings,
        },
        req,
    )
}

#[cfg(test)]
mod tests;
