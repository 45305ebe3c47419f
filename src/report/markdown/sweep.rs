//! report.md for a sweep.

use super::*;

/// The sweep section: per-width measurements next to the model, and the verdict.
pub fn render_sweep(r: &crate::sweep::SweepResult, charts: &[ChartRef]) -> String {
    let mut out = String::new();
    let _ = write_sweep(&mut out, r, charts);
    out
}

pub(super) fn write_sweep(out: &mut String, r: &crate::sweep::SweepResult, charts: &[ChartRef]) -> fmt::Result {
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
