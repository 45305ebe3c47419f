//! The command line. clap lives here and nowhere else: arguments become typed options that
//! the rest of the crate (and the tests, in-process) use.

use crate::commands::serve::ServeOptions;
use crate::profile::{parse_mix, HumanDuration, PortRange, ProfileOverrides};
use crate::run::{RunOptions, SocketView};
mod plan;

use clap::{Args, Parser, Subcommand};
use plan::{parse_pick, PlanArgs, ServerArg};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "ftpswarm",
    version,
    about = "Load generator and passive-port capacity planner for FTP servers"
)]
struct Cli {
    /// More log output (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a swarm against the embedded server (default) or --target, and write a run directory.
    Run(RunArgs),
    /// Recommend a passive range width from a run (or a profile alone with --what-if).
    Plan(PlanArgs),
    /// (Re)draw the charts and report.md of a run directory.
    Report(ReportArgs),
    /// Run the same load at several range widths and compare measured failures with the model.
    Sweep(SweepArgs),
    /// Run the embedded FTP server alone, to try other clients against it.
    Serve(ServeArgs),
    /// Merge the shard runs of one load (`run --shard I/N` on several machines) into one run directory.
    Merge(MergeArgs),
    /// Fingerprint a server's passive mode: pick order, EPSV, exhaustion, port reuse, listener lifetime.
    ///
    /// It fills the server's passive range for moments: other clients may get 425s meanwhile.
    Probe(ProbeArgs),
}

#[derive(Args, Debug)]
struct ProbeArgs {
    /// Server to probe, e.g. ftp://user@127.0.0.1:2121, ftps://… or ftps-implicit://… (password: the URL, FTPSWARM_PASSWORD, or a prompt).
    url: String,
    /// The server's passive range, e.g. 30000-30099 (without it, inferred from the ports seen).
    #[arg(long, value_parser = parse_range)]
    range: Option<PortRange>,
    /// Most PASVs left pending at once (default: range width + 5).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_pending: Option<u32>,
    /// Longest wait when timing how long an abandoned PASV keeps its port.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    max_wait: HumanDuration,
    /// Exhaustion rounds (0 skips the exhaustion step).
    #[arg(long, default_value_t = crate::probe::DEFAULT_ROUNDS, value_parser = clap::value_parser!(u32).range(0..=20))]
    rounds: u32,
    /// Request ports with EPSV instead of PASV.
    #[arg(long)]
    epsv: bool,
    /// Print the fingerprint as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the fingerprint as JSON to this file.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
}

/// How an FTPS client checks and negotiates TLS: `run`, `sweep` and `probe` share them.
#[derive(Args, Debug, Clone)]
struct TlsArgs {
    /// FTPS: PEM file with the CA certificate(s) of the server's certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// FTPS: accept any server certificate (self-signed test servers only).
    #[arg(long)]
    insecure: bool,
    /// FTPS: newest TLS version to offer (1.2 for ProFTPD with TLS 1.3 and session reuse required).
    #[arg(long)]
    tls_max_version: Option<crate::profile::TlsVersion>,
}

