//! Browser sessions: signing in with a key sets an HttpOnly cookie holding a
//! random session id; the server keeps only the id's digest and who it is.
//! The WebSocket and server functions accept the cookie in place of a bearer key.
//!
//! This module is the in-memory index every request reads (synchronously, no
//! I/O on the request path). Keeping it durable — the SQLite `sessions` table,
//! or the `qa:sessions` hash and events under Redis — is the service's job
//! (`service::sessions`); the index and the store always hold the same expiry.

use crate::auth::{generate_secret, key_digest};
use crate::service::Caller;
use dashmap::DashMap;
use std::time::Duration;

pub const SESSION_COOKIE: &str = "qa_session";
/// How long a session lives without being used (give or take
/// [`SESSION_REFRESH_INTERVAL`], see [`refreshed_expiry`]).
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A used session's expiry is pushed forward (and written to the store) at
/// most this often, so browsing never writes on every request.
pub const SESSION_REFRESH_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// The SHA-256 digest of a session id: what is kept, stored and shared.
pub type SessionDigest = [u8; 32];

/// A fresh session id (the cookie value, never stored) and its digest.
pub fn new_session_id() -> (String, SessionDigest) {
    let id = generate_secret("");
    let digest = key_digest(&id);
    (id, digest)
}

/// The expiry of a session opened at `now_ms`.
pub fn fresh_expiry(now_ms: u64) -> u64 {
    now_ms.saturating_add(duration_ms(SESSION_TTL))
}

/// The new expiry for a session used at `now_ms`, if it is due for one: when a
/// fresh expiry would be at least [`SESSION_REFRESH_INTERVAL`] later than the
/// current one, i.e. the last refresh (or the sign-in) was a day or more ago.
///
/// Between refreshes the expiry stays put, so a session ends between
/// `SESSION_TTL - SESSION_REFRESH_INTERVAL` (6 days) and `SESSION_TTL` after
/// its last use — the same answer before and after a restart, because the
/// store holds exactly the expiry the memory holds.
pub fn refreshed_expiry(expires_at_ms: u64, now_ms: u64) -> Option<u64> {
    let fresh = fresh_expiry(now_ms);
    (fresh >= expires_at_ms.saturating_add(duration_ms(SESSION_REFRESH_INTERVAL))).then_some(fresh)
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

struct Session {
    caller: Caller,
    expires_at_ms: u64,
}

/// A session that resolved: who it acts for, and the new expiry to store if
/// this use refreshed it.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub caller: Caller,
    pub refreshed_expiry: Option<u64>,
}

/// Live sessions by digest, with their expiry (Unix ms).
#[derive(Default)]
pub struct SessionStore {
    sessions: DashMap<SessionDigest, Session>,
}

impl SessionStore {
    /// Adds a session just opened (here or on another instance).
    pub fn insert(&self, digest: SessionDigest, caller: Caller, expires_at_ms: u64, now_ms: u64) {
        // Opportunistic sweep keeps abandoned sessions from piling up between
        // the periodic prunes.
        if self.sessions.len().is_multiple_of(64) {
            self.sweep(now_ms);
        }
        self.restore(digest, caller, expires_at_ms);
    }

    /// Adds a stored session at start, without the sweep: the store loads only
    /// live sessions, and sweeping every 64 of them would make a large restore
    /// quadratic.
    pub fn restore(&self, digest: SessionDigest, caller: Caller, expires_at_ms: u64) {
        self.sessions.insert(
            digest,
            Session {
                caller,
                expires_at_ms,
            },
        );
    }

    /// The session's caller at `now_ms`, refreshing its expiry when due (see
    /// [`refreshed_expiry`]). An expired session is forgotten.
    pub fn resolve(&self, digest: &SessionDigest, now_ms: u64) -> Option<Resolved> {
        let mut entry = self.sessions.get_mut(digest)?;
        if entry.expires_at_ms <= now_ms {
            drop(entry);
            self.sessions.remove(digest);
            return None;
        }
        // Decided and applied under the entry's lock: concurrent requests of
        // one session schedule one write, not one each.
        let refreshed = refreshed_expiry(entry.expires_at_ms, now_ms);
        if let Some(expires_at_ms) = refreshed {
            entry.expires_at_ms = expires_at_ms;
        }
        Some(Resolved {
            caller: entry.caller.clone(),
            refreshed_expiry: refreshed,
        })
    }

    /// Moves a known session's expiry forward (refreshed on another
    /// instance). An unknown or closed session is not brought back.
    pub fn extend(&self, digest: &SessionDigest, expires_at_ms: u64) {
        if let Some(mut entry) = self.sessions.get_mut(digest) {
            entry.expires_at_ms = entry.expires_at_ms.max(expires_at_ms);
        }
    }

    /// Ends a session; its caller, if it was known.
    pub fn remove(&self, digest: &SessionDigest) -> Option<Caller> {
        self.sessions.remove(digest).map(|(_, s)| s.caller)
    }

    /// Ends every session of a workspace (key revoked or rotated).
    pub fn close_workspace(&self, workspace: &str) {
        self.sessions
            .retain(|_, s| !matches!(&s.caller, Caller::Workspace(id) if id == workspace));
    }

    /// Forgets every session expired at `now_ms`.
    pub fn sweep(&self, now_ms: u64) {
        self.sessions.retain(|_, s| s.expires_at_ms > now_ms);
    }

