//! The embedded FTP server (libunftp with a synthetic back end), so that ftpswarm works out of
//! the box and tests have a server they control. Kept in its own module: libunftp's generics
//! are slow to compile and nothing else should depend on them.

pub mod binder;
pub mod guard;
pub mod storage;

use crate::port_range::PortRange;

/// How the embedded server names itself in its greeting: `plan` recognises it by this when a
/// run drove it by URL (a sweep, `ftpswarm serve`).
pub const GREETING_NAME: &str = "ftpswarm embedded server";
pub const GREETING: &str = "ftpswarm embedded server ready";
use crate::target::Secret;
use async_trait::async_trait;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use storage::{StorageStats, SyntheticStorage};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, Principal};

pub const DEFAULT_USER: &str = "ftpswarm";
pub const DEFAULT_PASSWORD: &str = "swarm-secret";

#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub bind_ip: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub pasv: PortRange,
    pub user: String,
    pub password: Secret,
    /// Relay control connections through [`guard`], which caps command lines at
    /// [`guard::MAX_COMMAND_LINE`] bytes (libunftp buffers a line without limit). On for
    /// `serve`, whose clients are anyone's. Off in [`EmbeddedConfig::loopback`], the server a
    /// run starts for its own client: the relay's extra hop cost that server about 12% of its
    /// transfer rate and 0.4 ms of median transfer time (quick profile, 2 cores), which would
    /// change what the run measures.
    pub cap_control_lines: bool,
    /// Offer explicit FTPS (AUTH TLS, PROT P) with a self-signed certificate made at start.
    /// Plain FTP stays allowed, as on most servers.
    pub tls: bool,
}

