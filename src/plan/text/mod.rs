//! The recommendation as a person reads it: sessions first, PASVs second, and for every input
//! whether it was measured, known from the server's identity, or assumed.

use super::Recommendation;
use std::fmt::Write;

/// A plan for more (or fewer) control connections than the run had by more than this share
/// says that it extrapolates.
pub const SCALE_WARNING_MARGIN: f64 = 0.1;

/// What a plan for `scale` times the run's control connections cannot know, when it is one.
pub fn scaling_warning(scale: f64) -> Option<String> {
    ((scale - 1.0).abs() > SCALE_WARNING_MARGIN).then(|| {
        format!(
            "this plan is for {scale:.2} × the run's control connections, as copies of the run whose holds \
             stretch with the host's CPU contention where the server ran on this host (and are the run's \
             otherwise). Measured on one 2-core host at 2 ×, that over-stated CPU-bound bursts (vsftpd: 2.4% of \
             sessions failing where 10.3% was predicted) and under-stated pyftpdlib's one event loop (5.2% where \
             0.72% was): confirm with `ftpswarm sweep` at the target load"
        )
    })
}

/// TIME_WAITs per port beyond which the plan's bind stall is an extrapolation worth saying:
/// the planned width carries this many times what the run's range did.
pub const STALL_EXTRAPOLATION_FACTOR: f64 = 4.0;

/// What a plan cannot know about a server whose binds stall its other sessions (one event
/// loop, or workers all sessions share) when the planned width carries far more TIME_WAITs per
/// port than the run's range did: the stall at `width` is extrapolated from a run that barely
/// had one.
pub fn stall_extrapolation_note(trace: &crate::sim::Trace, stalls: bool, width: u32) -> Option<String> {
    use crate::sim::server::TIME_WAIT_S;
    use crate::sim::time_wait::{capped_horizon_s, run_horizon_s};
    let run_width = trace.run_width?;
    let closes = trace.server_closes_per_s();
    let (lo, hi) = trace.span()?;
    if !stalls || closes <= 0.0 || hi <= lo || width == 0 {
        return None;
    }
    let run_horizon = capped_horizon_s(
        run_horizon_s((hi - lo) as f64 / 1e6, closes, trace.time_waits_at_start),
        closes,
        trace.time_wait_cap,
    );
    let had = closes * run_horizon / f64::from(run_width.max(1));
    let planned = closes * capped_horizon_s(TIME_WAIT_S, closes, trace.time_wait_cap) / f64::from(width);
    (planned > STALL_EXTRAPOLATION_FACTOR * had).then(|| {
        format!(
            "at {width} ports each port carries about {planned:.0} TIME_WAITs once the load has run a minute, where \
             the run's ports had {had:.0}: the server's bind stall at {width} ports is extrapolated (on pyftpdlib's \
             realistic profile at twice the sessions, with its loop's CPU unmeasured that predicted 0.21% of sessions \
             failing at 9 ports where 12.6% failed, and with it measured 38% at 8 ports where 4.2% failed: see \
             README, \"Sizing\"). Check it on a run of 90 s with the range at {width} ports: `ftpswarm plan --run` on that \
             run sees the stall itself"
        )
    })
}

/// How the plan lengthens holds for another load than the run's, when the server shared this
/// host's CPU (see [`crate::sim::contention`]). `server_loop`: the cores a server with one
/// event loop kept busy (`None` for any other server).
pub fn contention_note(
    host_cpu_busy: Option<f64>,
    server_loop: Option<f64>,
    scale: f64,
    active_share: f64,
) -> Option<String> {
    let busy = crate::sim::contention::busy_share(host_cpu_busy, server_loop, true)?;
    if scale <= 1.0 + SCALE_WARNING_MARGIN {
        return None;
    }
    let on_loop = crate::sim::contention::loop_bound(host_cpu_busy, server_loop, true);
    let (stretch, dilation) = crate::sim::contention::closed_loop(Some(busy), scale, active_share);
    let saturation = if crate::sim::contention::saturates(Some(busy), scale) {
        // Measured past this point, the replay's copies of the run under-stated a full loop's
        // bursts: see README, "This build (2026-12-08)".
        let full_loop = if on_loop {
            "; a full loop's bursts of PASVs grow with its connections, past what copies of the run show (pyftpdlib's \
             burst profile at twice the sessions: 1.87% of sessions failed at 44 ports where 0.14% was predicted), so \
             confirm the width with `ftpswarm sweep` at the target load"
        } else {
            ""
        };
        format!(
            "; {scale:.2} × would need {:.0}% of it, more than {} has, so it is planned at {:.0}% busy and \
             the server will not keep up with the load{full_loop}",
            busy * scale * 100.0,
            if on_loop { "its one core" } else { "the host" },
            crate::sim::contention::MAX_BUSY * 100.0
        )
    } else {
        String::new()
    };
    let what = match (on_loop, host_cpu_busy) {
        (true, Some(host)) => format!(
            "the server serves every session from one event loop, which kept {:.0}% of a core busy during the run \
             (the host's CPU {:.0}%)",
            busy * 100.0,
            host * 100.0
        ),
        (true, None) => format!(
            "the server serves every session from one event loop, which kept {:.0}% of a core busy during the run",
            busy * 100.0
        ),
        (false, _) => format!(
            "the host's CPU was {:.0}% busy during the run, the server's share and ours",
            busy * 100.0
        ),
    };
    Some(format!(
        "{what}: at {scale:.2} × the load every hold is taken {stretch:.2} × as long as in the run (processor \
         sharing), and each connection's cycle, {:.0}% of it in exchanges, {dilation:.2} × as long{saturation}",
        active_share * 100.0
    ))
}

