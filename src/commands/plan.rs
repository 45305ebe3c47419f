//! `ftpswarm plan` as a command: options in, text or JSON out, recommendation.json written.

use crate::plan::{plan_and_store, plan_from_run, plan_what_if, render, PlanRequest, WhatIf};
use crate::profile::{Profile, ProfileOverrides};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub run: Option<PathBuf>,
    /// (profile, hold, transfer time) for --what-if.
    pub what_if: Option<(Option<PathBuf>, Option<Duration>, Option<Duration>)>,
    pub request: PlanRequest,
    pub out: Option<PathBuf>,
    pub json: bool,
    /// A probe fingerprint whose measured policies replace the assumed ones.
    pub probe: Option<PathBuf>,
    /// Widths whose predictions are printed after the recommendation.
    pub at: Vec<u32>,
}

pub fn command(mut opts: PlanOptions) -> anyhow::Result<()> {
    if let Some(path) = &opts.probe {
        let f: crate::probe::Fingerprint = crate::rundir::read_json(path).with_context(|| {
            format!(
                "--probe {}: not a probe fingerprint (make one with `ftpswarm probe URL --json -o FILE`)",
                path.display()
            )
        })?;
        opts.request.probed = Some(f.probed(&path.display().to_string()));
    }
    let rec = match (&opts.run, &opts.what_if) {
        // The run's own recommendation.json, unless --out sends the plan elsewhere.
        (Some(dir), _) if opts.out.is_none() => {
            let (rec, write_error) = plan_and_store(dir, &opts.request)?;
            if let Some(e) = write_error {
                return Err(e.into());
            }
            rec
        }
        (Some(dir), _) => plan_from_run(dir, &opts.request)?,
        (None, Some((profile, hold, transfer_time))) => {
            let profile = Profile::load_with_overrides(profile.as_deref(), &ProfileOverrides::default())?;
            let hold = hold.context("--what-if needs --hold, the mean time a port is held per PASV (e.g. 40ms)")?;
            plan_what_if(
                &WhatIf {
                    profile,
                    hold,
                    transfer_time: *transfer_time,
                },
                &opts.request,
            )?
        }
        (None, None) => anyhow::bail!("give --run DIR, or --what-if with --hold"),
    };
    if let Some(path) = &opts.out {
        crate::rundir::write_json(path, &rec)?;
    }
    let mut text = if opts.json {
        serde_json::to_string_pretty(&rec)? + "\n"
    } else {
        let mut t = render(&rec);
        for w in &opts.at {
            let inner = w.saturating_sub(rec.held_by_others);
            if let Some(p) = rec.predictions.iter().find(|p| p.width == inner) {
                t += &format!(
                    "  at {w:>5} ports  sessions failing {} ({} in busy stretches), PASVs failing {}\n",
                    crate::plan::text::pct(p.session_failure_at_range),
                    crate::plan::text::pct(p.session_failure_busy),
                    crate::plan::text::pct(p.pasv_failure)
                );
            }
        }
        t + &format!(
            "  config        vsftpd, ProFTPD, Pure-FTPd, FileZilla Server, IIS, pyftpdlib, unFTP and firewall\n\
             \x20               snippets for {} are in recommendation.json (`--json` prints it)\n",
            rec.range
        )
    };
    // A reader that stops early (`| head`) is not an error.
    use std::io::Write;
    match std::io::stdout().lock().write_all(std::mem::take(&mut text).as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
