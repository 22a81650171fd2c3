//! Wire types: everything that crosses between the server and the browser (or any
//! other API client). Compiled for both targets so the two sides cannot drift.

mod admin;
mod caller;
mod chat;
mod error;
mod notification;
mod record;
mod settings;
mod snapshot;
mod status;
mod usage;
mod ws;

pub use admin::{
    AdminRefusal, AdminResult, AuditEntry, AuditTrail, CreatedWorkspace, RotatedKey, WorkspaceList,
    WorkspaceSettingsView, WorkspaceSummary,
};
pub use caller::Caller;
pub use chat::{ChatMessage, ChatOutcome, ChatRole};
pub use error::{ErrorBody, ErrorDetail};
pub use notification::{Notification, NotificationLevel};
pub use record::{RecordBatch, RecordRequest, UpstreamErrorReport};
pub use settings::{
    BudgetKindSpec, BudgetPeriod, BudgetSpec, BudgetUsage, ScopedLimits, SettingsPatch,
    UserLimitsSpec,
};
mod breakdown;
pub use breakdown::{DaySpend, UsageBreakdown, BREAKDOWN_TOP};
pub use snapshot::{CheckResult, LastError, QuotaSnapshot, UpstreamLimits, WindowUsage};
pub use status::QuotaStatus;
pub use usage::{MinuteUsage, UsageReport};
pub use ws::WsMessage;

/// The four windows every workspace is limited by (overrides, each optional,
/// are [`LimitOverrides`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
// Only `Limits<u64>` crosses the wire, so the schema names the fields' type
// instead of leaving a reference to the parameter `T`.
#[cfg_attr(feature = "ssr", schema(bound = ""))]
pub struct Limits<T = u64> {
    /// Requests in any 60 seconds.
    #[cfg_attr(feature = "ssr", schema(value_type = u64))]
    pub requests_per_minute: T,
    /// Requests in any 24 hours.
    #[cfg_attr(feature = "ssr", schema(value_type = u64))]
    pub requests_per_day: T,
    /// Tokens in any 60 seconds.
    #[cfg_attr(feature = "ssr", schema(value_type = u64))]
    pub tokens_per_minute: T,
    /// Tokens in any 24 hours.
    #[cfg_attr(feature = "ssr", schema(value_type = u64))]
    pub tokens_per_day: T,
}

/// Optional overrides as sent by an admin when creating a workspace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    #[serde(default)]
    pub requests_per_day: Option<u64>,
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
}

impl LimitOverrides {
    /// Overrides that pin every window to `limits` (restoring stored limits).
    pub fn exactly(limits: Limits) -> Self {
        Self {
            requests_per_minute: Some(limits.requests_per_minute),
            requests_per_day: Some(limits.requests_per_day),
            tokens_per_minute: Some(limits.tokens_per_minute),
            tokens_per_day: Some(limits.tokens_per_day),
        }
    }
}

impl Limits<u64> {
    /// These limits with any overrides applied.
    pub fn with_overrides(self, overrides: &LimitOverrides) -> Self {
        Self {
            requests_per_minute: overrides
                .requests_per_minute
                .unwrap_or(self.requests_per_minute),
            requests_per_day: overrides.requests_per_day.unwrap_or(self.requests_per_day),
            tokens_per_minute: overrides
                .tokens_per_minute
                .unwrap_or(self.tokens_per_minute),
            tokens_per_day: overrides.tokens_per_day.unwrap_or(self.tokens_per_day),
        }
    }
}