    /// Every session's digest (a reload compares them with the store's).
    pub fn digests(&self) -> Vec<SessionDigest> {
        self.sessions.iter().map(|e| *e.key()).collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// The session id from a `Cookie` header, if present.
pub fn session_id_from_headers(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// How long the browser keeps the cookie: 400 days, the most browsers allow.
/// The server decides when a session ends (unused for `SESSION_TTL`, signed
/// out, key revoked); a cookie that expired after a fixed 7 days would sign
/// out a person who uses the app every day, since the cookie is set only once.
pub const SESSION_COOKIE_MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

/// `Set-Cookie` value for a new session. `secure` when served over TLS.
pub fn session_cookie(id: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_COOKIE_MAX_AGE.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;
    const DAY_MS: u64 = 24 * HOUR_MS;
    /// Some Unix instant (a fake clock: the store takes time as an argument).
    const T0: u64 = 1_800_000_000_000;

    fn acme() -> Caller {
        Caller::Workspace("acme".into())
    }

    #[test]
    fn sessions_resolve_until_removed() {
        let store = SessionStore::default();
        let (id, digest) = new_session_id();
        store.insert(digest, acme(), fresh_expiry(T0), T0);
        assert_eq!(store.resolve(&digest, T0).map(|r| r.caller), Some(acme()));
        assert_eq!(store.resolve(&key_digest("nope"), T0), None);
        assert_eq!(store.remove(&key_digest(&id)), Some(acme()));
        assert_eq!(store.resolve(&digest, T0), None);
        assert_eq!(store.remove(&digest), None);
    }

    #[test]
    fn the_expiry_is_refreshed_at_most_once_a_day() {
        let expires = fresh_expiry(T0);
        assert_eq!(expires, T0 + 7 * DAY_MS);
        // Used within a day of the sign-in: nothing to write.
        assert_eq!(refreshed_expiry(expires, T0), None);
        assert_eq!(refreshed_expiry(expires, T0 + 23 * HOUR_MS), None);
        assert_eq!(refreshed_expiry(expires, T0 + DAY_MS - 1), None);
        // A day later: the full TTL again, from now.
        assert_eq!(
            refreshed_expiry(expires, T0 + DAY_MS),
            Some(T0 + 8 * DAY_MS)
        );
        assert_eq!(
            refreshed_expiry(expires, T0 + 5 * DAY_MS),
            Some(T0 + 12 * DAY_MS)
        );
        // A clock that went backwards never shortens a session.
        assert_eq!(refreshed_expiry(expires, T0 - DAY_MS), None);
    }

    #[test]
    fn using_a_session_slides_its_expiry_once_a_day_with_a_fake_clock() {
        let store = SessionStore::default();
        let (_, digest) = new_session_id();
        store.insert(digest, acme(), fresh_expiry(T0), T0);

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
        // Unused since: it ends exactly at the refreshed expiry (a use just
        // before would itself have refreshed it, being a day or more later).
        let end = day_one + 7 * DAY_MS;
        assert_eq!(store.resolve(&digest, end), None);
        assert!(store.is_empty(), "an expired session is forgotten");
    }

    #[test]
    fn closing_a_workspace_ends_only_its_sessions() {
        let store = SessionStore::default();
        let (_, mine) = new_session_id();
        let (_, other) = new_session_id();
        let (_, admin) = new_session_id();
        store.insert(mine, acme(), fresh_expiry(T0), T0);
        store.insert(
            other,
            Caller::Workspace("acme-2".into()),
            fresh_expiry(T0),
            T0,
        );
        store.insert(admin, Caller::Admin, fresh_expiry(T0), T0);
        store.close_workspace("acme");
        assert_eq!(store.resolve(&mine, T0), None);
        assert!(store.resolve(&other, T0).is_some());
        assert!(store.resolve(&admin, T0).is_some());
    }

    #[test]
    fn an_extension_from_elsewhere_never_revives_or_shortens() {
        let store = SessionStore::default();
        let (_, digest) = new_session_id();
        store.insert(digest, acme(), fresh_expiry(T0), T0);
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
        store.remove(&digest);
        store.extend(&digest, T0 + 30 * DAY_MS);
        assert_eq!(store.resolve(&digest, T0), None, "not revived");
    }

    #[test]
    fn sweeping_forgets_only_expired_sessions() {
        let store = SessionStore::default();
        let (_, old) = new_session_id();
        let (_, new) = new_session_id();
        store.insert(old, acme(), T0 + 10, T0);
        store.insert(new, acme(), T0 + 1_000, T0);
        store.sweep(T0 + 10);
        assert_eq!(store.len(), 1);
        assert!(store.resolve(&new, T0 + 10).is_some());
    }

    #[test]
    fn the_cookie_outlives_the_sliding_expiry_so_the_server_decides() {
        let cookie = session_cookie("abc", false);
        let max_age: u64 = cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|v| v.parse().ok())
            .expect("Max-Age");
        assert!(max_age > 52 * 7 * 24 * 3600, "{cookie}");
        assert!(max_age > SESSION_TTL.as_secs() * 50);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        assert!(session_cookie("abc", true).ends_with("; Secure"));
    }

    #[test]
    fn cookie_is_read_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("cookie", "a=1; qa_session=abc; b=2".parse().unwrap());
        assert_eq!(session_id_from_headers(&headers).as_deref(), Some("abc"));
    }
}
