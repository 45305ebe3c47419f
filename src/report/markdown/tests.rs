use super::*;
use crate::event::{
    ConnectionRecord, FailureClass, Outcome, PassiveCommand, Record, SessionRecord, TransferCommand, TransferEvent,
};
use crate::plan::fit::{Fit, HoldPolicy};
use crate::plan::{plan_what_if, PlanRequest, WhatIf};
use crate::profile::Profile;
use crate::summary::Accumulator;
use std::time::Duration;

const HOSTILE: &str = "a|b\nc<script>";

/// A transfer granted at `at` µs whose PASV took 1.5 ms; `None` for `bytes` fails it.
fn transfer(command: TransferCommand, port: u16, at: u64, bytes: Option<u64>, detail: &str) -> Record {
    let ok = bytes.is_some();
    Record::Transfer(TransferEvent {
        session_id: 1,
        connection_id: 1,
        seq_in_session: 0,
        command,
        passive_command: PassiveCommand::Pasv,
        path: "size-10.bin".into(),
        pasv_port: Some(port),
        in_range: Some(true),
        t_pasv_sent_us: at - 1500,
        t_pasv_reply_us: Some(at),
        t_data_connected_us: Some(at + 100),
        t_data_tls_us: None,
        t_first_byte_us: Some(at + 200),
        t_transfer_done_us: Some(at + 10_000),
        t_data_closed_us: Some(at + 10_000),
        t_final_reply_us: Some(at + 10_100),
        bytes: bytes.unwrap_or(0),
        expected_bytes: bytes,
        pasv_reply_code: Some(227),
        transfer_reply_code: Some(150),
        final_reply_code: Some(if ok { 226 } else { 426 }),
        outcome: if ok {
            Outcome::Ok
        } else {
            Outcome::Failed(FailureClass::TransferAborted)
        },
        detail: detail.into(),
    })
}

/// Four ok transfers and one failed one; the last record ends at exactly 2 s.
fn summary() -> Summary {
    let records = vec![
        transfer(TransferCommand::Retr, 30001, 10_000, Some(1_000_000), ""),
        transfer(TransferCommand::Retr, 30002, 20_000, Some(1_000_000), ""),
        transfer(TransferCommand::Stor, 30003, 30_000, Some(500_000), ""),
        transfer(TransferCommand::List, 30001, 40_000, Some(500_000), ""),
        transfer(TransferCommand::Retr, 30004, 50_000, None, HOSTILE),
        Record::Connection(ConnectionRecord {
            session_id: 1,
            connection_id: 1,
            t_connect_start_us: 0,
            t_connected_us: Some(300),
            t_greeting_us: Some(600),
            t_tls_us: None,
            t_login_done_us: Some(900),
            t_closed_us: 1_990_000,
            transfers_ok: 4,
            transfers_failed: 1,
            outcome: Outcome::Ok,
            detail: String::new(),
        }),
        Record::Session(SessionRecord {
            session_id: 1,
            t_intended_start_us: 0,
            t_start_us: 0,
            t_login_done_us: Some(900),
            t_end_us: 2_000_000,
            connections: 1,
            files_planned: 5,
            files_ok: 4,
            files_failed: 1,
            files_not_attempted: 0,
            bytes: 3_000_000,
            outcome: Outcome::Failed(FailureClass::TransferAborted),
            detail: HOSTILE.into(),
        }),
    ];
    let mut acc = Accumulator::new(Some(crate::port_range::PortRange { min: 30000, max: 30099 }));
    for r in &records {
        acc.add(r);
    }
    acc.finish()
}

fn profile() -> Profile {
    let mut p = Profile {
        name: "office".into(),
        ..Profile::default()
    };
    p.load.sessions = 40;
    p.session.parallel_connections = 4;
    p.target.pasv_range = Some(crate::port_range::PortRange { min: 30000, max: 30099 });
    p
}

