use serde::{Deserialize, Serialize};
use std::fmt;

/// A workspace's quota status. Declared from least to most severe so that `Ord`
/// is the precedence order: when several apply, the greatest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuotaStatus {
    Normal,
    Warning,
    Degraded,
    RateLimited,
    QuotaExceeded,
}

impl QuotaStatus {
    pub const ALL: [QuotaStatus; 5] = [
        QuotaStatus::Normal,
        QuotaStatus::Warning,
        QuotaStatus::Degraded,
        QuotaStatus::RateLimited,
        QuotaStatus::QuotaExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuotaStatus::Normal => "NORMAL",
            QuotaStatus::Warning => "WARNING",
            QuotaStatus::Degraded => "DEGRADED",
            QuotaStatus::RateLimited => "RATE_LIMITED",
            QuotaStatus::QuotaExceeded => "QUOTA_EXCEEDED",
        }
    }

    /// Whether new requests are refused while in this status.
    pub fn blocks_requests(self) -> bool {
        matches!(self, QuotaStatus::RateLimited | QuotaStatus::QuotaExceeded)
    }

    /// A short human title, used by notifications and the UI.
    pub fn title(self) -> &'static str {
        match self {
            QuotaStatus::Normal => "Quota normal",
            QuotaStatus::Warning => "Approaching a limit",
            QuotaStatus::Degraded => "Service degraded",
            QuotaStatus::RateLimited => "Rate limited",
            QuotaStatus::QuotaExceeded => "Quota exceeded",
        }
    }
}

impl fmt::Display for QuotaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
