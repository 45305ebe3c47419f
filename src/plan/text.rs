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
mod tests {
    use super::*;
    use crate::sim::server::HoldEnd;
    use crate::summary::PhaseLatency;

    #[test]
    fn shares_are_printed_to_three_decimals_of_a_percent_and_tiny_ones_in_exponent() {
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(0.012_34), "1.234%");
        assert_eq!(pct(0.0001), "0.010%");
        assert_eq!(pct(0.000_05), "5.00e-3%");
        assert_eq!(pct(5.52e-7), "5.52e-5%");
        assert_eq!(pct(1.0), "100.000%");
    }

    #[test]
    fn a_plan_for_another_load_than_the_runs_says_it_extrapolates() {
        assert_eq!(scaling_warning(1.0), None);
        assert_eq!(scaling_warning(1.05), None);
        assert_eq!(scaling_warning(0.95), None);
        let more = scaling_warning(2.0).unwrap_or_default();
        assert!(
            more.starts_with("this plan is for 2.00 × the run's control connections"),
            "{more}"
        );
        assert!(more.contains("confirm with `ftpswarm sweep`"), "{more}");
        assert!(scaling_warning(0.5).is_some_and(|w| w.contains("0.50 ×")));
    }

    #[test]
    fn the_time_wait_cap_is_named_when_the_load_passes_it() {
        // 100 downloads/s leave 6,000 TIME_WAITs in a minute.
        assert_eq!(time_wait_cap_note(None, 100.0), None);
        assert_eq!(time_wait_cap_note(Some(6_000), 100.0), None, "at the cap, not past it");
        let note = time_wait_cap_note(Some(5_999), 100.0).unwrap_or_default();
        assert!(
            note.contains("the run's 100 downloads/s would leave 6000 in the 60 s")
                && note.contains("tcp_max_tw_buckets = 5999")
                && note.contains("count at most 5999 on the range"),
            "{note}"
        );
    }

    #[test]
    fn contention_is_described_only_for_more_load_on_a_measured_host() {
        assert_eq!(contention_note(None, None, 2.0, 1.0), None);
        assert_eq!(contention_note(Some(0.35), None, 1.0 + SCALE_WARNING_MARGIN, 1.0), None);
        assert_eq!(contention_note(Some(0.35), Some(0.9), 1.0, 1.0), None);
        // 35% busy at twice the load, all of the cycle in exchanges: the fixed point of
        // crate::sim::contention::closed_loop, which has its own check values.
        let (stretch, dilation) = crate::sim::contention::closed_loop(Some(0.35), 2.0, 1.0);
        let note = contention_note(Some(0.35), None, 2.0, 1.0).unwrap_or_default();
        assert!(
            note.starts_with("the host's CPU was 35% busy during the run")
                && note.contains(&format!(
                    "at 2.00 × the load every hold is taken {stretch:.2} × as long"
                ))
                && note.contains(&format!("100% of it in exchanges, {dilation:.2} × as long"))
                && !note.contains("would need"),
            "{note}"
        );
        // 60% busy at twice the load would need 120%: planned at the most the host gives.
        let note = contention_note(Some(0.6), None, 2.0, 0.5).unwrap_or_default();
        assert!(
            note.contains("50% of it in exchanges")
                && note
                    .contains("; 2.00 × would need 120% of it, more than the host has, so it is planned at 95% busy"),
            "{note}"
        );
        // A one-loop server busier than the host: its core is what runs out.
        let (stretch, _) = crate::sim::contention::closed_loop(Some(0.65), 2.0, 0.2);
        let note = contention_note(Some(0.45), Some(0.65), 2.0, 0.2).unwrap_or_default();
        assert!(
            note.starts_with(
                "the server serves every session from one event loop, which kept 65% of a core busy during the run \
                 (the host's CPU 45%)"
            ) && note.contains(&format!("every hold is taken {stretch:.2} × as long"))
                && note.contains("would need 130% of it, more than its one core has")
                && note.contains("confirm the width with `ftpswarm sweep` at the target load"),
            "{note}"
        );
        // A host that runs out says nothing of a loop's bursts.
        let note = contention_note(Some(0.6), None, 2.0, 0.5).unwrap_or_default();
        assert!(!note.contains("a full loop's bursts"), "{note}");
        // A loop idler than the host changes nothing.
        assert_eq!(
            contention_note(Some(0.45), Some(0.2), 2.0, 0.2),
            contention_note(Some(0.45), None, 2.0, 0.2)
        );
    }

    /// A recommendation made quickly: 10 sessions of one connection, 5 files each, 5 ms holds.
    fn recommendation() -> Recommendation {
        let mut profile = crate::profile::Profile::default();
        profile.load.sessions = 10;
        profile.session.parallel_connections = 1;
        profile.session.files_per_session = 5;
        profile.session.think_time = crate::profile::HumanDuration(std::time::Duration::from_millis(50));
        let what_if = crate::plan::WhatIf {
            profile,
            hold: std::time::Duration::from_millis(5),
            transfer_time: Some(std::time::Duration::from_millis(10)),
        };
        match crate::plan::plan_what_if(&what_if, &crate::plan::PlanRequest::default()) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_reasoning_names_what_the_recommendation_holds() {
        let mut r = recommendation();
        let line = |r: &Recommendation, label: &str| {
            reasoning(r)
                .into_iter()
                .find(|x| x.label == label)
                .unwrap_or_else(|| panic!("no {label} line"))
        };
        let prediction = line(&r, "prediction");
        assert!(
            prediction
                .text
                .starts_with(&format!("at {} ports: sessions failing", r.model_width))
                && !prediction.text.contains("held by other processes")
                && !prediction.text.contains("logins refused"),
            "{}",
            prediction.text
        );
        // The detail is the widest prediction below the recommendation.
        let below = r.model_width - 1;
        let p = r.predictions.iter().find(|p| p.width == below).cloned();
        let p = p.unwrap_or_else(|| panic!("no prediction at {below}"));
        assert_eq!(
            prediction.details,
            [format!(
                "at {below} ports: sessions failing {} in busy stretches, PASVs failing {}",
                pct(p.session_failure_busy),
                pct(p.pasv_failure)
            )]
        );
        r.held_by_others = 3;
        r.prediction.refused_connections_per_session = 0.25;
        let text = line(&r, "prediction").text;
        assert!(
            text.contains(&format!("at {} ports + 3 held by other processes:", r.model_width))
                && text.ends_with("bind races), 0.250 logins refused per session"),
            "{text}"
        );
        assert!(line(&r, "target")
            .text
            .starts_with("10.0 users × 1 connections × growth 1 = 10.0 control"));
        assert!(line(&r, "analytic check").text.starts_with(&format!(
            "{:.2} PASV/s × 5.00 ms = {:.3} erlangs; ",
            r.analytic.target.pasv_per_s, r.analytic.target.offered_erlangs
        )));
        assert!(
            !reasoning(&r).iter().any(|x| x.label == "observed"),
            "a what-if has no run"
        );
        r.fit = Some(crate::plan::fit::Fit {
            window_s: 10.0,
            busiest_window_start_s: 0.0,
            pasv_per_s: 123.4,
            hold_policy: crate::plan::fit::HoldPolicy::UntilTransferEnds,
            hold_policy_source: "observed in the ledger".into(),
            mean_hold_s: 0.002,
            offered_erlangs: 0.2468,
            time_average_held: 0.25,
            little_disagreement: 0.0128,
            control_connections: 10.0,
            peak_control_connections: 10,
            pasv_per_s_per_connection: 12.34,
            ports_vs_data_connections: Some(crate::plan::fit::Regression {
                slope: 1.5,
                intercept: 0.25,
                r2: 0.9,
                samples: 40,
            }),
            held_by_others: 0,
            server_listening: None,
            attempts: 1234,
            blocked: 0,
        });
        assert_eq!(
            line(&r, "observed").text,
            format!(
                "123.4 PASV/s in the busiest 10 s (12.34/s per connection), client-view hold 2.00 ms: {} (observed in the ledger)",
                crate::plan::fit::HoldPolicy::UntilTransferEnds.describe()
            )
        );
        assert_eq!(
            line(&r, "Little's law").text,
            "λ·E[H] = 0.247 erlangs vs 0.250 ports held on average in the same window (1% apart)"
        );
        assert_eq!(
            line(&r, "ports held").text,
            "1.50 × data connections + 0.25 (r² 0.90, 40 samples)"
        );
    }

    #[test]
    fn the_terminal_text_leads_with_the_range_and_ends_with_the_warnings() {
        let mut r = recommendation();
        r.warnings = vec!["first".into(), "second".into()];
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("recommendation    {} ports: {} ({})", r.width, r.range, r.source)
        );
        assert_eq!(
            lines[lines.len() - 2..],
            ["  warning          first", "  warning          second"]
        );
        let reasons = reasoning(&r);
        assert_eq!(lines[1], format!("  {:<16} {}", reasons[0].label, reasons[0].text));
        let detail = &reasons
            .iter()
            .find(|x| x.label == "prediction")
            .map(|x| x.details[0].clone());
        assert!(
            lines.contains(&format!("  {:<16}   {}", "", detail.as_deref().unwrap_or("none")).as_str()),
            "{text}"
        );
        let rules = lines
            .iter()
            .position(|l| *l == "  rules of thumb for the same load (simulated):");
        let rules = rules.unwrap_or_else(|| panic!("{text}"));
        let first = &r.rules_of_thumb[0];
        assert_eq!(
            lines[rules + 1],
            format!(
                "    {:<50} {:>6} ports → sessions failing {}",
                first.name,
                first.width,
                pct(first.session_failure)
            )
        );
    }

    #[test]
    fn the_ftps_note_gives_the_handshake_and_its_share_of_the_hold() {
        let tls = PhaseLatency {
            count: 100,
            mean_us: 500.0,
            p50_us: 400,
            p90_us: 700,
            p99_us: 1_200,
            p999_us: 1_500,
            max_us: 2_000,
        };
        let note = ftps_note(Some(&tls), 0.002, HoldEnd::FinalReply).unwrap();
        assert!(note.contains("opened statically"), "{note}");
        assert!(
            note.contains("p50 0.40 ms, p99 1.20 ms), 25% of the mean hold of 2.00 ms"),
            "{note}"
        );
        assert!(note.contains("until it has sent the final reply"), "{note}");
        // A server that frees the port at accept: the handshake comes after the hold.
        for early in [HoldEnd::DataConnected, HoldEnd::TransferCommand] {
            let note = ftps_note(Some(&tls), 0.002, early).unwrap();
            assert!(
                note.contains("does not lengthen") && !note.contains("% of the mean hold"),
                "{note}"
            );
        }
        // Without a hold to compare with, no share of it.
        let note = ftps_note(Some(&tls), 0.0, HoldEnd::FinalReply).unwrap_or_default();
        assert!(
            note.contains("p99 1.20 ms) is part of every hold") && !note.contains("% of the mean hold"),
            "{note}"
        );
        // Plain FTP runs have no data_tls phase.
        assert_eq!(ftps_note(None, 0.002, HoldEnd::FinalReply), None);
        let none = PhaseLatency { count: 0, ..tls };
        assert_eq!(ftps_note(Some(&none), 0.002, HoldEnd::FinalReply), None);
    }

    #[test]
    fn a_plan_says_when_it_carries_a_bind_stall_far_past_the_runs_time_waits() {
        let trace = crate::sim::synthetic::realistic_trace();
        let closes = trace.server_closes_per_s();
        let Some((lo, hi)) = trace.span() else {
            panic!("the trace has a span")
        };
        let horizon = crate::sim::time_wait::run_horizon_s((hi - lo) as f64 / 1e6, closes, None);
        let had = closes * horizon / 100.0;
        // The widths where a minute of the load leaves more than 4× the run's TIME_WAITs per
        // port: below 100 × 60 / (4 × horizon).
        let edge = 100.0 * 60.0 / (STALL_EXTRAPOLATION_FACTOR * horizon);
        assert!(edge > 2.0 && edge < 1_000.0, "edge at {edge} ports");
        let narrow = (edge.floor() as u32).max(1) - u32::from(edge.fract() == 0.0);
        let wide = edge.floor() as u32 + 1;
        let Some(note) = stall_extrapolation_note(&trace, true, narrow) else {
            panic!("no note at {narrow} ports (edge {edge})")
        };
        let planned = closes * 60.0 / f64::from(narrow);
        assert!(
            note.contains(&format!(
                "at {narrow} ports each port carries about {planned:.0} TIME_WAITs"
            )) && note.contains(&format!("the run's ports had {had:.0}")),
            "{note}"
        );
        assert_eq!(stall_extrapolation_note(&trace, true, wide), None, "{wide} ports");
        assert_eq!(stall_extrapolation_note(&trace, true, 0), None, "no width, no plan");
        // The same run an hour later on the clock: the same TIME_WAITs, the same note.
        let mut later = trace.clone();
        let hour = |t: &mut u64| *t += 3_600_000_000;
        for a in &mut later.attempts {
            hour(&mut a.t_sent);
            let phases = [
                &mut a.t_reply,
                &mut a.t_connected,
                &mut a.t_first_byte,
                &mut a.t_closed,
                &mut a.t_final,
            ];
            phases.into_iter().flatten().for_each(hour);
        }
        for c in &mut later.connections {
            hour(&mut c.t_open);
            hour(&mut c.t_close);
        }
        assert_eq!(stall_extrapolation_note(&later, true, narrow).as_ref(), Some(&note));
        // A server whose binds stall nobody else, or a run without a known range: no note.
        assert_eq!(stall_extrapolation_note(&trace, false, narrow), None);
        let mut unknown = trace.clone();
        unknown.run_width = None;
        assert_eq!(stall_extrapolation_note(&unknown, true, narrow), None);
        // At the run's own width a minute carries 60 / horizon times the run's (6× for this
        // 20 s run); a host that keeps only twice the run's TIME_WAITs caps that at 2×.
        assert!(60.0 / horizon > STALL_EXTRAPOLATION_FACTOR, "horizon {horizon} s");
        assert!(stall_extrapolation_note(&trace, true, 100).is_some());
        let mut capped = trace.clone();
        capped.time_wait_cap = Some((2.0 * had * 100.0) as u32);
        assert_eq!(stall_extrapolation_note(&capped, true, 100), None);
        // Where both are capped, a quarter of the run's width carries exactly 4× its
        // TIME_WAITs per port: not past the edge.
        capped.time_wait_cap = Some(100);
        assert_eq!(stall_extrapolation_note(&capped, true, 25), None);
        assert!(stall_extrapolation_note(&capped, true, 24).is_some());
    }
}
