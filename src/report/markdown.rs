//! `report.md`: one run as a capacity review reads it, top to bottom: what was run, what it
//! did, how long each phase took, what the passive-port ledger says about the server, what
//! range to configure and why, the charts, and what went wrong.
//!
//! Every figure is the run's own: counts, rates and percentiles are read from the
//! [`Summary`] (the same struct `summary.json` is written from) and the [`Recommendation`]
//! (`recommendation.json`), and only formatted here, never recomputed, so the report can
//! always be checked against the JSON files beside it.
//!
//! Text that did not come from this code is untrusted: failure examples are what a server
//! replied, and the profile name, target and paths come from files a person wrote. All of it
//! goes through [`inline`], so a hostile reply can neither break a table row, start a new
//! block, inject HTML, nor open a code span that swallows the rest of the report.

use crate::output::{Manifest, RunStatus};
use crate::plan::fit::{Fit, HoldPolicy};
use crate::plan::snippets::{render_markdown, Snippet};
use crate::plan::Recommendation;
use crate::profile::ByteCount;
use crate::summary::ledger::{LedgerSummary, ReleasePolicy};
use crate::summary::{Summary, PHASES};
use serde_json::Value;
use std::fmt::{self, Write};

/// A chart written next to the report, referenced by relative paths.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRef {
    pub title: String,
    /// Relative to the report, e.g. `charts/concurrency.png`.
    pub png: String,
    pub svg: String,
    /// One or two sentences: what to look at. Written by ftpswarm's chart code, so it is
    /// trusted Markdown and passed through as is (it may use emphasis or code spans).
    pub caption: String,
}

/// Shown for a value the run did not record.
const DASH: &str = "—";

/// Longest server reply quoted in the failures table, in characters. A server can send
/// kilobytes in one reply; the full text stays in `summary.json` and `events.csv`.
const EXAMPLE_CHARS: usize = 200;

/// The commands in the order the profile's mix names them.
const COMMANDS: [&str; 3] = ["RETR", "STOR", "LIST"];

/// report.md for a capacity review: a person reads it top to bottom; numbers are the run's
/// own (summary.json, recommendation.json), never recomputed differently.
pub fn render_report(
    manifest: &Manifest,
    summary: &Summary,
    recommendation: Option<&Recommendation>,
    charts: &[ChartRef],
) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; the `fmt::Result`s only let the sections use `?`.
    let _ = write_report(&mut out, manifest, summary, recommendation, charts);
    out
}

fn write_report(
    out: &mut String,
    manifest: &Manifest,
    summary: &Summary,
    recommendation: Option<&Recommendation>,
    charts: &[ChartRef],
) -> fmt::Result {
    header(out, manifest)?;
    run_parameters(out, manifest)?;
    summary_section(out, manifest, summary)?;
    latency(out, summary)?;
    ledger(out, summary)?;
    match recommendation {
        Some(r) => recommendation_section(out, r)?,
        // Said rather than left out, so a reader does not go looking for a section that is missing.
        None => writeln!(
            out,
            "\n## Recommendation\n\nNo recommendation could be made for this run: planning needs PASV/EPSV \
             attempts that were granted a port. `ftpswarm plan --run DIR` prints the reason."
        )?,
    }
    charts_section(out, charts)?;
    failures(out, summary)?;
    writeln!(
        out,
        "\n---\n\nWritten by {} {} from the run directory's `manifest.json`, `summary.json`{}.",
        inline(&manifest.tool),
        inline(&manifest.tool_version),
        if recommendation.is_some() {
            " and `recommendation.json`"
        } else {
            ""
        }
    )
}

// ---------------------------------------------------------------------------------------
// Sections

fn header(out: &mut String, m: &Manifest) -> fmt::Result {
    let name = m
        .profile
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or("run");
    writeln!(out, "# ftpswarm capacity report: {}\n", inline(name))?;
    writeln!(
        out,
        "**Target:** {}{} · **Started:** {} · **Ended:** {}",
        inline(&m.target),
        if m.embedded_server { " (embedded server)" } else { "" },
        inline(&m.started_at),
        m.ended_at.as_deref().map_or_else(|| "not recorded".to_string(), inline)
    )?;
    if m.status == RunStatus::Partial {
        // The reason is a sentence of its own; the template adds the full stop.
        let reason = m
            .partial_reason
            .as_deref()
            .map(|r| r.trim().trim_end_matches('.'))
            .filter(|r| !r.is_empty())
            .map_or_else(|| "no reason recorded".to_string(), inline);
        writeln!(
            out,
            "\n> [!WARNING]\n> **Partial run:** {reason}.\n> Every figure below covers only what was recorded \
             before the run stopped; a run cut short may miss its busiest moments."
        )?;
    }
    Ok(())
}