fn manifest(status: RunStatus) -> Manifest {
    let profile = profile().into();
    Manifest {
        schema_version: crate::rundir::SCHEMA_VERSION,
        tool: "ftpswarm".into(),
        tool_version: "0.1.0".into(),
        profile,
        target: "ftp://ftpswarm@127.0.0.1:2121".into(),
        embedded_server: true,
        expected_pasv_range: Some(crate::port_range::PortRange { min: 30000, max: 30099 }),
        started_at: "2026-01-02T03:04:05Z".into(),
        clock_origin_unix_us: 0,
        ended_at: Some("2026-01-02T03:04:07Z".into()),
        status,
        partial_reason: match status {
            RunStatus::Partial => Some("interrupted by Ctrl-C".into()),
            RunStatus::Complete => None,
        },
        files: Vec::new(),
        server_greeting: None,
        sockets_before_load: None,
        shard: None,
        host: None,
        merged_from: Vec::new(),
    }
}

fn recommendation() -> Recommendation {
    let w = WhatIf {
        profile: Profile::default(),
        hold: Duration::from_millis(50),
        transfer_time: None,
    };
    match plan_what_if(&w, &PlanRequest::default()) {
        Ok(r) => r,
        Err(e) => panic!("what-if plan: {e}"),
    }
}

