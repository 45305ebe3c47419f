//! Live progress on a terminal: sessions done against the target, rate, what is in flight,
//! ports held, failures. Nothing when stderr is not a terminal or with --quiet.

use super::LiveCounters;
use crate::clock::RunClock;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the run is heading for: a duration, a session count, or both.
#[derive(Debug, Clone, Copy)]
pub struct ProgressTarget {
    pub duration: Option<Duration>,
    pub sessions: Option<u64>,
}

pub fn spawn_progress(
    live: Arc<LiveCounters>,
    clock: RunClock,
    target: ProgressTarget,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let length = target
        .duration
        .map(|d| d.as_millis() as u64)
        .or(target.sessions)
        .unwrap_or(0);
    let by_time = target.duration.is_some();
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr_with_hz(4));
    let template = if by_time {
        "{bar:30.cyan/blue} {elapsed:>4}/{duration_target} {msg}"
    } else {
        "{bar:30.cyan/blue} {pos}/{len} sessions {msg}"
    };
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let total = target.duration.map(|d| format!("{}s", d.as_secs())).unwrap_or_default();
    bar.set_style(style.with_key(
        "duration_target",
        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&total);
        },
    ));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let (mut last_t, mut last_done) = (0u64, 0u64);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let now = clock.now_us();
            let done = live.transfers_done.load(Relaxed);
            let rate = if now > last_t {
                (done - last_done) as f64 * 1e6 / (now - last_t) as f64
            } else {
                0.0
            };
            (last_t, last_done) = (now, done);
            let sessions = live.sessions_done.load(Relaxed);
            bar.set_position(if by_time { now / 1000 } else { sessions });
            bar.set_message(format!(
                "· {sessions} sessions done, {} active · {rate:.0} transfers/s · {} ports held · {} failures",
                live.sessions_active.load(Relaxed),
                live.ports_held.load(Relaxed),
                live.failures_total(),
            ));
        }
        bar.finish_and_clear();
    })
}