fn run_parameters(out: &mut String, m: &Manifest) -> fmt::Result {
    let p = &m.profile;
    let mut rows: Vec<(&str, Option<String>)> = Vec::new();
    let model = scalar_at(p, "load.model");
    rows.push(("Load model", model.clone()));
    // The closed model ignores the rate and the open model the session count, so only the
    // one that drove the load is shown; both when the model is unknown.
    let sessions = ("Concurrent sessions", scalar_at(p, "load.sessions"));
    let rate = (
        "Session arrivals per second",
        scalar_at(p, "load.rate").map(|r| format!("{r} /s")),
    );
    match model.as_deref() {
        Some("closed") => rows.push(sessions),
        Some("open") => rows.push(rate),
        _ => rows.extend([sessions, rate]),
    }
    rows.push(("Duration (no new session after)", scalar_at(p, "load.duration")));
    rows.push(("Total sessions", scalar_at(p, "load.total_sessions")));
    rows.push(("Files per session", scalar_at(p, "session.files_per_session")));
    rows.push((
        "Parallel connections per session",
        scalar_at(p, "session.parallel_connections"),
    ));
    rows.push(("Think time between files", think_time(p)));
    rows.push(("Mix (relative weights)", mix(p)));
    rows.push(("File size distribution", file_size(p)));
    rows.push((
        "Passive mode",
        scalar_at(p, "session.passive_mode").map(|s| s.to_uppercase()),
    ));
    rows.push((
        "Expected passive range",
        scalar_at(p, "target.pasv_range").or_else(|| m.expected_pasv_range.clone()),
    ));

    writeln!(out, "\n## Run parameters\n")?;
    writeln!(out, "| parameter | value |\n|---|---|")?;
    for (label, value) in rows {
        writeln!(
            out,
            "| {label} | {} |",
            value.as_deref().map_or_else(|| DASH.to_string(), inline)
        )?;
    }
    Ok(())
}

fn summary_section(out: &mut String, m: &Manifest, s: &Summary) -> fmt::Result {
    writeln!(out, "\n## Summary\n")?;
    if s.sessions.completed == 0 && s.connections.opened == 0 && s.transfers.attempted == 0 {
        writeln!(
            out,
            "No data: the run recorded no connections, sessions or transfers, so every figure below is zero.\n"
        )?;
    }
    let p = &s.passive;
    let span = match (p.min_port, p.max_port) {
        (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
        _ => DASH.to_string(),
    };
    let out_of_range_label = match m.expected_pasv_range.as_deref() {
        Some(r) => format!("Grants outside {}", inline(r)),
        None => "Grants outside the expected range (none given)".to_string(),
    };
    let rows = [
        ("Elapsed", format!("{:.1} s", s.elapsed_s)),
        ("Sessions completed", s.sessions.completed.to_string()),
        ("Sessions ok", s.sessions.ok.to_string()),
        ("Sessions failed", s.sessions.failed.to_string()),
        ("Sessions interrupted", s.sessions.interrupted.to_string()),
        ("Transfers attempted", s.transfers.attempted.to_string()),
        ("Transfers ok", s.transfers.ok.to_string()),
        ("Transfers failed", s.transfers.failed.to_string()),
        ("Transfers per second (ok)", format!("{:.1}", s.transfers_per_s)),
        ("Throughput (MB/s)", format!("{:.2}", s.bytes_per_s / 1e6)),
        ("PASV/EPSV grants", p.grants.to_string()),
        ("Distinct ports granted", p.distinct_ports.to_string()),
        ("Port span", span),
        (out_of_range_label.as_str(), p.out_of_range.to_string()),
        ("Peak data connections", p.peak_data_connections.to_string()),
        ("Peak ports held (client view)", p.peak_ports_held.to_string()),
        ("Control connections opened", s.connections.opened.to_string()),
    ];
    writeln!(out, "| figure | value |\n|---|---:|")?;
    for (label, value) in rows {
        writeln!(out, "| {label} | {value} |")?;
    }

    writeln!(out, "\n### By command\n")?;
    if s.by_command.is_empty() {
        return writeln!(out, "No transfers were attempted.");
    }
    writeln!(
        out,
        "| command | attempted | ok | failed | bytes |\n|---|---:|---:|---:|---:|"
    )?;
    // RETR, STOR, LIST first (the mix's order), then anything a newer summary adds.
    let known = COMMANDS.iter().filter_map(|c| s.by_command.get_key_value(*c));
    let others = s.by_command.iter().filter(|(k, _)| !COMMANDS.contains(&k.as_str()));
    for (name, c) in known.chain(others) {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            inline(name),
            c.attempted,
            c.ok,
            c.failed,
            c.bytes
        )?;
    }
    Ok(())
}

