//! `ftpswarm run`: profile → (embedded) server → preflight → swarm → run directory → summary.

mod target;

use crate::clock::{iso, RunClock};
use crate::ftp::ClientConfig;
use crate::observe::collector::spawn_collector;
use crate::observe::hlog::{IntervalLog, LATENCY_LOG};
use crate::observe::metrics::{self, Metrics};
use crate::observe::progress::{spawn_progress, ProgressTarget};
use crate::observe::timeline::{spawn_sampler, SamplerConfig, SamplerStats, TIMELINE};
use crate::observe::LiveCounters;
use crate::profile::{PortRange, Profile, ProfileOverrides};
use crate::rundir::{self, Manifest, RecordWriter, RunStatus, SCHEMA_VERSION};
use crate::signals::InterruptedBefore;
use crate::summary::{Accumulator, Summary};
use crate::swarm::files::{FilePlan, RetrSource};
use crate::swarm::remote::{self, Created};
use crate::swarm::sources::SourcePorts;
use crate::swarm::{self, SwarmContext, SwarmOutcome};
use crate::target::Target;
use anyhow::bail;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use target::{client_config, resolve_target, tls_client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The embedded server's passive range when the profile names none: below Linux's ephemeral
/// range (32768–60999), so outgoing connections never occupy it.
pub const DEFAULT_PASV_RANGE: PortRange = PortRange { min: 30000, max: 30099 };

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub profile: Option<PathBuf>,
    pub overrides: ProfileOverrides,
    pub target: Option<String>,
    /// Exact run directory; otherwise a new one under `output_base`.
    pub out: Option<PathBuf>,
    /// Write into a non-empty `out`.
    pub force: bool,
    pub output_base: PathBuf,
    pub prepare: bool,
    pub keep_files: bool,
    pub use_announced_ip: bool,
    pub progress: bool,
    /// Timeline sampling period; zero turns the sampler off.
    pub sample_interval: Duration,
    pub server_sockets: SocketView,
    /// Draw charts and report.md when the run ends.
    pub report: bool,
    /// Start the load at this wall-clock time (after the preflight), so that shards on
    /// several machines overlap.
    pub start_at: Option<std::time::SystemTime>,
    /// Serve live metrics for Prometheus here while the run lasts.
    pub metrics_addr: Option<SocketAddr>,
}

/// Whether the timeline samples the kernel's sockets on the passive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketView {
    /// On when the target is on this host (loopback), off otherwise.
    #[default]
    Auto,
    On,
    Off,
}

/// Timeline sampling period unless asked otherwise.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            profile: None,
            overrides: ProfileOverrides::default(),
            target: None,
            out: None,
            force: false,
            output_base: PathBuf::from("output"),
            prepare: false,
            keep_files: false,
            use_announced_ip: false,
            progress: false,
            sample_interval: DEFAULT_SAMPLE_INTERVAL,
            server_sockets: SocketView::Auto,
            report: false,
            start_at: None,
            metrics_addr: None,
        }
    }
}

pub struct RunReport {
    pub dir: PathBuf,
    pub profile: Profile,
    pub manifest: Manifest,
    pub summary: Summary,
    pub swarm: SwarmOutcome,
    /// Removals that failed during cleanup of a real server.
    pub cleanup_failures: usize,
    pub sampler: Option<SamplerStats>,
}

fn run_tag() -> String {
    format!(
        "{}-{:04x}",
        chrono::Local::now().format("%Y%m%d%H%M%S"),
        rand::random::<u16>()
    )
}

