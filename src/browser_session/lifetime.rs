//! How long a session lives: a sliding expiry (pushed forward by use, but at
//! most once per refresh interval, so browsing never writes on every request)
//! and an absolute end (however much it is used). Admin sessions live less.

use crate::wire::Caller;
use std::time::Duration;

/// How long a kind of session lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Unused this long (give or take `refresh_interval`), it ends.
    pub idle_ttl: Duration,
    /// A used session's expiry is pushed forward (and written to the store)
    /// at most this often, so browsing never writes on every request.
    pub refresh_interval: Duration,
    /// However much it is used, it ends this long after the sign-in: a stolen
    /// cookie that is kept in use is worth this much at most.
    pub max_lifetime: Duration,
}

/// Workspace sessions: a week idle (a person who uses the app every few days
/// stays signed in), a month at most (one sign-in a month is little to ask,
/// and bounds what a cookie copied off a machine is worth).
pub const WORKSPACE_SESSIONS: SessionPolicy = SessionPolicy {
    idle_ttl: Duration::from_secs(7 * 24 * 3600),
    refresh_interval: Duration::from_secs(24 * 3600),
    max_lifetime: Duration::from_secs(30 * 24 * 3600),
};

/// Admin sessions act for every workspace (create, rotate, revoke, reset,
/// read everything), so they are worth more to steal and live less: 12 hours
/// idle (a dashboard left open overnight is signed out by morning), a week at
/// most (an admin signs in again weekly). Refreshed hourly, since a daily
/// refresh would not fit in a 12-hour window.
pub const ADMIN_SESSIONS: SessionPolicy = SessionPolicy {
    idle_ttl: Duration::from_secs(12 * 3600),
    refresh_interval: Duration::from_secs(3600),
    max_lifetime: Duration::from_secs(7 * 24 * 3600),
};

