use super::{QuotaSnapshot, QuotaStatus};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct Notification {
    pub show: bool,
    pub level: NotificationLevel,
    pub title: String,
    pub message: String,
    pub status: QuotaStatus,
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
