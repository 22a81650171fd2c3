//! OpenAI's rate-limit headers: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
//! (resets as Go-style durations such as `1s`, `6m0s`, `12ms`, `1h2m3.5s`) and
//! `retry-after` / `retry-after-ms`, read into the engine's
//! [`RateLimitHeaders`] (the engine holds the type so that it does not depend
//! on the HTTP edge; the reading lives here).

pub use crate::engine::RateLimitHeaders;

/// Longest duration accepted from a header: a day. Anything longer is more
/// likely garbage than a real reset time.
const MAX_DURATION_MS: f64 = 86_400_000.0;

impl RateLimitHeaders {
    /// Reads the headers through `get` (name in lower case → value).
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        let count = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
        let duration = |name: &str| get(name).and_then(parse_go_duration_ms);
        let retry_after_ms = get("retry-after-ms")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms <= MAX_DURATION_MS)
            .map(|ms| ms.round() as u64)
            .or_else(|| {
                get("retry-after")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s * 1000.0 <= MAX_DURATION_MS)
                    .map(|s| (s * 1000.0).round() as u64)
            });
        Self {
            limit_requests: count("x-ratelimit-limit-requests"),
            limit_tokens: count("x-ratelimit-limit-tokens"),
            remaining_requests: count("x-ratelimit-remaining-requests"),
            remaining_tokens: count("x-ratelimit-remaining-tokens"),
            reset_requests_ms: duration("x-ratelimit-reset-requests"),
            reset_tokens_ms: duration("x-ratelimit-reset-tokens"),
            retry_after_ms,
        }
    }

    pub fn from_header_map(headers: &reqwest::header::HeaderMap) -> Self {
        Self::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))
    }
}

/// Parses a Go `time.Duration` string (`1s`, `6m0s`, `12ms`, `1h2m3.5s`, `250us`)
/// into milliseconds, rounded up so a client never retries early. `None` for
/// anything else, negative or above a day.
pub fn parse_go_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if text == "0" {
        return Some(0);
    }
    let mut total_ms = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale_ms = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms += value * scale_ms;
    }
    (total_ms.is_finite() && total_ms <= MAX_DURATION_MS).then(|| total_ms.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration_ms("1s"), Some(1_000));
        assert_eq!(parse_go_duration_ms("6m0s"), Some(360_000));
        assert_eq!(parse_go_duration_ms("12ms"), Some(12));
        assert_eq!(parse_go_duration_ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(parse_go_duration_ms("0.5s"), Some(500));
        assert_eq!(
            parse_go_duration_ms("250us"),
            Some(1),
            "rounded up, never early"
        );
        assert_eq!(parse_go_duration_ms("0"), Some(0));
        for bad in ["", "s", "5", "5x", "-1s", "1.2.3s", "48h", "1s2", "ms5"] {
            assert_eq!(parse_go_duration_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rate_limit_headers() {
        let map: HashMap<&str, &str> = [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "149984"),
            ("x-ratelimit-reset-tokens", "6ms"),
            ("retry-after", "2"),
        ]
        .into_iter()
        .collect();
        let h = RateLimitHeaders::parse(|n| map.get(n).copied());
        assert_eq!(h.limit_requests, Some(60));
        assert_eq!(h.remaining_tokens, Some(149_984));
        assert_eq!(h.retry_after_ms, Some(2_000));
        assert_eq!(h.exhausted_for_ms(), Some(360_000));
    }

    #[test]
    fn retry_after_ms_wins_and_junk_is_ignored() {
        let map: HashMap<&str, &str> = [
            ("retry-after-ms", "1500"),
            ("retry-after", "9"),
            ("x-ratelimit-remaining-requests", "lots"),
        ]
        .into_iter()
        .collect();
        let h = RateLimitHeaders::parse(|n| map.get(n).copied());
        assert_eq!(h.retry_after_ms, Some(1_500));
        assert_eq!(h.remaining_requests, None);
        let h = RateLimitHeaders::parse(|n| {
            (n == "retry-after").then_some("Wed, 21 Oct 2015 07:28:00 GMT")
        });
        assert_eq!(h.retry_after_ms, None);
    }
}
