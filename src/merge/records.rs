//! The shards' `events.csv`, `connections.csv` and `sessions.csv`, concatenated in shard
//! order with a `shard` column, every `*_us` time moved onto the merged clock.
//!
//! Rows are copied field by field rather than through the record types, so a merge keeps
//! every column exactly as the shard wrote it (the merge checked the schema versions agree).

use super::MergeError;
use crate::profile::Shard;
use crate::rundir::{self, OutputError};
use std::path::{Path, PathBuf};

/// A shard's run directory and where its clock sits on the merged one.
pub(super) struct ShardFiles {
    pub dir: PathBuf,
    pub shard: Shard,
    /// Added to every `*_us` time.
    pub offset_us: u64,
}

/// The column every merged CSV ends with: the shard index a row came from.
pub const SHARD_COLUMN: &str = "shard";

pub(super) fn merge_csv(shards: &[ShardFiles], name: &str, out: &Path) -> Result<(), MergeError> {
    let out_path = out.join(name);
    let werr = |e: csv::Error| OutputError::Write {
        path: out_path.clone(),
        message: e.to_string(),
    };
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(&out_path)
        .map_err(werr)?;
    let mut header: Option<csv::StringRecord> = None;
    for s in shards {
        let path = s.dir.join(name);
        let rerr = |message: String| OutputError::Read {
            path: path.clone(),
            message,
        };
        let mut reader = rundir::open_csv(&path)?;
        let theirs = reader.headers().map_err(|e| rerr(e.to_string()))?.clone();
        match &header {
            None => {
                let mut h = theirs.clone();
                h.push_field(SHARD_COLUMN);
                writer.write_record(&h).map_err(werr)?;
                header = Some(theirs.clone());
            }
            Some(h) if *h != theirs => {
                return Err(MergeError::Mismatch(format!(
                    "{} has other columns than the first shard's {name}: the shards were made by different versions",
                    path.display()
                )))
            }
            Some(_) => {}
        }
        let times: Vec<bool> = theirs.iter().map(|c| c.ends_with("_us")).collect();
        let id_column = theirs.iter().position(|c| c == "session_id");
        let shard_text = s.shard.index.to_string();
        let mut row = csv::StringRecord::new();
        for (n, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| rerr(e.to_string()))?;
            if let Some(id) = id_column.and_then(|i| rec.get(i)).and_then(|v| v.parse::<u64>().ok()) {
                // Ids are dealt round-robin to shards: one that is not this shard's came
                // from another load (or a hand-edited file), and would collide.
                if id == 0 || (id - 1) % u64::from(s.shard.count) != u64::from(s.shard.index) {
                    return Err(MergeError::Mismatch(format!(
                        "{} row {}: session {id} is not one of shard {}'s ids: was this directory run with --shard {}?",
                        path.display(),
                        n + 2,
                        s.shard,
                        s.shard
                    )));
                }
            }
            row.clear();
            for (field, is_time) in rec.iter().zip(&times) {
                if *is_time && !field.is_empty() {
                    let t: u64 = field
                        .parse()
                        .map_err(|_| rerr(format!("row {}: {field:?} is not a time in µs", n + 2)))?;
                    row.push_field(&(t + s.offset_us).to_string());
                } else {
                    row.push_field(field);
                }
            }
            row.push_field(&shard_text);
            writer.write_record(&row).map_err(werr)?;
        }
    }
    writer.flush().map_err(|e| werr(e.into()))?;
    Ok(())
}
