//! Server runtime settings, validated at start.
//!
//! Precedence, per value: environment variable > `Leptos.toml` (or the file named
//! by `QUOTA_CONFIG_FILE`) > built-in default. `Leptos.toml` holds runtime settings
//! only; cargo-leptos reads its build settings from `[package.metadata.leptos]` in
//! Cargo.toml, so each value has exactly one home.

use crate::engine::EngineConfig;
use crate::wire::Limits;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_FILE: &str = "Leptos.toml";
pub const MIN_ADMIN_KEY_LEN: usize = 16;

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

/// Where the admin key came from: set by the operator, generated at start
/// (until [`Config::keep_generated_admin_key`] keeps it), or read from the
/// file in the data directory where a generated key is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminKeySource {
    Environment,
    Generated,
    /// Generated on an earlier (or this) start and kept in this file (mode
    /// 0600), so a restart keeps the admin key and its sessions.
    File(PathBuf),
}

/// The file, in the data directory (next to the SQLite file), holding the
/// generated admin key when `QUOTA_ADMIN_RESET_KEY` is not set.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// What one tenant's browser sessions and WebSockets may hold, so none grows
/// without bound on a tenant's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCaps {
    /// `QUOTA_MAX_SESSIONS_PER_WORKSPACE` (default 1000, 1 to 1000000):
    /// browser sessions per workspace (and for the admin). Signing in past it
    /// ends that workspace's oldest session rather than refusing the sign-in:
    /// a person signing in always gets in, and whoever filled the cap (a
    /// script signing in in a loop) only pushes out its own old sessions.
    pub max_sessions_per_workspace: usize,
    /// `QUOTA_MAX_WS_PER_WORKSPACE` (default 256, 1 to 100000): open
    /// WebSockets per workspace key (its sessions included) on one instance;
    /// the admin has its own. One more gets 429 `too_many_connections`
    /// before the upgrade.
    pub max_ws_per_caller: usize,
    /// `QUOTA_WS_SEND_TIMEOUT_S` (default 10, 1 to 300): a WebSocket whose
    /// client stops reading is dropped when one frame cannot be sent within
    /// this long, instead of holding its task and buffers forever.
    pub ws_send_timeout_ms: u64,
}

impl Default for SessionCaps {
    fn default() -> Self {
        Self {
            max_sessions_per_workspace: 1000,
            max_ws_per_caller: 256,
            ws_send_timeout_ms: 10_000,
        }
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
}

/// What admission does while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Each instance keeps admitting on its own counts (limits then hold per
    /// instance, not across them).
    Open,
    /// Refuse with 503: never risk going over a shared limit.
    Closed,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The `/v1` proxy's policy (docs/SECURITY.md, "The `/v1` proxy").
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `QUOTA_PROXY_EXTRA_ENDPOINTS`: endpoints forwarded on top of the
    /// built-in metered ones (`upstream::policy::endpoints::BUILT_IN`), e.g.
    /// `GET /v1/files,POST /v1/audio/transcriptions`. Empty by default: they
    /// act on the whole shared organisation and may not be metered.
    pub extra_endpoints: Vec<crate::upstream::policy::EndpointRule>,
    /// `QUOTA_PROXY_MAX_INFLIGHT` (default 1024): proxied requests in flight
    /// at once on this instance, streams until they end; past it, 503.
    pub max_inflight: u32,
    /// `QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE` (default 64): the same for one
    /// workspace; past it, 429 `too_many_concurrent_requests`.
    pub max_inflight_per_workspace: u32,
}

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

/// Where the tracked client and the proxy send requests.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// `OPENAI_BASE_URL`, e.g. `https://api.openai.com/v1` (no trailing slash).
    pub base_url: String,
    /// `OPENAI_API_KEY`; never leaves the server. Without it requests are
    /// forwarded unauthenticated (useful against local compatible servers).
    pub api_key: Option<Secret>,
    /// `OPENAI_MODEL`: the model the conversation UI talks to.
    pub chat_model: String,
    /// `OPENAI_CONNECT_TIMEOUT_S` (default 10).
    pub connect_timeout_ms: u64,
    /// `OPENAI_TIMEOUT_S` (default 120): a whole non-streaming exchange, or the
    /// longest silence within a stream.
    pub timeout_ms: u64,
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

