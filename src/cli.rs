//! The command line. clap lives here and nowhere else: arguments become typed options that
//! the rest of the crate (and the tests, in-process) use.

use crate::profile::{parse_mix, HumanDuration, PortRange, ProfileOverrides};
use crate::run::{RunOptions, SocketView};
use crate::serve::ServeOptions;
use clap::{Args, Parser, Subcommand};
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
    /// Run the embedded FTP server alone, to try other clients against it.
    Serve(ServeArgs),
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
    /// The target's passive range (the embedded server uses it), e.g. 30000-30099.
    #[arg(long, value_parser = parse_range)]
    pasv_range: Option<PortRange>,
    /// Seed for every random choice.
    #[arg(long)]
    seed: Option<u64>,
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
    /// Timeline sampling period (0 turns the sampler off).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    sample_interval: HumanDuration,
    /// Sample the kernel's sockets on the passive range: auto = when the target is on this host.
    #[arg(long, value_enum, default_value_t = SocketViewArg::Auto)]
    server_sockets: SocketViewArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SocketViewArg {
    Auto,
    On,
    Off,
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
                sessions: a.sessions,
                rate: a.rate,
                total_sessions: a.total_sessions,
                files_per_session: a.files_per_session,
                parallel: a.parallel,
                duration: a.duration,
                think_time: a.think_time,
                mix: a.mix,
                pasv_range: a.pasv_range,
                seed: a.seed,
            },
            target: a.target,
            out: a.out,
            output_base: PathBuf::from("output"),
            prepare: a.prepare,
            keep_files: a.keep_files,
            use_announced_ip: a.use_announced_ip,
            progress: !a.quiet && !a.json,
            sample_interval: a.sample_interval.0,
            server_sockets: match a.server_sockets {
                SocketViewArg::Auto => SocketView::Auto,
                SocketViewArg::On => SocketView::On,
                SocketViewArg::Off => SocketView::Off,
            },
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Entry point of the binary. Errors are one clear line on stderr and a non-zero exit code,
/// never a panic or a backtrace.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
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
                crate::run::run_cli(args.into(), json).await
            }
            Command::Serve(args) => crate::serve::serve(ServeOptions {
                bind: args.bind,
                port: args.port,
                pasv: args.pasv,
                user: args.user,
            })
            .await
            .map(|()| ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
