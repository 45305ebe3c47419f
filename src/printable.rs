//! Making text from outside (paths, URLs, profile values, server replies) safe to print on one
//! line: control characters escaped, long echoes cut, an error's causes said once.

/// Longest echo of a quoted input (a TOML key or value) inside an error message.
pub const MAX_ECHO_CHARS: usize = 64;

/// Longest error line printed.
pub const MAX_ERROR_CHARS: usize = 2000;

/// Characters that would act on a terminal rather than show: C0 and C1 controls, DEL, and
/// the bidirectional overrides that reorder what follows them.
fn acts_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character written as an escape (`\0`, `\n`, `\u{1b}`), so that it
/// shows as what it is and stays on one line.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(acts_on_terminal) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if acts_on_terminal(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to `max` characters, with an ellipsis when something was cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// `s` with every `` `quoted` `` or `"quoted"` part longer than `max` characters cut to `max`
/// and an ellipsis: the place to see which key or value is meant, not the whole of it.
pub fn clip_quoted(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(4096));
    let mut rest = s;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        match after.find(quote) {
            Some(close) => {
                out.push_str(&clip(&after[..close], max));
                out.push_str(quote);
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&clip(after, max));
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// An error and its causes on one line, each cause said once: a cause whose text the line
/// already holds (an error that prints its source, wrapped again by a context) is skipped.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    clip(&escape_controls(&line), MAX_ERROR_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("plain: ünïcode"), "plain: ünïcode");
        assert_eq!(
            escape_controls("a\0b\nc\u{1b}[31md\u{7f}\u{202e}"),
            "a\\0b\\nc\\u{1b}[31md\\u{7f}\\u{202e}"
        );
    }

    #[test]
    fn long_quoted_parts_are_cut() {
        let key = "k".repeat(10_000);
        let msg = format!("unknown field `{key}`, expected one of `name`, `load`");
        let clipped = clip_quoted(&msg, MAX_ECHO_CHARS);
        assert_eq!(
            clipped,
            format!("unknown field `{}…`, expected one of `name`, `load`", "k".repeat(64))
        );
        assert_eq!(clip_quoted("value \"abc\" ok", 2), "value \"ab…\" ok");
        assert_eq!(clip_quoted("unclosed `abcdef", 3), "unclosed `abc…");
        assert_eq!(clip_quoted("no quotes", 1), "no quotes");
    }

    #[test]
    fn a_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot create run directory x: {source}")]
        struct Create {
            source: std::io::Error,
        }
        let io = std::io::Error::from_raw_os_error(17);
        let e = anyhow::Error::new(Create { source: io }).context("run");
        let line = error_line(&e);
        assert_eq!(line.matches("os error 17").count(), 1, "{line}");
        assert!(line.starts_with("run: cannot create run directory x: "), "{line}");
        let plain = anyhow::anyhow!("bad\u{1}input");
        assert_eq!(error_line(&plain), "bad\\u{1}input");
    }
}
