//! `ftpswarm plan` as a command: options in, text or JSON out, recommendation.json written.

use super::{plan_from_run, plan_what_if, render, PlanRequest, WhatIf, RECOMMENDATION};
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
}

pub fn plan_cli(mut opts: PlanOptions) -> anyhow::Result<()> {
    let mut probe_note = None;
    if let Some(path) = &opts.probe {
        let f: crate::probe::Fingerprint = crate::output::read_json(path).with_context(|| {
            format!(
                "--probe {}: not a probe fingerprint (make one with `ftpswarm probe URL --json -o FILE`)",
                path.display()
            )
        })?;
        if opts.request.pick.is_none() {
            opts.request.pick = f.pick_policy();
        }
        if opts.request.hold_policy.is_none() {
            opts.request.hold_policy = f.hold_policy();
        }
        probe_note = Some(format!("pick and hold policies measured by probe ({})", path.display()));
    }
    let (mut rec, default_out) = match (&opts.run, &opts.what_if) {
        (Some(dir), _) => (plan_from_run(dir, &opts.request)?, Some(dir.join(RECOMMENDATION))),
        (None, Some((profile, hold, transfer_time))) => {
            let profile = Profile::load_with_overrides(profile.as_deref(), &ProfileOverrides::default())?;
            let hold = hold.context("--what-if needs --hold, the mean time a port is held per PASV (e.g. 40ms)")?;
            (
                plan_what_if(
                    &WhatIf {
                        profile,
                        hold,
                        transfer_time: *transfer_time,
                    },
                    &opts.request,
                )?,
                None,
            )
        }
        (None, None) => anyhow::bail!("give --run DIR, or --what-if with --hold"),
    };
    if let Some(note) = probe_note {
        rec.inputs.pick_policy_source = note;
    }
    if let Some(path) = opts.out.or(default_out) {
        crate::output::write_json(&path, &rec)?;
    }
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        print!("{}", render(&rec));
        println!("  config        vsftpd, ProFTPD, Pure-FTPd, FileZilla Server, IIS, pyftpdlib, unFTP and firewall");
        println!(
            "                snippets for {} are in recommendation.json (`--json` prints it)",
            rec.range
        );
    }
    Ok(())
}
