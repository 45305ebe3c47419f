//! `ftpswarm serve`: the embedded server alone, for trying FileZilla, lftp or curl against it.

use crate::port_range::PortRange;
use crate::server::{EmbeddedConfig, EmbeddedServer, DEFAULT_PASSWORD};
use crate::target::{Secret, PASSWORD_ENV};
use anyhow::Context;
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: IpAddr,
    pub port: u16,
    pub pasv: PortRange,
    pub user: String,
    /// Explicit FTPS, with the certificate written to this file.
    pub tls: Option<std::path::PathBuf>,
}

pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let (password, shown) = match std::env::var(PASSWORD_ENV) {
        Ok(p) => (p, format!("from {PASSWORD_ENV}")),
        Err(_) => (
            DEFAULT_PASSWORD.to_string(),
            format!("{DEFAULT_PASSWORD:?} (set {PASSWORD_ENV} to change)"),
        ),
    };
    let config = EmbeddedConfig {
        bind_ip: opts.bind,
        port: opts.port,
        pasv: opts.pasv,
        user: opts.user,
        password: Secret::new(password),
        cap_control_lines: true,
        tls: opts.tls.is_some(),
    };
    // Listening for SIGINT/SIGTERM before the server takes its first client: a signal that
    // came before the handler was installed killed the process unserved and without its
    // summary (seen once, under load, in tests/cli.rs).
    let stop = tokio_util::sync::CancellationToken::new();
    crate::signals::cancel_on_signal(stop.clone(), "stopping the server");
    let mut server = EmbeddedServer::start(config.clone()).await?;
    let scheme = if config.tls { "ftps" } else { "ftp" };
    println!(
        "ftpswarm embedded server on {scheme}://{}@{} (passive {})",
        config.user, server.addr, config.pasv
    );
    if let (Some(path), Some(cert)) = (&opts.tls, &server.certificate) {
        std::fs::write(path, &cert.pem)
            .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
        println!(
            "explicit FTPS (AUTH TLS); self-signed certificate for localhost, 127.0.0.1 and ::1 in {} (trust it with --ca-file)",
            path.display()
        );
    }
    println!("password {shown}; RETR size-<bytes>.bin streams that many bytes, STOR discards; Ctrl-C stops");
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = server.wait() => anyhow::bail!("the embedded server stopped unexpectedly"),
    }
    let stats = server.stats.clone();
    server.stop().await;
    use std::sync::atomic::Ordering::Relaxed;
    println!(
        "served {} RETR ({} bytes), {} STOR ({} bytes), {} LIST",
        stats.retr_files.load(Relaxed),
        stats.retr_bytes.load(Relaxed),
        stats.stor_files.load(Relaxed),
        stats.stor_bytes.load(Relaxed),
        stats.lists.load(Relaxed)
    );
    Ok(())
}