impl From<&ProbeArgs> for crate::probe::ProbeOptions {
    fn from(a: &ProbeArgs) -> Self {
        crate::probe::ProbeOptions {
            target: a.url.clone(),
            range: a.range,
            max_pending: a.max_pending,
            max_wait: a.max_wait.0,
            rounds: a.rounds,
            passive: if a.epsv {
                crate::event::PassiveCommand::Epsv
            } else {
                crate::event::PassiveCommand::Pasv
            },
            tls: crate::tls::TlsOptions {
                ca_file: a.tls.ca_file.clone(),
                insecure: a.tls.insecure,
                extra_roots: Vec::new(),
                max_tls12: a.tls.tls_max_version == Some(crate::profile::TlsVersion::Tls12),
            },
        }
    }
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// The shards' run directories (`run --shard I/N`), in any order.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The merged run directory to write.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// Write into --out even when it is not empty.
    #[arg(long)]
    force: bool,
    /// Do not draw charts and report.md (`ftpswarm report` can later).
    #[arg(long)]
    no_report: bool,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Run directory.
    #[arg(long)]
    run: PathBuf,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Workload profile (TOML). Default: the built-in profiles/quick.toml.
    #[arg(long, short = 'p')]
    profile: Option<PathBuf>,
    /// Target server, e.g. ftp://user@127.0.0.1:2121 (password: FTPSWARM_PASSWORD, the URL, or a prompt).
    /// Without it, ftpswarm starts its embedded server.
    #[arg(long, short = 't')]
    target: Option<String>,
    /// Run directory to write (default: output/<timestamp>-<profile>/).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Write into --out even when it is not empty (its old files are replaced or left beside).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    load: LoadArgs,
    /// The target's passive range (the embedded server uses it), e.g. 30000-30099.
    #[arg(long, value_parser = parse_range)]
    pasv_range: Option<PortRange>,
    /// Real servers: upload synthetic files of the profile's sizes for RETR before the load.
    #[arg(long)]
    prepare: bool,
    /// Real servers: leave the files the run created.
    #[arg(long)]
    keep_files: bool,
    /// Connect data connections to the IP announced in 227 replies, not the control peer.
    #[arg(long)]
    use_announced_ip: bool,
    /// No progress display.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print summary.json to stdout instead of the human summary (implies --quiet).
    #[arg(long)]
    json: bool,
    /// Do not draw charts and report.md at the end (`ftpswarm report` can later).
    #[arg(long)]
    no_report: bool,
    /// Timeline sampling period (0 turns the sampler off).
    #[arg(long, default_value_t = HumanDuration(crate::run::DEFAULT_SAMPLE_INTERVAL), value_parser = parse_duration)]
    sample_interval: HumanDuration,
    /// Sample the kernel's sockets on the passive range: auto = when the target is on this host.
    #[arg(long, value_enum, default_value_t = SocketViewArg::Auto)]
    server_sockets: SocketViewArg,
    /// Run shard I of N (0-based, e.g. $JOB_COMPLETION_INDEX/4): this machine's share of the
    /// sessions, rate and source addresses. `ftpswarm merge` puts the shards together.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<crate::profile::Shard>,
    /// Start the load at this UTC time, e.g. 2026-12-06T23:00:00Z, so that shards overlap
    /// (the preflight runs before it).
    #[arg(long, value_parser = parse_start_at)]
    start_at: Option<std::time::SystemTime>,
    /// Serve live metrics for Prometheus at http://ADDR/metrics while the run lasts, e.g.
    /// 127.0.0.1:9464 (0.0.0.0:9464 in a pod).
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
}

fn parse_shard(s: &str) -> Result<crate::profile::Shard, String> {
    s.parse()
}

/// RFC 3339 with an offset (`Z` for UTC): a time every shard's machine reads the same.
fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(std::time::SystemTime::from)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e}); write it like 2026-12-06T23:00:00Z"))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SocketViewArg {
    Auto,
    On,
    Off,
}

/// The profile knobs `run` and `sweep` can override.
#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// Closed model: concurrent sessions.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    sessions: Option<u32>,
    /// Open model: sessions started per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many sessions.
    #[arg(long)]
    total_sessions: Option<u64>,
    #[arg(long)]
    files_per_session: Option<u32>,
    /// Control connections per session working its files in parallel.
    #[arg(long)]
    parallel: Option<u32>,
    /// How long to start new sessions, e.g. 30s, 2m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<HumanDuration>,
    /// Pause between files on one connection, e.g. 100ms.
    #[arg(long, value_parser = parse_duration)]
    think_time: Option<HumanDuration>,
    /// Command weights, e.g. retr=70,stor=20,list=10.
    #[arg(long, value_parser = parse_mix_arg)]
    mix: Option<crate::profile::Mix>,
    /// Seed for every random choice.
    #[arg(long)]
    seed: Option<u64>,
    /// Local addresses to open connections from, spread round-robin: addresses and ranges,
    /// e.g. 127.0.0.2-127.0.0.250 (each gives its own ~28,000 ephemeral ports).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    source_addresses: Option<Vec<String>>,
    /// FTPS: explicit TLS (AUTH TLS, PROT P) on control and data connections, as ftps://
    /// does; the embedded server then offers it with a self-signed certificate.
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    tls_options: TlsArgs,
}