/// The lines of `report` between `## heading` and the next `## `.
fn section<'a>(report: &'a str, heading: &str) -> &'a str {
    let start = match report.find(&format!("\n## {heading}\n")) {
        Some(i) => i + 1,
        None => panic!("no section {heading}:\n{report}"),
    };
    let rest = &report[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

#[test]
fn figures_are_the_summarys_own() {
    let s = summary();
    // The fixture's known values, so the assertions below test formatting, not arithmetic.
    assert_eq!((s.transfers.attempted, s.transfers.ok, s.transfers.failed), (5, 4, 1));
    assert_eq!(s.elapsed_s, 2.0);
    assert_eq!(s.latency_us["pasv"].p99_us, 1500);
    let md = render_report(&manifest(RunStatus::Complete), &s, None, &[]);

    assert!(md.starts_with("# ftpswarm capacity report: office\n"), "{md}");
    assert!(
        md.contains("**Target:** ftp://ftpswarm@127.0.0.1:2121 (embedded server)"),
        "{md}"
    );
    assert!(md.contains("**Started:** 2026-01-02T03:04:05Z · **Ended:** 2026-01-02T03:04:07Z"));
    assert!(!md.contains("Partial run"));

    let summary = section(&md, "Summary");
    for row in [
        "| Elapsed | 2.0 s |",
        "| Sessions completed | 1 |",
        "| Sessions failed | 1 |",
        "| Transfers attempted | 5 |",
        "| Transfers ok | 4 |",
        "| Transfers failed | 1 |",
        // 4 ok transfers in 2 s; 3 MB in 2 s.
        "| Transfers per second (ok) | 2.0 |",
        "| Throughput (MB/s) | 1.50 |",
        "| PASV/EPSV grants | 5 |",
        "| Distinct ports granted | 4 |",
        "| Port span | 30001–30004 |",
        "| Grants outside 30000-30099 | 0 |",
        "| RETR | 3 | 2 | 1 | 2000000 |",
        "| STOR | 1 | 1 | 0 | 500000 |",
        "| LIST | 1 | 1 | 0 | 500000 |",
    ] {
        assert!(summary.contains(row), "no {row:?} in\n{summary}");
    }
    // Rows formatted from the summary itself: the same figures summary.json holds.
    assert!(summary.contains(&format!("| Transfers per second (ok) | {:.1} |", s.transfers_per_s)));
    assert!(summary.contains(&format!("| Throughput (MB/s) | {:.2} |", s.bytes_per_s / 1e6)));
    let p = &s.passive;
    assert!(summary.contains(&format!("| Peak data connections | {} |", p.peak_data_connections)));
    assert!(summary.contains(&format!("| Peak ports held (client view) | {} |", p.peak_ports_held)));
    // RETR, STOR, LIST in the mix's order, not the map's alphabetical one.
    let (retr, stor, list) = (summary.find("| RETR"), summary.find("| STOR"), summary.find("| LIST"));
    assert!(retr < stor && stor < list, "{summary}");

    let latency = section(&md, "Latency");
    assert!(
        latency.contains("| pasv | 5 | 1.50 | 1.50 | 1.50 | 1.50 | 1.50 |"),
        "{latency}"
    );
    let l = &s.latency_us["transfer"];
    assert!(latency.contains(&format!(
        "| transfer | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        l.count,
        l.p50_us as f64 / 1e3,
        l.p90_us as f64 / 1e3,
        l.p99_us as f64 / 1e3,
        l.p999_us as f64 / 1e3,
        l.max_us as f64 / 1e3
    )));
    // PHASES order, and only the phases present.
    let order: Vec<usize> = ["| connect |", "| login |", "| pasv |", "| final_reply |", "| session |"]
        .iter()
        .map(|p| latency.find(p).unwrap_or(usize::MAX))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{latency}");
    assert!(order.iter().all(|&i| i != usize::MAX), "{latency}");

    let ledger = section(&md, "Passive-port ledger");
    assert!(ledger.contains(&format!(
        "| Mean pending hold, grant to data connection (ms) | {:.2} |",
        s.ledger.mean_pending_hold_us / 1e3
    )));
    assert!(
        ledger.contains("| Reuses (grants of a port granted before) | 1 |"),
        "{ledger}"
    );
    assert!(
        section(&md, "Recommendation").contains("No recommendation could be made"),
        "{md}"
    );
}

#[test]
fn run_parameters_come_from_the_profile() {
    let md = render_report(&manifest(RunStatus::Complete), &summary(), None, &[]);
    let params = section(&md, "Run parameters");
    for row in [
        "| Load model | closed |",
        "| Concurrent sessions | 40 |",
        "| Duration (no new session after) | 10s |",
        "| Total sessions | — |",
        "| Files per session | 5 |",
        "| Parallel connections per session | 4 |",
        "| Mix (relative weights) | RETR 70, STOR 20, LIST 10 |",
        "| File size distribution | fixed, 64.0 KiB |",
        "| Passive mode | PASV |",
        "| Expected passive range | 30000-30099 |",
    ] {
        assert!(params.contains(row), "no {row:?} in\n{params}");
    }
    assert!(!params.contains("arrivals"), "a closed run shows no rate:\n{params}");

    // An older version's profile lacks the fields added since: they read as their defaults,
    // which is what that version did without them.
    let mut m = manifest(RunStatus::Complete);
    m.profile = match serde_json::from_value(serde_json::json!({
        "load": {"model": "open", "rate": 2.5},
        "file_size": {"distribution": "lognormal", "median": 32768, "sigma": 1.0, "max": 1048576},
    })) {
        Ok(p) => p,
        Err(e) => panic!("an older profile must read: {e}"),
    };
    assert!(m.profile.known().is_some(), "{:?}", m.profile);
    m.expected_pasv_range = None;
    let md = render_report(&m, &summary(), None, &[]);
    assert!(md.starts_with("# ftpswarm capacity report: unnamed\n"), "{md}");
    let params = section(&md, "Run parameters");
    for row in [
        "| Session arrivals per second | 2.5 /s |",
        "| Files per session | 5 |",
        "| Mix (relative weights) | RETR 70, STOR 20, LIST 10 |",
        "| File size distribution | lognormal, median 32.0 KiB, σ 1.0, max 1.0 MiB |",
        "| Expected passive range | — |",
    ] {
        assert!(params.contains(row), "no {row:?} in\n{params}");
    }
    assert!(!params.contains("Concurrent sessions"), "{params}");
}

#[test]
fn a_profile_this_version_cannot_read_is_kept_as_stored_and_said_so() {
    // A newer version's field: the manifest still reads, and writing it back loses nothing.
    let stored = serde_json::json!({"name": "future", "load": {"model": "closed", "warp": 9}});
    let mut m = manifest(RunStatus::Complete);
    m.profile = match serde_json::from_value(stored.clone()) {
        Ok(p) => p,
        Err(e) => panic!("any JSON reads as a recorded profile: {e}"),
    };
    assert!(m.profile.known().is_none());
    let why = m.profile.unreadable_because().unwrap_or_default();
    assert!(why.contains("warp"), "{why}");
    match serde_json::to_value(&m.profile) {
        Ok(v) => assert_eq!(v, stored),
        Err(e) => panic!("{e}"),
    }
    let md = render_report(&m, &summary(), None, &[]);
    assert!(md.starts_with("# ftpswarm capacity report: run\n"), "{md}");
    let params = section(&md, "Run parameters");
    assert!(
        params.contains("does not read in this version (unknown field \\`warp\\`"),
        "{params}"
    );
    assert!(params.contains("| Expected passive range | 30000-30099 |"), "{params}");
    assert!(!params.contains("Load model"), "{params}");
    // Shown as stored, so a reader still sees what was run.
    assert!(
        params.contains("\n    {\n      \"load\": {\n        \"model\": \"closed\",\n        \"warp\": 9\n"),
        "{params}"
    );
}

#[test]
fn a_partial_run_is_flagged_at_the_top() {
    let md = render_report(&manifest(RunStatus::Partial), &summary(), None, &[]);
    let warning = md.find("> **Partial run:** interrupted by Ctrl-C.");
    assert!(warning.is_some(), "{md}");
    assert!(warning < md.find("## Run parameters"), "the warning comes first:\n{md}");

    let mut m = manifest(RunStatus::Partial);
    m.partial_reason = None;
    m.ended_at = None;
    let md = render_report(&m, &summary(), None, &[]);
    assert!(md.contains("> **Partial run:** no reason recorded."), "{md}");
    assert!(md.contains("**Ended:** not recorded"), "{md}");
}

#[test]
fn server_replies_cannot_break_the_failures_table() {
    let md = render_report(&manifest(RunStatus::Complete), &summary(), None, &[]);
    let failures = section(&md, "Failures");
    let row = match failures.lines().find(|l| l.starts_with("| transfer\\_aborted |")) {
        Some(r) => r,
        None => panic!("no transfer_aborted row:\n{failures}"),
    };
    assert_eq!(row, "| transfer\\_aborted | 1 | a\\|b c&lt;script> |");
    // Three cells, whatever the server said: only the table's own pipes are unescaped.
    let unescaped = row
        .match_indices('|')
        .filter(|(i, _)| !row[..*i].ends_with('\\'))
        .count();
    assert_eq!(unescaped, 4, "{row}");
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.contains("c<"), "{md}");
}

