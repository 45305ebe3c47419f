//! Where the swarm goes: `ftp://user@host:port`. The password comes from the URL,
//! `FTPSWARM_PASSWORD` or a prompt, and is never printed or written to a run directory.

use std::fmt;

pub const PASSWORD_ENV: &str = "FTPSWARM_PASSWORD";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Plain,
    /// Explicit FTPS (`ftps://`): AUTH TLS after the greeting.
    ExplicitTls,
    /// Implicit FTPS (`ftps-implicit://`, port 990 style): TLS from the first byte.
    ImplicitTls,
}

/// The newest TLS version to offer (`target.tls_max_version`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl std::str::FromStr for TlsVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            other => Err(format!("{other:?} is not a TLS version; give 1.2 or 1.3")),
        }
    }
}

/// FTPS as a profile asks for it (`target.tls`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Off,
    Explicit,
    Implicit,
}

impl Security {
    pub fn is_tls(self) -> bool {
        self != Security::Plain
    }
}

/// A password that cannot leak through `Debug`, `Display` or serialisation.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced, for server replies that echo it.
    pub fn scrub(&self, text: &str) -> String {
        self.scrub_cow(text).into_owned()
    }

    /// As [`scrub`](Self::scrub), copying only when the secret is there (every reply goes
    /// through this).
    pub fn scrub_cow<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.0.is_empty() || !text.contains(self.0.as_str()) {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(text.replace(&self.0, "[redacted]"))
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub security: Security,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{0:?} is not a URL ({1}); write it like ftp://user@127.0.0.1:2121")]
    Unparseable(String, String),
    #[error("scheme {0:?} is not supported; use ftp://, ftps:// (explicit FTPS) or ftps-implicit:// (implicit FTPS)")]
    Scheme(String),
    #[error("{url} and tls = {mode} disagree; drop the profile's target.tls (or --tls), or change the URL's scheme")]
    TlsConflict { url: String, mode: String },
    #[error("{0:?} has no host; write it like ftp://user@127.0.0.1:2121")]
    NoHost(String),
    #[error("{0:?} names port 0, which no server listens on; give the control port, e.g. ftp://user@127.0.0.1:2121")]
    PortZero(String),
    #[error(
        "no password for {user}@{host}: put it in {PASSWORD_ENV} (or in the URL), or run on a terminal to be asked"
    )]
    NoPassword { user: String, host: String },
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, TargetError> {
        let url = url::Url::parse(s.trim()).map_err(|e| TargetError::Unparseable(redact_url(s), e.to_string()))?;
        let security = match url.scheme() {
            "ftp" => Security::Plain,
            "ftps" => Security::ExplicitTls,
            "ftps-implicit" => Security::ImplicitTls,
            other => return Err(TargetError::Scheme(other.to_string())),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| TargetError::NoHost(redact_url(s)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let user = match url.username() {
            "" => "anonymous".to_string(),
            u => percent_decode(u),
        };
        let port = url
            .port()
            .unwrap_or(if security == Security::ImplicitTls { 990 } else { 21 });
        if port == 0 {
            return Err(TargetError::PortZero(redact_url(s)));
        }
        let password = url.password().map(|p| Secret::new(percent_decode(p)));
        Ok(Target {
            host,
            port,
            user,
            password,
            security,
        })
    }

    /// Fills in the password from the environment or, on a terminal, a prompt. Anonymous
    /// logins get the conventional e-mail-like password.
    pub fn resolve_password(&mut self) -> Result<(), TargetError> {
        if self.password.is_some() {
            return Ok(());
        }
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            self.password = Some(Secret::new(p));
            return Ok(());
        }
        if self.user == "anonymous" || self.user == "ftp" {
            self.password = Some(Secret::new("ftpswarm@"));
            return Ok(());
        }
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            let prompt = format!("password for {}@{}: ", self.user, self.host);
            if let Ok(p) = rpassword::prompt_password(prompt) {
                self.password = Some(Secret::new(p));
                return Ok(());
            }
        }
        Err(TargetError::NoPassword {
            user: self.user.clone(),
            host: self.host.clone(),
        })
    }

    /// The URL with no password, for manifests and logs.
    pub fn redacted(&self) -> String {
        let scheme = match self.security {
            Security::Plain => "ftp",
            Security::ExplicitTls => "ftps",
            Security::ImplicitTls => "ftps-implicit",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{}@{host}:{}", self.user, self.port)
    }

    /// Applies a profile's `tls` setting to the URL's scheme: `ftp://` with `tls = "explicit"`
    /// becomes explicit FTPS; a setting that contradicts an FTPS scheme is an error.
    pub fn with_tls_mode(mut self, mode: Option<TlsMode>) -> Result<Target, TargetError> {
        let wanted = match mode {
            None => return Ok(self),
            Some(TlsMode::Off) => Security::Plain,
            Some(TlsMode::Explicit) => Security::ExplicitTls,
            Some(TlsMode::Implicit) => Security::ImplicitTls,
        };
        if self.security != Security::Plain && self.security != wanted {
            return Err(TargetError::TlsConflict {
                url: self.redacted(),
                mode: format!("{wanted:?}"),
            });
        }
        self.security = wanted;
        Ok(self)
    }

    pub fn is_loopback(&self) -> bool {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => self.host.eq_ignore_ascii_case("localhost"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Best-effort removal of a password from something that looked like a URL, for error
/// messages about URLs we could not parse.
pub fn redact_url(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &s[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &s[..scheme_end + 3], user, &s[at..]),
                None => s.to_string(),
            }
        }
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        let t = Target::parse("ftp://bob:s%40cret@127.0.0.1:2121").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.user.as_str()), ("127.0.0.1", 2121, "bob"));
        assert_eq!(t.password.as_ref().map(Secret::expose), Some("s@cret"));
        assert_eq!(t.redacted(), "ftp://bob@127.0.0.1:2121");
        assert!(!format!("{t:?}").contains("cret"));
        assert!(t.is_loopback());
    }

    #[test]
    fn defaults() {
        let t = Target::parse("ftp://[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.user.as_str()), ("::1", 21, "anonymous"));
        assert_eq!(t.redacted(), "ftp://anonymous@[::1]:21");
    }

    #[test]
    fn rejects_bad_urls_without_leaking() {
        assert!(matches!(Target::parse("http://x"), Err(TargetError::Scheme(_))));
        assert!(matches!(Target::parse("sftp://x"), Err(TargetError::Scheme(_))));
        let e = Target::parse("ftp://u:hunter2@:99999").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(redact_url("ftp://u:pw@h:21"), "ftp://u:***@h:21");
    }

    #[test]
    fn ftps_schemes_and_the_profile_tls_setting() {
        let t = Target::parse("ftps://u@127.0.0.1").unwrap();
        assert_eq!((t.security, t.port), (Security::ExplicitTls, 21));
        assert_eq!(t.redacted(), "ftps://u@127.0.0.1:21");
        let t = Target::parse("ftps-implicit://u@[::1]").unwrap();
        assert_eq!((t.security, t.port), (Security::ImplicitTls, 990));
        assert_eq!(t.redacted(), "ftps-implicit://u@[::1]:990");
        // A plain URL takes the profile's mode; an FTPS one must agree with it.
        let plain = Target::parse("ftp://u@127.0.0.1:2121").unwrap();
        let t = plain.clone().with_tls_mode(Some(TlsMode::Explicit)).unwrap();
        assert_eq!((t.security, t.port), (Security::ExplicitTls, 2121));
        assert_eq!(plain.clone().with_tls_mode(None).unwrap().security, Security::Plain);
        let explicit = Target::parse("ftps://u@127.0.0.1").unwrap();
        assert!(explicit.clone().with_tls_mode(Some(TlsMode::Explicit)).is_ok());
        for mode in [TlsMode::Off, TlsMode::Implicit] {
            let e = explicit.clone().with_tls_mode(Some(mode)).unwrap_err();
            assert!(matches!(e, TargetError::TlsConflict { .. }), "{e:?}");
            assert!(e.to_string().contains("ftps://u@127.0.0.1:21"), "{e}");
        }
    }

    #[test]
    fn port_0_is_bad_input() {
        let e = Target::parse("ftp://u:hunter2@127.0.0.1:0").unwrap_err();
        assert!(matches!(e, TargetError::PortZero(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("port 0") && !e.contains("hunter2"), "{e}");
        assert!(Target::parse("ftp://h:00").is_err());
    }
}
