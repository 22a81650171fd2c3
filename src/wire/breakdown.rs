//! Usage broken down by model and by end user, in snapshots and reports.

use serde::{Deserialize, Serialize};

/// Rows shown per dimension in a snapshot (the largest by cost, then
/// tokens).
pub const BREAKDOWN_TOP: usize = 10;

/// One model's or one user's usage on the workspace's current local day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageBreakdown {
    /// The model (as the request named it) or the user label; `(none)` for
    /// calls that named none, `(other)` for names past the first 1 000.
    pub name: String,
    pub requests: u64,
    pub tokens: u64,
    pub spent_usd: f64,
    /// The fullest of its per-model or per-user limits, in percent; null
    /// when no rule covers it.
    #[serde(default)]
    pub limit_percentage: Option<f64>,
}

/// Money spent on one local day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DaySpend {
    /// `YYYY-MM-DD` in the workspace's time zone.
    pub day: String,
    pub spent_usd: f64,
}
