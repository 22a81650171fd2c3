//! Server runtime settings, validated at start.
//!
//! Precedence, per value: environment variable > `Leptos.toml` (or the file named
//! by `QUOTA_CONFIG_FILE`) > built-in default. `Leptos.toml` holds runtime settings
//! only; cargo-leptos reads its build settings from `[package.metadata.leptos]` in
//! Cargo.toml, so each value has exactly one home.
//!
//! One module per group of settings, each with the type it fills and the
//! function that reads it; the shared parsing and range checks are in
//! `parse.rs`, the file's shape in `file.rs`. This module is the entry point
//! ([`Config::load`], [`Config::from_sources`]) and puts the groups together.

mod access;
mod admin_key;
mod alerts;
pub mod endpoint_rule;
mod file;
mod limits;
mod parse;
mod server;
mod sessions;
mod storage;
mod upstream;

pub use admin_key::{AdminKeySource, ADMIN_KEY_FILE, MIN_ADMIN_KEY_LEN};
pub use endpoint_rule::EndpointRule;
pub use server::{HttpTimeouts, LogFormat, TlsFiles};
pub use sessions::SessionCaps;
pub use storage::FailurePolicy;
pub use upstream::{ProxyConfig, UpstreamConfig};

use crate::engine::EngineConfig;
use file::FileConfig;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_FILE: &str = "Leptos.toml";

/// A key or password from the environment. Its `Debug` says `[redacted]`, so
/// logging a config (or an error holding one) never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub engine: EngineConfig,
    pub admin_key: Secret,
    pub admin_key_source: AdminKeySource,
    /// Pure usage changes are pushed to a WebSocket at most once per this interval;
    /// status changes are pushed at once.
    pub ws_coalesce_ms: u64,
    /// Interval of the WebSocket heartbeat; a client silent for three is dropped.
    pub ws_heartbeat_ms: u64,
    /// How often time-driven transitions (windows sliding, retry times passing)
    /// are looked for.
    pub tick_ms: u64,
    pub upstream: UpstreamConfig,
    /// `QUOTA_DATABASE_URL`: where counts are kept (SQLite file).
    pub database_url: String,
    /// `QUOTA_HISTORY_HORIZON_DAYS` (default 30): alert history and audit kept this long.
    pub history_horizon_ms: u64,
    pub alerts: crate::alerts::AlertConfig,
    /// `QUOTA_ALLOWED_ORIGINS`: origins (scheme://host[:port]) allowed to call
    /// the API from a browser and to open the WebSocket. Empty by default:
    /// only the app's own pages.
    pub allowed_origins: Vec<String>,
    /// Requests per second to `/api/*`, `/api/fn/*` and `/v1/*` per caller (a
    /// workspace, whatever key spelling or session it uses, or the admin:
    /// `QUOTA_API_RATE_PER_KEY`, default 1000) and, for requests without a
    /// valid credential, per client address (`QUOTA_API_RATE_PER_IP`,
    /// default 2000; see `trusted_proxies`). Bursts of twice that. 0 = off.
    pub api_rate_per_key: u32,
    pub api_rate_per_ip: u32,
    /// `QUOTA_TRUSTED_PROXIES`: comma-separated CIDRs (or single addresses)
    /// of the reverse proxies in front of the server. Only a peer in one of
    /// them is believed about the client's address (`X-Forwarded-For`, else
    /// `Forwarded`); from anyone else those headers are ignored. Empty by
    /// default: the client address is the peer's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `QUOTA_TLS_CERT` and `QUOTA_TLS_KEY` (PEM files): set both and the
    /// server speaks HTTPS and WSS itself. Neither: plain HTTP, for running
    /// behind a TLS-terminating reverse proxy (docs/DEPLOYMENT.md).
    pub tls: Option<TlsFiles>,
    /// Session cookies carry `Secure`: always under TLS, and behind a proxy
    /// that terminates TLS when `QUOTA_COOKIE_SECURE=true`.
    pub cookie_secure: bool,
    pub http: HttpTimeouts,
    pub session_caps: SessionCaps,
    pub proxy: ProxyConfig,
    /// `QUOTA_REDIS_FAILURE_POLICY` (`open`, the default, or `closed`): what
    /// admission does while Redis cannot be reached (docs/DEPLOYMENT.md).
    pub redis_failure_policy: FailurePolicy,
    /// `QUOTA_LOG_FORMAT` (`text`, the default, or `json`): one JSON object
    /// per log line, for log shippers.
    pub log_format: LogFormat,
    /// The price table calls are costed with: `config/prices.json` as
    /// shipped, with `QUOTA_PRICES_FILE` (the same format) on top.
    pub prices: std::sync::Arc<crate::pricing::PriceTable>,
}

