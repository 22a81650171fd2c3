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
    /// The spend budgets and where each stands (as in the snapshot).
    #[serde(default)]
    pub budgets: Vec<super::BudgetUsage>,
    /// Today's (local) usage and spend by model, largest first (top 10).
    #[serde(default)]
    pub by_model: Vec<super::UsageBreakdown>,
    /// Today's (local) usage and spend by end user, largest first (top 10).
    #[serde(default)]
    pub by_user: Vec<super::UsageBreakdown>,
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
            budgets: snapshot.budgets.clone(),
            by_model: snapshot.by_model.clone(),
            by_user: snapshot.by_user.clone(),
        }
    }
}
