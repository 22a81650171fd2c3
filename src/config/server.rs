//! How the server itself runs: TLS (`QUOTA_TLS_*`), how long clients may take
//! (`QUOTA_HTTP_*`, `QUOTA_SHUTDOWN_DRAIN_S`) and how log lines are written
//! (`QUOTA_LOG_FORMAT`).

use super::parse::{check_range, parse_env};
use super::ConfigError;
use std::path::PathBuf;

/// The certificate chain and private key the server presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How long a client may take, so a slow or stalled one cannot hold a
/// connection (and its memory) forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// `QUOTA_HTTP_HEADER_TIMEOUT_S` (default 10): to send a request's headers,
    /// and for an idle keep-alive connection to start its next request.
    pub header_read_ms: u64,
    /// `QUOTA_HTTP_BODY_TIMEOUT_S` (default 30): to send a whole request body.
    pub body_read_ms: u64,
    /// `QUOTA_SHUTDOWN_DRAIN_S` (default 10): how long a graceful shutdown
    /// waits for requests in flight.
    pub shutdown_drain_ms: u64,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            header_read_ms: 10_000,
            body_read_ms: 30_000,
            shutdown_drain_ms: 10_000,
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub(super) fn tls_files(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let path = |name: &str| {
        env(name)
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
    };
    match (path("QUOTA_TLS_CERT"), path("QUOTA_TLS_KEY")) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Invalid {
            name: "QUOTA_TLS_KEY".into(),
            expected: "set together with QUOTA_TLS_CERT (the PEM private key)",
            value: String::new(),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            name: "QUOTA_TLS_CERT".into(),
            expected: "set together with QUOTA_TLS_KEY (the PEM certificate chain)",
            value: String::new(),
        }),
    }
}

pub(super) fn http_timeouts(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HttpTimeouts, ConfigError> {
    const EXPECTED: &str = "a whole number of seconds from 1 to 3600";
    let defaults = HttpTimeouts::default();
    let seconds = |name: &str, default_ms: u64| -> Result<u64, ConfigError> {
        match env(name) {
            Some(raw) => {
                Ok(check_range(name, parse_env(name, &raw, EXPECTED)?, 1, 3600, EXPECTED)? * 1000)
            }
            None => Ok(default_ms),
        }
    };
    Ok(HttpTimeouts {
        header_read_ms: seconds("QUOTA_HTTP_HEADER_TIMEOUT_S", defaults.header_read_ms)?,
        body_read_ms: seconds("QUOTA_HTTP_BODY_TIMEOUT_S", defaults.body_read_ms)?,
        shutdown_drain_ms: seconds("QUOTA_SHUTDOWN_DRAIN_S", defaults.shutdown_drain_ms)?,
    })
}

/// `QUOTA_LOG_FORMAT`: `text` (the default) or `json`.
pub(super) fn log_format(env: &impl Fn(&str) -> Option<String>) -> Result<LogFormat, ConfigError> {
    match env("QUOTA_LOG_FORMAT").as_deref().map(str::trim) {
        None | Some("" | "text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::Invalid {
            name: "QUOTA_LOG_FORMAT".to_string(),
            expected: "`text` or `json`",
            value: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load;

    #[test]
    fn tls_needs_both_files_and_makes_cookies_secure() {
        let err = load(None, &[("QUOTA_TLS_CERT", "/etc/cert.pem")]).unwrap_err();
        assert!(err.to_string().contains("QUOTA_TLS_KEY"), "{err}");
        let err = load(None, &[("QUOTA_TLS_KEY", "/etc/key.pem")]).unwrap_err();
        assert!(err.to_string().contains("QUOTA_TLS_CERT"), "{err}");
        let plain = load(None, &[]).unwrap();
        assert_eq!(plain.tls, None);
        assert!(!plain.cookie_secure);
        let tls = load(
            None,
            &[
                ("QUOTA_TLS_CERT", "/etc/cert.pem"),
                ("QUOTA_TLS_KEY", "/etc/key.pem"),
            ],
        )
        .unwrap();
        assert_eq!(
            tls.tls,
            Some(TlsFiles {
                cert: "/etc/cert.pem".into(),
                key: "/etc/key.pem".into()
            })
        );
        assert!(tls.cookie_secure);
        assert!(
            load(None, &[("QUOTA_COOKIE_SECURE", "true")])
                .unwrap()
                .cookie_secure
        );
    }
}
