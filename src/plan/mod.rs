//! `ftpswarm plan`: from an observed run (or a profile alone) to a passive range width that
//! meets a grade of service at a target load, with its reasoning, the rules of thumb side by
//! side, a concrete range and paste-ready snippets.
//!
//! The chain: the run gives λ (PASV attempts/s in the busiest window) per logged-in control
//! connection and E[H] (hold under the server's release policy); the target gives the number
//! of control connections (users × parallel) and the growth factor; A = λ·E[H] at the target;
//! the server's port-pick policy picks the loss model; the per-session target becomes a
//! per-PASV target; the model's inverse gives the width, capped by what the control
//! connections can ever hold, plus the ports other processes hold in the range.

pub mod cli;
pub mod fit;
pub mod observed;
pub mod placement;
pub mod snippets;
mod text;

pub use text::render;

use crate::model::{self, PortPickPolicy};
use crate::output::SCHEMA_VERSION;
use crate::profile::{PortRange, Profile};
use fit::{Fit, HoldPolicy};
use serde::{Deserialize, Serialize};
use snippets::Snippet;
use std::time::Duration;

pub const RECOMMENDATION: &str = "recommendation.json";

/// The grade of service: how often a PASV may fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GradeOfService {
    /// Share of sessions allowed to see at least one failed PASV.
    PerSession(f64),
    PerPasv(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    /// Concurrent sessions at the target; default: what the run had.
    pub users: Option<u32>,
    pub parallel: Option<u32>,
    pub files: Option<u32>,
    pub gos: GradeOfService,
    pub growth: f64,
    pub pick: Option<PortPickPolicy>,
    pub hold_policy: Option<HoldPolicy>,
    pub window: Duration,
    pub range_start: Option<u16>,
}

impl Default for PlanRequest {
    fn default() -> Self {
        PlanRequest {
            users: None,
            parallel: None,
            files: None,
            gos: GradeOfService::PerSession(0.01),
            growth: 1.0,
            pick: None,
            hold_policy: None,
            window: Duration::from_secs(10),
            range_start: None,
        }
    }
}