/// The shape of `Leptos.toml`. Every field optional; unknown keys are an error so
/// that a typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    status: FileStatus,
    #[serde(default)]
    websocket: FileWebsocket,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    requests_per_minute: Option<u64>,
    requests_per_day: Option<u64>,
    tokens_per_minute: Option<u64>,
    tokens_per_day: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStatus {
    warning_threshold: Option<f64>,
    degraded_failure_threshold: Option<u32>,
    degraded_window_s: Option<u64>,
    default_rate_limit_backoff_s: Option<f64>,
    quota_probe_interval_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebsocket {
    coalesce_ms: Option<u64>,
    heartbeat_s: Option<u64>,
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
        let file: FileConfig = match file_text {
            Some(text) => toml::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
            None => FileConfig::default(),
        };
        let defaults = EngineConfig::default();
        let d = defaults.default_limits;

        let limit =
            |name: &str, file_value: Option<u64>, default: u64| -> Result<u64, ConfigError> {
                let value = match env(name) {
                    Some(raw) => parse_env(name, &raw, "a whole number from 1 to 1000000000000")?,
                    None => file_value.unwrap_or(default),
                };
                check_range(
                    name,
                    value,
                    1,
                    1_000_000_000_000,
                    "a whole number from 1 to 1000000000000",
                )
            };
        let default_limits = Limits {
            requests_per_minute: limit(
                "OPENAI_RATE_LIMIT_PER_MINUTE",
                file.limits.requests_per_minute,
                d.requests_per_minute,
            )?,
            requests_per_day: limit(
                "OPENAI_RATE_LIMIT_PER_DAY",
                file.limits.requests_per_day,
                d.requests_per_day,
            )?,
            tokens_per_minute: limit(
                "OPENAI_TOKEN_LIMIT_PER_MINUTE",
                file.limits.tokens_per_minute,
                d.tokens_per_minute,
            )?,
            tokens_per_day: limit(
                "OPENAI_TOKEN_LIMIT_PER_DAY",
                file.limits.tokens_per_day,
                d.tokens_per_day,
            )?,
        };

        let warning_threshold = match env("QUOTA_WARNING_THRESHOLD") {
            Some(raw) => parse_env("QUOTA_WARNING_THRESHOLD", &raw, "a number between 0 and 1")?,
            None => file
                .status
                .warning_threshold
                .unwrap_or(defaults.warning_threshold),
        };
        if !(warning_threshold > 0.0 && warning_threshold < 1.0) {
            return Err(ConfigError::Invalid {
                name: "QUOTA_WARNING_THRESHOLD".into(),
                expected: "a number greater than 0 and less than 1 (a share of each limit)",
                value: warning_threshold.to_string(),
            });
        }

        let s = &file.status;
        let backoff_s = s
            .default_rate_limit_backoff_s
            .unwrap_or(defaults.default_rate_limit_backoff_ms as f64 / 1000.0);
        if !(backoff_s.is_finite() && (0.0..=3600.0).contains(&backoff_s)) {
            return Err(ConfigError::Invalid {
                name: "status.default_rate_limit_backoff_s".into(),
                expected: "a number of seconds from 0 to 3600",
                value: backoff_s.to_string(),
            });
        }
        let engine = EngineConfig {
            default_limits,
            warning_threshold,
            degraded_failure_threshold: check_range(
                "status.degraded_failure_threshold",
                u64::from(
                    s.degraded_failure_threshold
                        .unwrap_or(defaults.degraded_failure_threshold),
                ),
                1,
                1000,
                "a whole number from 1 to 1000",
            )? as u32,
            degraded_window_ms: check_range(
                "status.degraded_window_s",
                s.degraded_window_s
                    .unwrap_or(defaults.degraded_window_ms / 1000),
                1,
                3600,
                "a number of seconds from 1 to 3600",
            )? * 1000,
            default_rate_limit_backoff_ms: (backoff_s * 1000.0) as u64,
            quota_probe_interval_ms: check_range(
                "status.quota_probe_interval_s",
                s.quota_probe_interval_s
                    .unwrap_or(defaults.quota_probe_interval_ms / 1000),
                1,
                86_400,
                "a number of seconds from 1 to 86400",
            )? * 1000,
            history_len: defaults.history_len,
            anomaly_factor: defaults.anomaly_factor,
            anomaly_min_requests: defaults.anomaly_min_requests,
            anomaly_cooldown_ms: defaults.anomaly_cooldown_ms,
        };

        let (admin_key, admin_key_source) = match env("QUOTA_ADMIN_RESET_KEY") {
            Some(key) if key.chars().count() < MIN_ADMIN_KEY_LEN => {
                return Err(ConfigError::AdminKeyTooShort(key.chars().count()))
            }
            Some(key) => (key, AdminKeySource::Environment),
            None => (
                crate::auth::generate_secret("qa_admin_"),
                AdminKeySource::Generated,
            ),
        };

        let tls = tls_files(&env)?;
        Ok(Config {
            engine,
            admin_key: Secret::new(admin_key),
            admin_key_source,
            ws_coalesce_ms: check_range(
                "websocket.coalesce_ms",
                file.websocket.coalesce_ms.unwrap_or(250),
                0,
                10_000,
                "milliseconds from 0 to 10000",
            )?,
            ws_heartbeat_ms: check_range(
                "websocket.heartbeat_s",
                file.websocket.heartbeat_s.unwrap_or(15),
                1,
                300,
                "seconds from 1 to 300",
            )? * 1000,
            tick_ms: 250,
            upstream: upstream_config(&env)?,
            database_url: env("QUOTA_DATABASE_URL")
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| crate::store::DEFAULT_DATABASE_URL.to_string()),
            alerts: alert_config(&env)?,
            allowed_origins: allowed_origins(&env)?,
            api_rate_per_key: rate("QUOTA_API_RATE_PER_KEY", &env, 1_000)?,
            api_rate_per_ip: rate("QUOTA_API_RATE_PER_IP", &env, 2_000)?,
            trusted_proxies: trusted_proxies(&env)?,
            cookie_secure: flag("QUOTA_COOKIE_SECURE", &env)? || tls.is_some(),
            tls,
            http: http_timeouts(&env)?,
            session_caps: session_caps(&env)?,
            proxy: proxy_config(&env)?,
            redis_failure_policy: match env("QUOTA_REDIS_FAILURE_POLICY").as_deref().map(str::trim)
            {
                None | Some("" | "open") => FailurePolicy::Open,
                Some("closed") => FailurePolicy::Closed,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "QUOTA_REDIS_FAILURE_POLICY".to_string(),
                        expected: "`open` or `closed`",
                        value: other.to_string(),
                    })
                }
            },
            log_format: match env("QUOTA_LOG_FORMAT").as_deref().map(str::trim) {
                None | Some("" | "text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "QUOTA_LOG_FORMAT".to_string(),
                        expected: "`text` or `json`",
                        value: other.to_string(),
                    })
                }
            },
            history_horizon_ms: match env("QUOTA_HISTORY_HORIZON_DAYS") {
                Some(raw) => check_range(
                    "QUOTA_HISTORY_HORIZON_DAYS",
                    parse_env(
                        "QUOTA_HISTORY_HORIZON_DAYS",
                        &raw,
                        "a whole number of days from 1 to 3650",
                    )?,
                    1,
                    3650,
                    "a whole number of days from 1 to 3650",
                )?,
                None => 30,
            } * 86_400_000,
        })
    }
}