fn latency(out: &mut String, s: &Summary) -> fmt::Result {
    writeln!(out, "\n## Latency\n")?;
    let present: Vec<_> = PHASES
        .iter()
        .filter_map(|phase| s.latency_us.get(*phase).map(|l| (*phase, l)))
        .collect();
    if present.is_empty() {
        return writeln!(out, "No latency data: no phase was ever completed.");
    }
    writeln!(
        out,
        "Milliseconds. `session` is measured from the intended start, so queueing before a session \
         began counts.\n"
    )?;
    writeln!(
        out,
        "| phase | count | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|"
    )?;
    for (phase, l) in present {
        writeln!(
            out,
            "| {phase} | {} | {} | {} | {} | {} | {} |",
            l.count,
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us)
        )?;
    }
    Ok(())
}

fn ledger(out: &mut String, s: &Summary) -> fmt::Result {
    writeln!(out, "\n## Passive-port ledger\n")?;
    if s.passive.grants == 0 {
        return writeln!(
            out,
            "No data: no passive port was ever granted, so the ledger is empty."
        );
    }
    let l: &LedgerSummary = &s.ledger;
    let verdict = match l.release_policy {
        ReleasePolicy::AtAccept => format!(
            "**The server frees a port once it accepts the data connection.** It granted a port again \
             while our transfer on it was still open {} times ({} of them before our connect had \
             completed as we saw it). Ports are held only from the grant until the transfer starts.",
            l.regranted_while_open, l.regranted_while_pending
        ),
        ReleasePolicy::HeldDuringTransfer => format!(
            "**The server holds a port until the transfer ends.** It never granted a port again while \
             our transfer on it was open, although a server freeing ports at accept and picking at random \
             would have done so about {:.2} times here. Ports are held for the whole transfer, so long \
             transfers need a wider range.",
            l.expected_regrants_if_released_at_accept
        ),
        ReleasePolicy::Undetermined => format!(
            "**Release policy undetermined:** too little reuse to tell. {} re-grants while open were seen; \
             a server freeing ports at accept would have produced about {:.2}, too few for their absence to \
             be evidence. Planning assumes the longer hold (until the transfer ends), the safe side.",
            l.regranted_while_open, l.expected_regrants_if_released_at_accept
        ),
    };
    writeln!(out, "{verdict}\n")?;
    let gap = l.min_reuse_gap_us.map_or_else(
        || DASH.to_string(),
        |g| {
            let note = if g < 0 {
                " (re-granted while we still held it)"
            } else {
                ""
            };
            format!("{:.2}{note}", g as f64 / 1000.0)
        },
    );
    let rows = [
        (
            "Mean pending hold, grant to data connection (ms)",
            ms_f(l.mean_pending_hold_us),
        ),
        (
            "Mean transfer hold, data connection open (ms)",
            ms_f(l.mean_transfer_hold_us),
        ),
        ("Reuses (grants of a port granted before)", l.reuses.to_string()),
        (
            "Re-granted while our transfer was open",
            l.regranted_while_open.to_string(),
        ),
        ("Re-granted after we closed", l.regranted_after_close.to_string()),
        (
            "Expected re-grants while open, if freed at accept",
            format!("{:.2}", l.expected_regrants_if_released_at_accept),
        ),
        ("Shortest reuse gap (ms)", gap),
    ];
    writeln!(out, "| figure | value |\n|---|---:|")?;
    for (label, value) in rows {
        writeln!(out, "| {label} | {value} |")?;
    }
    Ok(())
}