/// What the host's TIME_WAIT cap does to the plan, when the run's load would pass it within
/// the minute Linux keeps a TIME_WAIT (see [`crate::sim::time_wait::capped_horizon_s`]).
pub fn time_wait_cap_note(cap: Option<u32>, closes_per_s: f64) -> Option<String> {
    let cap = cap?;
    let steady = closes_per_s * crate::sim::server::TIME_WAIT_S;
    (steady > f64::from(cap)).then(|| {
        format!(
            "TIME_WAITs on the range: the run's {closes_per_s:.0} downloads/s would leave {steady:.0} in the 60 s \
             Linux keeps them, more than this host keeps at once (net.ipv4.tcp_max_tw_buckets = {cap}, past which \
             a closing socket skips TIME_WAIT); the bind stall and race window count at most {cap} on the range \
             (the server host's setting: a server whose host keeps more would stall more)"
        )
    })
}

/// A failure rate as a percentage: three decimals, or in scientific notation (still a
/// percentage) where three decimals would round it to zero. A bare `5.52e-7` beside `0.032%`
/// read as a percentage 100× too large.
pub fn pct(x: f64) -> String {
    if x == 0.0 {
        "0%".into()
    } else if x < 0.0001 {
        format!("{:.2e}%", x * 100.0)
    } else {
        format!("{:.3}%", x * 100.0)
    }
}

/// One step of the plan's reasoning, in words both renderers share: `plan` prints it as an
/// aligned line, report.md as a bullet, so the two can never say different things.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub label: &'static str,
    pub text: String,
    /// Lines under this one (the server model's inputs, a narrower width's prediction).
    pub details: Vec<String>,
}

impl Reason {
    fn new(label: &'static str, text: String) -> Reason {
        Reason {
            label,
            text,
            details: Vec::new(),
        }
    }
}

