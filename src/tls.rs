//! TLS for FTPS: the client's rustls configuration (certificate verification, a private CA,
//! or none at all for self-signed test servers) and the name the server's certificate must
//! carry.
//!
//! Every control connection gets its own session cache ([`TlsClient::for_session`]): servers
//! that require TLS session reuse on data connections (vsftpd's default
//! `require_ssl_reuse=YES`) accept only a resumption of *that* control connection's session,
//! and one cache shared by a thousand sessions would hand a data connection another
//! session's ticket.

use crate::target::Security;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the client checks the server's certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Trust these PEM certificates (a private CA) in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate: for self-signed test servers only.
    pub insecure: bool,
    /// Trust these too: the embedded server's own certificate.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Offer TLS 1.2 at most. rustls uses each TLS 1.3 session ticket once (RFC 8446), so a
    /// server that wants every data connection to resume the control connection's session
    /// and issues two tickets on it (ProFTPD's mod_tls) refuses the third data connection of a
    /// session; a TLS 1.2 session can be resumed any number of times.
    pub max_tls12: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("--ca-file {path}: {reason}; give a PEM file with the CA certificate(s) that signed the server's")]
    CaFile { path: String, reason: String },
    #[error("{0:?} is not a host name or IP address a certificate can name")]
    ServerName(String),
    #[error("no trusted root certificates: the system has none ({0}); give --ca-file with the server's CA, or --insecure for a self-signed test server")]
    NoRoots(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Everything a TLS connection to the target needs; shared by the whole run.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub security: Security,
    base: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
    pub insecure: bool,
}

impl TlsClient {
    /// `host` is the target's host as written in the URL: the name the certificate must carry.
    pub fn new(security: Security, host: &str, options: &TlsOptions) -> Result<TlsClient, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if options.max_tls12 {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
        let config = if options.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(roots(options.ca_file.as_deref(), &options.extra_roots)?)
                .with_no_client_auth()
        };
        let server_name =
            ServerName::try_from(host.to_string()).map_err(|_| TlsSetupError::ServerName(host.to_string()))?;
        Ok(TlsClient {
            security,
            base: Arc::new(config),
            server_name,
            insecure: options.insecure,
        })
    }

    /// The configuration for one control connection and its data connections: a session cache
    /// of its own, so each data connection resumes this control connection's TLS session.
    pub fn for_session(&self) -> tokio_rustls::TlsConnector {
        let mut config = (*self.base).clone();
        // A few tickets: TLS 1.3 tickets are single-use, and the server sends new ones on
        // every resumed connection we read from.
        config.resumption = Resumption::in_memory_sessions(8).tls12_resumption(Tls12Resumption::SessionIdOrTickets);
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

fn roots(ca_file: Option<&Path>, extra: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(extra.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    // Unparseable system certificates are skipped, as browsers do.
    let (_added, _ignored) = store.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsSetupError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?
            .collect::<Result<_, _>>()
            .map_err(|e| TlsSetupError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsSetupError::CaFile {
                path: shown,
                reason: "no certificate in it".into(),
            });
        }
        for cert in certs {
            store.add(cert).map_err(|e| TlsSetupError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    if store.is_empty() {
        let why = native
            .errors
            .first()
            .map_or_else(|| "no CA bundle found".to_string(), |e| e.to_string());
        return Err(TlsSetupError::NoRoots(why));
    }
    Ok(store)
}

/// `--insecure`: checks the handshake's signatures (so the connection is still encrypted to
/// whoever holds the key) but not who the certificate names or who signed it.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A certificate made at start for the embedded server.
pub struct SelfSigned {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
    /// The certificate in PEM, for clients that should trust it (`--ca-file`).
    pub pem: String,
}

/// A self-signed certificate for localhost, 127.0.0.1 and ::1: FTPS on the embedded server
/// with no setup.
pub fn self_signed() -> Result<SelfSigned, rcgen::Error> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    Ok(SelfSigned {
        chain: vec![certified.cert.der().clone()],
        key: key.into(),
        pem: certified.cert.pem(),
    })
}