/// What a what-if plan needs instead of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIf {
    pub profile: Profile,
    /// Mean time a port is held per PASV.
    pub hold: Duration,
    /// Mean time one file takes on a connection (transfer plus protocol); default: the hold.
    pub transfer_time: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{flag}: {message}")]
    Input { flag: &'static str, message: String },
    #[error(transparent)]
    Observed(#[from] observed::ObservedError),
    #[error("{0}")]
    Model(String),
}

fn input(flag: &'static str, message: impl Into<String>) -> PlanError {
    PlanError::Input {
        flag,
        message: message.into(),
    }
}

impl PlanRequest {
    pub fn validate(&self) -> Result<(), PlanError> {
        let (flag, g) = match self.gos {
            GradeOfService::PerSession(g) => ("--gos", g),
            GradeOfService::PerPasv(g) => ("--gos-per-pasv", g),
        };
        if !(g > 0.0 && g < 1.0) {
            return Err(input(
                flag,
                format!("is {g}; allowed: more than 0 and less than 1 (0.01 = 1%)"),
            ));
        }
        if !(self.growth.is_finite() && self.growth > 0.0 && self.growth <= 1000.0) {
            return Err(input(
                "--growth",
                format!("is {}; allowed: more than 0, at most 1000 (1.5 = +50%)", self.growth),
            ));
        }
        if self.users == Some(0) {
            return Err(input("--users", "is 0; allowed: 1 or more concurrent sessions"));
        }
        if self.parallel.is_some_and(|p| p == 0 || p > 64) {
            return Err(input("--parallel", "allowed: 1 to 64 connections per session"));
        }
        if self.files == Some(0) {
            return Err(input("--files", "is 0; allowed: 1 or more files per session"));
        }
        if self.window.is_zero() {
            return Err(input("--window", "is 0; allowed: a positive duration such as \"10s\""));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInputs {
    pub users: f64,
    pub parallel: u32,
    pub files_per_session: u32,
    pub control_connections: f64,
    pub growth: f64,
    pub gos_per_session: f64,
    pub gos_per_pasv: f64,
    pub pick_policy: String,
    pub pick_policy_source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetLoad {
    pub pasv_per_s: f64,
    pub mean_hold_s: f64,
    pub offered_erlangs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOfThumb {
    pub name: String,
    pub width: u32,
    pub blocking_per_pasv: f64,
    pub session_failure: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub schema_version: u32,
    /// `run <dir>` or `what-if <profile>`.
    pub source: String,
    pub inputs: PlanInputs,
    pub fit: Option<Fit>,
    pub target: TargetLoad,
    /// Ports the model needs, before adding those held by other processes.
    pub model_width: u32,
    pub held_by_others: u32,
    /// The width to configure.
    pub width: u32,
    pub range: String,
    pub blocking_per_pasv: f64,
    pub session_failure: f64,
    /// The widest range these control connections can ever need: for scanning servers the
    /// number of connections, for random-try servers the width whose worst case (all other
    /// connections holding a port) already meets the target.
    pub ceiling: Option<u32>,
    /// With unlimited ports the number in use is Poisson(A): its quantile at 1 − target.
    pub poisson_check: Option<u32>,
    pub rules_of_thumb: Vec<RuleOfThumb>,
    /// (width, per-PASV blocking) around the recommendation, for charts.
    pub curve: Vec<(u32, f64)>,
    pub warnings: Vec<String>,
    pub server_snippets: Vec<Snippet>,
    pub firewall_snippets: Vec<Snippet>,
}

fn policy_name(p: PortPickPolicy) -> String {
    match p {
        PortPickPolicy::Scan => "scan (Erlang B)".into(),
        PortPickPolicy::ScanFewSources { sources } => format!("scan, {sources} sources (Engset)"),
        PortPickPolicy::RandomTries { tries } => format!("{tries} random tries (birth-death chain)"),
    }
}

/// Everything after the load is known: model, width, placement, snippets.
struct Solved {
    model_width: u32,
    blocking: f64,
    ceiling: Option<u32>,
}

/// Blocking at `width` with only `sources` control connections. The loss models assume
/// unlimited clients; with S connections at most S−1 others can hold ports when one asks, so a
/// random-try server fails at most ((S−1)/N)^k and a scanning server never once N ≥ S. The
/// lesser of model and bound keeps a width capped at the ceiling from reporting failures that
/// cannot happen.
pub fn bounded_blocking(policy: PortPickPolicy, offered: f64, width: u32, sources: u32) -> f64 {
    let modelled = model::blocking(policy, offered, width);
    let bound = match policy {
        PortPickPolicy::RandomTries { tries } => {
            model::random_try_fail_probability(sources.saturating_sub(1), width, tries)
        }
        PortPickPolicy::Scan | PortPickPolicy::ScanFewSources { .. } => {
            if width >= sources {
                0.0
            } else {
                1.0
            }
        }
    };
    modelled.min(bound)
}

/// The loss model for a server's pick policy and `sources` control connections: scanning
/// servers with few connections are Engset (each held port visibly thins the arrivals, which
/// Erlang B ignores); random-try servers are the birth–death chain.
pub fn model_policy(pick: PortPickPolicy, sources: u32) -> PortPickPolicy {
    match pick {
        PortPickPolicy::Scan => PortPickPolicy::ScanFewSources { sources },
        other => other,
    }
}

/// The blocking curve from 1 to `hi`, at most ~150 points.
fn curve(policy: PortPickPolicy, offered: f64, hi: u32, sources: u32) -> Vec<(u32, f64)> {
    let step = ((hi / 150).max(1)) as usize;
    (1..=hi)
        .step_by(step)
        .map(|w| (w, bounded_blocking(policy, offered, w, sources)))
        .collect()
}

fn solve(policy: PortPickPolicy, offered: f64, target: f64, sources: u32) -> Result<Solved, PlanError> {
    let model_width = model::capped_min_width(policy, offered, target, sources)
        .ok_or_else(|| PlanError::Model(format!("no width meets {target} at {offered:.2} erlangs")))?;
    let ceiling = policy.width_ceiling(sources, target);
    Ok(Solved {
        model_width,
        blocking: bounded_blocking(policy, offered, model_width, sources),
        ceiling,
    })
}

#[allow(clippy::too_many_arguments)]
fn recommend(
    source: String,
    fit: Option<Fit>,
    users: f64,
    parallel: u32,
    files: u32,
    pasv_per_s: f64,
    mean_hold_s: f64,
    held_by_others: u32,
    preferred_start: Option<u16>,
    control_port: u16,
    req: &PlanRequest,
    default_pick: (PortPickPolicy, String),
    mut warnings: Vec<String>,
) -> Result<Recommendation, PlanError> {
    let offered = pasv_per_s * mean_hold_s;
    let sources_f = users * f64::from(parallel);
    let sources = sources_f.ceil().max(1.0) as u32;
    let (gos_session, gos_pasv) = match req.gos {
        GradeOfService::PerSession(g) => (
            g,
            model::per_pasv_target(g, files).ok_or_else(|| PlanError::Model(format!("bad session target {g}")))?,
        ),
        GradeOfService::PerPasv(g) => (model::session_failure(g, files).unwrap_or(g), g),
    };
    let (pick, pick_source) = match req.pick {
        Some(p) => (p, "given on the command line".to_string()),
        None => default_pick,
    };
    let model_policy = model_policy(pick, sources);
    let solved = solve(model_policy, offered, gos_pasv, sources)?;
    let width = solved.model_width + held_by_others;
    let placement = placement::place_range(width, preferred_start).map_err(PlanError::Model)?;
    warnings.extend(placement.warnings.iter().cloned());
    let range: PortRange = placement.range;
    let session_failure = |b: f64| model::session_failure(b, files).unwrap_or(1.0);
    let rule = |name: &str, w: f64| {
        let w = if w.is_nan() {
            1
        } else {
            w.ceil().clamp(1.0, 64_512.0) as u32
        };
        let b = bounded_blocking(model_policy, offered, w.saturating_sub(held_by_others), sources);
        RuleOfThumb {
            name: name.into(),
            width: w,
            blocking_per_pasv: b,
            session_failure: session_failure(b),
        }
    };
    let rules_of_thumb = vec![
        rule("one port per concurrent transfer", sources_f),
        rule("FileZilla: more ports than transfers in 4 minutes", pasv_per_s * 240.0),
        rule("Pure-FTPd: clients at most width / 2", 2.0 * sources_f),
    ];
    if offered > 0.0 && pasv_per_s * 240.0 > f64::from(width) * 10.0 {
        warnings.push(
            "the 4-minute rule assumes every port sits in TIME_WAIT for 240 s (Windows); \
             with SO_REUSEADDR servers it overstates the need by far"
                .into(),
        );
    }
    // The curve spans the recommendation and the rules of thumb that are within reach of it, so
    // a chart can show where each lands.
    let reach = solved.model_width.saturating_mul(20).max(100);
    let hi = rules_of_thumb.iter().map(|r| r.width).filter(|&w| w <= reach).fold(
        solved.model_width.saturating_mul(2).max(solved.model_width + 10),
        u32::max,
    ) + 2;
    let curve = curve(model_policy, offered, hi, sources);
    Ok(Recommendation {
        schema_version: SCHEMA_VERSION,
        source,
        inputs: PlanInputs {
            users,
            parallel,
            files_per_session: files,
            control_connections: sources_f,
            growth: req.growth,
            gos_per_session: gos_session,
            gos_per_pasv: gos_pasv,
            pick_policy: policy_name(model_policy),
            pick_policy_source: pick_source,
        },
        fit,
        target: TargetLoad {
            pasv_per_s,
            mean_hold_s,
            offered_erlangs: offered,
        },
        model_width: solved.model_width,
        held_by_others,
        width,
        range: range.to_string(),
        blocking_per_pasv: solved.blocking,
        session_failure: session_failure(solved.blocking),
        ceiling: solved.ceiling,
        poisson_check: model::poisson_quantile(offered, 1.0 - gos_pasv),
        rules_of_thumb,
        curve,
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
                 planning with the server's figure (hold {:.2} ms per PASV instead of {:.2} ms)",
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

/// Plans from a run directory.
pub fn plan_from_run(dir: &std::path::Path, req: &PlanRequest) -> Result<Recommendation, PlanError> {
    req.validate()?;
    let obs = observed::read(dir)?;
    let fit =
        fit::fit(&obs, req.window, req.hold_policy).map_err(|m| PlanError::Model(format!("{}: {m}", dir.display())))?;
    let mut warnings = obs.warnings.clone();
    let (run_parallel, run_files) = obs
        .profile
        .as_ref()
        .map(|p| (p.session.parallel_connections, p.session.files_per_session.max(1)))
        .unwrap_or((1, 1));
    let parallel = req.parallel.unwrap_or(run_parallel);
    let files = req.files.unwrap_or(run_files);
    // Users the run had: logged-in control connections over connections per session.
    let observed_users = fit.control_connections / f64::from(run_parallel.max(1));
    let users = req.users.map_or(observed_users, f64::from);
    let pasv_per_s = fit.pasv_per_s_per_connection * users * f64::from(parallel) * req.growth;
    if fit.little_disagreement > 0.25 {
        warnings.push(format!(
            "Little's law check: λ·E[H] = {:.3} erlangs but ports were held {:.3} on average in the busiest window \
             ({:.0}% apart); the load was not steady, so treat the width with care",
            fit.offered_erlangs,
            fit.time_average_held,
            fit.little_disagreement * 100.0
        ));
    }
    if let Some(r) = obs.expected_range {
        for overlap in placement::ephemeral_overlaps(r) {
            warnings.push(format!(
                "the run's passive range {r} overlaps the {overlap} ephemeral range"
            ));
        }
    }
    let default_pick = if obs.manifest.embedded_server {
        (PortPickPolicy::LIBUNFTP, "the embedded server is libunftp".to_string())
    } else {
        (
            PortPickPolicy::VSFTPD,
            "assumed: 9 random tries as vsftpd and libunftp (the safe side); use --pick scan for ProFTPD or pyftpdlib"
                .to_string(),
        )
    };
    let held_by_others = fit.held_by_others;
    let (mean_hold_s, server_note) = effective_hold(&fit);
    warnings.extend(server_note);
    recommend(
        format!("run {}", dir.display()),
        Some(fit),
        users,
        parallel,
        files,
        pasv_per_s,
        mean_hold_s,
        held_by_others,
        req.range_start.or(obs.expected_range.map(|r| r.min)),
        // The embedded server's port was a free one picked for the run; a real server keeps its.
        if obs.manifest.embedded_server {
            21
        } else {
            control_port_of(&obs.manifest.target)
        },
        req,
        default_pick,
        warnings,
    )
}

/// Plans from a profile and an assumed hold time, with no run at all.
pub fn plan_what_if(w: &WhatIf, req: &PlanRequest) -> Result<Recommendation, PlanError> {
    req.validate()?;
    if w.hold.is_zero() {
        return Err(input("--hold", "is 0; allowed: a positive duration such as \"40ms\""));
    }
    let p = &w.profile;
    let parallel = req.parallel.unwrap_or(p.session.parallel_connections);
    let files = req.files.unwrap_or(p.session.files_per_session.max(1));
    let per_file = w.transfer_time.unwrap_or(w.hold).as_secs_f64() + p.session.think_time.0.as_secs_f64();
    let per_connection = if per_file > 0.0 { 1.0 / per_file } else { 0.0 };
    let users = match (req.users, p.load.model) {
        (Some(u), _) => f64::from(u),
        (None, crate::profile::LoadModel::Closed) => f64::from(p.load.sessions),
        // Open model: users in flight = arrival rate × session time (Little's law again).
        (None, crate::profile::LoadModel::Open) => {
            p.load.rate * f64::from(files) / f64::from(parallel.max(1)) * per_file
        }
    };
    let pasv_per_s = per_connection * users * f64::from(parallel) * req.growth;
    recommend(
        format!("what-if {}", p.name),
        None,
        users,
        parallel,
        files,
        pasv_per_s,
        w.hold.as_secs_f64(),
        0,
        req.range_start.or(p.target.pasv_range.map(|r| r.min)),
        p.target.url.as_deref().map_or(21, control_port_of),
        req,
        (
            PortPickPolicy::VSFTPD,
            "assumed: 9 random tries as vsftpd and libunftp (the safe side); use --pick scan for ProFTPD or pyftpdlib"
                .to_string(),
        ),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests;