fn recommendation_section(out: &mut String, r: &Recommendation) -> fmt::Result {
    let i = &r.inputs;
    writeln!(out, "\n## Recommendation\n")?;
    writeln!(out, "**{} ports: {}**\n", r.width, inline(&r.range))?;
    writeln!(out, "Planned from {}. The reasoning:\n", inline(&r.source))?;
    writeln!(
        out,
        "- **Target:** {:.1} users × {} connections × growth {} = {:.1} control connections ({:.2} × the run's {:.1}), {} files per session",
        i.users, i.parallel, i.growth, i.control_connections, i.scale, i.run_control_connections, i.files_per_session
    )?;
    writeln!(
        out,
        "- **Grade of service:** at most {} of sessions fail at the range in the run's busy stretches (at most {} of PASVs)",
        pct(i.gos_per_session),
        pct(i.gos_per_pasv)
    )?;
    writeln!(
        out,
        "- **Prediction:** at {} ports{}, {} of sessions (in the busy stretches; {} on average) and {} of PASVs fail ({} find the range exhausted, {} lose a bind race)",
        r.model_width,
        if r.held_by_others > 0 {
            format!(" (+ {} held by other processes)", r.held_by_others)
        } else {
            String::new()
        },
        pct(r.session_failure),
        pct(r.prediction.session_failure_at_range),
        pct(r.blocking_per_pasv),
        pct(r.prediction.pasv_exhausted),
        pct(r.prediction.pasv_collided),
    )?;
    writeln!(
        out,
        "- **Simulator:** {}, {} replications of {} PASVs",
        inline(&r.predictor.method),
        r.predictor.replications,
        r.predictor.pasvs_per_replication
    )?;
    writeln!(out, "- **Server:** {}", inline(r.server.kind.name()))?;
    for (what, value, source) in r.server.inputs() {
        writeln!(out, "  - {what}: {} ({})", inline(&value), inline(&source.describe()))?;
    }
    if let Some(f) = &r.fit {
        observed(out, f)?;
    }
    let a = &r.analytic;
    writeln!(
        out,
        "- **Analytic cross-check:** {:.2} PASV/s × {:.2} ms = {:.3} erlangs; {} → {}",
        a.target.pasv_per_s,
        a.target.mean_hold_s * 1e3,
        a.target.offered_erlangs,
        inline(&a.policy),
        a.width.map_or_else(|| "no width".to_string(), |w| format!("{w} ports")),
    )?;
    writeln!(out, "\n### Predicted failure by width\n")?;
    writeln!(
        out,
        "| width | sessions failing, busy stretches | sessions failing, average | PASVs failing |\n|---:|---:|---:|---:|"
    )?;
    for p in &r.predictions {
        let mark = if p.width == r.model_width { "**" } else { "" };
        writeln!(
            out,
            "| {mark}{}{mark} | {} | {} | {} |",
            p.width + r.held_by_others,
            pct(p.session_failure_busy),
            pct(p.session_failure_at_range),
            pct(p.pasv_failure)
        )?;
    }
    writeln!(out, "\n### Rules of thumb for the same load\n")?;
    writeln!(out, "| rule | width | sessions failing (predicted) |\n|---|---:|---:|")?;
    writeln!(
        out,
        "| **this recommendation** | {} | {} |",
        r.width,
        pct(r.session_failure)
    )?;
    for rule in &r.rules_of_thumb {
        writeln!(
            out,
            "| {} | {} | {} |",
            inline(&rule.name),
            rule.width,
            pct(rule.session_failure)
        )?;
    }

    if !r.warnings.is_empty() {
        writeln!(out, "\n### Warnings\n")?;
        for w in &r.warnings {
            writeln!(out, "- {}", inline(w))?;
        }
    }
    snippets(out, "Server configuration", &r.server_snippets)?;
    snippets(out, "Firewall", &r.firewall_snippets)
}

