//! Profile errors that tell a person exactly where to look: file, line, field, what is allowed.

use crate::printable::{clip_quoted, MAX_ECHO_CHARS};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum ProfileError {
    Io {
        file: String,
        message: String,
    },
    /// The TOML could not be read into a profile (syntax, unknown field, wrong type).
    Syntax {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// The profile parsed but a value is out of its allowed range.
    Invalid {
        file: String,
        line: Option<usize>,
        field: String,
        message: String,
    },
    /// A command-line override is invalid.
    Override {
        flag: &'static str,
        message: String,
    },
}

impl std::error::Error for ProfileError {}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages quote keys and values from the file: a 10 MB key is shown by its start.
        let clipped;
        let message = match self {
            ProfileError::Io { message, .. }
            | ProfileError::Syntax { message, .. }
            | ProfileError::Invalid { message, .. }
            | ProfileError::Override { message, .. } => {
                clipped = clip_quoted(message, MAX_ECHO_CHARS);
                &clipped
            }
        };
        match self {
            ProfileError::Io { file, .. } => {
                write!(f, "cannot read profile {file}: {message}")
            }
            ProfileError::Syntax { file, line, .. } => match line {
                Some(l) => write!(f, "profile {file}, line {l}: {message}"),
                None => write!(f, "profile {file}: {message}"),
            },
            ProfileError::Invalid { file, line, field, .. } => match line {
                Some(l) => write!(f, "profile {file}, line {l}, field `{field}`: {message}"),
                None => write!(f, "profile {file}, field `{field}` (default value): {message}"),
            },
            ProfileError::Override { flag, .. } => write!(f, "{flag}: {message}"),
        }
    }
}

fn line_of(text: &str, byte_offset: usize) -> usize {
    let end = byte_offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

impl ProfileError {
    pub(super) fn from_toml(file: &str, text: &str, e: &toml::de::Error) -> ProfileError {
        ProfileError::Syntax {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            // The first line of toml's message is the diagnosis; the rest is a source excerpt
            // we replace by the line number.
            message: e.message().trim().to_string(),
        }
    }

    /// A semantic violation of `field` (dotted path); the line is found by looking the field
    /// up in the document, or the table it belongs to when the field was left at its default.
    pub(super) fn invalid(file: &str, text: &str, field: &str, message: String) -> ProfileError {
        ProfileError::Invalid {
            file: file.to_string(),
            line: span_of_field(text, field).map(|s| line_of(text, s)),
            field: field.to_string(),
            message,
        }
    }
}

fn span_of_field(text: &str, field: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best = None;
    for part in field.split('.') {
        match item.get(part) {
            Some(next) => {
                item = next;
                if let Some(span) = item.span() {
                    best = Some(span.start);
                }
            }
            None => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_unknown_key_is_shown_by_its_start() {
        let key = "k".repeat(1_000_000);
        let text = format!("[load]\n{key} = 1\n");
        let e = crate::profile::Profile::from_toml_str(&text, "big.toml")
            .unwrap_err()
            .to_string();
        assert!(e.len() < 2_000, "{} bytes", e.len());
        assert!(e.contains(&format!("`{}…`", "k".repeat(MAX_ECHO_CHARS))), "{e}");
    }

    #[test]
    fn finds_nested_field_lines() {
        let text = "name = \"x\"\n\n[load]\nmodel = \"closed\"\nsessions = 0\n";
        assert_eq!(span_of_field(text, "load.sessions").map(|s| line_of(text, s)), Some(5));
        // An absent field points at its table, so the reader lands in the right section.
        assert_eq!(span_of_field(text, "load.rate").map(|s| line_of(text, s)), Some(3));
        assert_eq!(span_of_field(text, "nothing.here"), None);
    }
}
