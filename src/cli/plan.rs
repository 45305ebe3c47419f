//! `ftpswarm plan`'s arguments, and the server and policy choices `sweep` shares with it.

use super::parse_duration;
use crate::profile::HumanDuration;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub(super) struct PlanArgs {
    /// Run directory to plan from.
    #[arg(long, required_unless_present = "what_if", conflicts_with = "what_if")]
    run: Option<PathBuf>,
    /// Plan from a profile and an assumed hold time instead of a run.
    #[arg(long, requires = "hold")]
    what_if: bool,
    /// With --what-if: the profile (default: the built-in quick profile).
    #[arg(long, short = 'p')]
    profile: Option<PathBuf>,
    /// With --what-if: mean time a port is held per PASV, e.g. 40ms.
    #[arg(long, value_parser = parse_duration)]
    hold: Option<HumanDuration>,
    /// With --what-if: mean time one file takes on a connection (default: the hold).
    #[arg(long, value_parser = parse_duration)]
    transfer_time: Option<HumanDuration>,
    /// Concurrent sessions to plan for (default: what the run had).
    #[arg(long)]
    users: Option<u32>,
    /// Control connections per session (default: the run's).
    #[arg(long)]
    parallel: Option<u32>,
    /// Files (PASVs) per session (default: the run's).
    #[arg(long)]
    files: Option<u32>,
    /// Share of sessions allowed to see a failed PASV.
    #[arg(long, default_value_t = crate::plan::DEFAULT_GOS, conflicts_with = "gos_per_pasv")]
    gos: f64,
    /// Share of PASVs allowed to fail (instead of --gos).
    #[arg(long)]
    gos_per_pasv: Option<f64>,
    /// Load growth to plan for, e.g. 1.5 for +50%.
    #[arg(long, default_value_t = crate::plan::DEFAULT_GROWTH)]
    growth: f64,
    /// The server the run drove, when its greeting does not name it (default: from the greeting).
    #[arg(long, value_enum)]
    server: Option<ServerArg>,
    /// Server port-pick policy: random (9 tries: vsftpd, libunftp), random:K, or scan (ProFTPD, pyftpdlib).
    #[arg(long, value_parser = parse_pick)]
    pick: Option<crate::model::PortPickPolicy>,
    /// When the server frees a port: accept (start), command, close, reply (end), next-command,
    /// or time-wait (reply plus --time-wait).
    #[arg(long, value_enum)]
    hold_policy: Option<HoldPolicyArg>,
    /// TIME_WAIT length for --hold-policy time-wait.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    time_wait: HumanDuration,
    /// Extra time the server keeps a port past its hold (default: calibrated or known).
    #[arg(long, value_parser = parse_duration)]
    release_lag: Option<HumanDuration>,
    /// The server's bind-race window on a port without TIME_WAITs, e.g. 5us (default: fitted
    /// on the run's races, weighed against the server's typical window).
    #[arg(long, value_parser = parse_duration)]
    race_window: Option<HumanDuration>,
    /// Replays the simulator averages per width (default: 4 for the run's own load).
    #[arg(long)]
    replications: Option<u32>,
    /// Seed of the simulator's random choices.
    #[arg(long, default_value_t = crate::plan::DEFAULT_SEED)]
    seed: u64,
    /// Also predict these widths, e.g. 20,30,40 (printed, and in recommendation.json).
    #[arg(long, value_delimiter = ',')]
    at: Vec<u32>,
    /// The FTP server's operating system: the range avoids its ephemeral ports (Linux
    /// 32768-60999, Windows 49152-65535, either: both).
    #[arg(long, value_enum, default_value = "linux")]
    server_os: ServerOsArg,
    /// Length of the busiest window the PASV rate is taken from.
    #[arg(long, default_value_t = HumanDuration(crate::plan::DEFAULT_WINDOW), value_parser = parse_duration)]
    window: HumanDuration,
    /// First port of the recommended range (default: the run's, if it avoids ephemeral ranges).
    #[arg(long)]
    range_start: Option<u16>,
    /// A `ftpswarm probe --json` fingerprint of the server: its measured pick and hold policies
    /// replace the assumed ones (--pick and --hold-policy still win).
    #[arg(long)]
    probe: Option<PathBuf>,
    /// Where to write recommendation.json (default: into the run directory; none for --what-if).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Print recommendation.json to stdout instead of the text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum HoldPolicyArg {
    /// Freed when the server accepts the data connection (alias: start).
    #[value(alias = "start")]
    Accept,
    /// Freed once the transfer command is processed.
    Command,
    /// Freed when the data connection closes.
    Close,
    /// Freed after the final reply (alias: end).
    #[value(alias = "end")]
    Reply,
    /// Held until the session's next PASV or QUIT.
    NextCommand,
    /// The final reply plus --time-wait.
    TimeWait,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ServerOsArg {
    Linux,
    Windows,
    Either,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(super) enum ServerArg {
    Vsftpd,
    Proftpd,
    PureFtpd,
    Pyftpdlib,
    Libunftp,
    Embedded,
    Unknown,
}

impl From<ServerArg> for crate::sim::ServerKind {
    fn from(s: ServerArg) -> Self {
        use crate::sim::ServerKind as K;
        match s {
            ServerArg::Vsftpd => K::Vsftpd,
            ServerArg::Proftpd => K::Proftpd,
            ServerArg::PureFtpd => K::PureFtpd,
            ServerArg::Pyftpdlib => K::Pyftpdlib,
            ServerArg::Libunftp => K::Libunftp,
            ServerArg::Embedded => K::Embedded,
            ServerArg::Unknown => K::Unknown,
        }
    }
}

pub(super) fn parse_pick(s: &str) -> Result<crate::model::PortPickPolicy, String> {
    use crate::model::PortPickPolicy;
    match s {
        "scan" => Ok(PortPickPolicy::Scan),
        "random" => Ok(PortPickPolicy::RandomTries { tries: 9 }),
        other => match other.strip_prefix("random:").map(str::parse::<u32>) {
            Some(Ok(k)) if (1..=1000).contains(&k) => Ok(PortPickPolicy::RandomTries { tries: k }),
            _ => Err(format!(
                "{other:?}: allowed: scan, random, random:K with K from 1 to 1000"
            )),
        },
    }
}

impl From<PlanArgs> for crate::commands::plan::PlanOptions {
    fn from(a: PlanArgs) -> Self {
        use crate::model::HoldPolicy;
        use crate::plan::{GradeOfService, PlanRequest};
        use crate::sim::server::HoldEnd;
        crate::commands::plan::PlanOptions {
            run: a.run,
            what_if: a
                .what_if
                .then_some((a.profile, a.hold.map(|h| h.0), a.transfer_time.map(|t| t.0))),
            request: PlanRequest {
                users: a.users,
                parallel: a.parallel,
                files: a.files,
                gos: match a.gos_per_pasv {
                    Some(g) => GradeOfService::PerPasv(g),
                    None => GradeOfService::PerSession(a.gos),
                },
                growth: a.growth,
                server: a.server.map(Into::into),
                pick: a.pick,
                hold_policy: a.hold_policy.map(|p| match p {
                    HoldPolicyArg::Accept | HoldPolicyArg::Command => HoldPolicy::UntilTransferStarts,
                    HoldPolicyArg::Close | HoldPolicyArg::Reply | HoldPolicyArg::NextCommand => {
                        HoldPolicy::UntilTransferEnds
                    }
                    HoldPolicyArg::TimeWait => HoldPolicy::ThroughTimeWait {
                        time_wait_s: a.time_wait.0.as_secs_f64(),
                    },
                }),
                hold_end: a.hold_policy.map(|p| match p {
                    HoldPolicyArg::Accept => HoldEnd::DataConnected,
                    HoldPolicyArg::Command => HoldEnd::TransferCommand,
                    HoldPolicyArg::Close => HoldEnd::DataClosed,
                    HoldPolicyArg::Reply | HoldPolicyArg::TimeWait => HoldEnd::FinalReply,
                    HoldPolicyArg::NextCommand => HoldEnd::NextCommand,
                }),
                release_lag: match a.hold_policy {
                    Some(HoldPolicyArg::TimeWait) => Some(a.time_wait.0),
                    _ => a.release_lag.map(|l| l.0),
                },
                race_window: a.race_window.map(|w| w.0),
                window: a.window.0,
                range_start: a.range_start,
                replications: a.replications,
                seed: a.seed,
                probed: None,
                also_predict: a.at.clone(),
                server_os: match a.server_os {
                    ServerOsArg::Linux => crate::plan::placement::ServerOs::Linux,
                    ServerOsArg::Windows => crate::plan::placement::ServerOs::Windows,
                    ServerOsArg::Either => crate::plan::placement::ServerOs::Either,
                },
            },
            out: a.out,
            json: a.json,
            probe: a.probe,
            at: a.at,
        }
    }
}