/// The shipped price table with the operator's file (`QUOTA_PRICES_FILE`),
/// if set, on top: its models replace or extend the shipped ones.
fn price_table(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<std::sync::Arc<crate::pricing::PriceTable>, ConfigError> {
    let builtin = crate::pricing::PriceTable::builtin().clone();
    let Some(path) = env("QUOTA_PRICES_FILE").filter(|p| !p.is_empty()) else {
        return Ok(std::sync::Arc::new(builtin));
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let own = crate::pricing::PriceTable::parse(&text).map_err(|e| ConfigError::Parse {
        path,
        message: e.to_string(),
    })?;
    Ok(std::sync::Arc::new(builtin.overridden_by(own)))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid {
        name: String,
        expected: &'static str,
        value: String,
    },
    #[error(
        "QUOTA_ADMIN_RESET_KEY is {0} characters long; it must be at least {MIN_ADMIN_KEY_LEN}. \
         Use a strong random key (e.g. `openssl rand -hex 32`), or unset it and the server \
         generates one at start."
    )]
    AdminKeyTooShort(usize),
    #[error(
        "QUOTA_ADMIN_RESET_KEY must be set when QUOTA_DATABASE_URL is Redis: every instance \
         sharing it must accept the same admin key, and a key generated here would be this \
         instance's alone. Set it to one strong random key (e.g. `openssl rand -hex 32`) on \
         every instance."
    )]
    GeneratedAdminKeyWithRedis,
    #[error(
        "QUOTA_ADMIN_RESET_KEY is not set and the generated admin key cannot be kept in \
         {}: {problem}", path.display()
    )]
    AdminKeyFile { path: PathBuf, problem: String },
}

