//! Who may call the API: browser origins (`QUOTA_ALLOWED_ORIGINS`), request
//! rates per caller and per address (`QUOTA_API_RATE_*`), and which peers are
//! believed about the client's address (`QUOTA_TRUSTED_PROXIES`).

use super::parse::{check_range, parse_env};
use super::ConfigError;

pub(super) fn allowed_origins(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
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

pub(super) fn trusted_proxies(
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

pub(super) fn rate(
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

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

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
}
