//! A workspace's settings beyond its four limits, as
//! `PATCH /api/admin/workspaces/{id}` takes them and the admin page edits
//! them: its time zone, spend budgets, and limits per model and per end
//! user. Plain data here (shared with the browser); the server checks them
//! (`engine::settings`), naming the field at fault.

use super::LimitOverrides;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How often a budget starts again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// Each local day, from midnight.
    Day,
    /// Monday to Sunday.
    Week,
    /// The calendar month.
    Month,
    /// `length_days` days at a time from `anchor`.
    Custom,
}

/// Refuse (`hard`) or only warn (`soft`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BudgetKindSpec {
    Hard,
    Soft,
}

/// One spend budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    pub period: BudgetPeriod,
    /// US dollars per period, 0 to 1 000 000 000.
    pub amount_usd: f64,
    pub kind: BudgetKindSpec,
    /// `custom` only: a day a period starts on (`YYYY-MM-DD`, in the
    /// workspace's time zone); periods of `length_days` repeat from it both
    /// ways, so one is in force before the anchor too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// `custom` only: days per period, 1 to 366.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_days: Option<u32>,
}

/// Limits for one model (family) or one end user: the four windows, each
/// optional, and an optional spend cap per local day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScopedLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// US dollars per local day (a hard cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
}

/// Per-user limits: a default every user gets, and overrides by user id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserLimitsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ScopedLimits>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, ScopedLimits>,
}

/// `PATCH /api/admin/workspaces/{id}`: any of these; what is left out stays.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// The four workspace limits, each optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitOverrides>,
    /// An IANA time zone name (`Europe/Berlin`); budgets reset at its midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Replaces every budget (an empty list removes them), at most 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<Vec<BudgetSpec>>,
    /// Replaces every per-model limit; keys are model names or families
    /// (`gpt-4o` covers `gpt-4o-2024-08-06`, not `gpt-4o-mini`), at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_limits: Option<BTreeMap<String, ScopedLimits>>,
    /// Replaces the per-user limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_limits: Option<UserLimitsSpec>,
}

/// One budget's standing, in a status snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BudgetUsage {
    pub period: BudgetPeriod,
    pub kind: BudgetKindSpec,
    pub amount_usd: f64,
    /// Spent in the current period (settled calls).
    pub spent_usd: f64,
    /// `spent / amount` in percent, one decimal.
    pub percentage: f64,
    /// RFC 3339 time the period ends (midnight in the workspace's zone).
    pub resets_at: String,
    /// Held for calls in flight (their worst-case cost).
    #[serde(default)]
    pub held_usd: f64,
    /// RFC 3339 time the period began.
    #[serde(default)]
    pub starts_at: String,
    /// Spent on each day of the period so far, oldest first.
    #[serde(default)]
    pub days: Vec<super::DaySpend>,
    /// At the period's average rate so far, what it will have spent by its
    /// end (counted from at least one hour in, so a first call does not
    /// project the moon).
    #[serde(default)]
    pub projected_usd: f64,
    /// The period's first local day (`YYYY-MM-DD`, in `time_zone`).
    #[serde(default)]
    pub first_day: String,
    /// The period's last local day, the one before it resets.
    #[serde(default)]
    pub last_day: String,
    /// The IANA time zone the period's days are in (`Europe/Berlin`).
    #[serde(default)]
    pub time_zone: String,
}