/// The load machine's name, for the manifest: which machine ran which shard.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// Waits for `--start-at`, so that shards started on several machines load the server
/// together. A time already past starts at once, with a warning: that shard's load will not
/// overlap the others' as planned.
async fn wait_for_start(start_at: Option<std::time::SystemTime>, interrupt: &CancellationToken) -> anyhow::Result<()> {
    let Some(at) = start_at else { return Ok(()) };
    match at.duration_since(std::time::SystemTime::now()) {
        Ok(wait) => {
            tracing::info!("waiting {:.1} s for --start-at {}", wait.as_secs_f64(), iso(at));
            if wait > Duration::from_secs(60) {
                eprintln!("waiting until {} (--start-at) to start the load", iso(at));
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => Ok(()),
                _ = interrupt.cancelled() => Err(InterruptedBefore("while waiting for --start-at").into()),
            }
        }
        Err(late) => {
            tracing::warn!(
                "--start-at {} was {:.1} s ago (after the preflight): starting now, so this shard's load starts late against the others'",
                iso(at),
                late.duration().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// Before any connection: a run that cannot open its sockets fails here, not mid-run with
/// errors that look like the server's.
fn raise_fd_limit(profile: &Profile, embedded: bool) -> anyhow::Result<()> {
    use crate::fd_limit::{ensure, FdBudget, FdLimit};
    match ensure(FdBudget::of(profile, embedded))? {
        FdLimit::Enough { .. } => {}
        FdLimit::Raised { from, to } => {
            tracing::info!("open-file limit raised from {from} to {to} for this run's connections")
        }
        FdLimit::RaisedShort { from, to, needed } => tracing::warn!(
            "open-file limit raised from {from} to {to}, the hard limit; this run may need up to {needed} (every \
             connection with its data connection open at once, or an open model's load.max_in_flight sessions if \
             the server falls behind): connects past it fail with local_error; raise the hard limit (`ulimit -Hn \
             {needed}` as root) or lower the load"
        ),
    }
    Ok(())
}

/// What other processes hold on the range, read before the preflight's own connections can
/// add theirs: only where the server's sockets are this host's.
fn sockets_before_load(
    view: SocketView,
    target: &Target,
    range: Option<PortRange>,
) -> Option<rundir::SocketsBeforeLoad> {
    match (view, target.is_loopback(), range) {
        (SocketView::Off, _, _) | (SocketView::Auto, false, _) | (_, _, None) => None,
        (_, _, Some(range)) => crate::observe::sockdiag::SockDiag::open()
            .and_then(|mut d| d.count_all(range))
            .ok()
            .or_else(|| crate::observe::sockdiag::sample_sockets(range))
            .map(|c| rundir::SocketsBeforeLoad {
                listen: c.listen,
                established: c.established,
                time_wait: c.time_wait,
                host_time_wait_cap: crate::observe::sockdiag::host_time_wait_cap(),
            }),
    }
}

/// Deletes the run's uploads and prepared files from a real server; returns how many could
/// not be deleted.
async fn clean_up(dir: &Path, config: &Arc<ClientConfig>, addr: SocketAddr, target: &str, created: &Created) -> usize {
    let stored = rundir::stored_paths(dir).unwrap_or_else(|e| {
        tracing::warn!("cleanup cannot tell which uploads to delete, they stay on the server: {e}");
        Vec::new()
    });
    match remote::cleanup(config, addr, target, &stored, created).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("cleanup incomplete: {e}");
            stored.len() + created.files.len()
        }
    }
}

/// Why the run is partial, if it is: each reason a sentence of the manifest's
/// `partial_reason`.
fn partial_reasons(
    profile: &Profile,
    outcome: &SwarmOutcome,
    interrupted_by_user: bool,
    clock: RunClock,
    write_error: Option<&impl std::fmt::Display>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if outcome.interrupted && interrupted_by_user {
        reasons.push(format!("interrupted after {:.1} s", clock.now_us() as f64 / 1e6));
    }
    // Sessions cut at the end of a run that ran its full duration are the duration's
    // definition, not a loss (they are in the CSVs as `interrupted`); after Ctrl-C they are.
    if outcome.sessions_cut_off > 0 && interrupted_by_user {
        reasons.push(format!(
            "{} sessions still running were cut off after the drain period (recorded as interrupted)",
            outcome.sessions_cut_off
        ));
    }
    // A closed model whose workers did not all get a session going (the machine ran out of
    // descriptors, say) measured a smaller load than the one asked for.
    let load = &profile.load;
    if load.model == crate::profile::LoadModel::Closed
        && !outcome.interrupted
        && outcome.stopped.is_none()
        && load.duration.is_some_and(|d| d.0 > profile.ramp_up())
        && load.total_sessions.is_none_or(|t| t >= u64::from(load.sessions))
        && outcome.sessions_started < u64::from(load.sessions)
    {
        reasons.push(format!(
            "only {} of the {} configured sessions ever started; the load was smaller than asked",
            outcome.sessions_started, load.sessions
        ));
    }
    if let Some(why) = &outcome.stopped {
        reasons.push(format!("stopped early: {why}"));
    }
    if outcome.sessions_unrecorded > 0 {
        reasons.push(format!(
            "{} cut sessions could not write their records in time",
            outcome.sessions_unrecorded
        ));
    }
    if let Some(e) = write_error {
        reasons.push(format!("records could not all be written: {e}"));
    }
    reasons
}

/// The manifest as the run starts: `partial` until the end rewrites it, so a reader (or a
/// crash) sees an honest status.
fn first_manifest(
    profile: &Profile,
    target: &str,
    embedded: bool,
    clock: RunClock,
    server_greeting: Option<String>,
    sockets_before_load: Option<rundir::SocketsBeforeLoad>,
    sampled: bool,
) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        tool: "ftpswarm".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        profile: profile.clone().into(),
        target: target.to_string(),
        embedded_server: embedded,
        expected_pasv_range: profile.target.pasv_range,
        started_at: iso(clock.wall_start()),
        clock_origin_unix_us: clock
            .wall_start()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0),
        ended_at: None,
        // Until the run finishes, a reader (or a crash) sees an honest "partial".
        status: RunStatus::Partial,
        partial_reason: Some("run in progress, or the process ended before finishing".into()),
        server_greeting,
        sockets_before_load,
        shard: profile.shard().is_split().then(|| profile.shard()),
        host: host_name(),
        merged_from: Vec::new(),
        files: [
            rundir::EVENTS,
            rundir::CONNECTIONS,
            rundir::SESSIONS,
            LATENCY_LOG,
            rundir::SUMMARY,
        ]
        .into_iter()
        .chain(sampled.then_some(TIMELINE))
        .map(String::from)
        .collect(),
    }
}