impl Config {
    /// Whether `QUOTA_DATABASE_URL` names Redis (several instances sharing
    /// one state) rather than a SQLite file.
    pub fn uses_redis(&self) -> bool {
        let url = self.database_url.trim();
        url.starts_with("redis://") || url.starts_with("rediss://")
    }

    /// When no admin key was set, keeps the generated one: the key already
    /// in [`ADMIN_KEY_FILE`] in the data directory (the SQLite file's) is
    /// used if there is one, else the generated key is written there (mode
    /// 0600 from its creation) and used from then on. Under Redis a
    /// generated key is refused: instances must agree on one admin key.
    pub fn keep_generated_admin_key(&mut self) -> Result<(), ConfigError> {
        if self.admin_key_source != AdminKeySource::Generated {
            return Ok(());
        }
        if self.uses_redis() {
            return Err(ConfigError::GeneratedAdminKeyWithRedis);
        }
        let db = crate::store::path_from_url(&self.database_url).map_err(|e| {
            ConfigError::AdminKeyFile {
                path: PathBuf::from(ADMIN_KEY_FILE),
                problem: e.to_string(),
            }
        })?;
        let dir = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = dir.join(ADMIN_KEY_FILE);
        let key =
            admin_key_file::read_or_create(&path, self.admin_key.expose()).map_err(|problem| {
                ConfigError::AdminKeyFile {
                    path: path.clone(),
                    problem,
                }
            })?;
        self.admin_key = Secret::new(key);
        self.admin_key_source = AdminKeySource::File(path);
        Ok(())
    }
}