/// The fit's bullets, as `plan`'s text shows them.
fn observed(out: &mut String, f: &Fit) -> fmt::Result {
    writeln!(
        out,
        "- **Observed:** {:.1} PASV/s in the busiest {:.0} s ({:.2}/s per connection), mean hold {:.2} ms: {} ({})",
        f.pasv_per_s,
        f.window_s,
        f.pasv_per_s_per_connection,
        f.mean_hold_s * 1e3,
        hold_policy(f.hold_policy),
        inline(&f.hold_policy_source)
    )?;
    writeln!(
        out,
        "- **Little's law:** λ·E\\[H\\] = {:.3} erlangs vs {:.3} ports held on average in the same window ({:.0}% apart)",
        f.offered_erlangs,
        f.time_average_held,
        f.little_disagreement * 100.0
    )?;
    if let Some(reg) = &f.ports_vs_data_connections {
        writeln!(
            out,
            "- **Ports held vs data connections:** ports held = {:.2} × data connections + {:.2} (r² {:.2}, {} samples)",
            reg.slope, reg.intercept, reg.r2, reg.samples
        )?;
    }
    Ok(())
}

/// The policy's name, escaped for Markdown (its underscores would otherwise italicise).
fn hold_policy(p: HoldPolicy) -> String {
    p.describe().replace('_', "\\_")
}

fn snippets(out: &mut String, heading: &str, list: &[Snippet]) -> fmt::Result {
    if list.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n### {heading}\n")?;
    // `render_markdown` heads each snippet with `###`, the level of this subheading; rendered one
    // at a time, each block's first line is certainly that heading and can be nested one deeper.
    // Demoting inside the joined text could touch a line of a snippet's own text.
    let blocks: Vec<String> = list
        .iter()
        .map(|s| {
            let md = render_markdown(std::slice::from_ref(s));
            match md.strip_prefix("### ") {
                Some(rest) => format!("#### {rest}"),
                None => md,
            }
        })
        .collect();
    out.push_str(&blocks.join("\n"));
    Ok(())
}

fn charts_section(out: &mut String, charts: &[ChartRef]) -> fmt::Result {
    writeln!(out, "\n## Charts\n")?;
    if charts.is_empty() {
        return writeln!(out, "No charts were written for this run.");
    }
    for (n, c) in charts.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        let title = inline(&c.title);
        writeln!(out, "### {title}\n")?;
        let caption = c.caption.trim();
        if !caption.is_empty() {
            writeln!(out, "{caption}\n")?;
        }
        writeln!(out, "![{title}]({})\n", link_target(&c.png))?;
        writeln!(out, "[SVG]({})", link_target(&c.svg))?;
    }
    Ok(())
}

