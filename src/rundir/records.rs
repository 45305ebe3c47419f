//! `events.csv`, `connections.csv`, `sessions.csv`: one row per record, written as records
//! arrive and read back with the same types.
//!
//! Only whole rows ever reach a file, and they reach it within [`DISK_LAG`]: a run killed
//! with SIGKILL, or a disk that fills, leaves CSVs that end on a row boundary and hold
//! everything up to the last half second.

use super::{OutputError, CONNECTIONS, EVENTS, SESSIONS};
use crate::event::{ConnectionRecord, Record, SessionRecord, TransferCommand, TransferEvent};
use std::cell::Cell;
use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a row may wait in memory before it is written to its file.
pub const DISK_LAG: Duration = Duration::from_millis(500);
/// Rows are written in batches of about this size when they come fast.
const BATCH_BYTES: usize = 256 * 1024;

/// The file under a CSV writer. The csv crate hands it bytes (sometimes part of a row, when
/// its own buffer fills) and calls `flush` after each whole row, which we ask it to do: rows
/// are written to the file only at such a row boundary.
struct RowFile {
    file: File,
    pending: Vec<u8>,
    /// End of the last whole row in `pending`.
    whole: usize,
    /// Bytes of whole rows in the file.
    on_disk: u64,
    last_write: Instant,
    /// Set by [`RecordWriter::sync`]: the next flush writes regardless of age or size. (The
    /// csv writer lends its inner writer out only by shared reference.)
    write_now: Cell<bool>,
}

impl RowFile {
    fn new(file: File) -> Self {
        RowFile {
            file,
            pending: Vec::with_capacity(BATCH_BYTES),
            whole: 0,
            on_disk: 0,
            last_write: Instant::now(),
            write_now: Cell::new(false),
        }
    }

    /// Writes every whole row held so far. A write that fails part way (a full disk) is
    /// taken back to the last whole row, so the file never ends inside one.
    fn write_whole_rows(&mut self) -> std::io::Result<()> {
        if self.whole > 0 {
            if let Err(e) = self.file.write_all(&self.pending[..self.whole]) {
                let _ = self.file.set_len(self.on_disk);
                let _ = self.file.seek(std::io::SeekFrom::Start(self.on_disk));
                return Err(e);
            }
            self.on_disk += self.whole as u64;
            self.pending.drain(..self.whole);
            self.whole = 0;
        }
        self.last_write = Instant::now();
        Ok(())
    }
}

impl Drop for RowFile {
    fn drop(&mut self) {
        // Best effort for a writer dropped on an error path; `sync` reports errors.
        let _ = self.write_whole_rows();
    }
}

impl Write for RowFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// A row boundary. The rows go to the file when enough have gathered or they have
    /// waited long enough.
    fn flush(&mut self) -> std::io::Result<()> {
        self.whole = self.pending.len();
        if self.write_now.replace(false) || self.whole >= BATCH_BYTES || self.last_write.elapsed() >= DISK_LAG {
            self.write_whole_rows()?;
        }
        Ok(())
    }
}

fn write_err(dir: &Path, name: &str, e: impl std::fmt::Display) -> OutputError {
    OutputError::Write {
        path: dir.join(name),
        message: e.to_string(),
    }
}

struct CsvFile {
    name: &'static str,
    csv: csv::Writer<RowFile>,
}

pub struct RecordWriter {
    dir: PathBuf,
    events: CsvFile,
    connections: CsvFile,
    sessions: CsvFile,
}

fn open(dir: &Path, name: &'static str) -> Result<CsvFile, OutputError> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| OutputError::Write {
        path,
        message: e.to_string(),
    })?;
    Ok(CsvFile {
        name,
        csv: csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(RowFile::new(file)),
    })
}

impl RecordWriter {
    pub fn create(dir: &Path) -> Result<Self, OutputError> {
        let mut w = RecordWriter {
            dir: dir.to_path_buf(),
            events: open(dir, EVENTS)?,
            connections: open(dir, CONNECTIONS)?,
            sessions: open(dir, SESSIONS)?,
        };
        // Headers even when a file gets no row, so tools reading an empty (or killed) run
        // still work; on disk at once, before the first record.
        w.write_headers()?;
        w.sync()?;
        Ok(w)
    }

    fn write_headers(&mut self) -> Result<(), OutputError> {
        let h = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (file, columns) in [
            (&mut self.events, TRANSFER_COLUMNS),
            (&mut self.connections, CONNECTION_COLUMNS),
            (&mut self.sessions, SESSION_COLUMNS),
        ] {
            if let Err(e) = file.csv.write_record(h(columns)).and_then(|()| Ok(file.csv.flush()?)) {
                let name = file.name;
                return Err(write_err(&self.dir, name, e));
            }
        }
        Ok(())
    }

    pub fn write(&mut self, record: &Record) -> Result<(), OutputError> {
        let file = match record {
            Record::Transfer(_) => &mut self.events,
            Record::Connection(_) => &mut self.connections,
            Record::Session(_) => &mut self.sessions,
        };
        let result = match record {
            Record::Transfer(t) => file.csv.serialize(t),
            Record::Connection(c) => file.csv.serialize(c),
            Record::Session(s) => file.csv.serialize(s),
        };
        // The flush marks the row boundary (and writes the batch when it is due).
        match result.and_then(|()| Ok(file.csv.flush()?)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let name = file.name;
                Err(write_err(&self.dir, name, e))
            }
        }
    }

    /// Writes the rows that have waited [`DISK_LAG`] or longer; called on a timer so a quiet
    /// stretch does not keep the last rows in memory.
    pub fn write_due(&mut self) -> Result<(), OutputError> {
        for file in [&mut self.events, &mut self.connections, &mut self.sessions] {
            if let Err(e) = file.csv.flush() {
                let name = file.name;
                return Err(write_err(&self.dir, name, e));
            }
        }
        Ok(())
    }

    /// Writes every row held in memory.
    pub fn sync(&mut self) -> Result<(), OutputError> {
        for file in [&mut self.events, &mut self.connections, &mut self.sessions] {
            file.csv.get_ref().write_now.set(true);
            if let Err(e) = file.csv.flush() {
                let name = file.name;
                return Err(write_err(&self.dir, name, e));
            }
        }
        Ok(())
    }
}

