//! The four windows every workspace is limited by, as the UI names them.

use crate::wire::{MinuteUsage, QuotaSnapshot, WindowUsage};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowKind {
    RequestsPerMinute,
    TokensPerMinute,
    RequestsPerDay,
    TokensPerDay,
}

impl WindowKind {
    pub const ALL: [WindowKind; 4] = [
        WindowKind::RequestsPerMinute,
        WindowKind::TokensPerMinute,
        WindowKind::RequestsPerDay,
        WindowKind::TokensPerDay,
    ];

    pub fn label(self) -> &'static str {
        match self {
            WindowKind::RequestsPerMinute => "Requests / minute",
            WindowKind::TokensPerMinute => "Tokens / minute",
            WindowKind::RequestsPerDay => "Requests / day",
            WindowKind::TokensPerDay => "Tokens / day",
        }
    }

    /// For ids and test hooks: `requests-per-minute`, ...
    pub fn slug(self) -> &'static str {
        match self {
            WindowKind::RequestsPerMinute => "requests-per-minute",
            WindowKind::TokensPerMinute => "tokens-per-minute",
            WindowKind::RequestsPerDay => "requests-per-day",
            WindowKind::TokensPerDay => "tokens-per-day",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            WindowKind::RequestsPerMinute | WindowKind::RequestsPerDay => "requests",
            WindowKind::TokensPerMinute | WindowKind::TokensPerDay => "tokens",
        }
    }

    /// A one-minute window (as opposed to a day).
    pub fn is_minute(self) -> bool {
        matches!(
            self,
            WindowKind::RequestsPerMinute | WindowKind::TokensPerMinute
        )
    }

    pub fn of(self, snapshot: &QuotaSnapshot) -> WindowUsage {
        match self {
            WindowKind::RequestsPerMinute => snapshot.requests_per_minute,
            WindowKind::TokensPerMinute => snapshot.tokens_per_minute,
            WindowKind::RequestsPerDay => snapshot.requests_per_day,
            WindowKind::TokensPerDay => snapshot.tokens_per_day,
        }
    }

    /// This window's quantity in one minute of history.
    pub fn in_minute(self, minute: &MinuteUsage) -> u64 {
        match self.unit() {
            "requests" => minute.requests,
            _ => minute.tokens,
        }
    }
}
