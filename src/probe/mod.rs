//! `ftpswarm probe URL`: a fingerprint of a server's passive-mode behaviour, measured rather
//! than assumed, for the sizing model and for anyone choosing a server.
//!
//! One file per question the probe asks, run in this order:
//! 1. `epsv`: is EPSV answered?
//! 2. `pick`: in what order are ports handed out (sequential, random, shuffled scan)?
//! 3. `exhaustion`: what happens when the range runs out, and how many random ports does the
//!    server try (k) before giving up?
//! 4. `reuse`: is a port free again once its data connection is accepted, or only after the
//!    transfer?
//! 5. `source`: is a data connection from another address accepted?
//! 6. `lifetime`: how long does an abandoned PASV keep its port? (Last: it holds ports for up
//!    to `--max-wait`, which would disturb the other steps.)
//!
//! Everything is bounded: each network operation has a timeout, each step a budget, and the
//! probe never holds more than `--max-pending` PASVs at once. Everything it opens is released
//! (data ports connected to or closed, control connections quit) and its scratch upload is
//! deleted.

mod epsv;
mod exhaustion;
mod fingerprint;
mod lifetime;
mod link;
mod pick;
mod reuse;
mod source;
mod tls;
mod tries;

pub use epsv::Epsv;
pub use exhaustion::{AtExhaustion, Exhaustion, ExhaustionStep};
pub use fingerprint::{render, Fingerprint, RangeSource};
pub use lifetime::{Lifetime, LifetimeCheck, LifetimeVerdict};
pub use link::GrantOutcome;
pub use pick::{PickOrder, PickVerdict};
pub use reuse::{Reuse, ReuseVerdict};
pub use source::{ForeignSource, ForeignVerdict};
pub use tls::TlsFacts;
pub use tries::{log_likelihood_drop, TryEstimate, TryModel};

use crate::clock::RunClock;
use crate::event::PassiveCommand;
use crate::ftp::{ClientConfig, ClientTimeouts};
use crate::observe::LiveCounters;
use crate::port_range::PortRange;
use crate::rundir::SCHEMA_VERSION;
use crate::target::{Secret, Target};
use anyhow::Context;
use link::Link;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default for `--max-wait`.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(30);
/// Default for `--rounds`.
pub const DEFAULT_ROUNDS: u32 = 3;
/// Pending PASVs allowed beyond the range width by default: enough to see what the server
/// does once the range is full, and a few more for the trials.
const EXTRA_PENDING: u32 = 5;

/// Budgets per step; the lifetime step is bounded by `--max-wait` instead.
const PICK_BUDGET: Duration = Duration::from_secs(60);
const EXHAUSTION_BUDGET: Duration = Duration::from_secs(90);
const REUSE_BUDGET: Duration = Duration::from_secs(60);

/// Timeouts of every connection the probe opens. The reply timeout is also how long a PASV
/// may go unanswered before it counts as a wait.
const TIMEOUTS: ClientTimeouts = ClientTimeouts {
    connect: Duration::from_secs(5),
    reply: Duration::from_secs(5),
    data_connect: Duration::from_secs(5),
    idle: Duration::from_secs(10),
};

#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// `ftp://user@host:port`; the password from the URL, `FTPSWARM_PASSWORD` or a prompt.
    pub target: String,
    /// The server's passive range; without it, inferred from the ports seen.
    pub range: Option<PortRange>,
    /// Most PASVs pending at once (default: range width + 5).
    pub max_pending: Option<u32>,
    /// Longest wait when timing an abandoned PASV listener.
    pub max_wait: Duration,
    /// Exhaustion rounds (0 skips the exhaustion step).
    pub rounds: u32,
    pub passive: PassiveCommand,
    /// FTPS (an `ftps://` or `ftps-implicit://` URL): how to check the server's certificate.
    pub tls: crate::tls::TlsOptions,
}

impl ProbeOptions {
    /// The defaults for `target`.
    pub fn new(target: impl Into<String>) -> Self {
        ProbeOptions {
            target: target.into(),
            range: None,
            max_pending: None,
            max_wait: DEFAULT_MAX_WAIT,
            rounds: DEFAULT_ROUNDS,
            passive: PassiveCommand::Pasv,
            tls: crate::tls::TlsOptions::default(),
        }
    }
}

/// Progress lines on stderr, only for a person watching (the probe takes up to a minute).
struct Progress(bool);

impl Progress {
    fn step(&self, what: &str) {
        if self.0 {
            eprintln!("probe: {what}…");
        }
    }
}