/// The generated admin key's file: never readable by anyone but the owner,
/// not even for a moment, and never seen half-written.
mod admin_key_file {
    use super::MIN_ADMIN_KEY_LEN;
    use std::io::Write;
    use std::path::Path;

    /// The key in `path`, or `fresh` once it is written there.
    pub(super) fn read_or_create(path: &Path, fresh: &str) -> Result<String, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the directory: {e}"))?;
        }
        if path.exists() {
            return read(path);
        }
        // Written whole to a private temporary file, then linked into place:
        // a link never replaces an existing file, so of two processes
        // starting at once one key wins and both use it, and nobody reads a
        // file that is still being written.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = (|| {
            let mut file = create_private(&tmp)?;
            file.write_all(format!("{fresh}\n").as_bytes())?;
            file.sync_all()
        })();
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(fresh.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
            Err(e) => Err(format!("cannot write it: {e}")),
        }
    }

    #[cfg(unix)]
    fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    #[cfg(not(unix))]
    fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    }

    fn read(path: &Path) -> Result<String, String> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
        if !meta.is_file() {
            return Err("it is not a regular file".into());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "it is open to other users (mode {mode:o}); `chmod 600` it, or delete it \
                     to generate a new key"
                ));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        let key = text.trim();
        if key.chars().count() < MIN_ADMIN_KEY_LEN || key.contains(char::is_whitespace) {
            return Err(format!(
                "it does not hold an admin key (one line of at least {MIN_ADMIN_KEY_LEN} \
                 characters); delete it to generate a new one"
            ));
        }
        Ok(key.to_string())
    }
}

fn session_caps(env: &impl Fn(&str) -> Option<String>) -> Result<SessionCaps, ConfigError> {
    let defaults = SessionCaps::default();
    let bounded = |name: &str, max: u64, expected: &'static str, default: u64| match env(name) {
        Some(raw) => check_range(name, parse_env(name, &raw, expected)?, 1, max, expected),
        None => Ok(default),
    };
    Ok(SessionCaps {
        max_sessions_per_workspace: bounded(
            "QUOTA_MAX_SESSIONS_PER_WORKSPACE",
            1_000_000,
            "a whole number of sessions from 1 to 1000000",
            defaults.max_sessions_per_workspace as u64,
        )? as usize,
        max_ws_per_caller: bounded(
            "QUOTA_MAX_WS_PER_WORKSPACE",
            100_000,
            "a whole number of connections from 1 to 100000",
            defaults.max_ws_per_caller as u64,
        )? as usize,
        ws_send_timeout_ms: bounded(
            "QUOTA_WS_SEND_TIMEOUT_S",
            300,
            "a whole number of seconds from 1 to 300",
            defaults.ws_send_timeout_ms / 1000,
        )? * 1000,
    })
}

fn rate(
    name: &str,
    env: &impl Fn(&str) -> Option<String>,
    default: u32,
) -> Result<u32, ConfigError> {
    let value = match env(name) {
        Some(raw) => parse_env(name, &raw, "requests per second from 0 (off) to 1000000")?,
        None => u64::from(default),
    };
    Ok(check_range(
        name,
        value,
        0,
        1_000_000,
        "requests per second from 0 (off) to 1000000",
    )? as u32)
}

