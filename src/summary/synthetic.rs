//! A run directory written from made-up records rather than a load: for the benchmarks and
//! tests that need a run of a given shape (a million transfers, an hour with one busy stretch)
//! without spending the time to make one. The directory is what `run` writes: manifest,
//! record CSVs and summary.

use super::Accumulator;
use crate::event::{ConnectionRecord, Outcome, PassiveCommand, Record, SessionRecord, TransferCommand, TransferEvent};
use crate::port_range::PortRange;
use crate::rundir::{self, Manifest, OutputError, RecordWriter, RunStatus, SCHEMA_VERSION};
use std::path::{Path, PathBuf};

pub struct SyntheticRun {
    dir: PathBuf,
    writer: RecordWriter,
    summary: Accumulator,
}

impl SyntheticRun {
    /// A complete run of the default profile against a server that greeted with `greeting`,
    /// on `range`.
    pub fn create(dir: &Path, range: PortRange, greeting: &str) -> Result<SyntheticRun, OutputError> {
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            tool: "ftpswarm".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            profile: crate::profile::Profile::default().into(),
            target: "ftp://synthetic@127.0.0.1:21".into(),
            embedded_server: false,
            expected_pasv_range: Some(range),
            started_at: String::new(),
            clock_origin_unix_us: 0,
            ended_at: None,
            status: RunStatus::Complete,
            partial_reason: None,
            files: vec![],
            server_greeting: Some(greeting.into()),
            sockets_before_load: None,
            shard: None,
            host: None,
            merged_from: Vec::new(),
        };
        rundir::write_json(&dir.join(rundir::MANIFEST), &manifest)?;
        Ok(SyntheticRun {
            dir: dir.to_path_buf(),
            writer: RecordWriter::create(dir)?,
            summary: Accumulator::new(Some(range)),
        })
    }

    pub fn put(&mut self, record: &Record) -> Result<(), OutputError> {
        self.writer.write(record)?;
        self.summary.add(record);
        Ok(())
    }

    /// Flushes the records and writes the summary.
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.writer.sync()?;
        rundir::write_json(&self.dir.join(rundir::SUMMARY), &self.summary.finish())
    }

    /// A session of one control connection, logged in 30 µs after `from`, open until `to`.
    pub fn connection(id: u64, from: u64, to: u64) -> [Record; 2] {
        [
            Record::Connection(ConnectionRecord {
                session_id: id,
                connection_id: id,
                t_connect_start_us: from,
                t_connected_us: Some(from + 10),
                t_greeting_us: Some(from + 20),
                t_tls_us: None,
                t_login_done_us: Some(from + 30),
                t_closed_us: to,
                transfers_ok: 0,
                transfers_failed: 0,
                outcome: Outcome::Ok,
                detail: String::new(),
            }),
            Record::Session(SessionRecord {
                session_id: id,
                t_intended_start_us: from,
                t_start_us: from,
                t_login_done_us: Some(from + 30),
                t_end_us: to,
                connections: 1,
                files_planned: 0,
                files_ok: 0,
                files_failed: 0,
                files_not_attempted: 0,
                bytes: 0,
                outcome: Outcome::Ok,
                detail: String::new(),
            }),
        ]
    }

    /// A successful transfer on connection `id` whose PASV went out at `t` and got `port`: its
    /// 227 100 µs later, connected at 150 µs, first byte at 300, done at 2 ms, final reply at
    /// 2.1 ms.
    pub fn transfer(id: u64, seq: u32, t: u64, port: u16, command: TransferCommand, bytes: u64) -> Record {
        Record::Transfer(TransferEvent {
            session_id: id,
            connection_id: id,
            seq_in_session: seq,
            command,
            passive_command: PassiveCommand::Pasv,
            path: format!("size-{bytes}.bin"),
            pasv_port: Some(port),
            in_range: Some(true),
            t_pasv_sent_us: t,
            t_pasv_reply_us: Some(t + 100),
            t_data_connected_us: Some(t + 150),
            t_data_tls_us: None,
            t_first_byte_us: Some(t + 300),
            t_transfer_done_us: Some(t + 2000),
            t_data_closed_us: Some(t + 2010),
            t_final_reply_us: Some(t + 2100),
            bytes,
            expected_bytes: Some(bytes),
            pasv_reply_code: Some(227),
            transfer_reply_code: Some(150),
            final_reply_code: Some(226),
            outcome: Outcome::Ok,
            detail: String::new(),
        })
    }
}
