//! The shards' timelines as one: on ticks of the merged clock, each shard's latest sample at
//! or before the tick, summed.
//!
//! The client-side columns (sessions, connections, ports held, running totals) add up: each
//! shard counted its own. The server's side does not: every shard that sampled the server's
//! sockets saw the same server, so the merged row takes the first shard's reading instead of
//! a sum that would count each socket N times. Host CPU is the mean over the load machines.

use super::records::ShardFiles;
use super::MergeError;
use crate::observe::timeline::{read_timeline, write_timeline, TimelineRow};
use crate::rundir;
use std::path::Path;

/// The tick when the shards' own sampling period cannot be read off their rows.
const DEFAULT_TICK_US: u64 = 100_000;

/// Writes the merged timeline; false when no shard had one.
pub(super) fn merge_timelines(shards: &[ShardFiles], out: &Path) -> Result<bool, MergeError> {
    let mut timelines: Vec<Vec<TimelineRow>> = Vec::new();
    for s in shards {
        if !s.dir.join(rundir::TIMELINE).is_file() {
            continue;
        }
        let mut rows = read_timeline(&s.dir)?;
        for r in &mut rows {
            r.t_us += s.offset_us;
        }
        timelines.push(rows);
    }
    if timelines.iter().all(Vec::is_empty) {
        return Ok(false);
    }
    let rows = sum_on_ticks(&timelines, tick_of(&timelines));
    write_timeline(&out.join(rundir::TIMELINE), &rows)?;
    Ok(true)
}

/// The shards' sampling period: the median gap between rows.
fn tick_of(timelines: &[Vec<TimelineRow>]) -> u64 {
    let mut gaps: Vec<u64> = timelines
        .iter()
        .flat_map(|rows| rows.windows(2).map(|w| w[1].t_us.saturating_sub(w[0].t_us)))
        .filter(|g| *g > 0)
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(DEFAULT_TICK_US)
}

/// Timelines (already on one clock) summed on ticks of `tick_us`, from the earliest row to a
/// last tick at or after every shard's last row, so the final row holds every shard's totals.
pub(super) fn sum_on_ticks(timelines: &[Vec<TimelineRow>], tick_us: u64) -> Vec<TimelineRow> {
    let tick_us = tick_us.max(1);
    let first = timelines
        .iter()
        .filter_map(|t| t.first())
        .map(|r| r.t_us)
        .min()
        .unwrap_or(0);
    let last = timelines
        .iter()
        .filter_map(|t| t.last())
        .map(|r| r.t_us)
        .max()
        .unwrap_or(0);
    let start = first / tick_us * tick_us;
    let mut cursors = vec![0usize; timelines.len()];
    let mut out = Vec::new();
    let mut t = start;
    loop {
        let mut row = TimelineRow::empty(t);
        let mut cpu = Vec::new();
        let mut server_cpu = Vec::new();
        for (rows, cursor) in timelines.iter().zip(cursors.iter_mut()) {
            while *cursor < rows.len() && rows[*cursor].t_us <= t {
                *cursor += 1;
            }
            // Before its first sample a shard had not started: it adds nothing.
            let Some(held) = cursor.checked_sub(1).map(|i| &rows[i]) else {
                continue;
            };
            // A shard that has ended keeps its totals, but its last view of the server and
            // its host is old news.
            let fresh = held.t_us + tick_us > t;
            add(&mut row, held, fresh);
            if fresh {
                cpu.extend(held.host_cpu_busy);
                server_cpu.extend(held.server_cpu_cores);
            }
        }
        if !cpu.is_empty() {
            row.host_cpu_busy = Some(cpu.iter().sum::<f64>() / cpu.len() as f64);
        }
        // Every shard that saw the server's process saw the same one.
        if !server_cpu.is_empty() {
            row.server_cpu_cores = Some(server_cpu.iter().sum::<f64>() / server_cpu.len() as f64);
        }
        out.push(row);
        if t >= last {
            break;
        }
        t += tick_us;
    }
    out
}

fn add(sum: &mut TimelineRow, r: &TimelineRow, fresh: bool) {
    sum.sessions_active += r.sessions_active;
    sum.control_open += r.control_open;
    sum.pasv_pending += r.pasv_pending;
    sum.data_open += r.data_open;
    sum.ports_held += r.ports_held;
    sum.grants_total += r.grants_total;
    sum.out_of_range_total += r.out_of_range_total;
    sum.transfers_total += r.transfers_total;
    sum.bytes_total += r.bytes_total;
    for (s, v) in sum.failures_total.iter_mut().zip(r.failures_total) {
        *s += v;
    }
    // One server: the first shard that saw it this tick speaks for it.
    if fresh {
        sum.server_sockets = sum.server_sockets.or(r.server_sockets);
        sum.server_listening = sum.server_listening.or(r.server_listening);
    }
}