/// The reasoning behind `r`, from the load it is for to the analytic cross-check.
pub fn reasoning(r: &Recommendation) -> Vec<Reason> {
    let i = &r.inputs;
    let mut out = vec![
        Reason::new(
            "target",
            format!(
                "{:.1} users × {} connections × growth {} = {:.1} control connections (the run had {:.1}: ×{:.2}), \
                 {} files per session",
                i.users,
                i.parallel,
                i.growth,
                i.control_connections,
                i.run_control_connections,
                i.scale,
                i.files_per_session
            ),
        ),
        Reason::new(
            "grade of service",
            format!(
                "≤ {} of sessions fail at the range in the run's busy stretches (≤ {} of PASVs)",
                pct(i.gos_per_session),
                pct(i.gos_per_pasv)
            ),
        ),
    ];
    let mut prediction = Reason::new(
        "prediction",
        format!(
            "at {} ports{}: sessions failing {} in busy stretches ({} on average), PASVs failing {} ({} exhausted, \
             {} bind races){}",
            r.model_width,
            if r.held_by_others > 0 {
                format!(" + {} held by other processes", r.held_by_others)
            } else {
                String::new()
            },
            pct(r.session_failure),
            pct(r.prediction.session_failure_at_range),
            pct(r.blocking_per_pasv),
            pct(r.prediction.pasv_exhausted),
            pct(r.prediction.pasv_collided),
            if r.prediction.refused_connections_per_session > 0.0 {
                format!(
                    ", {:.3} logins refused per session",
                    r.prediction.refused_connections_per_session
                )
            } else {
                String::new()
            }
        ),
    );
    let narrower = r
        .predictions
        .iter()
        .filter(|p| p.width < r.model_width)
        .max_by_key(|p| p.width);
    if let Some(p) = narrower {
        prediction.details.push(format!(
            "at {} ports: sessions failing {} in busy stretches, PASVs failing {}",
            p.width,
            pct(p.session_failure_busy),
            pct(p.pasv_failure)
        ));
    }
    out.push(prediction);
    out.push(Reason::new(
        "simulator",
        format!(
            "{}, {} replications of {} PASVs ({:.1} M PASVs/s)",
            r.predictor.method,
            r.predictor.replications,
            r.predictor.pasvs_per_replication,
            r.predictor.pasvs_per_second / 1e6
        ),
    ));
    let mut server = Reason::new("server", r.server.kind.name().to_string());
    server.details = r
        .server
        .inputs()
        .into_iter()
        .map(|(what, value, source)| format!("{what}: {value} ({})", source.describe()))
        .collect();
    out.push(server);
    if let Some(f) = &r.fit {
        out.push(Reason::new(
            "observed",
            format!(
                "{:.1} PASV/s in the busiest {:.0} s ({:.2}/s per connection), client-view hold {:.2} ms: {} ({})",
                f.pasv_per_s,
                f.window_s,
                f.pasv_per_s_per_connection,
                f.mean_hold_s * 1e3,
                f.hold_policy.describe(),
                f.hold_policy_source
            ),
        ));
        out.push(Reason::new(
            "Little's law",
            format!(
                "λ·E[H] = {:.3} erlangs vs {:.3} ports held on average in the same window ({:.0}% apart)",
                f.offered_erlangs,
                f.time_average_held,
                f.little_disagreement * 100.0
            ),
        ));
        if let Some(reg) = &f.ports_vs_data_connections {
            out.push(Reason::new(
                "ports held",
                format!(
                    "{:.2} × data connections + {:.2} (r² {:.2}, {} samples)",
                    reg.slope, reg.intercept, reg.r2, reg.samples
                ),
            ));
        }
    }
    let a = &r.analytic;
    out.push(Reason::new(
        "analytic check",
        format!(
            "{:.2} PASV/s × {:.2} ms = {:.3} erlangs; {} → {}{}",
            a.target.pasv_per_s,
            a.target.mean_hold_s * 1e3,
            a.target.offered_erlangs,
            a.policy,
            a.width.map_or_else(|| "no width".to_string(), |w| format!("{w} ports")),
            a.ceiling.map(|c| format!(" (ceiling {c})")).unwrap_or_default(),
        ),
    ));
    out
}

/// `plan`'s terminal text.
pub fn render(r: &Recommendation) -> String {
    const LABEL: usize = 16;
    let mut out = String::new();
    let _ = writeln!(out, "recommendation    {} ports: {} ({})", r.width, r.range, r.source);
    for reason in reasoning(r) {
        let _ = writeln!(out, "  {:<LABEL$} {}", reason.label, reason.text);
        for d in &reason.details {
            let _ = writeln!(out, "  {:<LABEL$}   {d}", "");
        }
    }
    let _ = writeln!(out, "  rules of thumb for the same load (simulated):");
    for rule in &r.rules_of_thumb {
        let _ = writeln!(
            out,
            "    {:<50} {:>6} ports → sessions failing {}",
            rule.name,
            rule.width,
            pct(rule.session_failure)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  {:<LABEL$} {w}", "warning");
    }
    out
}

/// FTPS runs: why the range must be opened whole, and whether the data connections' TLS
/// handshake lengthens the holds: only on a server that keeps its listener past the accept
/// (the handshake follows the accept).
pub(crate) fn ftps_note(
    data_tls: Option<&crate::summary::PhaseLatency>,
    mean_hold_s: f64,
    hold_end: crate::sim::server::HoldEnd,
) -> Option<String> {
    use crate::sim::server::HoldEnd;
    let tls = data_tls.filter(|l| l.count > 0)?;
    let handshake = format!(
        "the data connections' TLS handshake (p50 {:.2} ms, p99 {:.2} ms)",
        tls.p50_us as f64 / 1e3,
        tls.p99_us as f64 / 1e3
    );
    let effect = match hold_end {
        HoldEnd::DataConnected | HoldEnd::TransferCommand => format!(
            "{handshake} follows the accept, where this server lets the port go, so it does not lengthen its holds"
        ),
        _ => {
            let share = if mean_hold_s > 0.0 {
                format!(
                    ", {:.0}% of the mean hold of {:.2} ms",
                    (tls.mean_us / 1e6 / mean_hold_s * 100.0).min(100.0),
                    mean_hold_s * 1e3
                )
            } else {
                String::new()
            };
            format!(
                "{handshake}{share} is part of every hold, since this server keeps the port {}",
                hold_end.describe()
            )
        }
    };
    Some(format!(
        "FTPS: a firewall's FTP helper cannot read the encrypted PASV reply, so the whole range must be opened \
         statically (the snippets do); {effect}"
    ))
}

#[cfg(test)]
mod tests;