impl EmbeddedConfig {
    pub fn loopback(pasv: PortRange) -> Self {
        EmbeddedConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            pasv,
            user: DEFAULT_USER.into(),
            password: Secret::new(DEFAULT_PASSWORD),
            cap_control_lines: false,
            tls: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerStartError {
    #[error("cannot start the embedded server on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
    #[error("the embedded server on {addr} did not greet within {secs} s: {message}")]
    NoGreeting {
        addr: SocketAddr,
        secs: u64,
        message: String,
    },
    #[error("embedded server configuration rejected: {0}")]
    Config(String),
    #[error("cannot make the embedded server's TLS certificate: {0}")]
    Certificate(String),
}

/// One user with one password; anything else is refused, as a real server would.
#[derive(Debug)]
struct SingleUserAuthenticator {
    user: String,
    password: Secret,
}

#[async_trait]
impl Authenticator for SingleUserAuthenticator {
    async fn authenticate(&self, username: &str, creds: &Credentials) -> Result<Principal, AuthenticationError> {
        if username != self.user {
            return Err(AuthenticationError::BadUser);
        }
        match &creds.password {
            Some(p) if p == self.password.expose() => Ok(Principal {
                username: username.to_string(),
            }),
            _ => Err(AuthenticationError::BadPassword),
        }
    }
}

pub struct EmbeddedServer {
    pub addr: SocketAddr,
    pub pasv: PortRange,
    pub user: String,
    pub stats: Arc<StorageStats>,
    /// The self-signed certificate of `--tls`, for clients that should trust it.
    pub certificate: Option<Certificate>,
    /// The addresses control connections came from (to check a load's source addresses).
    control_peers: Arc<std::sync::Mutex<std::collections::BTreeSet<IpAddr>>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// How long sessions may finish after a stop before they are cut off.
const GRACE: Duration = Duration::from_secs(2);

type FtpServer = libunftp::Server<SyntheticStorage, unftp_core::auth::DefaultUser>;

/// The embedded server's certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub der: rustls::pki_types::CertificateDer<'static>,
    pub pem: String,
}

/// The TLS side of `--tls`: one configuration (and so one session cache) for every control
/// and data connection, so that data connections can resume their control connection's
/// session.
fn tls_config() -> Result<(Arc<rustls::ServerConfig>, Certificate), ServerStartError> {
    let made = crate::tls::self_signed().map_err(|e| ServerStartError::Certificate(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(made.chain.clone(), made.key))
        .map_err(|e| ServerStartError::Certificate(e.to_string()))?;
    // Room for every session of a large run (the default 256 would evict live sessions).
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(16_384);
    let certificate = Certificate {
        der: made.chain[0].clone(),
        pem: made.pem,
    };
    Ok((Arc::new(config), certificate))
}

fn build_server(
    config: &EmbeddedConfig,
    stats: &Arc<StorageStats>,
    tls: Option<&Arc<rustls::ServerConfig>>,
    binds: &binder::BindThread,
) -> Result<FtpServer, ServerStartError> {
    let backend_stats = stats.clone();
    let auth = Arc::new(SingleUserAuthenticator {
        user: config.user.clone(),
        password: config.password.clone(),
    });
    let builder = libunftp::ServerBuilder::with_authenticator(
        Box::new(move || SyntheticStorage::new(backend_stats.clone())),
        auth,
    )
    .greeting(GREETING)
    .passive_ports(config.pasv.min..=config.pasv.max)
    .binder(binds.binder())
    .idle_session_timeout(600);
    let builder = match tls {
        Some(t) => builder.ftps_manual::<std::path::PathBuf>(t.clone()),
        None => builder,
    };
    builder.build().map_err(|e| ServerStartError::Config(e.to_string()))
}

impl EmbeddedServer {
    /// Every address a control connection came from so far.
    pub fn control_peers(&self) -> std::collections::BTreeSet<IpAddr> {
        self.control_peers.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Binds the control port and returns once the server has greeted a client on it.
    ///
    /// We run the accept loop ourselves rather than libunftp's `listen()`: it binds the port
    /// we asked for (no pick-then-bind race), and it sets TCP_NODELAY on control connections,
    /// which libunftp's own listener leaves off. Without it every 226 that follows a 150 waits
    /// for the client's delayed ACK (about 40 ms on Linux), which would dominate every
    /// transfer's latency and cap the embedded server at a few hundred transfers a second.
    pub async fn start(config: EmbeddedConfig) -> Result<EmbeddedServer, ServerStartError> {
        let stats = Arc::new(StorageStats::default());
        let (tls, certificate) = match config.tls {
            true => {
                let (t, c) = tls_config()?;
                (Some(t), Some(c))
            }
            false => (None, None),
        };
        let binds = binder::BindThread::start()
            .map_err(|e| ServerStartError::Config(format!("cannot start the bind thread: {e}")))?;
        // Fail on configuration errors now rather than per connection.
        build_server(&config, &stats, tls.as_ref(), &binds)?;
        let wanted = SocketAddr::new(config.bind_ip, config.port);
        let listener = tokio::net::TcpListener::bind(wanted)
            .await
            .map_err(|e| ServerStartError::Bind {
                addr: wanted,
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| ServerStartError::Bind {
            addr: wanted,
            message: e.to_string(),
        })?;
        let (tx, rx) = oneshot::channel::<()>();
        let control_peers = Arc::default();
        let task = tokio::spawn(accept_loop(
            listener,
            config.clone(),
            tls,
            stats.clone(),
            Arc::clone(&control_peers),
            binds,
            rx,
        ));
        let server = EmbeddedServer {
            addr,
            pasv: config.pasv,
            user: config.user,
            stats,
            certificate,
            control_peers,
            shutdown: Some(tx),
            task,
        };
        match tokio::time::timeout(GREETING_WAIT, read_greeting(addr)).await {
            Ok(Ok(())) => Ok(server),
            Ok(Err(message)) => Err(ServerStartError::NoGreeting {
                addr,
                secs: GREETING_WAIT.as_secs(),
                message,
            }),
            Err(_) => Err(ServerStartError::NoGreeting {
                addr,
                secs: GREETING_WAIT.as_secs(),
                message: "timed out".into(),
            }),
        }
    }

    /// Asks the server to stop and waits (bounded) for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(GRACE + Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }

    /// Waits until the server stops (Ctrl-C handling is the caller's).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

const GREETING_WAIT: Duration = Duration::from_secs(10);

async fn accept_loop(
    listener: tokio::net::TcpListener,
    config: EmbeddedConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    stats: Arc<StorageStats>,
    control_peers: Arc<std::sync::Mutex<std::collections::BTreeSet<IpAddr>>>,
    binds: binder::BindThread,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut sessions = tokio::task::JoinSet::new();
    let mut guard = guard::LineGuard::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    if let Ok(mut peers) = control_peers.lock() {
                        peers.insert(peer.ip());
                    }
                    let pairing = if config.cap_control_lines {
                        guard.pairing(&stream).await
                    } else {
                        None
                    };
                    match build_server(&config, &stats, tls.as_ref(), &binds) {
                        Ok(server) => {
                            sessions.spawn(serve_one(server, stream, pairing));
                        }
                        Err(e) => tracing::error!("embedded server: {e}"),
                    }
                    while sessions.try_join_next().is_some() {}
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!("embedded server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let drain = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        sessions.abort_all();
    }
}

/// Serves one control connection, through the line-length relay when there is one.
async fn serve_one(server: FtpServer, client: tokio::net::TcpStream, pairing: Option<guard::Pairing>) {
    let client = match pairing {
        Some(p) => match p.connect(client).await {
            Ok((served, relay)) => {
                let (_, end) = tokio::join!(server.service(served), relay.run());
                if end == guard::RelayEnd::LineTooLong {
                    tracing::info!("embedded server: closed a control connection that sent an over-long line");
                }
                return;
            }
            Err(client) => client,
        },
        None => client,
    };
    let _ = server.service(client).await;
}

async fn read_greeting(addr: SocketAddr) -> Result<(), String> {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if line.starts_with("220") {
            Ok(())
        } else {
            Err(format!("unexpected greeting {line:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .map_err(|_| "greeting timed out".to_string())?
}
