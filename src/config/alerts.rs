//! Outgoing alerts: the webhooks status changes are posted to
//! (`QUOTA_WEBHOOK_*`).

use super::parse::{check_range, parse_env};
use super::ConfigError;

pub(super) fn alert_config(
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
