use super::QuotaStatus;
use serde::{Deserialize, Serialize};

/// Usage of one sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WindowUsage {
    /// Requests or tokens counted in the window now.
    pub current: u64,
    /// Tokens held for calls in flight (reserved at admission, not yet
    /// settled to their real usage); they count against the limit like
    /// `current`. Always 0 for request windows.
    #[serde(default)]
    pub reserved: u64,
    /// The workspace's limit for the window.
    pub limit: u64,
    /// `current / limit` in percent, one decimal; may exceed 100 when usage was
    /// recorded after the fact (apps reporting calls they already made).
    pub percentage: f64,
    /// Seconds until the oldest usage in the window slides out (0 when empty).
    pub resets_in_s: f64,
}

/// The last upstream error recorded for a workspace, as classified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LastError {
    pub http_status: Option<u16>,
    #[serde(rename = "type")]
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    /// How the engine classified it: `rate_limited`, `quota_exhausted`,
    /// `upstream_failure` or `client_error`.
    pub class: String,
    /// RFC 3339 time it was recorded.
    pub at: String,
}

/// Everything a client needs to know about one workspace's quota, right now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct QuotaSnapshot {
    pub workspace_id: String,
    pub status: QuotaStatus,
    /// For people: what the status means and what to do.
    pub message: String,
    pub requests_per_minute: WindowUsage,
    pub requests_per_day: WindowUsage,
    pub tokens_per_minute: WindowUsage,
    pub tokens_per_day: WindowUsage,
    /// When requests are allowed again, in seconds from `updated_at`; null when
    /// they are allowed now.
    pub retry_after_s: Option<f64>,
    pub last_error: Option<LastError>,
    /// The organisation's limits as OpenAI last reported them in `x-ratelimit-*`
    /// headers; null until a response carried them.
    #[serde(default)]
    pub upstream_limits: Option<UpstreamLimits>,
    /// The workspace's spend budgets and where each stands (empty without
    /// budgets).
    #[serde(default)]
    pub budgets: Vec<super::BudgetUsage>,
    /// Today's (local) usage and spend by model, largest first (top 10).
    #[serde(default)]
    pub by_model: Vec<super::UsageBreakdown>,
    /// Today's (local) usage and spend by end user, largest first (top 10).
    #[serde(default)]
    pub by_user: Vec<super::UsageBreakdown>,
    /// RFC 3339 time this snapshot was taken.
    pub updated_at: String,
    /// Monotonic per workspace; lets clients drop out-of-order snapshots.
    pub version: u64,
}

/// Answer to "may I send one more request now?".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CheckResult {
    /// Whether one more request would be admitted now.
    pub allowed: bool,
    pub status: QuotaStatus,
    /// Seconds until requests are allowed again; null when they are now.
    pub retry_after_s: Option<f64>,
}

/// What OpenAI's `x-ratelimit-*` headers said, as of `observed_at`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpstreamLimits {
    pub requests_limit: Option<u64>,
    pub requests_remaining: Option<u64>,
    pub requests_reset_s: Option<f64>,
    pub tokens_limit: Option<u64>,
    pub tokens_remaining: Option<u64>,
    pub tokens_reset_s: Option<f64>,
    /// RFC 3339 time the headers were seen.
    pub observed_at: String,
}
