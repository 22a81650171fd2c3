//! What the upstream's rate-limit headers said about the shared organisation's
//! limits, as the engine keeps it. Read from HTTP by `upstream::headers`.

/// What one response's headers say about the organisation's limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateLimitHeaders {
    pub limit_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests_ms: Option<u64>,
    pub reset_tokens_ms: Option<u64>,
    /// From `retry-after-ms`, else `retry-after` (seconds).
    pub retry_after_ms: Option<u64>,
}

impl RateLimitHeaders {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// When the upstream will accept requests again if it says it has none left
    /// (`remaining-* = 0`): the longest applicable reset.
    pub fn exhausted_for_ms(&self) -> Option<u64> {
        let requests = (self.remaining_requests == Some(0))
            .then_some(self.reset_requests_ms)
            .flatten();
        let tokens = (self.remaining_tokens == Some(0))
            .then_some(self.reset_tokens_ms)
            .flatten();
        match (requests, tokens) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}
