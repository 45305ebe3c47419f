//! The recommendation as a person reads it.

use super::Recommendation;
use std::fmt::Write;

fn pct(x: f64) -> String {
    if x == 0.0 {
        "0%".into()
    } else if x < 0.0001 {
        format!("{:.2e}", x)
    } else {
        format!("{:.3}%", x * 100.0)
    }
}

pub fn render(r: &Recommendation) -> String {
    let mut out = String::new();
    let i = &r.inputs;
    let _ = writeln!(out, "recommendation  {} ports: {} ({})", r.width, r.range, r.source);
    let _ = writeln!(
        out,
        "  target        {:.1} users × {} connections = {:.1} control connections, {} files/session, growth ×{}",
        i.users, i.parallel, i.control_connections, i.files_per_session, i.growth
    );
    let _ = writeln!(
        out,
        "  grade         ≤ {} of sessions see a failed PASV (≤ {} per PASV)",
        pct(i.gos_per_session),
        pct(i.gos_per_pasv)
    );
    if let Some(f) = &r.fit {
        let _ = writeln!(
            out,
            "  observed      {:.1} PASV/s in the busiest {:.0} s ({:.2}/s per connection), hold {:.2} ms: {} ({})",
            f.pasv_per_s,
            f.window_s,
            f.pasv_per_s_per_connection,
            f.mean_hold_s * 1e3,
            f.hold_policy.describe(),
            f.hold_policy_source
        );
        let _ = writeln!(
            out,
            "  Little's law  λ·E[H] = {:.3} erlangs vs {:.3} ports held on average ({:.0}% apart)",
            f.offered_erlangs,
            f.time_average_held,
            f.little_disagreement * 100.0
        );
        if let Some(reg) = &f.ports_vs_data_connections {
            let _ = writeln!(
                out,
                "  ports held    = {:.2} × data connections + {:.2} (r² {:.2}, {} samples)",
                reg.slope, reg.intercept, reg.r2, reg.samples
            );
        }
    }
    let _ = writeln!(
        out,
        "  load          {:.2} PASV/s × {:.2} ms = {:.3} erlangs; model: {} ({})",
        r.target.pasv_per_s,
        r.target.mean_hold_s * 1e3,
        r.target.offered_erlangs,
        i.pick_policy,
        i.pick_policy_source
    );
    let _ = writeln!(
        out,
        "  width         {} by the model{}{} → per-PASV blocking {}, sessions failing {}",
        r.model_width,
        if r.held_by_others > 0 {
            format!(" + {} held by other processes", r.held_by_others)
        } else {
            String::new()
        },
        r.ceiling.map(|c| format!(" (ceiling {c})")).unwrap_or_default(),
        pct(r.blocking_per_pasv),
        pct(r.session_failure)
    );
    let _ = writeln!(out, "  rules of thumb for the same load:");
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
        let _ = writeln!(out, "  warning       {w}");
    }
    out
}
