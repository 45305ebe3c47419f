//! The collector: every record is written to its CSV as it arrives, added to the latency
//! interval log and folded into the summary, so an interrupted run keeps what it did.

use super::hlog::IntervalLog;
use super::LiveCounters;
use crate::clock::RunClock;
use crate::event::Record;
use crate::rundir::RecordWriter;
use crate::summary::Accumulator;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the collector hands back when the records stop.
pub struct Collected {
    pub accumulator: Accumulator,
    pub write_error: Option<String>,
}

/// Runs until every sender is gone or, after `done`, until the channel is empty (aborted
/// tasks may hold a sender a moment longer). Rows reach the disk within
/// [`crate::rundir::records::DISK_LAG`] plus one tick. When a file cannot be written (a full
/// disk, say) it cancels `stop_load`: a run that cannot record should not go on loading the
/// server. Each record's latencies also go to the live `metrics`, when they are served.
///
/// Each tick also moves the summary's watermark to the oldest transfer still in `in_flight`,
/// so the time-ordered statistics hold only what is in flight, not the whole run.
#[allow(clippy::too_many_arguments)]
pub fn spawn_collector(
    mut writer: RecordWriter,
    mut latency_log: IntervalLog,
    accumulator: Accumulator,
    in_flight: (Arc<LiveCounters>, RunClock),
    mut rx: mpsc::Receiver<Record>,
    done: CancellationToken,
    stop_load: CancellationToken,
    metrics: Option<Arc<super::metrics::Metrics>>,
) -> tokio::task::JoinHandle<Collected> {
    tokio::spawn(async move {
        let mut c = Collected {
            accumulator,
            write_error: None,
        };
        let mut handle = |c: &mut Collected, writer: &mut RecordWriter, r: Record| {
            if c.write_error.is_none() {
                if let Err(e) = writer.write(&r).and_then(|()| latency_log.add(&r)) {
                    c.write_error = Some(e.to_string());
                    stop_load.cancel();
                }
            }
            if let Some(m) = &metrics {
                m.observe(&r);
            }
            c.accumulator.add(&r);
        };
        let mut tick = tokio::time::interval(crate::rundir::records::DISK_LAG / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => handle(&mut c, &mut writer, r),
                    None => break,
                },
                _ = tick.tick() => {
                    // In this order: a transfer leaves the registry only after its record was
                    // sent, so every record behind the watermark is in the channel by now.
                    let watermark = in_flight.0.in_flight.watermark(&in_flight.1);
                    while let Ok(r) = rx.try_recv() {
                        handle(&mut c, &mut writer, r);
                    }
                    c.accumulator.advance(watermark);
                    if c.write_error.is_none() {
                        if let Err(e) = writer.write_due() {
                            c.write_error = Some(e.to_string());
                            stop_load.cancel();
                        }
                    }
                }
                _ = done.cancelled() => {
                    while let Ok(r) = rx.try_recv() {
                        handle(&mut c, &mut writer, r);
                    }
                    break;
                }
            }
        }
        if let Err(e) = writer.sync().and_then(|()| latency_log.finish()) {
            c.write_error.get_or_insert(e.to_string());
        }
        c
    })
}