// The serialiser writes headers from field names only with the first row; writing them
// ourselves (and turning off serde's) keeps empty files well-formed. These lists must follow
// the structs' field order, which a test checks.
pub const TRANSFER_COLUMNS: &[&str] = &[
    "session_id",
    "connection_id",
    "seq_in_session",
    "command",
    "passive_command",
    "path",
    "pasv_port",
    "in_range",
    "t_pasv_sent_us",
    "t_pasv_reply_us",
    "t_data_connected_us",
    "t_data_tls_us",
    "t_first_byte_us",
    "t_transfer_done_us",
    "t_data_closed_us",
    "t_final_reply_us",
    "bytes",
    "expected_bytes",
    "pasv_reply_code",
    "transfer_reply_code",
    "final_reply_code",
    "outcome",
    "detail",
];
pub const CONNECTION_COLUMNS: &[&str] = &[
    "session_id",
    "connection_id",
    "t_connect_start_us",
    "t_connected_us",
    "t_greeting_us",
    "t_tls_us",
    "t_login_done_us",
    "t_closed_us",
    "transfers_ok",
    "transfers_failed",
    "outcome",
    "detail",
];
pub const SESSION_COLUMNS: &[&str] = &[
    "session_id",
    "t_intended_start_us",
    "t_start_us",
    "t_login_done_us",
    "t_end_us",
    "connections",
    "files_planned",
    "files_ok",
    "files_failed",
    "files_not_attempted",
    "bytes",
    "outcome",
    "detail",
];

fn read_csv<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
    out: &mut Vec<Record>,
    wrap: fn(T) -> Record,
) -> Result<(), OutputError> {
    let path = dir.join(name);
    let mut reader = super::open_csv(&path)?;
    for (i, row) in reader.deserialize::<T>().enumerate() {
        let row = row.map_err(|e| OutputError::Read {
            path: path.clone(),
            message: format!("row {}: {e}", i + 2),
        })?;
        out.push(wrap(row));
    }
    Ok(())
}

/// Every record of a run directory.
pub fn read_records(dir: &Path) -> Result<Vec<Record>, OutputError> {
    let mut out = Vec::new();
    read_csv::<TransferEvent>(dir, EVENTS, &mut out, Record::Transfer)?;
    read_csv::<ConnectionRecord>(dir, CONNECTIONS, &mut out, Record::Connection)?;
    read_csv::<SessionRecord>(dir, SESSIONS, &mut out, Record::Session)?;
    Ok(out)
}

/// The files a run's uploads left on the server: every STOR the server accepted (it answered
/// the transfer command), read back from `events.csv` rather than kept in memory for hours.
pub fn stored_paths(dir: &Path) -> Result<Vec<String>, OutputError> {
    let path = dir.join(EVENTS);
    let mut reader = super::open_csv(&path)?;
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<TransferEvent>().enumerate() {
        let t = row.map_err(|e| OutputError::Read {
            path: path.clone(),
            message: format!("row {}: {e}", i + 2),
        })?;
        if t.command == TransferCommand::Stor && t.transfer_reply_code.is_some() {
            out.push(t.path);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FailureClass, Outcome};

    fn session(id: u64, detail: String) -> Record {
        Record::Session(SessionRecord {
            session_id: id,
            t_intended_start_us: 0,
            t_start_us: 0,
            t_login_done_us: None,
            t_end_us: 1,
            connections: 1,
            files_planned: 1,
            files_ok: 0,
            files_failed: 1,
            files_not_attempted: 0,
            bytes: 0,
            outcome: Outcome::Failed(FailureClass::LoginFailed),
            detail,
        })
    }

    /// What a SIGKILL would find: the file as it is on disk, without any final flush.
    fn on_disk(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(SESSIONS)).unwrap()
    }

    #[test]
    fn only_whole_rows_reach_the_file_and_within_the_disk_lag() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = RecordWriter::create(tmp.path()).unwrap();
        assert_eq!(on_disk(tmp.path()).lines().count(), 1, "the header is on disk at once");
        // Rows longer than the csv crate's own 8 KiB buffer make it hand over part rows;
        // enough of them to pass the batch size several times.
        for id in 0..100 {
            w.write(&session(id, format!("{id}:{}", "x".repeat(20_000)))).unwrap();
            let text = on_disk(tmp.path());
            assert!(text.ends_with('\n'), "row {id}: the file ends mid-row");
        }
        let before = on_disk(tmp.path()).lines().count();
        assert!(before > 1 && before < 101, "batched: {before} lines on disk");
        std::thread::sleep(DISK_LAG);
        w.write_due().unwrap();
        assert_eq!(on_disk(tmp.path()).lines().count(), 101, "every row after the lag");
        w.write(&session(100, "late".into())).unwrap();
        w.sync().unwrap();
        assert_eq!(on_disk(tmp.path()).lines().count(), 102);
        assert_eq!(read_records(tmp.path()).unwrap().len(), 101);
    }
}