impl SessionPolicy {
    pub fn of(caller: &Caller) -> &'static SessionPolicy {
        match caller {
            Caller::Admin => &ADMIN_SESSIONS,
            Caller::Workspace(_) => &WORKSPACE_SESSIONS,
        }
    }

    /// The absolute end of a session opened at `now_ms`.
    pub fn absolute_end(&self, created_at_ms: u64) -> u64 {
        created_at_ms.saturating_add(duration_ms(self.max_lifetime))
    }

    /// The expiry of a session opened at `now_ms`.
    pub fn fresh_expiry(&self, now_ms: u64) -> u64 {
        now_ms
            .saturating_add(duration_ms(self.idle_ttl))
            .min(self.absolute_end(now_ms))
    }

    /// The new expiry for a session used at `now_ms`, if it is due for one:
    /// when a fresh expiry (never past `absolute_end_ms`) would be at least
    /// `refresh_interval` later than the current one, i.e. the last refresh
    /// (or the sign-in) was that long ago.
    ///
    /// Between refreshes the expiry stays put, so a workspace session ends
    /// between 6 and 7 days after its last use — the same answer before and
    /// after a restart, because the store holds exactly the expiry the memory
    /// holds — and never after its absolute end.
    pub fn refreshed_expiry(
        &self,
        expires_at_ms: u64,
        absolute_end_ms: u64,
        now_ms: u64,
    ) -> Option<u64> {
        let fresh = now_ms
            .saturating_add(duration_ms(self.idle_ttl))
            .min(absolute_end_ms);
        (fresh >= expires_at_ms.saturating_add(duration_ms(self.refresh_interval))).then_some(fresh)
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser_session::test_support::{acme, index, open, DAY_MS, HOUR_MS, T0};

    #[test]
    fn the_expiry_is_refreshed_at_most_once_a_day() {
        let p = WORKSPACE_SESSIONS;
        let expires = p.fresh_expiry(T0);
        let end = p.absolute_end(T0);
        assert_eq!(expires, T0 + 7 * DAY_MS);
        assert_eq!(end, T0 + 30 * DAY_MS);
        // Used within a day of the sign-in: nothing to write.
        assert_eq!(p.refreshed_expiry(expires, end, T0), None);
        assert_eq!(p.refreshed_expiry(expires, end, T0 + DAY_MS - 1), None);
        // A day later: the full TTL again, from now.
        assert_eq!(
            p.refreshed_expiry(expires, end, T0 + DAY_MS),
            Some(T0 + 8 * DAY_MS)
        );
        // A clock that went backwards never shortens a session.
        assert_eq!(p.refreshed_expiry(expires, end, T0 - DAY_MS), None);
        // Never past the absolute end: within a day of it, nothing to push.
        assert_eq!(
            p.refreshed_expiry(
                T0 + 29 * DAY_MS + 12 * HOUR_MS,
                end,
                T0 + 29 * DAY_MS + 13 * HOUR_MS
            ),
            None
        );
        assert_eq!(
            p.refreshed_expiry(T0 + 22 * DAY_MS, end, T0 + 26 * DAY_MS),
            Some(end)
        );
    }

    #[test]
    fn a_session_in_daily_use_still_ends_at_its_absolute_end() {
        let store = index();
        let digest = open(&store, acme(), T0);
        for day in 1..30 {
            assert!(
                store.resolve(&digest, T0 + day * DAY_MS).is_some(),
                "day {day}"
            );
        }
        assert_eq!(store.resolve(&digest, T0 + 30 * DAY_MS), None);
        assert!(store.is_empty());
    }

    #[test]
    fn admin_sessions_live_twelve_hours_idle_and_a_week_at_most() {
        let store = index();
        let idle = open(&store, Caller::Admin, T0);
        assert!(store.resolve(&idle, T0 + 12 * HOUR_MS - 1).is_some());
        let used = open(&store, Caller::Admin, T0 + 12 * HOUR_MS - 1);
        assert_eq!(store.resolve(&idle, T0 + 24 * HOUR_MS), None, "idle 12 h");
        // Used every 11 hours: alive until a week after the sign-in.
        let mut t = T0 + 12 * HOUR_MS - 1;
        let end = t + 7 * DAY_MS;
        while t + 11 * HOUR_MS < end {
            t += 11 * HOUR_MS;
            assert!(store.resolve(&used, t).is_some());
        }
        assert_eq!(store.resolve(&used, end), None);
    }

    #[test]
    fn using_a_session_slides_its_expiry_once_a_day_with_a_fake_clock() {
        let store = index();
        let digest = open(&store, acme(), T0);

        // Many uses on the first day: no refresh at all.
        for hour in 0..24 {
            let resolved = store.resolve(&digest, T0 + hour * HOUR_MS);
            assert_eq!(
                resolved.map(|r| r.refreshed_expiry),
                Some(None),
                "hour {hour}"
            );
        }
        // The first use a day later refreshes once; the next ones do not.
        let day_one = T0 + DAY_MS + HOUR_MS;
        assert_eq!(
            store.resolve(&digest, day_one).map(|r| r.refreshed_expiry),
            Some(Some(day_one + 7 * DAY_MS))
        );
        assert_eq!(
            store
                .resolve(&digest, day_one + 1)
                .map(|r| r.refreshed_expiry),
            Some(None)
        );
        // Unused since: it ends exactly at the refreshed expiry.
        let end = day_one + 7 * DAY_MS;
        assert_eq!(store.resolve(&digest, end), None);
        assert!(store.is_empty(), "an expired session is forgotten");
    }

    #[test]
    fn an_extension_from_elsewhere_never_revives_or_shortens_or_outlives() {
        let store = index();
        let digest = open(&store, acme(), T0);
        store.extend(&digest, T0 + DAY_MS);
        assert!(
            store.resolve(&digest, T0 + 6 * DAY_MS).is_some(),
            "not shortened"
        );
        store.extend(&digest, T0 + 20 * DAY_MS);
        assert!(
            store.resolve(&digest, T0 + 19 * DAY_MS).is_some(),
            "extended"
        );
        store.extend(&digest, T0 + 90 * DAY_MS);
        assert_eq!(store.ends_at(&digest, T0), Some(T0 + 30 * DAY_MS));
        store.remove(&digest);
        store.extend(&digest, T0 + 30 * DAY_MS);
        assert_eq!(store.resolve(&digest, T0), None, "not revived");
    }
}
