//! The server a sweep restarts for every width: the embedded one, or a real one started by the
//! user's command template with `{ctrl_port}`, `{pasv_min}`, `{pasv_max}` substituted.

use super::SweepOptions;
use crate::port_range::PortRange;
use crate::server::{EmbeddedConfig, EmbeddedServer, DEFAULT_PASSWORD, DEFAULT_USER};
use anyhow::{bail, Context};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

const GREETING_WAIT: Duration = Duration::from_secs(20);
const STOP_WAIT: Duration = Duration::from_secs(10);
/// Starts of `--server-cmd` on fresh ports before a sweep gives up on a server that exits.
const START_ATTEMPTS: usize = 3;

pub enum SweepServer {
    Embedded {
        server: EmbeddedServer,
        url: String,
    },
    Command {
        child: tokio::process::Child,
        url: String,
        ctrl_port: u16,
        range: PortRange,
    },
}

fn substitute(template: &str, ctrl_port: u16, range: PortRange) -> String {
    template
        .replace("{ctrl_port}", &ctrl_port.to_string())
        .replace("{pasv_min}", &range.min.to_string())
        .replace("{pasv_max}", &range.max.to_string())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn greets(host: &str, port: u16) -> bool {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.ok()?;
        Some(line.starts_with("220"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(true))
    )
}

impl SweepServer {
    /// The embedded server's certificate (with `tls`), for the runs to trust.
    pub fn certificate(&self) -> Option<&crate::server::Certificate> {
        match self {
            SweepServer::Embedded { server, .. } => server.certificate.as_ref(),
            SweepServer::Command { .. } => None,
        }
    }

    /// `tls`: the embedded server offers explicit FTPS (a `--server-cmd` server is the
    /// command's to configure).
    pub async fn start(opts: &SweepOptions, range: PortRange, tls: bool) -> anyhow::Result<SweepServer> {
        let Some(template) = &opts.server_cmd else {
            let config = EmbeddedConfig {
                tls,
                ..EmbeddedConfig::loopback(range)
            };
            let server = EmbeddedServer::start(config).await?;
            let url = format!("ftp://{DEFAULT_USER}:{DEFAULT_PASSWORD}@{}", server.addr);
            return Ok(SweepServer::Embedded { server, url });
        };
        let base = opts
            .target
            .as_deref()
            .context("--server-cmd needs --target ftp://user@host (the port comes from {ctrl_port})")?;
        let mut url = url::Url::parse(base).with_context(|| format!("--target {}", crate::target::redact_url(base)))?;
        let host = url.host_str().context("--target has no host")?.to_string();
        // The port is free when we pick it, but any connection on the host may take it as its
        // own ephemeral port before the server binds it: a server that exits at once gets
        // another port, a few times, before the sweep gives up.
        let mut early_exits = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let ctrl_port = free_port()?;
            if url.set_port(Some(ctrl_port)).is_err() {
                bail!("--target cannot take a port");
            }
            let command = substitute(template, ctrl_port, range);
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot run --server-cmd {command:?}"))?;
            let deadline = Instant::now() + GREETING_WAIT;
            let mut exited = None;
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait()? {
                    exited = Some(status);
                    break;
                }
                if greets(&host, ctrl_port).await {
                    return Ok(SweepServer::Command {
                        child,
                        url: url.to_string(),
                        ctrl_port,
                        range,
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            match exited {
                Some(status) => early_exits.push(format!(
                    "{command:?} exited ({status}) before greeting on port {ctrl_port}"
                )),
                None => bail!(
                    "--server-cmd {command:?}: no 220 greeting on {host}:{ctrl_port} within {}s",
                    GREETING_WAIT.as_secs()
                ),
            }
        }
        bail!(
            "--server-cmd failed to start {START_ATTEMPTS} times, each on a fresh port: {}",
            early_exits.join("; ")
        )
    }

    pub fn url(&self) -> String {
        match self {
            SweepServer::Embedded { url, .. } | SweepServer::Command { url, .. } => url.clone(),
        }
    }

    /// Stops the server: `--stop-cmd` if given, then the command's whole process group.
    pub async fn stop(self, opts: &SweepOptions) {
        match self {
            SweepServer::Embedded { server, .. } => server.stop().await,
            SweepServer::Command {
                mut child,
                ctrl_port,
                range,
                ..
            } => {
                if let Some(stop) = &opts.stop_cmd {
                    let cmd = substitute(stop, ctrl_port, range);
                    let run = tokio::process::Command::new("sh").arg("-c").arg(&cmd).status();
                    if !matches!(tokio::time::timeout(STOP_WAIT, run).await, Ok(Ok(s)) if s.success()) {
                        tracing::warn!("--stop-cmd {cmd:?} failed or timed out");
                    }
                }
                if let Some(pid) = child.id() {
                    // The template may start the server under a shell; signalling the group
                    // reaches the server too.
                    let _ = tokio::process::Command::new("kill")
                        .args(["-TERM", "--", &format!("-{pid}")])
                        .status()
                        .await;
                }
                if tokio::time::timeout(STOP_WAIT, child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
        }
    }
}
