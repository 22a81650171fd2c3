//! Where state is kept (`QUOTA_DATABASE_URL`: a SQLite file, or Redis shared
//! by several instances), what admission does while Redis is away, and how
//! long history is kept.

use super::parse::{check_range, parse_env};
use super::{Config, ConfigError};

/// What admission does while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Each instance keeps admitting on its own counts (limits then hold per
    /// instance, not across them).
    Open,
    /// Refuse with 503: never risk going over a shared limit.
    Closed,
}

impl Config {
    /// Whether `QUOTA_DATABASE_URL` names Redis (several instances sharing
    /// one state) rather than a SQLite file.
    pub fn uses_redis(&self) -> bool {
        let url = self.database_url.trim();
        url.starts_with("redis://") || url.starts_with("rediss://")
    }
}

/// `QUOTA_DATABASE_URL`, or the default SQLite file.
pub(super) fn database_url(env: &impl Fn(&str) -> Option<String>) -> String {
    env("QUOTA_DATABASE_URL")
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| crate::store::DEFAULT_DATABASE_URL.to_string())
}

/// `QUOTA_REDIS_FAILURE_POLICY`: `open` (the default) or `closed`.
pub(super) fn redis_failure_policy(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<FailurePolicy, ConfigError> {
    match env("QUOTA_REDIS_FAILURE_POLICY").as_deref().map(str::trim) {
        None | Some("" | "open") => Ok(FailurePolicy::Open),
        Some("closed") => Ok(FailurePolicy::Closed),
        Some(other) => Err(ConfigError::Invalid {
            name: "QUOTA_REDIS_FAILURE_POLICY".to_string(),
            expected: "`open` or `closed`",
            value: other.to_string(),
        }),
    }
}

/// `QUOTA_HISTORY_HORIZON_DAYS` (default 30), in milliseconds.
pub(super) fn history_horizon_ms(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<u64, ConfigError> {
    Ok(match env("QUOTA_HISTORY_HORIZON_DAYS") {
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
    } * 86_400_000)
}
