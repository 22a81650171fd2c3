//! `RateLimitHeaders::parse` on arbitrary header sets: never panics; durations
//! and retry hints are at most a day; counts are the header's trimmed integer.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use quota_alert::upstream::headers::{parse_go_duration_ms, RateLimitHeaders};
use std::collections::HashMap;

const DAY_MS: u64 = 86_400_000;

const NAMES: &[&str] = &[
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "retry-after",
    "retry-after-ms",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

fuzz_target!(|headers: Vec<(Name, String)>| {
    let map: HashMap<String, String> = headers
        .into_iter()
        .map(|(name, value)| {
            let name = match name {
                Name::Known(i) => NAMES[i as usize % NAMES.len()].to_string(),
                Name::Other(s) => s,
            };
            (name, value)
        })
        .collect();
    let get = |name: &str| map.get(name).map(String::as_str);
    let h = RateLimitHeaders::parse(get);

    for ms in [
        h.reset_requests_ms,
        h.reset_tokens_ms,
        h.retry_after_ms,
        h.exhausted_for_ms(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(ms <= DAY_MS, "{ms} ms from {map:?}");
    }
    let count = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
    assert_eq!(h.limit_requests, count("x-ratelimit-limit-requests"));
    assert_eq!(h.remaining_tokens, count("x-ratelimit-remaining-tokens"));
    assert_eq!(
        h.reset_tokens_ms,
        get("x-ratelimit-reset-tokens").and_then(parse_go_duration_ms)
    );
    assert_eq!(h.is_empty(), h == RateLimitHeaders::default());
});
