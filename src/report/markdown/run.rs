//! report.md for one run.

use super::*;

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

pub(super) fn write_report(
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

pub(super) fn header(out: &mut String, m: &Manifest) -> fmt::Result {
    let name = m
        .profile
        .known()
        .map(|p| p.name.as_str())
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
    if let Some(shard) = m.shard {
        writeln!(
            out,
            "\nShard {shard} of a larger load, run on {}: its share of the sessions. \
             `ftpswarm merge` puts the shards together for the whole load's figures.",
            m.host
                .as_deref()
                .map_or_else(|| "an unrecorded host".to_string(), inline)
        )?;
    }
    if !m.merged_from.is_empty() {
        writeln!(
            out,
            "\nMerged from {} shard runs (`ftpswarm merge`), on one clock:\n",
            m.merged_from.len()
        )?;
        writeln!(
            out,
            "| shard | run directory | host | started | clock offset | status |\n|---|---|---|---|---:|---|"
        )?;
        for s in &m.merged_from {
            writeln!(
                out,
                "| shard {} | {} | {} | {} | {:.3} s | {} |",
                s.shard,
                inline(&s.dir),
                s.host.as_deref().map_or_else(|| DASH.to_string(), inline),
                inline(&s.started_at),
                s.offset_us as f64 / 1e6,
                match s.status {
                    RunStatus::Complete => "complete".to_string(),
                    RunStatus::Partial => format!(
                        "partial: {}",
                        inline(s.partial_reason.as_deref().unwrap_or("no reason recorded"))
                    ),
                }
            )?;
        }
    }
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

pub(super) fn run_parameters(out: &mut String, m: &Manifest) -> fmt::Result {
    writeln!(out, "\n## Run parameters\n")?;
    writeln!(out, "| parameter | value |\n|---|---|")?;
    let Some(p) = m.profile.known() else {
        writeln!(
            out,
            "| Expected passive range | {} |",
            m.expected_pasv_range
                .map_or_else(|| DASH.to_string(), |r| r.to_string())
        )?;
        let why = m.profile.unreadable_because().unwrap_or_default();
        writeln!(
            out,
            "\nThe manifest's profile does not read in this version ({}); as `manifest.json` stores it:\n",
            inline(&why)
        )?;
        // An indented code block: JSON escapes newlines inside strings, so no stored text can
        // end the block, and Markdown inside it is not interpreted.
        let json = serde_json::to_string_pretty(&m.profile).unwrap_or_default();
        for line in json.lines() {
            writeln!(out, "    {line}")?;
        }
        return Ok(());
    };
    for (label, value) in parameter_rows(p) {
        let value = match (label, value) {
            // A profile without a range: the run may still have been told one.
            ("Expected passive range", None) => m.expected_pasv_range.map(|r| r.to_string()),
            (_, v) => v,
        };
        writeln!(
            out,
            "| {label} | {} |",
            value.as_deref().map_or_else(|| DASH.to_string(), inline)
        )?;
    }
    Ok(())
}

pub(super) fn summary_section(out: &mut String, m: &Manifest, s: &Summary) -> fmt::Result {
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
    let out_of_range_label = match m.expected_pasv_range {
        Some(r) => format!("Grants outside {r}"),
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
    if let Some(syn) = &s.syn_retransmits {
        writeln!(out, "\n> [!NOTE]\n> **Finding:** {}.", inline(&syn.describe()))?;
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

pub(super) fn latency(out: &mut String, s: &Summary) -> fmt::Result {
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

pub(super) fn ledger(out: &mut String, s: &Summary) -> fmt::Result {
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

pub(super) fn recommendation_section(out: &mut String, r: &Recommendation) -> fmt::Result {
    writeln!(out, "\n## Recommendation\n")?;
    writeln!(out, "**{} ports: {}**\n", r.width, inline(&r.range))?;
    writeln!(out, "Planned from {}. The reasoning:\n", inline(&r.source))?;
    for reason in crate::plan::reasoning(r) {
        writeln!(out, "- **{}:** {}", capitalised(reason.label), inline(&reason.text))?;
        for d in &reason.details {
            writeln!(out, "  - {}", inline(d))?;
        }
    }
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

/// "grade of service" → "Grade of service".
fn capitalised(label: &str) -> String {
    let mut chars = label.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub(super) fn snippets(out: &mut String, heading: &str, list: &[Snippet]) -> fmt::Result {
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

pub(super) fn charts_section(out: &mut String, charts: &[ChartRef]) -> fmt::Result {
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

pub(super) fn failures(out: &mut String, s: &Summary) -> fmt::Result {
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