#[test]
fn inline_neutralises_markdown_and_html() {
    assert_eq!(inline("a|b\nc<script>"), "a\\|b c&lt;script>");
    assert_eq!(
        inline("`rm -rf` *x* [y](z) $m$ ~s~ a&b \\"),
        "\\`rm -rf\\` \\*x\\* \\[y\\](z) \\$m\\$ \\~s\\~ a&amp;b \\\\"
    );
    assert_eq!(inline("550 no\r\n\r\n\tmore\u{202E}\u{0}"), "550 no more");
    assert_eq!(inline(""), "");
    assert_eq!(truncate("ab€d", 3), "ab€…");
    assert_eq!(truncate("abc", 3), "abc");
    let long = "x".repeat(5000);
    let mut s = summary();
    s.failure_examples
        .insert("transfer_aborted".into(), vec![long, String::new()]);
    let md = render_report(&manifest(RunStatus::Complete), &s, None, &[]);
    let row = section(&md, "Failures");
    assert!(row.contains(&format!("| {}… |", "x".repeat(EXAMPLE_CHARS))), "{row}");
}

#[test]
fn recommendation_has_range_reasoning_rules_and_snippets() {
    let r = recommendation();
    let md = render_report(&manifest(RunStatus::Complete), &summary(), Some(&r), &[]);
    let rec = section(&md, "Recommendation");
    assert!(rec.contains(&format!("**{} ports: {}**", r.width, r.range)), "{rec}");
    assert!(r.range.starts_with("30000-"), "{}", r.range);
    assert!(rec.contains("Planned from what-if unnamed."), "{rec}");
    assert!(rec.contains(&format!(
        "= {:.3} erlangs; 9 random tries (birth-death chain)",
        r.analytic.target.offered_erlangs
    )));
    let prediction = format!(
        "- **Prediction:** at {} ports: sessions failing {} in busy stretches ({} on average), PASVs failing {}",
        r.model_width,
        pct(r.session_failure),
        pct(r.prediction.session_failure_at_range),
        pct(r.blocking_per_pasv)
    );
    assert!(rec.contains(&prediction), "{rec}");
    assert!(r.session_failure <= r.inputs.gos_per_session, "{}", r.session_failure);
    // Every input the simulator used is listed with where it came from.
    for (what, _, source) in r.server.inputs() {
        assert!(rec.contains(&format!("  - {what}: ")), "{what} in\n{rec}");
        assert!(rec.contains(&inline(&source.describe())), "{rec}");
    }
    // The width's row in the predicted-failure table is marked.
    assert!(rec.contains(&format!("| **{}** | ", r.model_width)), "{rec}");
    assert!(
        rec.contains("- **Grade of service:** ≤ 1.000% of sessions fail at the range in the run's busy stretches"),
        "{rec}"
    );
    for rule in &r.rules_of_thumb {
        assert!(
            rec.contains(&format!(
                "| {} | {} | {} |",
                inline(&rule.name),
                rule.width,
                pct(rule.session_failure)
            )),
            "no rule {} in\n{rec}",
            rule.name
        );
    }
    // What-if has no fit: no observed figures.
    assert!(!rec.contains("**Observed:**"));
    assert!(rec.contains("### Server configuration\n"));
    assert!(rec.contains("### Firewall\n"));
    assert!(rec.contains("#### vsftpd (/etc/vsftpd.conf"), "{rec}");
    assert!(rec.contains(&format!("pasv_min_port={}\n", r.range.split('-').next().unwrap_or(""))));
    assert!(rec.contains("#### nftables ("), "{rec}");
    assert_eq!(
        rec.matches("\n#### ").count(),
        r.server_snippets.len() + r.firewall_snippets.len()
    );
    assert!(
        rec.find("### Server configuration") < rec.find("### Firewall"),
        "servers first"
    );
}

