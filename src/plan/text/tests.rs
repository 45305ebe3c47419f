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
            && note.contains("; 2.00 × would need 120% of it, more than the host has, so it is planned at 95% busy"),
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
