//! The monitor's rules, as pure functions of their inputs: how long to wait
//! before the next connection attempt, when the state reads "offline", how
//! often to poll, how long a silent server is trusted, and which snapshot wins.
//! No signals, no browser: the unit tests below run on the server build.

use crate::wire::QuotaSnapshot;

/// First retry after about this long; doubles per failure.
pub const BACKOFF_BASE_MS: f64 = 500.0;
/// Retries are never further apart than this.
pub const BACKOFF_CAP_MS: f64 = 10_000.0;
/// After this many failures in a row the state reads "offline" (retries go on).
pub const OFFLINE_AFTER_FAILURES: u32 = 6;
/// While disconnected, the status is polled this often.
pub const POLL_EVERY_MS: f64 = 5_000.0;
/// The server pings every 15 s; this long without a word means it is gone.
pub const SILENCE_LIMIT_MS: u32 = 50_000;

/// Backoff before attempt `failures + 1` (`failures` ≥ 1 in a row): doubling
/// from [`BACKOFF_BASE_MS`], capped at [`BACKOFF_CAP_MS`], then scaled by
/// `0.5 + jitter / 2` (`jitter` in 0..1) so that many browsers dropped at once
/// do not return in lockstep.
pub fn backoff_ms(failures: u32, jitter: f64) -> f64 {
    let doubled = BACKOFF_BASE_MS * 2f64.powi(failures.saturating_sub(1).min(20) as i32);
    doubled.min(BACKOFF_CAP_MS) * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Whether `incoming` replaces `current`: always on a resync (a new connection
/// or a poll: the server may have restarted with fresh versions), otherwise
/// only if it is not older.
pub fn accepts(current: &QuotaSnapshot, incoming: &QuotaSnapshot, resync: bool) -> bool {
    resync || incoming.workspace_id != current.workspace_id || incoming.version >= current.version
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{QuotaStatus, WindowUsage};

    fn snapshot(id: &str, version: u64, status: QuotaStatus) -> QuotaSnapshot {
        let window = WindowUsage {
            current: 0,
            reserved: 0,
            limit: 10,
            percentage: 0.0,
            resets_in_s: 0.0,
        };
        QuotaSnapshot {
            workspace_id: id.into(),
            status,
            message: String::new(),
            requests_per_minute: window,
            requests_per_day: window,
            tokens_per_minute: window,
            tokens_per_day: window,
            retry_after_s: None,
            last_error: None,
            budgets: Vec::new(),
            by_model: Vec::new(),
            by_user: Vec::new(),
            upstream_limits: None,
            updated_at: String::new(),
            version,
        }
    }

    #[test]
    fn updates_never_go_back_but_a_resync_always_wins() {
        let current = snapshot("a", 10, QuotaStatus::Warning);
        assert!(accepts(
            &current,
            &snapshot("a", 11, QuotaStatus::Normal),
            false
        ));
        assert!(accepts(
            &current,
            &snapshot("a", 10, QuotaStatus::Warning),
            false
        ));
        assert!(!accepts(
            &current,
            &snapshot("a", 9, QuotaStatus::Normal),
            false
        ));
        // After a restart the server counts versions afresh.
        assert!(accepts(
            &current,
            &snapshot("a", 1, QuotaStatus::Normal),
            true
        ));
        assert!(accepts(
            &current,
            &snapshot("b", 1, QuotaStatus::Normal),
            false
        ));
    }

    #[test]
    fn backoff_doubles_then_caps_with_jitter() {
        assert_eq!(backoff_ms(1, 1.0), 500.0);
        assert_eq!(backoff_ms(2, 1.0), 1000.0);
        assert_eq!(backoff_ms(3, 1.0), 2000.0);
        assert_eq!(backoff_ms(10, 1.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(u32::MAX, 1.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(1, 0.0), 250.0);
        assert_eq!(backoff_ms(10, 0.0), BACKOFF_CAP_MS / 2.0);
    }
}
