//! `latency.hlog`: an HdrHistogram interval log (the format of HdrHistogram's
//! HistogramLogWriter: one compressed histogram per phase per interval, tagged with the phase
//! name), readable by HistogramLogProcessor and HdrHistogram plotters.

use crate::clock::RunClock;
use crate::event::Record;
use crate::rundir::OutputError;
use crate::summary::{phase_latencies, record_end_us, PHASES};
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::rundir::LATENCY_LOG;
const MAX_US: u64 = 3_600_000_000;

pub struct IntervalLog {
    path: PathBuf,
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    histograms: Vec<Histogram<u64>>,
    interval_us: u64,
    interval_start_us: u64,
}

impl IntervalLog {
    pub fn create(dir: &Path, clock: &RunClock, interval: Duration) -> Result<Self, OutputError> {
        let path = dir.join(LATENCY_LOG);
        let err = |e: std::io::Error| OutputError::Write {
            path: path.clone(),
            message: e.to_string(),
        };
        let mut out = BufWriter::new(File::create(&path).map_err(err)?);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment("ftpswarm latency log: values in microseconds, one tag per phase")
            .add_comment(&format!("phases: {}", PHASES.join(",")))
            .with_start_time(clock.wall_start())
            .with_base_time(clock.wall_start())
            .begin_log_with(&mut out, &mut serializer)
            .map_err(err)?;
        out.write_all(b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n")
            .map_err(err)?;
        let histograms = PHASES
            .iter()
            .map(|_| Histogram::new_with_bounds(1, MAX_US, 3))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OutputError::Write {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(IntervalLog {
            path,
            out,
            serializer,
            histograms,
            interval_us: u64::try_from(interval.as_micros()).unwrap_or(1_000_000).max(1),
            interval_start_us: 0,
        })
    }

    /// Adds a record's phase latencies to the interval its last phase ended in, writing out
    /// the intervals that are over. Records arrive nearly in order; a late one goes into the
    /// current interval (as HdrHistogram's recorders do: an interval holds what was recorded
    /// during it).
    pub fn add(&mut self, record: &Record) -> Result<(), OutputError> {
        let end = record_end_us(record);
        while end >= self.interval_start_us + self.interval_us {
            self.write_interval()?;
            self.interval_start_us += self.interval_us;
        }
        let histograms = &mut self.histograms;
        phase_latencies(record, |i, v| histograms[i].saturating_record(v.clamp(1, MAX_US)));
        Ok(())
    }

    fn write_interval(&mut self) -> Result<(), OutputError> {
        let path = self.path.clone();
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(|e| OutputError::Write {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let start = Duration::from_micros(self.interval_start_us);
        let length = Duration::from_micros(self.interval_us);
        for (h, phase) in self.histograms.iter_mut().zip(PHASES) {
            if h.is_empty() {
                continue;
            }
            writer
                .write_histogram(h, start, length, Tag::new(phase))
                .map_err(|e| OutputError::Write {
                    path: path.clone(),
                    message: format!("{e:?}"),
                })?;
            h.reset();
        }
        // Each interval on disk as it closes, so a killed run keeps its latencies.
        self.out.flush().map_err(|e| OutputError::Write {
            path,
            message: e.to_string(),
        })
    }

    /// Writes the last (partial) interval and flushes.
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.write_interval()?;
        let path = self.path.clone();
        self.out.flush().map_err(|e| OutputError::Write {
            path,
            message: e.to_string(),
        })
    }
}

/// One histogram of the log: a phase's latencies over one interval.
#[derive(Debug, Clone)]
pub struct LoggedInterval {
    /// The phase (the log's tag).
    pub phase: String,
    /// Since the log's base time (the run's t = 0).
    pub start_us: u64,
    pub length_us: u64,
    pub histogram: Histogram<u64>,
}

/// Every histogram of a run's latency log, in file order. Entries this version cannot decode
/// are an error, not skipped: a merge or a chart built on part of the log would be wrong
/// without saying so.
pub fn read_intervals(dir: &Path) -> Result<Vec<LoggedInterval>, OutputError> {
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let path = dir.join(LATENCY_LOG);
    let err = |message: String| OutputError::Read {
        path: path.clone(),
        message,
    };
    let bytes = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
    let mut de = Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| err(format!("{e:?}")))?;
        let LogEntry::Interval(ih) = entry else { continue };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(ih.encoded_histogram())
            .map_err(|e| err(e.to_string()))?;
        let histogram: Histogram<u64> = de.deserialize(&mut raw.as_slice()).map_err(|e| err(format!("{e:?}")))?;
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        out.push(LoggedInterval {
            phase: ih.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
            start_us: us(ih.start_timestamp()),
            length_us: us(ih.duration()),
            histogram,
        });
    }
    Ok(out)
}

/// Writes a whole latency log at once (a merged run's), with `wall_start` as its t = 0.
pub fn write_intervals(
    dir: &Path,
    wall_start: std::time::SystemTime,
    intervals: &[LoggedInterval],
) -> Result<(), OutputError> {
    let path = dir.join(LATENCY_LOG);
    let err = |message: String| OutputError::Write {
        path: path.clone(),
        message,
    };
    let mut out = BufWriter::new(File::create(&path).map_err(|e| err(e.to_string()))?);
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment("ftpswarm latency log: values in microseconds, one tag per phase")
        .add_comment(&format!("phases: {}", PHASES.join(",")))
        .with_start_time(wall_start)
        .with_base_time(wall_start)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| err(e.to_string()))?;
    out.write_all(b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n")
        .map_err(|e| err(e.to_string()))?;
    let mut writer = IntervalLogWriterBuilder::new()
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| err(e.to_string()))?;
    for i in intervals {
        let tag = Tag::new(&i.phase).ok_or_else(|| err(format!("phase {:?} cannot be a log tag", i.phase)))?;
        writer
            .write_histogram(
                &i.histogram,
                Duration::from_micros(i.start_us),
                Duration::from_micros(i.length_us),
                Some(tag),
            )
            .map_err(|e| err(format!("{e:?}")))?;
    }
    drop(writer);
    out.flush().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, SessionRecord};
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    fn session(end_us: u64, latency_us: u64) -> Record {
        Record::Session(SessionRecord {
            session_id: 1,
            t_intended_start_us: end_us - latency_us,
            t_start_us: end_us - latency_us,
            t_login_done_us: None,
            t_end_us: end_us,
            connections: 1,
            files_planned: 0,
            files_ok: 0,
            files_failed: 0,
            files_not_attempted: 0,
            bytes: 0,
            outcome: Outcome::Ok,
            detail: String::new(),
        })
    }

    #[test]
    fn intervals_hold_what_ended_in_them_and_tools_can_read_them() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = RunClock::start();
        let mut log = IntervalLog::create(tmp.path(), &clock, Duration::from_secs(1)).unwrap();
        log.add(&session(100_000, 1000)).unwrap();
        log.add(&session(900_000, 3000)).unwrap();
        log.add(&session(2_500_000, 7000)).unwrap();
        log.finish().unwrap();

        let bytes = std::fs::read(tmp.path().join(LATENCY_LOG)).unwrap();
        let mut found = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let Ok(LogEntry::Interval(h)) = entry {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .unwrap();
                let hist: Histogram<u64> = Deserializer::new().deserialize(&mut decoded.as_slice()).unwrap();
                found.push((
                    h.tag().map(|t| t.as_str().to_string()),
                    h.start_timestamp().as_secs(),
                    hist.len(),
                    hist.max(),
                ));
            }
        }
        assert_eq!(
            found,
            vec![
                (Some("session".to_string()), 0, 2, 3001),
                (Some("session".to_string()), 2, 1, 7003)
            ],
            "the 1 s interval had nothing and is skipped; maxima are within HdrHistogram's precision"
        );
    }
}