#[test]
fn recommendation_from_a_run_shows_the_fit() {
    let mut r = recommendation();
    r.fit = Some(Fit {
        window_s: 10.0,
        busiest_window_start_s: 1.0,
        pasv_per_s: 751.0,
        hold_policy: HoldPolicy::UntilTransferStarts,
        hold_policy_source: "observed in the ledger".into(),
        mean_hold_s: 0.00053,
        offered_erlangs: 0.395,
        time_average_held: 0.395,
        little_disagreement: 0.0,
        control_connections: 10.1,
        peak_control_connections: 16,
        pasv_per_s_per_connection: 74.05,
        ports_vs_data_connections: Some(crate::plan::fit::Regression {
            slope: 1.0,
            intercept: 0.02,
            r2: 0.99,
            samples: 100,
        }),
        held_by_others: 2,
        server_listening: None,
        attempts: 7510,
        blocked: 0,
    });
    r.held_by_others = 2;
    r.warnings = vec!["the run's passive range 30000-30099 overlaps <nothing>".into()];
    let md = render_report(&manifest(RunStatus::Complete), &summary(), Some(&r), &[]);
    let rec = section(&md, "Recommendation");
    assert!(
        rec.contains(
            "- **Observed:** 751.0 PASV/s in the busiest 10 s (74.05/s per connection), client-view hold 0.53 ms: \
         until\\_transfer\\_starts (observed in the ledger)"
        ),
        "{rec}"
    );
    assert!(rec.contains("λ·E\\[H\\] = 0.395 erlangs vs 0.395 ports held on average in the same window (0% apart)"));
    assert!(rec.contains("- **Ports held:** 1.00 × data connections + 0.02 (r² 0.99, 100 samples)"));
    assert!(rec.contains(" + 2 held by other processes:"), "{rec}");
    // The terminal says the same, sentence for sentence: both render `plan::reasoning`.
    let text = crate::plan::render(&r);
    for reason in crate::plan::reasoning(&r) {
        assert!(
            text.contains(&format!("  {:<16} {}\n", reason.label, reason.text)),
            "{text}"
        );
        assert!(
            rec.contains(&format!("{}\n", inline(&reason.text))),
            "{} in\n{rec}",
            reason.text
        );
        for d in &reason.details {
            assert!(text.contains(d.as_str()), "{text}");
            assert!(rec.contains(&format!("  - {}\n", inline(d))), "{rec}");
        }
    }
    assert!(
        rec.contains("### Warnings\n\n- the run's passive range 30000-30099 overlaps &lt;nothing>\n"),
        "{rec}"
    );
}