fn proxy_config(env: &impl Fn(&str) -> Option<String>) -> Result<ProxyConfig, ConfigError> {
    use crate::upstream::policy::endpoints::{parse_rules, RULE_SYNTAX};
    let raw = env("QUOTA_PROXY_EXTRA_ENDPOINTS").unwrap_or_default();
    let extra_endpoints = parse_rules(&raw).map_err(|reason| ConfigError::Invalid {
        name: "QUOTA_PROXY_EXTRA_ENDPOINTS".into(),
        expected: RULE_SYNTAX,
        value: reason,
    })?;
    let cap = |name: &str, default: u64| -> Result<u32, ConfigError> {
        const EXPECTED: &str = "a whole number of requests from 1 to 1000000";
        let value = match env(name) {
            Some(raw) => parse_env(name, &raw, EXPECTED)?,
            None => default,
        };
        Ok(check_range(name, value, 1, 1_000_000, EXPECTED)? as u32)
    };
    Ok(ProxyConfig {
        extra_endpoints,
        max_inflight: cap("QUOTA_PROXY_MAX_INFLIGHT", 1024)?,
        max_inflight_per_workspace: cap("QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE", 64)?,
    })
}

fn tls_files(env: &impl Fn(&str) -> Option<String>) -> Result<Option<TlsFiles>, ConfigError> {
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

fn flag(name: &str, env: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    match env(name).as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            name: name.to_string(),
            expected: "true or false",
            value: other.to_string(),
        }),
    }
}

