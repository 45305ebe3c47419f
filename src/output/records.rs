//! `events.csv`, `connections.csv`, `sessions.csv`: one row per record, written as records
//! arrive and read back with the same types.

use super::{OutputError, CONNECTIONS, EVENTS, SESSIONS};
use crate::event::{ConnectionRecord, Record, SessionRecord, TransferEvent};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub struct RecordWriter {
    dir: PathBuf,
    events: csv::Writer<BufWriter<File>>,
    connections: csv::Writer<BufWriter<File>>,
    sessions: csv::Writer<BufWriter<File>>,
}

fn open(dir: &Path, name: &str) -> Result<csv::Writer<BufWriter<File>>, OutputError> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| OutputError::Write {
        path,
        message: e.to_string(),
    })?;
    Ok(csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(BufWriter::with_capacity(256 * 1024, file)))
}

impl RecordWriter {
    pub fn create(dir: &Path) -> Result<Self, OutputError> {
        let mut w = RecordWriter {
            dir: dir.to_path_buf(),
            events: open(dir, EVENTS)?,
            connections: open(dir, CONNECTIONS)?,
            sessions: open(dir, SESSIONS)?,
        };
        // Headers even when a file gets no row, so tools reading an empty run still work.
        w.write_headers()?;
        Ok(w)
    }

    fn write_headers(&mut self) -> Result<(), OutputError> {
        let err = |name: &str, e: csv::Error| OutputError::Write {
            path: self.dir.join(name),
            message: e.to_string(),
        };
        let h = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        self.events
            .write_record(h(TRANSFER_COLUMNS))
            .map_err(|e| err(EVENTS, e))?;
        self.connections
            .write_record(h(CONNECTION_COLUMNS))
            .map_err(|e| err(CONNECTIONS, e))?;
        self.sessions
            .write_record(h(SESSION_COLUMNS))
            .map_err(|e| err(SESSIONS, e))?;
        Ok(())
    }

    pub fn write(&mut self, record: &Record) -> Result<(), OutputError> {
        let (name, result) = match record {
            Record::Transfer(t) => (EVENTS, self.events.serialize(t)),
            Record::Connection(c) => (CONNECTIONS, self.connections.serialize(c)),
            Record::Session(s) => (SESSIONS, self.sessions.serialize(s)),
        };
        result.map_err(|e| OutputError::Write {
            path: self.dir.join(name),
            message: e.to_string(),
        })
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        for (name, w) in [
            (EVENTS, &mut self.events),
            (CONNECTIONS, &mut self.connections),
            (SESSIONS, &mut self.sessions),
        ] {
            w.flush().map_err(|e| OutputError::Write {
                path: self.dir.join(name),
                message: e.to_string(),
            })?;
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
    let mut reader = csv::Reader::from_path(&path).map_err(|e| OutputError::Read {
        path: path.clone(),
        message: e.to_string(),
    })?;
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
