//! Where a run's load goes: the target resolved (or the embedded server started), the
//! address that answers, the TLS client and the client's configuration.

use super::{RunOptions, DEFAULT_PASV_RANGE};
use crate::clock::RunClock;
use crate::event::PassiveCommand;
use crate::ftp::{ClientConfig, ClientTimeouts};
use crate::observe::LiveCounters;
use crate::profile::{PassiveMode, PortRange, Profile, TlsMode};
use crate::server::{EmbeddedConfig, EmbeddedServer};
use crate::target::{Secret, Security, Target};
use crate::tls::{TlsClient, TlsOptions};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the load goes, and the embedded server when we started one.
pub(super) struct ResolvedTarget {
    pub(super) addr: SocketAddr,
    pub(super) target: Target,
    pub(super) embedded: Option<EmbeddedServer>,
    /// The profile's range, dropped because it describes another server.
    pub(super) unchecked_range: Option<PortRange>,
}

pub(super) async fn resolve_target(opts: &RunOptions, profile: &mut Profile) -> anyhow::Result<ResolvedTarget> {
    match opts.target.as_ref().or(profile.target.url.as_ref()) {
        None => {
            let pasv = *profile.target.pasv_range.get_or_insert(DEFAULT_PASV_RANGE);
            let security = match profile.target.tls {
                None | Some(TlsMode::Off) => Security::Plain,
                Some(TlsMode::Explicit) => Security::ExplicitTls,
                Some(TlsMode::Implicit) => anyhow::bail!(
                    "the embedded server speaks explicit FTPS only; use tls = \"explicit\" (--tls), or give --target ftps-implicit://… for a server that speaks implicit FTPS"
                ),
            };
            let config = EmbeddedConfig {
                tls: security.is_tls(),
                ..EmbeddedConfig::loopback(pasv)
            };
            let server = EmbeddedServer::start(config.clone()).await?;
            let target = Target {
                host: server.addr.ip().to_string(),
                port: server.addr.port(),
                user: config.user,
                password: Some(config.password),
                security,
            };
            Ok(ResolvedTarget {
                addr: server.addr,
                target,
                embedded: Some(server),
                unchecked_range: None,
            })
        }
        Some(url) => {
            // A profile's pasv_range describes the server its own `url` names (or the embedded
            // one). Checked against another server it would flag every grant as out of range.
            let foreign = opts.target.is_some() && profile.target.url.is_none() && opts.overrides.pasv_range.is_none();
            let unchecked_range = if foreign {
                profile.target.pasv_range.take()
            } else {
                None
            };
            let mut target = Target::parse(url)
                .and_then(|t| t.with_tls_mode(profile.target.tls))
                .with_context(|| "--target")?;
            target.resolve_password()?;
            let hostport = if target.host.contains(':') {
                format!("[{}]:{}", target.host, target.port)
            } else {
                format!("{}:{}", target.host, target.port)
            };
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&hostport)
                .await
                .with_context(|| format!("cannot resolve {hostport}"))?
                .collect();
            let addr = reachable_address(&addrs)
                .await
                .with_context(|| format!("{hostport} resolves to no address"))?;
            Ok(ResolvedTarget {
                addr,
                target,
                embedded: None,
                unchecked_range,
            })
        }
    }
}

/// The first of a name's addresses that accepts a connection (`localhost` is 127.0.0.1 and
/// ::1, and a server may listen on only one of them); the first address when none does, so
/// the preflight reports the refusal.
async fn reachable_address(addrs: &[SocketAddr]) -> Option<SocketAddr> {
    if addrs.len() > 1 {
        for &addr in addrs {
            let attempt = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await;
            if matches!(attempt, Ok(Ok(_))) {
                return Some(addr);
            }
        }
    }
    addrs.first().copied()
}

/// The TLS client for an FTPS target: the embedded server's own certificate is trusted as a
/// CA, so verification stays on with no setup.
pub(super) fn tls_client(
    profile: &Profile,
    target: &Target,
    embedded: Option<&EmbeddedServer>,
) -> anyhow::Result<Option<Arc<TlsClient>>> {
    if !target.security.is_tls() {
        return Ok(None);
    }
    let options = TlsOptions {
        ca_file: profile.target.ca_file.as_ref().map(PathBuf::from),
        insecure: profile.target.insecure,
        extra_roots: embedded
            .and_then(|s| s.certificate.as_ref())
            .map(|c| vec![c.der.clone()])
            .unwrap_or_default(),
        max_tls12: profile.target.tls_max_version == Some(crate::profile::TlsVersion::Tls12),
    };
    if options.insecure {
        tracing::warn!(
            "--insecure: the server's certificate is not checked; anyone on the path could pose as {}",
            target.host
        );
    }
    Ok(Some(Arc::new(TlsClient::new(target.security, &target.host, &options)?)))
}

pub(super) fn client_config(
    profile: &Profile,
    target: &Target,
    use_announced_ip: bool,
    tls: Option<Arc<TlsClient>>,
) -> ClientConfig {
    let t = &profile.timeouts;
    ClientConfig {
        clock: RunClock::start(),
        timeouts: ClientTimeouts {
            connect: t.connect.0,
            reply: t.reply.0,
            data_connect: t.data_connect.0,
            idle: t.idle.0,
        },
        user: target.user.clone(),
        password: target.password.clone().unwrap_or_else(|| Secret::new("")),
        passive: match profile.session.passive_mode {
            PassiveMode::Pasv => PassiveCommand::Pasv,
            PassiveMode::Epsv => PassiveCommand::Epsv,
        },
        expected_range: profile.target.pasv_range,
        use_announced_ip: use_announced_ip || profile.target.use_announced_ip,
        bandwidth_cap: profile.session.bandwidth_cap.map(|b| b.0),
        announced_ip_warned: AtomicBool::new(false),
        live: Arc::new(LiveCounters::default()),
        tls,
        cut: CancellationToken::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_falls_back_to_the_address_that_answers() {
        // What `localhost` gives where both exist, against a server on ::1 only.
        let Ok(v6) = tokio::net::TcpListener::bind("[::1]:0").await else {
            return; // no IPv6 loopback on this host: nothing to fall back to
        };
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let open = v6.local_addr().unwrap();
        assert_eq!(reachable_address(&[closed, open]).await, Some(open));
        // Nothing answers: the first, so the preflight reports the refusal.
        assert_eq!(reachable_address(&[closed]).await, Some(closed));
        assert_eq!(reachable_address(&[]).await, None);
    }
}