impl LoadArgs {
    fn overrides(&self, pasv_range: Option<PortRange>) -> ProfileOverrides {
        ProfileOverrides {
            sessions: self.sessions,
            rate: self.rate,
            total_sessions: self.total_sessions,
            files_per_session: self.files_per_session,
            parallel: self.parallel,
            duration: self.duration,
            think_time: self.think_time,
            mix: self.mix,
            pasv_range,
            seed: self.seed,
            source_addresses: self.source_addresses.clone(),
            tls: self.tls.then_some(crate::profile::TlsMode::Explicit),
            ca_file: self.tls_options.ca_file.as_ref().map(|p| p.display().to_string()),
            insecure: self.tls_options.insecure,
            tls_max_version: self.tls_options.tls_max_version,
            shard: None,
        }
    }
}

#[derive(Args, Debug)]
struct SweepArgs {
    /// Workload profile (TOML). Default: the built-in quick profile.
    #[arg(long, short = 'p')]
    profile: Option<PathBuf>,
    /// Range widths to measure, e.g. 2,4,8,16,32.
    #[arg(long, value_delimiter = ',', required = true)]
    widths: Vec<u32>,
    /// First port of every range.
    #[arg(long, default_value_t = 30000)]
    range_start: u16,
    /// A real server: ftp://user@host (the port comes from {ctrl_port}); needs --server-cmd.
    #[arg(long, short = 't', requires = "server_cmd")]
    target: Option<String>,
    /// Command that starts the real server in the foreground, with {ctrl_port} {pasv_min} {pasv_max}.
    #[arg(long, requires = "target")]
    server_cmd: Option<String>,
    /// Command that stops it (default: the server command's process group is terminated).
    #[arg(long)]
    stop_cmd: Option<String>,
    /// Time for the whole sweep, shared equally by the widths.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    budget: HumanDuration,
    /// Relative standard error wanted on each width's failure rate.
    #[arg(long, default_value_t = 0.2)]
    precision: f64,
    /// Share of sessions allowed to see a failed PASV.
    #[arg(long, default_value_t = crate::plan::DEFAULT_GOS)]
    gos: f64,
    /// Server port-pick policy for the model: random, random:K or scan.
    #[arg(long, value_parser = parse_pick)]
    pick: Option<crate::model::PortPickPolicy>,
    /// Sweep directory (default: output/<timestamp>-sweep-<profile>/).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Write into --out even when it is not empty.
    #[arg(long)]
    force: bool,
    /// Do not add the plan's recommended width and 0.7 × it to the widths measured.
    #[arg(long)]
    no_verify: bool,
    /// Bisect to the smallest width that meets the target with 95% confidence, below the
    /// widest of --widths, within --budget.
    #[arg(long)]
    search: bool,
    /// The server the plan assumes when its greeting does not name it.
    #[arg(long, value_enum)]
    server: Option<ServerArg>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Control port (0 picks a free one).
    #[arg(long, default_value_t = 2121)]
    port: u16,
    /// Passive port range.
    #[arg(long, default_value = "30000-30099", value_parser = parse_range)]
    pasv: PortRange,
    #[arg(long, default_value = crate::server::DEFAULT_USER)]
    user: String,
    /// Offer explicit FTPS (AUTH TLS) with a self-signed certificate made at start, written
    /// to --cert-out for other clients to trust.
    #[arg(long)]
    tls: bool,
    /// Where --tls writes its certificate (PEM).
    #[arg(long, default_value = "ftpswarm-serve-cert.pem", requires = "tls")]
    cert_out: PathBuf,
}

fn parse_duration(s: &str) -> Result<HumanDuration, String> {
    s.parse()
}

fn parse_range(s: &str) -> Result<PortRange, String> {
    s.parse()
}

fn parse_mix_arg(s: &str) -> Result<crate::profile::Mix, String> {
    parse_mix(s)
}

