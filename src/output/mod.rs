//! The run directory: everything a run leaves behind, and the only thing `plan`, `report`
//! and `merge` read. Records are streamed to CSV as they happen, so an interrupted run
//! keeps everything it did.

pub mod manifest;
pub mod records;

pub use manifest::{Manifest, RunStatus, SocketsBeforeLoad, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION};
pub use records::{read_records, RecordWriter};

use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
pub const EVENTS: &str = "events.csv";
pub const CONNECTIONS: &str = "connections.csv";
pub const SESSIONS: &str = "sessions.csv";
pub const SUMMARY: &str = "summary.json";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create run directory {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// `output/<timestamp>-<profile>/`, or exactly `explicit` when given.
pub fn create_run_dir(base: &Path, explicit: Option<&Path>, profile_name: &str) -> Result<PathBuf, OutputError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
            let safe: String = profile_name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let first = base.join(format!("{stamp}-{safe}"));
            let mut candidate = first.clone();
            let mut n = 2;
            while candidate.exists() {
                candidate = PathBuf::from(format!("{}-{n}", first.display()));
                n += 1;
            }
            candidate
        }
    };
    std::fs::create_dir_all(&path).map_err(|source| OutputError::Create {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Writes JSON through a temporary file and a rename, so a reader never sees half a file.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), OutputError> {
    let err = |message: String| OutputError::Write {
        path: path.to_path_buf(),
        message,
    };
    let mut text = serde_json::to_string_pretty(value).map_err(|e| err(e.to_string()))?;
    text.push('\n');
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, OutputError> {
    let err = |message: String| OutputError::Read {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(e.to_string()))
}
