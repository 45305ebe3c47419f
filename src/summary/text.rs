//! The summary a person reads at the end of a run.

use super::Summary;
use std::fmt::Write;

fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn render(s: &Summary, expected_range: Option<&str>) -> String {
    let mut out = String::new();
    let sess = &s.sessions;
    let _ = writeln!(
        out,
        "sessions     {} ok, {} failed{} ({} completed in {:.1} s)",
        sess.ok,
        sess.failed,
        if sess.interrupted > 0 {
            format!(", {} interrupted", sess.interrupted)
        } else {
            String::new()
        },
        sess.completed,
        s.elapsed_s
    );
    let t = &s.transfers;
    let _ = writeln!(
        out,
        "transfers    {} ok, {} failed · {:.1} transfers/s · {:.2} MB/s",
        t.ok,
        t.failed,
        s.transfers_per_s,
        s.bytes_per_s / 1e6
    );
    let by: Vec<String> = s
        .by_command
        .iter()
        .map(|(k, c)| format!("{k} {}/{}", c.ok, c.attempted))
        .collect();
    if !by.is_empty() {
        let _ = writeln!(out, "             {}", by.join(" · "));
    }
    let p = &s.passive;
    let range = expected_range
        .map(|r| format!(", {} outside {r}", p.out_of_range))
        .unwrap_or_default();
    let span = match (p.min_port, p.max_port) {
        (Some(a), Some(b)) => format!(" ({a}-{b})"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "passive      {} grants on {} distinct ports{span}{range}",
        p.grants, p.distinct_ports
    );
    let _ = writeln!(
        out,
        "concurrency  peak {} data connections, peak {} ports held (client view)",
        p.peak_data_connections, p.peak_ports_held
    );
    let l = &s.ledger;
    if l.reuses > 0 {
        use crate::summary::ledger::ReleasePolicy;
        let verdict = match l.release_policy {
            ReleasePolicy::AtAccept => format!(
                "server frees a port at accept: {} re-grants while our transfer on it was open",
                l.regranted_while_open
            ),
            ReleasePolicy::HeldDuringTransfer => format!(
                "server holds a port until the transfer ends: 0 re-grants while open ({:.1} expected if it freed at accept)",
                l.expected_regrants_if_released_at_accept
            ),
            ReleasePolicy::Undetermined => format!(
                "release policy undetermined: too little reuse ({:.1} re-grants while open expected if freed at accept)",
                l.expected_regrants_if_released_at_accept
            ),
        };
        let _ = writeln!(out, "ledger       {verdict}");
        let _ = writeln!(
            out,
            "             mean hold {} ms pending + {} ms transfer; {} reuses",
            ms(l.mean_pending_hold_us as u64),
            ms(l.mean_transfer_hold_us as u64),
            l.reuses,
        );
    }
    if s.failures.is_empty() {
        let _ = writeln!(out, "failures     none");
    } else {
        let _ = writeln!(out, "failures");
        for (class, n) in &s.failures {
            let example = s
                .failure_examples
                .get(class)
                .and_then(|v| v.first())
                .map(String::as_str)
                .unwrap_or("");
            let _ = writeln!(out, "  {class:<22} {n:>7}  {example}");
        }
    }
    if let Some(syn) = &s.syn_retransmits {
        let _ = writeln!(out, "finding      {}", syn.describe());
    }
    if !s.latency_us.is_empty() {
        let _ = writeln!(
            out,
            "latency (ms)  {:>8} {:>8} {:>8} {:>8} {:>9}",
            "p50", "p90", "p99", "max", "count"
        );
        for phase in super::PHASES {
            if let Some(l) = s.latency_us.get(*phase) {
                let _ = writeln!(
                    out,
                    "  {phase:<12}{:>8} {:>8} {:>8} {:>8} {:>9}",
                    ms(l.p50_us),
                    ms(l.p90_us),
                    ms(l.p99_us),
                    ms(l.max_us),
                    l.count
                );
            }
        }
    }
    out
}
