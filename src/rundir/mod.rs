//! The run directory: everything a run (or a sweep) leaves behind, and the only thing `plan`
//! and `report` read. This module names every file in it; records are streamed to CSV as
//! they happen, so an interrupted run keeps everything it did.

pub mod manifest;
pub mod records;

pub use manifest::{
    Manifest, MergedShard, RecordedProfile, RunStatus, SocketsBeforeLoad, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION,
};
pub use records::{read_records, stored_paths, RecordWriter};

use std::path::{Path, PathBuf};

// A run's files.
pub const MANIFEST: &str = "manifest.json";
pub const EVENTS: &str = "events.csv";
pub const CONNECTIONS: &str = "connections.csv";
pub const SESSIONS: &str = "sessions.csv";
pub const SUMMARY: &str = "summary.json";
/// The sampler's rows (`observe::timeline`).
pub const TIMELINE: &str = "timeline.csv";
/// Latency histograms per phase and interval (`observe::hlog`).
pub const LATENCY_LOG: &str = "latency.hlog";
/// The plan for the observed load (`plan`).
pub const RECOMMENDATION: &str = "recommendation.json";
// What `report` draws, for a run or a sweep.
pub const REPORT: &str = "report.md";
pub const CHARTS_DIR: &str = "charts";
// A sweep's files; each width's runs are run directories below it.
pub const SWEEP_CSV: &str = "sweep.csv";
pub const SWEEP_JSON: &str = "sweep.json";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    // Not named `source`: the message already says it, and an error chain would say it twice.
    #[error("cannot create run directory {path}: {reason}")]
    Create { path: PathBuf, reason: std::io::Error },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(
        "{path} is not empty: a run there would mix its files with the old ones; choose another --out, or add --force"
    )]
    NotEmpty { path: PathBuf },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// `output/<timestamp>-<profile>/`, or exactly `explicit` when given, which must be empty or
/// new unless `force`.
pub fn create_run_dir(
    base: &Path,
    explicit: Option<&Path>,
    profile_name: &str,
    force: bool,
) -> Result<PathBuf, OutputError> {
    let path = match explicit {
        Some(p) => {
            refuse_non_empty(p, force)?;
            p.to_path_buf()
        }
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
    std::fs::create_dir_all(&path).map_err(|reason| OutputError::Create {
        path: path.clone(),
        reason,
    })?;
    Ok(path)
}

/// A CSV of a run directory, read up to its last whole row. A run killed while a row was
/// being written (or one written by a version that wrote in fixed-size blocks) ends in part
/// of a row; that part is skipped with a warning instead of failing the whole file.
pub fn open_csv(path: &Path) -> Result<csv::Reader<std::io::BufReader<std::io::Take<std::fs::File>>>, OutputError> {
    use std::io::{Read, Seek, SeekFrom};
    let err = |message: String| OutputError::Read {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let len = file.metadata().map_err(|e| err(e.to_string()))?.len();
    let mut whole = len;
    if len > 0 {
        // The end of the last whole row: the last newline, looked for in the file's tail.
        let tail_len = len.min(1 << 20);
        let mut tail = Vec::with_capacity(tail_len as usize);
        file.seek(SeekFrom::Start(len - tail_len))
            .map_err(|e| err(e.to_string()))?;
        (&mut file)
            .take(tail_len)
            .read_to_end(&mut tail)
            .map_err(|e| err(e.to_string()))?;
        if tail.last() != Some(&b'\n') {
            whole = match tail.iter().rposition(|&b| b == b'\n') {
                Some(i) => len - tail_len + i as u64 + 1,
                None if tail_len == len => 0,
                None => return Err(err("its last row is longer than 1 MiB and unterminated".into())),
            };
            tracing::warn!(
                "{}: the last row is cut ({} bytes after the last whole row; the run was killed while writing it) and is skipped",
                path.display(),
                len - whole
            );
        }
        file.seek(SeekFrom::Start(0)).map_err(|e| err(e.to_string()))?;
    }
    Ok(csv::Reader::from_reader(std::io::BufReader::new(file.take(whole))))
}

/// A directory that exists and holds anything is refused unless `force`.
pub fn refuse_non_empty(dir: &Path, force: bool) -> Result<(), OutputError> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !force {
        return Err(OutputError::NotEmpty {
            path: dir.to_path_buf(),
        });
    }
    Ok(())
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
