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

use crate::plan::snippets::{render_markdown, Snippet};
use crate::plan::Recommendation;
use crate::rundir::{Manifest, RunStatus};
use crate::summary::ledger::{LedgerSummary, ReleasePolicy};
use crate::summary::{Summary, PHASES};
use std::fmt::{self, Write};

mod profile;
mod run;
mod sweep;
#[cfg(test)]
mod tests;

use profile::*;
pub use run::render_report;
pub use sweep::render_sweep;

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

/// A failure rate as `plan` prints it.
use crate::plan::text::pct;

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
