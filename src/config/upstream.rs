//! Where the server sends OpenAI requests (`OPENAI_*`), and what the `/v1`
//! proxy forwards and how many at once (`QUOTA_PROXY_*`).

use super::endpoint_rule::{parse_rules, EndpointRule, RULE_SYNTAX};
use super::parse::{check_range, parse_env};
use super::{ConfigError, Secret};

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

/// The `/v1` proxy's policy (docs/SECURITY.md, "The `/v1` proxy").
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `QUOTA_PROXY_EXTRA_ENDPOINTS`: endpoints forwarded on top of the
    /// built-in metered ones (`upstream::policy::endpoints::BUILT_IN`), e.g.
    /// `GET /v1/files,POST /v1/audio/transcriptions`. Empty by default: they
    /// act on the whole shared organisation and may not be metered.
    pub extra_endpoints: Vec<EndpointRule>,
    /// `QUOTA_PROXY_MAX_INFLIGHT` (default 1024): proxied requests in flight
    /// at once on this instance, streams until they end; past it, 503.
    pub max_inflight: u32,
    /// `QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE` (default 64): the same for one
    /// workspace; past it, 429 `too_many_concurrent_requests`.
    pub max_inflight_per_workspace: u32,
}

pub(super) fn upstream_config(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<UpstreamConfig, ConfigError> {
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

pub(super) fn proxy_config(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<ProxyConfig, ConfigError> {
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

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

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
}
