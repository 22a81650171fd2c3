//! The engine's numbers: default limits per workspace and the status rules'
//! thresholds, the only settings with all three layers (environment for the
//! limits and the warning threshold, `Leptos.toml`, defaults).

use super::file::FileConfig;
use super::parse::{check_range, parse_env};
use super::ConfigError;
use crate::engine::EngineConfig;
use crate::wire::Limits;

/// The engine's settings: environment > file > [`EngineConfig::default`].
pub(super) fn engine_config(
    file: &FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<EngineConfig, ConfigError> {
    let defaults = EngineConfig::default();
    let d = defaults.default_limits;

    let limit = |name: &str, file_value: Option<u64>, default: u64| -> Result<u64, ConfigError> {
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
    Ok(EngineConfig {
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
        reservation_ttl_ms: match env("QUOTA_RESERVATION_TTL_S") {
            Some(raw) => {
                check_range(
                    "QUOTA_RESERVATION_TTL_S",
                    parse_env(
                        "QUOTA_RESERVATION_TTL_S",
                        &raw,
                        "a number of seconds from 1 to 86400",
                    )?,
                    1,
                    86_400,
                    "a number of seconds from 1 to 86400",
                )? * 1000
            }
            None => defaults.reservation_ttl_ms,
        },
        default_output_reserve: match env("QUOTA_DEFAULT_MAX_OUTPUT_TOKENS") {
            Some(raw) => check_range(
                "QUOTA_DEFAULT_MAX_OUTPUT_TOKENS",
                parse_env(
                    "QUOTA_DEFAULT_MAX_OUTPUT_TOKENS",
                    &raw,
                    "a whole number of tokens from 0 to 1000000",
                )?,
                0,
                1_000_000,
                "a whole number of tokens from 0 to 1000000",
            )?,
            None => defaults.default_output_reserve,
        },
    })
}