fn failures(out: &mut String, s: &Summary) -> fmt::Result {
    writeln!(out, "\n## Failures\n")?;
    if s.failures.is_empty() {
        return writeln!(out, "None.");
    }
    writeln!(out, "| class | count | what the server said |\n|---|---:|---|")?;
    for (class, n) in &s.failures {
        let said: Vec<String> = s
            .failure_examples
            .get(class)
            .into_iter()
            .flatten()
            .filter(|e| !e.trim().is_empty())
            .map(|e| inline(&truncate(e, EXAMPLE_CHARS)))
            .collect();
        let said = if said.is_empty() {
            DASH.to_string()
        } else {
            said.join("; ")
        };
        writeln!(out, "| {} | {n} | {said} |", inline(class))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Formatting

/// µs as ms with 2 decimals: one fixed precision, so a column reads at a glance and a figure
/// can be found in `summary.json` by multiplying back.
fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn ms_f(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

/// A failure rate as `plan` prints it: a percentage, or scientific notation when it is so small
/// that three decimals of a percent would round it to zero.
fn pct(x: f64) -> String {
    if x == 0.0 {
        "0%".into()
    } else if x < 0.0001 {
        format!("{x:.2e}")
    } else {
        format!("{:.3}%", x * 100.0)
    }
}

/// Untrusted text made safe for one line of Markdown, table cells included.
///
/// - Control characters (newlines too) become one space: a newline would end a table row or
///   start a new block. Invisible bidi and zero-width characters are dropped, so a reply can't
///   display differently from what it contains.
/// - `|` is escaped, so it can't split a table cell; `<` and `&` become entities, so no HTML tag
///   or entity gets through.
/// - Markdown punctuation (backticks, emphasis, brackets, `$` for GitHub's math) is
///   backslash-escaped: a stray backtick would otherwise open a code span across later cells,
///   and brackets could build a link.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        match c {
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' => {}
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.trim_end().to_string()
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A relative path as a Markdown link destination: characters that would end the destination
/// early (space, parentheses, angle brackets) are percent-encoded, control characters dropped.
fn link_target(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '(' | ')' | '<' | '>' | '"' | '\\' => {
                let _ = write!(out, "%{:02X}", u32::from(c));
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The profile, as the manifest stores it (a JSON value, so old and new profiles both read)

fn value_at<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, key| v.get(key))
}

/// A scalar as text; null (an unset optional) and containers are "not recorded".
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn scalar_at(v: &Value, dotted: &str) -> Option<String> {
    value_at(v, dotted).and_then(scalar)
}

fn think_time(p: &Value) -> Option<String> {
    let min = scalar_at(p, "session.think_time")?;
    Some(match scalar_at(p, "session.think_time_max") {
        Some(max) => format!("{min} to {max} (uniform)"),
        None => min,
    })
}

fn mix(p: &Value) -> Option<String> {
    value_at(p, "mix")?;
    let parts: Vec<String> = COMMANDS
        .iter()
        .map(|c| {
            let w = scalar_at(p, &format!("mix.{}", c.to_lowercase()));
            format!("{c} {}", w.as_deref().unwrap_or(DASH))
        })
        .collect();
    Some(parts.join(", "))
}

/// The size distribution in words; sizes are stored as byte counts and shown as the profile
/// would write them (KiB, MiB).
fn file_size(p: &Value) -> Option<String> {
    let fs = value_at(p, "file_size")?;
    let dist = fs.get("distribution").and_then(Value::as_str)?;
    let bytes = |key: &str| {
        fs.get(key)
            .and_then(Value::as_u64)
            .map_or_else(|| DASH.to_string(), |b| ByteCount(b).to_string())
    };
    Some(match dist {
        "fixed" => format!("fixed, {}", bytes("bytes")),
        "uniform" => format!("uniform, {} to {}", bytes("min"), bytes("max")),
        "lognormal" => format!(
            "lognormal, median {}, σ {}, max {}",
            bytes("median"),
            fs.get("sigma").and_then(scalar).as_deref().unwrap_or(DASH),
            bytes("max")
        ),
        // A distribution this report does not know: its parameters as stored.
        other => {
            let params: Vec<String> = fs
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "distribution")
                .map(|(k, v)| format!("{k} {}", scalar(v).as_deref().unwrap_or(DASH)))
                .collect();
            if params.is_empty() {
                other.to_string()
            } else {
                format!("{other}, {}", params.join(", "))
            }
        }
    })
}

/// The sweep section: per-width measurements next to the model, and the verdict.
pub fn render_sweep(r: &crate::sweep::SweepResult, charts: &[ChartRef]) -> String {
    let mut out = String::new();
    let _ = write_sweep(&mut out, r, charts);
    out
}

fn write_sweep(out: &mut String, r: &crate::sweep::SweepResult, charts: &[ChartRef]) -> fmt::Result {
    writeln!(out, "# ftpswarm sweep: {}\n", inline(&r.profile))?;
    if let Some(reason) = &r.partial {
        writeln!(
            out,
            "> **Partial sweep:** {}. What was measured is below.\n",
            inline(reason)
        )?;
    }
    writeln!(
        out,
        "Target: at most {} of sessions fail (at most {} of PASVs). Precision asked: ±{:.0}% (one standard \
         error) per width.\n",
        pct(r.gos_per_session),
        pct(r.gos_per_pasv),
        r.precision * 100.0
    )?;
    writeln!(out, "## Measured against the prediction\n")?;
    writeln!(
        out,
        "| width | sessions | failed | sessions failing | 95% interval | predicted | PASVs | PASVs failing | predicted | precision met |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")?;
    for w in &r.widths {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} – {} | {} | {} | {} | {} | {} |",
            w.width,
            w.sessions,
            w.sessions_failed,
            pct(w.session_failure),
            pct(w.session_ci_low),
            pct(w.session_ci_high),
            w.predicted_session_failure.map(pct).unwrap_or_else(|| "—".into()),
            w.attempts,
            pct(w.failure_rate),
            w.model_blocking.map(pct).unwrap_or_else(|| "—".into()),
            if w.precision_met { "yes" } else { "no (time budget)" }
        )?;
    }
    writeln!(out)?;
    match (&r.model, r.measured_width) {
        (Some(m), Some(w)) => writeln!(
            out,
            "**Verdict:** the smallest measured width whose 95% upper bound on session failure meets the target is \
             **{w}**; the plan from the widest width recommends **{}** ({}).\n",
            m.model_width,
            inline(m.server.kind.name())
        )?,
        (Some(m), None) => writeln!(
            out,
            "**Verdict:** no measured width met the target with 95% confidence; the plan recommends **{}**.\n",
            m.model_width
        )?,
        (None, w) => writeln!(out, "**Verdict:** measured width {w:?}; no plan could be made.\n")?,
    }
    if !r.notes.is_empty() {
        writeln!(out, "## Notes\n")?;
        for n in &r.notes {
            writeln!(out, "- {}", inline(n))?;
        }
        writeln!(out)?;
    }
    for c in charts {
        writeln!(
            out,
            "## {}\n\n{}\n\n![{}]({}) [SVG]({})\n",
            c.title,
            c.caption,
            c.title,
            link_target(&c.png),
            link_target(&c.svg)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        ConnectionRecord, FailureClass, Outcome, PassiveCommand, Record, SessionRecord, TransferCommand, TransferEvent,
    };
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
        let mut acc = Accumulator::new(Some(crate::profile::PortRange { min: 30000, max: 30099 }));
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
        p.target.pasv_range = Some(crate::profile::PortRange { min: 30000, max: 30099 });
        p
    }

    fn manifest(status: RunStatus) -> Manifest {
        let profile = match serde_json::to_value(profile()) {
            Ok(v) => v,
            Err(e) => panic!("profile to JSON: {e}"),
        };
        Manifest {
            schema_version: crate::output::SCHEMA_VERSION,
            tool: "ftpswarm".into(),
            tool_version: "0.1.0".into(),
            profile,
            target: "ftp://ftpswarm@127.0.0.1:2121".into(),
            embedded_server: true,
            expected_pasv_range: Some("30000-30099".into()),
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

        // A hand-written or older profile: whatever is missing is a dash, nothing panics.
        let mut m = manifest(RunStatus::Complete);
        m.profile = serde_json::json!({
            "load": {"model": "open", "rate": 2.5},
            "file_size": {"distribution": "lognormal", "median": 32768, "sigma": 1.0, "max": 1048576},
        });
        m.expected_pasv_range = None;
        let md = render_report(&m, &summary(), None, &[]);
        assert!(md.starts_with("# ftpswarm capacity report: run\n"), "{md}");
        let params = section(&md, "Run parameters");
        for row in [
            "| Session arrivals per second | 2.5 /s |",
            "| Files per session | — |",
            "| Mix (relative weights) | — |",
            "| File size distribution | lognormal, median 32.0 KiB, σ 1.0, max 1.0 MiB |",
            "| Expected passive range | — |",
        ] {
            assert!(params.contains(row), "no {row:?} in\n{params}");
        }
        assert!(!params.contains("Concurrent sessions"), "{params}");
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
            "- **Prediction:** at {} ports, {} of sessions (in the busy stretches; {} on average) and {} of PASVs fail",
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
            rec.contains("at most 1.000% of sessions fail at the range in the run's busy stretches"),
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
                "- **Observed:** 751.0 PASV/s in the busiest 10 s (74.05/s per connection), mean hold 0.53 ms: \
             until\\_transfer\\_starts (observed in the ledger)"
            ),
            "{rec}"
        );
        assert!(rec.contains("λ·E\\[H\\] = 0.395 erlangs vs 0.395 ports held on average in the same window (0% apart)"));
        assert!(rec.contains("ports held = 1.00 × data connections + 0.02 (r² 0.99, 100 samples)"));
        assert!(rec.contains(" (+ 2 held by other processes)"), "{rec}");
        assert!(
            rec.contains("### Warnings\n\n- the run's passive range 30000-30099 overlaps &lt;nothing>\n"),
            "{rec}"
        );
    }

    #[test]
    fn empty_summary_renders_and_says_there_is_no_data() {
        let s = Accumulator::new(None).finish();
        let mut m = manifest(RunStatus::Partial);
        m.profile = Value::Null;
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
        assert!(md.contains("| Load model | — |"), "{md}");
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
        assert_eq!(pct(2.5e-7), "2.50e-7");
        assert_eq!(pct(0.0001), "0.010%");
        assert_eq!(pct(0.01), "1.000%");
    }
}