/// Runs a swarm and writes its run directory. `interrupt` (Ctrl-C in the binary) stops the
/// load early; everything recorded is still written and the run is marked partial.
pub async fn run(opts: RunOptions, interrupt: CancellationToken) -> anyhow::Result<RunReport> {
    let profile = Profile::load_with_overrides(opts.profile.as_deref(), &opts.overrides)?;
    let shard = profile.shard();
    let mut profile = profile
        .shard_share()
        .map_err(|e| anyhow::anyhow!("cannot run shard {shard}: {e}"))?;
    // Before any connection: a run that cannot open its sockets fails here, not mid-run with
    // errors that look like the server's.
    let embedded = opts.target.is_none() && profile.target.url.is_none();
    let sources = SourcePorts::for_profile(&profile)?;
    raise_fd_limit(&profile, embedded)?;
    // Said once the run is sure to start (the checks above refuse with one line).
    if let Some(d) = profile
        .load
        .duration
        .filter(|d| profile.load.model == crate::profile::LoadModel::Closed && d.0 < profile.ramp_up())
    {
        tracing::warn!(
            "the ramp ({}) is longer than the duration ({d}): only about {:.0}% of the {} sessions will start; \
             give load.ramp_up (unset, it opens at most {} control connections a second), or a longer --duration",
            crate::profile::HumanDuration(profile.ramp_up()),
            d.0.as_secs_f64() / profile.ramp_up().as_secs_f64() * 100.0,
            profile.load.sessions,
            crate::profile::DEFAULT_RAMP_CONNECTS_PER_S
        );
    }
    // The live counters of the load, served from now on when asked: a metrics address that
    // cannot be bound fails the run before any traffic.
    let live = Arc::new(LiveCounters::default());
    let metrics = match opts.metrics_addr {
        Some(addr) => {
            let labels = vec![
                ("shard".to_string(), shard.index.to_string()),
                ("shards".to_string(), shard.count.to_string()),
            ];
            let metrics = Arc::new(Metrics::new(live.clone(), labels));
            let stop = CancellationToken::new();
            let (bound, task) = metrics::serve(metrics.clone(), addr, stop.clone()).await?;
            tracing::info!("metrics for Prometheus on http://{bound}/metrics");
            // Dropped on any early return too, which stops the server.
            Some((metrics, stop.drop_guard(), task))
        }
        None => None,
    };
    let resolved = resolve_target(&opts, &mut profile).await?;
    let target_text = resolved.target.redacted();
    // Shards on one server name their remote files apart.
    let tag = match shard.is_split() {
        true => format!("{}-shard{}", run_tag(), shard.index),
        false => run_tag(),
    };

    // What other processes hold on the range, read before the preflight's own connections
    // can add theirs.
    let sockets_before_load = sockets_before_load(opts.server_sockets, &resolved.target, profile.target.pasv_range);
    let tls = tls_client(&profile, &resolved.target, resolved.embedded.as_ref())?;
    // Preflight on its own clock: the load's t = 0 is when the load starts.
    let prep_config = Arc::new(client_config(
        &profile,
        &resolved.target,
        opts.use_announced_ip,
        tls.clone(),
    ));
    let (files, created, server_greeting) = match &resolved.embedded {
        Some(_) => (
            FilePlan {
                retr: RetrSource::Synthetic { dir: "data".into() },
                stor_dir: "scratch".into(),
                list_dir: ".".into(),
                run_tag: tag.clone(),
            },
            Created::default(),
            None,
        ),
        None => {
            let p = tokio::select! {
                p = remote::prepare(&prep_config, resolved.addr, &target_text, &profile, &tag, opts.prepare) => p?,
                _ = interrupt.cancelled() => return Err(InterruptedBefore("during the preflight").into()),
            };
            let greeting = prep_config.password.scrub(&p.greeting);
            (p.files, p.created, Some(greeting))
        }
    };
    if let Some(r) = resolved.unchecked_range {
        tracing::warn!(
            "not checking passive ports against the profile's range {r} (it is for the embedded server); \
             give --pasv-range with your server's range to flag grants outside it"
        );
    }

    let dir_name = match shard.is_split() {
        true => format!("{}-shard-{}-of-{}", profile.name, shard.index, shard.count),
        false => profile.name.clone(),
    };
    let dir = rundir::create_run_dir(&opts.output_base, opts.out.as_deref(), &dir_name, opts.force)?;
    wait_for_start(opts.start_at, &interrupt).await?;
    let client = Arc::new(ClientConfig {
        live: live.clone(),
        ..client_config(&profile, &resolved.target, opts.use_announced_ip, tls)
    });
    let clock = client.clock;
    let mut manifest = first_manifest(
        &profile,
        &target_text,
        resolved.embedded.is_some(),
        clock,
        server_greeting,
        sockets_before_load,
        !opts.sample_interval.is_zero(),
    );
    rundir::write_json(&dir.join(rundir::MANIFEST), &manifest)?;

    let (tx, rx) = mpsc::channel(8192);
    let collector_done = CancellationToken::new();
    // Stops the load early on an interrupt, or when the records cannot be written.
    let stop_load = interrupt.child_token();
    let mut collector = spawn_collector(
        RecordWriter::create(&dir)?,
        IntervalLog::create(&dir, &clock, Duration::from_secs(1))?,
        Accumulator::new(profile.target.pasv_range),
        (client.live.clone(), clock),
        rx,
        collector_done.clone(),
        stop_load.clone(),
        metrics.as_ref().map(|(m, _, _)| m.clone()),
    );
    let ctx = Arc::new(SwarmContext {
        profile: profile.clone(),
        client: client.clone(),
        addr: resolved.addr,
        files,
        sources,
        records: tx,
        live: live.clone(),
        stop_files: CancellationToken::new(),
        next_connection_id: AtomicU64::new(1),
    });
    let observers_stop = CancellationToken::new();
    let sampler = if opts.sample_interval.is_zero() {
        None
    } else {
        let local = match opts.server_sockets {
            SocketView::Auto => resolved.target.is_loopback(),
            SocketView::On => true,
            SocketView::Off => false,
        };
        let config = SamplerConfig {
            interval: opts.sample_interval,
            server_range: if local { profile.target.pasv_range } else { None },
            server_ipv6: resolved.addr.is_ipv6(),
            server_control: local.then_some(resolved.addr),
        };
        Some(spawn_sampler(
            &dir,
            live.clone(),
            clock,
            config,
            observers_stop.clone(),
        )?)
    };
    let progress = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let target = ProgressTarget {
            duration: profile.load.duration.map(|d| d.0),
            sessions: profile.load.total_sessions,
        };
        spawn_progress(live.clone(), clock, target, observers_stop.clone())
    });

    let outcome = swarm::run(ctx.clone(), stop_load).await;
    drop(ctx);
    observers_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let sampler = match sampler {
        Some(handle) => Some(handle.await??),
        None => None,
    };
    // Give aborted tasks a moment to drop their senders, then drain what is queued.
    let collected = match tokio::time::timeout(Duration::from_secs(5), &mut collector).await {
        Ok(joined) => joined?,
        Err(_) => {
            collector_done.cancel();
            collector.await?
        }
    };
    let end = std::time::SystemTime::now();

    let cleanup_failures = if resolved.embedded.is_none() && !opts.keep_files {
        clean_up(&dir, &prep_config, resolved.addr, &target_text, &created).await
    } else {
        0
    };
    if let Some(server) = resolved.embedded {
        server.stop().await;
    }
    // The last scrape sees the final counts; a scraper polling after the end finds nothing.
    if let Some((_, stop, task)) = metrics {
        drop(stop);
        let _ = task.await;
    }

    let summary = collected.accumulator.finish();
    rundir::write_json(&dir.join(rundir::SUMMARY), &summary)?;
    let reasons = partial_reasons(
        &profile,
        &outcome,
        interrupt.is_cancelled(),
        clock,
        collected.write_error.as_ref(),
    );
    manifest.ended_at = Some(iso(end));
    manifest.status = if reasons.is_empty() {
        RunStatus::Complete
    } else {
        RunStatus::Partial
    };
    manifest.partial_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    rundir::write_json(&dir.join(rundir::MANIFEST), &manifest)?;
    if let Some(e) = collected.write_error {
        bail!("run directory {} is incomplete: {e}", dir.display());
    }
    Ok(RunReport {
        dir,
        profile,
        manifest,
        summary,
        swarm: outcome,
        cleanup_failures,
        sampler,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_partial_for_every_loss_and_only_then() {
        let profile = Profile::default();
        let clock = RunClock::start();
        let none: Option<&String> = None;
        let ran = SwarmOutcome {
            sessions_started: u64::from(profile.load.sessions),
            ..SwarmOutcome::default()
        };
        // Sessions cut when the duration ran out are the duration's definition.
        let cut_at_end = SwarmOutcome {
            sessions_cut_off: 3,
            ..ran.clone()
        };
        assert!(partial_reasons(&profile, &cut_at_end, false, clock, none).is_empty());
        let ctrl_c = SwarmOutcome {
            interrupted: true,
            ..cut_at_end.clone()
        };
        let reasons = partial_reasons(&profile, &ctrl_c, true, clock, none);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("interrupted after "), "{reasons:?}");
        assert!(
            reasons[1].starts_with("3 sessions still running were cut off"),
            "{reasons:?}"
        );
        let short = SwarmOutcome {
            sessions_started: 1,
            ..SwarmOutcome::default()
        };
        assert_eq!(
            partial_reasons(&profile, &short, false, clock, none),
            vec![format!(
                "only 1 of the {} configured sessions ever started; the load was smaller than asked",
                profile.load.sessions
            )]
        );
        let write = "disk full".to_string();
        let lost = SwarmOutcome {
            sessions_unrecorded: 2,
            stopped: Some("the records could not be written".into()),
            ..ran
        };
        assert_eq!(
            partial_reasons(&profile, &lost, false, clock, Some(&write)),
            vec![
                "stopped early: the records could not be written".to_string(),
                "2 cut sessions could not write their records in time".into(),
                "records could not all be written: disk full".into(),
            ]
        );
    }
}
