use super::{QuotaSnapshot, WindowUsage};
use serde::{Deserialize, Serialize};

/// Requests and tokens counted in one clock minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MinuteUsage {
    /// Unix seconds at the start of the minute.
    pub minute_start: u64,
    pub requests: u64,
    pub tokens: u64,
}

/// The four windows plus a per-minute history (oldest first, zero-filled).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageReport {
    pub workspace_id: String,
    pub requests_per_minute: WindowUsage,
    pub requests_per_day: WindowUsage,
    pub tokens_per_minute: WindowUsage,
    pub tokens_per_day: WindowUsage,
    /// One entry per minute asked for (`?minutes=`), oldest first.
    pub history: Vec<MinuteUsage>,
}

impl UsageReport {
    pub fn new(snapshot: &QuotaSnapshot, history: Vec<MinuteUsage>) -> Self {
        UsageReport {
            workspace_id: snapshot.workspace_id.clone(),
            requests_per_minute: snapshot.requests_per_minute,
            requests_per_day: snapshot.requests_per_day,
            tokens_per_minute: snapshot.tokens_per_minute,
            tokens_per_day: snapshot.tokens_per_day,
            history,
        }
    }
}