impl From<RunArgs> for RunOptions {
    fn from(a: RunArgs) -> Self {
        RunOptions {
            profile: a.profile,
            overrides: ProfileOverrides {
                shard: a.shard,
                ..a.load.overrides(a.pasv_range)
            },
            target: a.target,
            out: a.out,
            force: a.force,
            output_base: PathBuf::from("output"),
            prepare: a.prepare,
            keep_files: a.keep_files,
            use_announced_ip: a.use_announced_ip,
            progress: !a.quiet && !a.json,
            report: !a.no_report,
            sample_interval: a.sample_interval.0,
            server_sockets: match a.server_sockets {
                SocketViewArg::Auto => SocketView::Auto,
                SocketViewArg::On => SocketView::On,
                SocketViewArg::Off => SocketView::Off,
            },
            start_at: a.start_at,
            metrics_addr: a.metrics_addr,
        }
    }
}

impl From<SweepArgs> for crate::sweep::SweepOptions {
    fn from(a: SweepArgs) -> Self {
        let name = a
            .profile
            .as_deref()
            .and_then(|p| p.file_stem())
            .map_or_else(|| "quick".to_string(), |s| s.to_string_lossy().into_owned());
        crate::sweep::SweepOptions {
            profile: a.profile,
            overrides: a.load.overrides(None),
            widths: a.widths,
            range_start: a.range_start,
            target: a.target,
            server_cmd: a.server_cmd,
            stop_cmd: a.stop_cmd,
            budget: a.budget.0,
            precision: a.precision,
            gos: a.gos,
            pick: a.pick,
            server: a.server.map(Into::into),
            verify_model: !a.no_verify,
            search: a.search,
            force: a.force,
            out: a.out.unwrap_or_else(|| {
                PathBuf::from("output").join(format!("{}-sweep-{name}", chrono::Local::now().format("%Y%m%d-%H%M%S")))
            }),
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "ftpswarm=warn",
        1 => "ftpswarm=info",
        _ => "ftpswarm=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person at a terminal: in a file or a pipe they are noise.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// `--help` and `--version` print as usual; anything else clap rejects is bad input: one
/// line saying what is wrong (with clap's tip, when it has one) and exit code 1.
fn argument_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            eprintln!("error: no command given; `ftpswarm --help` lists them");
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let what = lines
        .next()
        .map_or("invalid arguments", |l| l.strip_prefix("error:").map_or(l, str::trim));
    let tip = lines
        .find_map(|l| l.strip_prefix("tip:"))
        .map(|t| format!(" ({})", t.trim()))
        .unwrap_or_default();
    let line = format!("{what}{tip}; see --help");
    eprintln!(
        "error: {}",
        crate::printable::clip(
            &crate::printable::escape_controls(&line),
            crate::printable::MAX_ERROR_CHARS
        )
    );
    ExitCode::FAILURE
}

/// Entry point of the binary. Errors are one clear line on stderr and a non-zero exit code,
/// never a panic or a backtrace.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(&e),
    };
    init_logging(cli.verbose);
    tracing::debug!("ftpswarm {} (pid {})", env!("CARGO_PKG_VERSION"), std::process::id());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => {
                let json = args.json;
                crate::commands::run::command(args.into(), json).await
            }
            Command::Sweep(args) => crate::commands::sweep::command(args.into())
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Probe(args) => crate::commands::probe::command((&args).into(), args.json, args.out)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Merge(args) => crate::commands::merge::command(
                crate::merge::MergeOptions {
                    dirs: args.dirs,
                    out: args.out,
                    force: args.force,
                },
                !args.no_report,
            ),
            Command::Report(args) => crate::commands::report::command(&args.run).map(|()| ExitCode::SUCCESS),
            Command::Plan(args) => crate::commands::plan::command(args.into()).map(|()| ExitCode::SUCCESS),
            Command::Serve(args) => crate::commands::serve::serve(ServeOptions {
                bind: args.bind,
                port: args.port,
                pasv: args.pasv,
                user: args.user,
                tls: args.tls.then_some(args.cert_out),
            })
            .await
            .map(|()| ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::printable::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