#[test]
fn empty_summary_renders_and_says_there_is_no_data() {
    let s = Accumulator::new(None).finish();
    let mut m = manifest(RunStatus::Partial);
    m.profile = crate::rundir::RecordedProfile::Unreadable(serde_json::Value::Null);
    let md = render_report(&m, &s, None, &[]);
    assert!(
        section(&md, "Summary").contains("No data: the run recorded no connections"),
        "{md}"
    );
    assert!(section(&md, "Summary").contains("| Port span | — |"), "{md}");
    assert!(section(&md, "Summary").contains("No transfers were attempted."), "{md}");
    assert!(section(&md, "Latency").contains("No latency data"), "{md}");
    assert!(
        section(&md, "Passive-port ledger").contains("No data: no passive port"),
        "{md}"
    );
    assert!(
        section(&md, "Recommendation").contains("No recommendation could be made"),
        "{md}"
    );
    assert!(section(&md, "Charts").contains("No charts were written"), "{md}");
    assert!(section(&md, "Failures").contains("None."), "{md}");
    assert!(
        md.contains("The manifest's profile does not read in this version"),
        "{md}"
    );
}

#[test]
fn charts_are_embedded_with_their_relative_paths() {
    let charts = [
        ChartRef {
            title: "Ports held over time".into(),
            png: "charts/ports.png".into(),
            svg: "charts/ports.svg".into(),
            caption: "Compare the peak with the range width.".into(),
        },
        ChartRef {
            title: "Blocking [model]".into(),
            png: "charts/my chart (1).png".into(),
            svg: "charts/blocking.svg".into(),
            caption: String::new(),
        },
    ];
    let md = render_report(&manifest(RunStatus::Complete), &summary(), None, &charts);
    let section = section(&md, "Charts");
    assert!(
        section.contains(
            "### Ports held over time\n\nCompare the peak with the range width.\n\n\
         ![Ports held over time](charts/ports.png)\n\n[SVG](charts/ports.svg)\n"
        ),
        "{section}"
    );
    assert!(
        section.contains("![Blocking \\[model\\]](charts/my%20chart%20%281%29.png)"),
        "{section}"
    );
    assert!(section.contains("[SVG](charts/blocking.svg)"), "{section}");
    assert!(md.find("## Charts") < md.find("## Failures"));
}

#[test]
fn ledger_verdicts_in_words() {
    let mut s = summary();
    s.ledger.release_policy = ReleasePolicy::AtAccept;
    s.ledger.regranted_while_open = 7;
    let md = render_report(&manifest(RunStatus::Complete), &s, None, &[]);
    assert!(md.contains("frees a port once it accepts the data connection.** It granted a port again while our transfer on it was still open 7 times"), "{md}");
    s.ledger.release_policy = ReleasePolicy::HeldDuringTransfer;
    s.ledger.expected_regrants_if_released_at_accept = 12.5;
    let md = render_report(&manifest(RunStatus::Complete), &s, None, &[]);
    assert!(md.contains("holds a port until the transfer ends.**"), "{md}");
    assert!(md.contains("would have done so about 12.50 times"), "{md}");
    s.ledger.release_policy = ReleasePolicy::Undetermined;
    s.ledger.min_reuse_gap_us = Some(-1500);
    let md = render_report(&manifest(RunStatus::Complete), &s, None, &[]);
    assert!(md.contains("**Release policy undetermined:**"), "{md}");
    assert!(
        md.contains("| Shortest reuse gap (ms) | -1.50 (re-granted while we still held it) |"),
        "{md}"
    );
}

#[test]
fn percentages_as_plan_prints_them() {
    assert_eq!(pct(0.0), "0%");
    assert_eq!(pct(2.5e-7), "2.50e-5%");
    assert_eq!(pct(0.0001), "0.010%");
    assert_eq!(pct(0.01), "1.000%");
}

#[test]
fn syn_retransmits_are_a_finding_in_the_summary() {
    let mut s = summary();
    assert!(!md_has_finding(&render_report(
        &manifest(RunStatus::Complete),
        &s,
        None,
        &[]
    )));
    s.syn_retransmits = Some(crate::summary::SynRetransmits {
        after_1s: 376,
        after_3s: 12,
        just_below_1s: 0,
        connects: 1000,
    });
    let md = render_report(&manifest(RunStatus::Complete), &s, None, &[]);
    let summary = section(&md, "Summary");
    assert!(
        summary.contains("> **Finding:** 376 of 1000 connects took about 1 s and 12 about 3 s"),
        "{summary}"
    );
    assert!(summary.contains("listen backlog overflowed"), "{summary}");
}

fn md_has_finding(md: &str) -> bool {
    md.contains("**Finding:**")
}