impl Config {
    /// Reads the config file (if present) and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let explicit = std::env::var("QUOTA_CONFIG_FILE").ok();
        let path = PathBuf::from(
            explicit
                .clone()
                .unwrap_or_else(|| DEFAULT_CONFIG_FILE.into()),
        );
        // The default file is optional (the binary may run from anywhere); a file
        // the operator named must exist.
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => None,
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::from_sources(text.as_deref(), &path, |name| std::env::var(name).ok())
    }

    /// Builds the config from file text and an environment lookup; testable.
    pub fn from_sources(
        file_text: Option<&str>,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = FileConfig::parse(file_text, path)?;
        let engine = limits::engine_config(&file, &env)?;
        let (admin_key, admin_key_source) = admin_key::admin_key(&env)?;
        let tls = server::tls_files(&env)?;
        let (ws_coalesce_ms, ws_heartbeat_ms) = sessions::websocket_intervals(&file.websocket)?;
        Ok(Config {
            engine,
            admin_key,
            admin_key_source,
            ws_coalesce_ms,
            ws_heartbeat_ms,
            tick_ms: 250,
            upstream: upstream::upstream_config(&env)?,
            database_url: storage::database_url(&env),
            alerts: alerts::alert_config(&env)?,
            allowed_origins: access::allowed_origins(&env)?,
            api_rate_per_key: access::rate("QUOTA_API_RATE_PER_KEY", &env, 1_000)?,
            api_rate_per_ip: access::rate("QUOTA_API_RATE_PER_IP", &env, 2_000)?,
            trusted_proxies: access::trusted_proxies(&env)?,
            cookie_secure: parse::flag("QUOTA_COOKIE_SECURE", &env)? || tls.is_some(),
            tls,
            http: server::http_timeouts(&env)?,
            session_caps: sessions::session_caps(&env)?,
            proxy: upstream::proxy_config(&env)?,
            redis_failure_policy: storage::redis_failure_policy(&env)?,
            log_format: server::log_format(&env)?,
            history_horizon_ms: storage::history_horizon_ms(&env)?,
            prices: price_table(&env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The config from `file` and exactly these variables (for every
    /// module's tests).
    pub(super) fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(file, Path::new("Leptos.toml"), |name| {
            env.get(name).cloned()
        })
    }

    #[test]
    fn environment_beats_file_beats_default() {
        let file = "[limits]\nrequests_per_minute = 60\nrequests_per_day = 700\n";
        let config = load(Some(file), &[("OPENAI_RATE_LIMIT_PER_MINUTE", "30")]).unwrap();
        assert_eq!(config.engine.default_limits.requests_per_minute, 30);
        assert_eq!(config.engine.default_limits.requests_per_day, 700);
        assert_eq!(config.engine.default_limits.tokens_per_minute, 150_000);
    }

    #[test]
    fn failure_policy_and_log_format_are_read_here_and_name_their_setting() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.redis_failure_policy, FailurePolicy::Open);
        assert_eq!(config.log_format, LogFormat::Text);
        let config = load(
            None,
            &[
                ("QUOTA_REDIS_FAILURE_POLICY", "closed"),
                ("QUOTA_LOG_FORMAT", "json"),
            ],
        )
        .unwrap();
        assert_eq!(config.redis_failure_policy, FailurePolicy::Closed);
        assert_eq!(config.log_format, LogFormat::Json);
        let err = load(None, &[("QUOTA_REDIS_FAILURE_POLICY", "shut")]).unwrap_err();
        assert!(
            err.to_string().contains("QUOTA_REDIS_FAILURE_POLICY"),
            "{err}"
        );
        let err = load(None, &[("QUOTA_LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.to_string().contains("QUOTA_LOG_FORMAT"), "{err}");
    }

    #[test]
    fn an_operator_price_file_extends_the_table_and_a_bad_one_names_itself() {
        let dir = std::env::temp_dir().join(format!("qa-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("prices.json");
        std::fs::write(
            &good,
            r#"{"models": {"house-model": [{"from": "2025-01-01", "input": 1, "output": 2}]}}"#,
        )
        .unwrap();
        let config = load(None, &[("QUOTA_PRICES_FILE", good.to_str().unwrap())]).unwrap();
        assert!(config.prices.price("house-model", 0).is_some());
        assert!(
            config.prices.price("gpt-4o", 0).is_some(),
            "the shipped rest kept"
        );
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"models": {"m": []}}"#).unwrap();
        let err = load(None, &[("QUOTA_PRICES_FILE", bad.to_str().unwrap())]).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
        assert!(err.to_string().contains("at least one price"), "{err}");
        let err = load(None, &[("QUOTA_PRICES_FILE", "/nonexistent/prices.json")]).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/prices.json"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = load(None, &[("QUOTA_WARNING_THRESHOLD", "1.5")]).unwrap_err();
        assert!(err.to_string().contains("QUOTA_WARNING_THRESHOLD"), "{err}");
        let err = load(None, &[("OPENAI_RATE_LIMIT_PER_DAY", "lots")]).unwrap_err();
        assert!(
            err.to_string().contains("OPENAI_RATE_LIMIT_PER_DAY"),
            "{err}"
        );
        let err = load(Some("[limits]\nrequests_per_minut = 5\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("requests_per_minut"), "{err}");
        let err = load(None, &[("QUOTA_HTTP_HEADER_TIMEOUT_S", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("QUOTA_HTTP_HEADER_TIMEOUT_S"),
            "{err}"
        );
        let err = load(None, &[("QUOTA_COOKIE_SECURE", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("QUOTA_COOKIE_SECURE"), "{err}");
    }
}
