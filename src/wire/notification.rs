use super::{QuotaSnapshot, QuotaStatus};
use serde::{Deserialize, Serialize};

/// How prominently to show a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NotificationLevel {
    Info,
    Warning,
    Error,
}

impl NotificationLevel {
    pub fn for_status(status: QuotaStatus) -> Self {
        match status {
            QuotaStatus::Normal => NotificationLevel::Info,
            QuotaStatus::Warning | QuotaStatus::Degraded => NotificationLevel::Warning,
            QuotaStatus::RateLimited | QuotaStatus::QuotaExceeded => NotificationLevel::Error,
        }
    }
}

/// What a UI should show about the quota right now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Notification {
    /// False while the status is NORMAL: nothing needs saying.
    pub show: bool,
    pub level: NotificationLevel,
    pub title: String,
    pub message: String,
    pub status: QuotaStatus,
    /// Seconds until requests are allowed again; null when they are now.
    pub retry_after_s: Option<f64>,
}

impl From<&QuotaSnapshot> for Notification {
    fn from(snapshot: &QuotaSnapshot) -> Self {
        Notification {
            show: snapshot.status != QuotaStatus::Normal,
            level: NotificationLevel::for_status(snapshot.status),
            title: snapshot.status.title().to_string(),
            message: snapshot.message.clone(),
            status: snapshot.status,
            retry_after_s: snapshot.retry_after_s,
        }
    }
}