fn http_timeouts(env: &impl Fn(&str) -> Option<String>) -> Result<HttpTimeouts, ConfigError> {
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

fn allowed_origins(env: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let origins: Vec<String> = env("QUOTA_ALLOWED_ORIGINS")
        .unwrap_or_default()
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    for origin in &origins {
        let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin["https://".len().min(origin.len())..].contains('/')
            && !origin.contains(char::is_whitespace)
            && axum::http::HeaderValue::from_str(origin).is_ok();
        if !valid || origin == "*" {
            return Err(ConfigError::Invalid {
                name: "QUOTA_ALLOWED_ORIGINS".into(),
                expected:
                    "comma-separated origins such as https://app.example.com (no paths, no *)",
                value: origin.clone(),
            });
        }
    }
    Ok(origins)
}

fn trusted_proxies(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    env("QUOTA_TRUSTED_PROXIES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|net| !net.is_empty())
        .map(|net| {
            // A bare address is a network of one (`127.0.0.1` = `127.0.0.1/32`).
            net.parse::<ipnet::IpNet>()
                .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|parsed| parsed.trunc())
                .map_err(|_| ConfigError::Invalid {
                    name: "QUOTA_TRUSTED_PROXIES".into(),
                    expected:
                        "comma-separated CIDRs or addresses such as 127.0.0.1/32,10.0.0.0/8,::1",
                    value: net.to_string(),
                })
        })
        .collect()
}

fn alert_config(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<crate::alerts::AlertConfig, ConfigError> {
    let urls: Vec<String> = env("QUOTA_WEBHOOK_URL")
        .unwrap_or_default()
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if let Some(bad) = urls.iter().find(|u| {
        !(u.starts_with("http://") || u.starts_with("https://")) || u.contains(char::is_whitespace)
    }) {
        return Err(ConfigError::Invalid {
            name: "QUOTA_WEBHOOK_URL".into(),
            expected: "comma-separated http:// or https:// URLs",
            value: bad.clone(),
        });
    }
    let cooldown_s = match env("QUOTA_WEBHOOK_COOLDOWN_S") {
        Some(raw) => parse_env(
            "QUOTA_WEBHOOK_COOLDOWN_S",
            &raw,
            "a whole number of seconds from 0 to 86400",
        )?,
        None => 300,
    };
    let cooldown_s = check_range(
        "QUOTA_WEBHOOK_COOLDOWN_S",
        cooldown_s,
        0,
        86_400,
        "a whole number of seconds from 0 to 86400",
    )?;
    Ok(crate::alerts::AlertConfig {
        urls,
        cooldown_ms: cooldown_s * 1000,
    })
}

fn upstream_config(env: &impl Fn(&str) -> Option<String>) -> Result<UpstreamConfig, ConfigError> {
    let base_url = env("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into());
    let base_url = base_url.trim().trim_end_matches('/').to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
        || base_url.contains(char::is_whitespace)
    {
        return Err(ConfigError::Invalid {
            name: "OPENAI_BASE_URL".into(),
            expected: "an http:// or https:// URL",
            value: base_url,
        });
    }
    let seconds = |name: &str, default: u64| -> Result<u64, ConfigError> {
        let value = match env(name) {
            Some(raw) => parse_env(name, &raw, "a whole number of seconds from 1 to 3600")?,
            None => default,
        };
        check_range(
            name,
            value,
            1,
            3600,
            "a whole number of seconds from 1 to 3600",
        )
    };
    Ok(UpstreamConfig {
        base_url,
        api_key: env("OPENAI_API_KEY")
            .filter(|k| !k.trim().is_empty())
            .map(Secret::new),
        chat_model: env("OPENAI_MODEL")
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "gpt-4o-mini".into()),
        connect_timeout_ms: seconds("OPENAI_CONNECT_TIMEOUT_S", 10)? * 1000,
        timeout_ms: seconds("OPENAI_TIMEOUT_S", 120)? * 1000,
    })
}

fn parse_env<T: std::str::FromStr>(
    name: &str,
    raw: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    raw.trim().parse().map_err(|_| ConfigError::Invalid {
        name: name.to_string(),
        expected,
        value: raw.to_string(),
    })
}

fn check_range(
    name: &str,
    value: u64,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<u64, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: name.to_string(),
            expected,
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
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
    fn a_short_admin_key_is_refused_and_a_missing_one_generated() {
        let err = load(None, &[("QUOTA_ADMIN_RESET_KEY", "short")]).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        let config = load(None, &[]).unwrap();
        assert_eq!(config.admin_key_source, AdminKeySource::Generated);
        assert!(config.admin_key.expose().len() >= 32);
        assert_ne!(config.admin_key, load(None, &[]).unwrap().admin_key);
        assert!(!format!("{config:?}").contains(config.admin_key.expose()));
    }

    #[test]
    fn session_caps_have_defaults_bounds_and_name_their_setting() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.session_caps, SessionCaps::default());
        let config = load(
            None,
            &[
                ("QUOTA_MAX_SESSIONS_PER_WORKSPACE", "3"),
                ("QUOTA_MAX_WS_PER_WORKSPACE", "2"),
                ("QUOTA_WS_SEND_TIMEOUT_S", "1"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.session_caps,
            SessionCaps {
                max_sessions_per_workspace: 3,
                max_ws_per_caller: 2,
                ws_send_timeout_ms: 1000,
            }
        );
        for (name, bad) in [
            ("QUOTA_MAX_SESSIONS_PER_WORKSPACE", "0"),
            ("QUOTA_MAX_SESSIONS_PER_WORKSPACE", "many"),
            ("QUOTA_MAX_WS_PER_WORKSPACE", "100001"),
            ("QUOTA_WS_SEND_TIMEOUT_S", "0"),
            ("QUOTA_WS_SEND_TIMEOUT_S", "301"),
        ] {
            let err = load(None, &[(name, bad)]).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={bad}: {err}");
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "quota-alert-config-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_generated_admin_key_is_kept_in_the_data_directory_and_reused() {
        let dir = temp_dir("admin-key");
        let url = format!("sqlite://{}/quota.db", dir.display());
        let mut first = load(None, &[("QUOTA_DATABASE_URL", &url)]).unwrap();
        let generated = first.admin_key.clone();
        first.keep_generated_admin_key().unwrap();
        let path = dir.join(ADMIN_KEY_FILE);
        assert_eq!(first.admin_key_source, AdminKeySource::File(path.clone()));
        assert_eq!(
            first.admin_key, generated,
            "the generated key is the one kept"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut second = load(None, &[("QUOTA_DATABASE_URL", &url)]).unwrap();
        assert_ne!(second.admin_key, generated);
        second.keep_generated_admin_key().unwrap();
        assert_eq!(second.admin_key, generated, "reused on the next start");

        // A set key is used as is, and the file is left alone.
        let mut set = load(
            None,
            &[
                ("QUOTA_DATABASE_URL", &url),
                ("QUOTA_ADMIN_RESET_KEY", "an-operator-chosen-key"),
            ],
        )
        .unwrap();
        set.keep_generated_admin_key().unwrap();
        assert_eq!(set.admin_key.expose(), "an-operator-chosen-key");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load(None, &[("QUOTA_DATABASE_URL", &url)])
                .unwrap()
                .keep_generated_admin_key()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("chmod 600") && err.contains("admin.key"),
                "{err}"
            );
            assert!(!err.contains(generated.expose()), "{err}");
        }
        std::fs::write(&path, "short\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = load(None, &[("QUOTA_DATABASE_URL", &url)])
            .unwrap()
            .keep_generated_admin_key()
            .unwrap_err();
        assert!(
            err.to_string().contains("does not hold an admin key"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn redis_refuses_a_generated_admin_key() {
        let mut config = load(None, &[("QUOTA_DATABASE_URL", "redis://127.0.0.1:6379/")]).unwrap();
        assert!(config.uses_redis());
        let err = config.keep_generated_admin_key().unwrap_err().to_string();
        assert!(err.contains("QUOTA_ADMIN_RESET_KEY must be set"), "{err}");
        let mut set = load(
            None,
            &[
                ("QUOTA_DATABASE_URL", "rediss://cache:6380/"),
                ("QUOTA_ADMIN_RESET_KEY", "an-operator-chosen-key"),
            ],
        )
        .unwrap();
        set.keep_generated_admin_key().unwrap();
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

    #[test]
    fn proxy_settings_parse_or_name_the_variable() {
        let config = load(None, &[]).unwrap();
        assert!(config.proxy.extra_endpoints.is_empty());
        assert_eq!(config.proxy.max_inflight, 1024);
        assert_eq!(config.proxy.max_inflight_per_workspace, 64);
        let config = load(
            None,
            &[
                (
                    "QUOTA_PROXY_EXTRA_ENDPOINTS",
                    "GET /v1/files, POST /v1/audio/transcriptions,GET /v1/files/{id}",
                ),
                ("QUOTA_PROXY_MAX_INFLIGHT", "10"),
                ("QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE", "2"),
            ],
        )
        .unwrap();
        let extra: Vec<String> = config
            .proxy
            .extra_endpoints
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            extra,
            [
                "GET /v1/files",
                "POST /v1/audio/transcriptions",
                "GET /v1/files/{id}"
            ]
        );
        assert_eq!(config.proxy.max_inflight, 10);
        assert_eq!(config.proxy.max_inflight_per_workspace, 2);
        for bad in [
            "GET /v1/../admin",
            "files",
            "GET /v1/files,BREW /v1/coffee",
            "GET /v1//x",
        ] {
            let err = load(None, &[("QUOTA_PROXY_EXTRA_ENDPOINTS", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("QUOTA_PROXY_EXTRA_ENDPOINTS"),
                "{err}"
            );
        }
        for (name, bad) in [
            ("QUOTA_PROXY_MAX_INFLIGHT", "0"),
            ("QUOTA_PROXY_MAX_INFLIGHT", "lots"),
            ("QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE", "-1"),
        ] {
            let err = load(None, &[(name, bad)]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses_and_nothing_else() {
        assert!(load(None, &[]).unwrap().trusted_proxies.is_empty());
        let config = load(
            None,
            &[("QUOTA_TRUSTED_PROXIES", " 127.0.0.1/32, 10.1.2.3/8 ,::1,")],
        )
        .unwrap();
        let nets: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        for bad in ["127.0.0.1/33", "localhost", "10.0.0.0/8;", "*"] {
            let err = load(None, &[("QUOTA_TRUSTED_PROXIES", bad)]).unwrap_err();
            assert!(err.to_string().contains("QUOTA_TRUSTED_PROXIES"), "{err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

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
