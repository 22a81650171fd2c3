use crate::wire::Limits;

/// The numbers the status rules run on. Validated by `crate::config` before they
/// get here, so the engine can trust them.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Limits for workspaces created without overrides.
    pub default_limits: Limits,
    /// Share of a limit (0 < x < 1) at which a window is in WARNING.
    pub warning_threshold: f64,
    /// Upstream failures (5xx, timeouts) within `degraded_window_ms`, with no
    /// success since, that make a workspace DEGRADED.
    pub degraded_failure_threshold: u32,
    pub degraded_window_ms: u64,
    /// How long an upstream 429 blocks when it came without `retry-after`.
    pub default_rate_limit_backoff_ms: u64,
    /// While the upstream says the billing quota is gone, one request per interval
    /// is let through as a probe, so that a success can end QUOTA_EXCEEDED.
    pub quota_probe_interval_ms: u64,
    /// Status transitions kept per workspace (the alert history).
    pub history_len: usize,
    /// Unusual traffic: the last minute's requests at least this many times
    /// the workspace's average minute over the 15 before it...
    pub anomaly_factor: f64,
    /// ...and at least this many requests (small numbers are noise).
    pub anomaly_min_requests: u64,
    /// A flag stays in the status message this long, and is raised again no
    /// sooner.
    pub anomaly_cooldown_ms: u64,
    /// A reservation never settled (its caller crashed) is released after
    /// this long. Default 600 s: OpenAI's SDKs give up on a call after 10
    /// minutes, so no call still running holds longer, and a crash frees its
    /// tokens within the same bound.
    pub reservation_ttl_ms: u64,
    /// Output tokens reserved for a request that names no `max_tokens` (nor
    /// `max_completion_tokens`, `max_output_tokens`). Default 4 096: most
    /// answers are far shorter, the settle corrects to the real usage either
    /// way, and reserving a model's whole output ceiling (16k–100k) would
    /// refuse nearly every call against a small tokens-per-minute limit.
    pub default_output_reserve: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            default_limits: Limits {
                requests_per_minute: 500,
                requests_per_day: 10_000,
                tokens_per_minute: 150_000,
                tokens_per_day: 2_000_000,
            },
            warning_threshold: 0.8,
            degraded_failure_threshold: 3,
            degraded_window_ms: 60_000,
            default_rate_limit_backoff_ms: 20_000,
            quota_probe_interval_ms: 60_000,
            history_len: 200,
            anomaly_factor: 5.0,
            anomaly_min_requests: 60,
            anomaly_cooldown_ms: 600_000,
            reservation_ttl_ms: 600_000,
            default_output_reserve: 4_096,
        }
    }
}