/// Runs every step against the target and returns the fingerprint.
pub async fn probe(opts: &ProbeOptions) -> anyhow::Result<Fingerprint> {
    if opts.max_pending == Some(0) {
        anyhow::bail!("--max-pending must be at least 1");
    }
    let started = Instant::now();
    let mut target = Target::parse(&opts.target)?;
    target.resolve_password()?;
    let shown = target.redacted();
    let addr = resolve(&target).await?;
    let tls = match target.security.is_tls() {
        true => Some(Arc::new(crate::tls::TlsClient::new(
            target.security,
            &target.host,
            &opts.tls,
        )?)),
        false => None,
    };
    let link = Link {
        addr,
        config: Arc::new(client_config(&target, opts.passive, tls.clone())),
    };
    let progress = Progress(std::io::stderr().is_terminal());
    // One clear error for an unreachable server or a refused login, before any step.
    progress.step(&format!("logging in to {shown}"));
    let conn = link.open().await.with_context(|| format!("cannot probe {shown}"))?;
    link::quit_and_wait(conn).await;
    let mut notes = Vec::new();

    progress.step("EPSV");
    let epsv = epsv::check(&link).await;
    if opts.passive == PassiveCommand::Epsv && epsv.supported != Some(true) {
        anyhow::bail!(
            "{shown} does not support EPSV ({} {}); probe with PASV",
            epsv.code.map_or(String::new(), |c| c.to_string()),
            epsv.text
        );
    }

    progress.step("port-pick order");
    let picks = pick::picks_for(opts.range.map(|r| r.width()));
    let pick_order = pick::measure(&link, opts.range, picks, Instant::now() + PICK_BUDGET).await;
    let (range, range_source) = match opts.range {
        Some(r) => (Some(r), RangeSource::Given),
        None => match pick::inferred_range(&pick_order.ports) {
            Some(r) => {
                notes.push(format!(
                    "no --range: assumed {r} ({} ports), the smallest range holding the {} ports seen; \
                     a wider real range makes W, k and out-of-range answers wrong",
                    r.width(),
                    pick_order.ports.len()
                ));
                (Some(r), RangeSource::Inferred)
            }
            None => (None, RangeSource::Unknown),
        },
    };
    if let (Some(r), true) = (opts.range, pick_order.out_of_range > 0) {
        notes.push(format!(
            "{} of {} ports granted with nothing held were outside --range {r}: is that the server's range?",
            pick_order.out_of_range,
            pick_order.ports.len()
        ));
    }
    let width = range.map(|r| r.width());
    let max_pending = opts
        .max_pending
        .unwrap_or_else(|| width.map_or(EXTRA_PENDING, |w| w.saturating_add(EXTRA_PENDING)));
    if let Some(w) = width.filter(|&w| max_pending < w) {
        notes.push(format!(
            "--max-pending {max_pending} is below the range width {w}: exhaustion cannot be reached"
        ));
    }

    progress.step("exhaustion");
    let exhaustion = match range {
        Some(r) if opts.rounds > 0 => {
            exhaustion::measure(&link, r, max_pending, opts.rounds, Instant::now() + EXHAUSTION_BUDGET).await
        }
        Some(_) => Exhaustion::skipped("--rounds 0", max_pending),
        None => Exhaustion::skipped("no range known", max_pending),
    };

    progress.step("port reuse while a transfer is open");
    let reuse = match range {
        Some(r) => reuse::measure(&link, r, max_pending, Instant::now() + REUSE_BUDGET).await,
        None => Reuse::skipped("no range known"),
    };

    progress.step("data connection from another address");
    let foreign_source = source::measure(&link).await;

    let tls_facts = match tls {
        Some(_) => {
            progress.step("FTPS: PROT C and TLS session reuse on data connections");
            Some(tls::measure(&link).await)
        }
        None => None,
    };

    progress.step(&format!(
        "lifetime of an abandoned PASV (up to {})",
        humantime::format_duration(opts.max_wait)
    ));
    let abandoned_lifetime = lifetime::measure(&link, range, max_pending, opts.max_wait).await;

    Ok(Fingerprint {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        target: shown,
        passive_command: opts.passive,
        range: range.map(|r| r.to_string()),
        range_source,
        width,
        max_pending,
        pick_order,
        epsv,
        exhaustion,
        reuse,
        abandoned_lifetime,
        foreign_source,
        tls: tls_facts,
        elapsed_s: started.elapsed().as_secs_f64(),
        notes,
    })
}

async fn resolve(target: &Target) -> anyhow::Result<SocketAddr> {
    let hostport = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut addrs = tokio::net::lookup_host(&hostport)
        .await
        .with_context(|| format!("cannot resolve {hostport}"))?;
    addrs
        .next()
        .with_context(|| format!("{hostport} resolves to no address"))
}

fn client_config(target: &Target, passive: PassiveCommand, tls: Option<Arc<crate::tls::TlsClient>>) -> ClientConfig {
    ClientConfig {
        clock: RunClock::start(),
        timeouts: TIMEOUTS,
        user: target.user.clone(),
        password: target.password.clone().unwrap_or_else(|| Secret::new("")),
        passive,
        // The probe judges ranges itself; the client's check only applies to transfers.
        expected_range: None,
        use_announced_ip: false,
        bandwidth_cap: None,
        announced_ip_warned: AtomicBool::new(false),
        live: Arc::new(LiveCounters::default()),
        tls,
        cut: tokio_util::sync::CancellationToken::new(),
    }
}
