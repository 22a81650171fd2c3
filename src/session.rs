//! Browser sessions: signing in with a key sets an HttpOnly cookie holding a
//! random session id; the server keeps only the id's digest and who it is.
//! The WebSocket and server functions accept the cookie in place of a bearer key.
//!
//! This module is the in-memory index every request reads (synchronously, no
//! I/O on the request path). Keeping it durable — the SQLite `sessions` table,
//! or the `qa:sessions` hash and events under Redis — is the service's job
//! (`service::sessions`); the index and the store always hold the same expiry.
//!
//! Besides the index it holds what bounds a session: its lifetimes (a sliding
//! one and an absolute one, shorter for the admin, see [`SessionPolicy`]), the
//! admin key an admin session was opened with (a session of another admin key
//! never resolves), the cap on sessions per workspace (the oldest goes), and
//! the closure signal open WebSockets listen to (every way a session ends
//! sends its digest). Over 400 lines because its unit tests live here too.

use crate::auth::{generate_secret, key_digest};
use crate::wire::Caller;
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::broadcast;

pub const SESSION_COOKIE: &str = "qa_session";

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

/// The SHA-256 digest of a session id: what is kept, stored and shared.
pub type SessionDigest = [u8; 32];

/// A fresh session id (the cookie value, never stored) and its digest.
pub fn new_session_id() -> (String, SessionDigest) {
    let id = generate_secret("");
    let digest = key_digest(&id);
    (id, digest)
}

/// What an admin session remembers of the admin key that opened it: a
/// digest, domain-separated so it is no other digest of that key kept
/// anywhere (the registry's, for one). A session whose binding is not the
/// running admin key's never resolves, so changing `QUOTA_ADMIN_RESET_KEY`
/// ends every admin session.
pub fn admin_key_binding(admin_key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"quota-alert admin session binding v1\0");
    hasher.update(admin_key.as_bytes());
    hasher.finalize().into()
}

/// The public name of a session, for the admin to list and end it: the first
/// 16 hex characters of the SHA-256 of its digest. Neither the cookie nor
/// its digest (which could be replayed against a store) can be had from it.
pub fn session_handle(digest: &SessionDigest) -> String {
    let hash: [u8; 32] = Sha256::digest(digest).into();
    hex::encode(&hash[..8])
}

/// Whether `text` has the shape of a [`session_handle`].
pub fn is_session_handle(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A session as the index (and the store) knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub caller: Caller,
    pub created_at_ms: u64,
    /// The sliding expiry; never after `absolute_expires_at_ms`.
    pub expires_at_ms: u64,
    pub absolute_expires_at_ms: u64,
    /// Admin sessions: [`admin_key_binding`] of the key that opened it.
    pub admin_key: Option<[u8; 32]>,
}

impl SessionInfo {
    /// A session opened at `now_ms` by `caller`, with the lifetimes of its
    /// kind; `admin_key` is the running admin key's binding (kept only for
    /// an admin session).
    pub fn fresh(caller: Caller, now_ms: u64, admin_key: [u8; 32]) -> Self {
        let policy = SessionPolicy::of(&caller);
        let admin_key = (caller == Caller::Admin).then_some(admin_key);
        Self {
            expires_at_ms: policy.fresh_expiry(now_ms),
            absolute_expires_at_ms: policy.absolute_end(now_ms),
            created_at_ms: now_ms,
            caller,
            admin_key,
        }
    }

    /// When it ends if unused from now on.
    pub fn ends_at_ms(&self) -> u64 {
        self.expires_at_ms.min(self.absolute_expires_at_ms)
    }

    fn owner(&self) -> Option<String> {
        match &self.caller {
            Caller::Admin => None,
            Caller::Workspace(id) => Some(id.clone()),
        }
    }
}

/// A session that resolved: who it acts for, and the new expiry to store if
/// this use refreshed it.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub caller: Caller,
    pub refreshed_expiry: Option<u64>,
}

/// Live sessions by digest, with their lifetimes (Unix ms).
pub struct SessionStore {
    sessions: DashMap<SessionDigest, SessionInfo>,
    /// Sessions per owner (`None`: the admin), oldest first, for the cap:
    /// keyed by creation time, then (ties in one millisecond) by arrival. Changed
    /// under the owner's entry, see [`SessionStore::insert`].
    by_owner: DashMap<Option<String>, BTreeSet<(u64, u64, SessionDigest)>>,
    /// Counts sessions in, to order those created in the same millisecond.
    arrivals: std::sync::atomic::AtomicU64,
    /// The running admin key's binding: admin sessions of any other key are
    /// refused.
    admin_key: [u8; 32],
    max_per_owner: usize,
    /// Every session that ends, however it ends (signed out, revoked,
    /// expired, evicted by the cap, ended by the admin or on another
    /// instance), so open WebSockets of that session close at once.
    closed: broadcast::Sender<SessionDigest>,
}

/// How many closures can queue for a slow WebSocket task before it lags; a
/// lagging one re-checks its own session instead, so nothing is missed.
const CLOSURE_QUEUE: usize = 1024;

impl SessionStore {
    /// An empty index for the admin key whose binding is `admin_key`, with at
    /// most `max_per_owner` sessions per workspace (and for the admin).
    pub fn new(admin_key: [u8; 32], max_per_owner: usize) -> Self {
        Self {
            sessions: DashMap::new(),
            by_owner: DashMap::new(),
            arrivals: std::sync::atomic::AtomicU64::new(0),
            admin_key,
            max_per_owner: max_per_owner.max(1),
            closed: broadcast::channel(CLOSURE_QUEUE).0,
        }
    }

    /// The running admin key's binding (what a new admin session keeps).
    pub fn admin_key(&self) -> [u8; 32] {
        self.admin_key
    }

    /// A live or not yet swept session, as it is.
    pub fn get(&self, digest: &SessionDigest) -> Option<SessionInfo> {
        self.sessions.get(digest).map(|s| s.clone())
    }

    /// Digests of sessions as they end.
    pub fn closures(&self) -> broadcast::Receiver<SessionDigest> {
        self.closed.subscribe()
    }

    /// Whether this index accepts `session` at `now_ms`: not over, and for
    /// an admin session, opened with the running admin key.
    fn acceptable(&self, session: &SessionInfo, now_ms: u64) -> bool {
        let key_ok = match session.caller {
            Caller::Admin => session.admin_key == Some(self.admin_key),
            Caller::Workspace(_) => true,
        };
        key_ok && session.ends_at_ms() > now_ms
    }

    /// Adds a session just opened (here or on another instance). Returns
    /// `None` if refused (over, or an admin session of another admin key),
    /// else the sessions of the same owner ended to stay within the cap
    /// (the oldest first), which the caller deletes from the store.
    pub fn insert(
        &self,
        digest: SessionDigest,
        session: SessionInfo,
        now_ms: u64,
    ) -> Option<Vec<SessionDigest>> {
        // Opportunistic sweep keeps abandoned sessions from piling up between
        // the periodic prunes.
        if self.sessions.len().is_multiple_of(64) {
            self.sweep(now_ms);
        }
        self.restore(digest, session, now_ms)
    }

    /// Adds a stored session at start, like [`insert`](Self::insert) but
    /// without the sweep: the store loads only live sessions, and sweeping
    /// every 64 of them would make a large restore quadratic.
    pub fn restore(
        &self,
        digest: SessionDigest,
        session: SessionInfo,
        now_ms: u64,
    ) -> Option<Vec<SessionDigest>> {
        if !self.acceptable(&session, now_ms) {
            return None;
        }
        let created = session.created_at_ms;
        let owner = session.owner();
        // The owner's entry is held while the session goes in, so a
        // concurrent `remove` (which takes the entry after the session is
        // gone) always finds it in the set, and the set's size is the owner's
        // session count.
        let mut evicted = Vec::new();
        {
            let mut set = self.by_owner.entry(owner).or_default();
            if self.sessions.insert(digest, session).is_some() {
                set.retain(|(_, _, d)| *d != digest);
            }
            // Ties in the same millisecond go by arrival, so the cap ends
            // the first one signed in, not the one with the lower digest.
            let arrival = self
                .arrivals
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            set.insert((created, arrival, digest));
            while set.len() > self.max_per_owner {
                match set.pop_first() {
                    Some((_, _, oldest)) => evicted.push(oldest),
                    None => break,
                }
            }
        }
        for oldest in &evicted {
            if self.sessions.remove(oldest).is_some() {
                let _ = self.closed.send(*oldest);
            }
        }
        Some(evicted)
    }

    /// The session's caller at `now_ms`, refreshing its expiry when due (see
    /// [`SessionPolicy::refreshed_expiry`]). A session that is over (or of
    /// another admin key) is forgotten.
    pub fn resolve(&self, digest: &SessionDigest, now_ms: u64) -> Option<Resolved> {
        let mut entry = self.sessions.get_mut(digest)?;
        if !self.acceptable(&entry, now_ms) {
            drop(entry);
            self.remove(digest);
            return None;
        }
        // Decided and applied under the entry's lock: concurrent requests of
        // one session schedule one write, not one each.
        let refreshed = SessionPolicy::of(&entry.caller).refreshed_expiry(
            entry.expires_at_ms,
            entry.absolute_expires_at_ms,
            now_ms,
        );
        if let Some(expires_at_ms) = refreshed {
            entry.expires_at_ms = expires_at_ms;
        }
        Some(Resolved {
            caller: entry.caller.clone(),
            refreshed_expiry: refreshed,
        })
    }

    /// When the session ends if unused from now on, without using it (an
    /// open WebSocket re-checking its session does not keep it alive).
    /// `None` (and forgotten) if it is over.
    pub fn ends_at(&self, digest: &SessionDigest, now_ms: u64) -> Option<u64> {
        let entry = self.sessions.get(digest)?;
        if self.acceptable(&entry, now_ms) {
            return Some(entry.ends_at_ms());
        }
        drop(entry);
        self.remove(digest);
        None
    }

    /// Moves a known session's expiry forward (refreshed on another
    /// instance), never past its absolute end. An unknown or closed session
    /// is not brought back.
    pub fn extend(&self, digest: &SessionDigest, expires_at_ms: u64) {
        if let Some(mut entry) = self.sessions.get_mut(digest) {
            let capped = expires_at_ms.min(entry.absolute_expires_at_ms);
            entry.expires_at_ms = entry.expires_at_ms.max(capped);
        }
    }

    /// Ends a session; what it was, if it was known.
    pub fn remove(&self, digest: &SessionDigest) -> Option<SessionInfo> {
        let (_, session) = self.sessions.remove(digest)?;
        self.unindex(session.owner(), digest);
        let _ = self.closed.send(*digest);
        Some(session)
    }

    /// Takes `digest` out of its owner's set (a scan of at most the cap: the
    /// arrival it was filed under is not kept with the session).
    fn unindex(&self, owner: Option<String>, digest: &SessionDigest) {
        if let Some(mut set) = self.by_owner.get_mut(&owner) {
            set.retain(|(_, _, d)| d != digest);
        }
        self.by_owner.remove_if(&owner, |_, set| set.is_empty());
    }

    /// Ends every session matching `doomed`; their digests.
    fn remove_where(&self, doomed: impl Fn(&SessionInfo) -> bool) -> Vec<SessionDigest> {
        let mut removed = Vec::new();
        self.sessions.retain(|digest, s| {
            if doomed(s) {
                removed.push((*digest, s.owner()));
                false
            } else {
                true
            }
        });
        removed
            .into_iter()
            .map(|(digest, owner)| {
                self.unindex(owner, &digest);
                let _ = self.closed.send(digest);
                digest
            })
            .collect()
    }

    /// Ends every session of a workspace (key revoked or rotated, or the
    /// admin ending them); their digests.
    pub fn close_workspace(&self, workspace: &str) -> Vec<SessionDigest> {
        self.remove_where(|s| matches!(&s.caller, Caller::Workspace(id) if id == workspace))
    }

    /// Forgets every session over at `now_ms`.
    pub fn sweep(&self, now_ms: u64) {
        self.remove_where(|s| !self.acceptable(s, now_ms));
    }

    /// Live sessions, of one workspace or all: (digest, session).
    pub fn list(&self, workspace: Option<&str>, now_ms: u64) -> Vec<(SessionDigest, SessionInfo)> {
        let live = |digest: &SessionDigest| {
            self.sessions
                .get(digest)
                .filter(|s| self.acceptable(s, now_ms))
                .map(|s| (*digest, s.clone()))
        };
        match workspace {
            Some(id) => {
                let digests: Vec<SessionDigest> = self
                    .by_owner
                    .get(&Some(id.to_string()))
                    .map(|set| set.iter().map(|(_, _, d)| *d).collect())
                    .unwrap_or_default();
                digests.iter().filter_map(live).collect()
            }
            None => self
                .sessions
                .iter()
                .filter(|s| self.acceptable(s.value(), now_ms))
                .map(|s| (*s.key(), s.value().clone()))
                .collect(),
        }
    }

    /// The digest of the live session named `handle` (see [`session_handle`]).
    pub fn find_handle(&self, handle: &str) -> Option<SessionDigest> {
        self.sessions
            .iter()
            .map(|s| *s.key())
            .find(|digest| session_handle(digest) == handle)
    }

    /// How many sessions `owner` (`None`: the admin) has.
    pub fn count_of(&self, owner: Option<&str>) -> usize {
        self.by_owner
            .get(&owner.map(str::to_string))
            .map_or(0, |set| set.len())
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
/// The server decides when a session ends (unused for its idle TTL, signed
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
    const ADMIN_KEY: [u8; 32] = [7; 32];

    fn acme() -> Caller {
        Caller::Workspace("acme".into())
    }

    fn index() -> SessionStore {
        SessionStore::new(ADMIN_KEY, 1000)
    }

    fn open(store: &SessionStore, caller: Caller, now: u64) -> SessionDigest {
        let (_, digest) = new_session_id();
        store
            .insert(digest, SessionInfo::fresh(caller, now, ADMIN_KEY), now)
            .expect("accepted");
        digest
    }

    #[test]
    fn sessions_resolve_until_removed() {
        let store = index();
        let digest = open(&store, acme(), T0);
        assert_eq!(store.resolve(&digest, T0).map(|r| r.caller), Some(acme()));
        assert_eq!(store.resolve(&key_digest("nope"), T0), None);
        assert_eq!(store.remove(&digest).map(|s| s.caller), Some(acme()));
        assert_eq!(store.resolve(&digest, T0), None);
        assert!(store.remove(&digest).is_none());
        assert_eq!(store.count_of(Some("acme")), 0);
    }

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
    fn an_admin_session_of_another_admin_key_never_resolves() {
        let store = index();
        let (_, digest) = new_session_id();
        let other_key = SessionInfo::fresh(Caller::Admin, T0, [8; 32]);
        assert_eq!(store.insert(digest, other_key.clone(), T0), None);
        assert_eq!(store.resolve(&digest, T0), None);
        // Restored from a store written under the other key: refused too.
        assert_eq!(store.restore(digest, other_key, T0), None);
        // Without a binding at all (written before sessions had one): refused.
        let mut unbound = SessionInfo::fresh(Caller::Admin, T0, ADMIN_KEY);
        unbound.admin_key = None;
        assert_eq!(store.restore(digest, unbound, T0), None);
        assert!(store.is_empty());
        assert_eq!(admin_key_binding("a"), admin_key_binding("a"));
        assert_ne!(admin_key_binding("a"), admin_key_binding("b"));
        assert_ne!(admin_key_binding("a"), key_digest("a"));
    }

    #[test]
    fn past_the_cap_the_oldest_session_of_that_owner_ends() {
        let store = SessionStore::new(ADMIN_KEY, 3);
        let mut closures = store.closures();
        let first = open(&store, acme(), T0);
        let others: Vec<_> = (1..3).map(|i| open(&store, acme(), T0 + i)).collect();
        let elsewhere = open(&store, Caller::Workspace("beta".into()), T0);
        let (_, newest) = new_session_id();
        let evicted = store
            .insert(
                newest,
                SessionInfo::fresh(acme(), T0 + 10, ADMIN_KEY),
                T0 + 10,
            )
            .expect("accepted");
        assert_eq!(evicted, vec![first]);
        assert_eq!(closures.try_recv().ok(), Some(first));
        assert_eq!(store.resolve(&first, T0 + 10), None);
        for digest in others.iter().chain([&newest, &elsewhere]) {
            assert!(store.resolve(digest, T0 + 10).is_some());
        }
        assert_eq!(store.count_of(Some("acme")), 3);
        assert_eq!(store.list(Some("acme"), T0 + 10).len(), 3);
    }

    #[test]
    fn sessions_opened_in_the_same_millisecond_end_in_the_order_they_came() {
        let store = SessionStore::new(ADMIN_KEY, 3);
        let opened: Vec<_> = (0..8).map(|_| open(&store, acme(), T0)).collect();
        for (i, digest) in opened.iter().enumerate() {
            assert_eq!(
                store.resolve(digest, T0).is_some(),
                i >= 5,
                "session {i}: only the last three stay"
            );
        }
    }

    #[test]
    fn every_way_a_session_ends_is_signalled() {
        let store = index();
        let mut closures = store.closures();
        let signed_out = open(&store, acme(), T0);
        store.remove(&signed_out);
        assert_eq!(closures.try_recv().ok(), Some(signed_out));
        let revoked = open(&store, acme(), T0);
        assert_eq!(store.close_workspace("acme"), vec![revoked]);
        assert_eq!(closures.try_recv().ok(), Some(revoked));
        let expired = open(&store, acme(), T0);
        assert_eq!(store.ends_at(&expired, T0), Some(T0 + 7 * DAY_MS));
        assert_eq!(store.ends_at(&expired, T0 + 7 * DAY_MS), None);
        assert_eq!(closures.try_recv().ok(), Some(expired));
        let swept = open(&store, acme(), T0);
        store.sweep(T0 + 8 * DAY_MS);
        assert_eq!(closures.try_recv().ok(), Some(swept));
        assert!(store.is_empty());
        assert_eq!(store.count_of(Some("acme")), 0);
    }

    #[test]
    fn handles_name_sessions_without_revealing_them() {
        let store = index();
        let digest = open(&store, acme(), T0);
        let handle = session_handle(&digest);
        assert!(is_session_handle(&handle), "{handle}");
        assert!(!hex::encode(digest).contains(&handle));
        assert_eq!(store.find_handle(&handle), Some(digest));
        assert_eq!(store.find_handle("0000000000000000"), None);
        assert!(!is_session_handle("ABCDEF0123456789"));
        assert!(!is_session_handle("abc"));
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
    fn closing_a_workspace_ends_only_its_sessions() {
        let store = index();
        let mine = open(&store, acme(), T0);
        let other = open(&store, Caller::Workspace("acme-2".into()), T0);
        let admin = open(&store, Caller::Admin, T0);
        store.close_workspace("acme");
        assert_eq!(store.resolve(&mine, T0), None);
        assert!(store.resolve(&other, T0).is_some());
        assert!(store.resolve(&admin, T0).is_some());
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

    #[test]
    fn sweeping_forgets_only_expired_sessions() {
        let store = index();
        let old = open(&store, acme(), T0);
        let new = open(&store, acme(), T0 + DAY_MS);
        store.sweep(T0 + 7 * DAY_MS);
        assert_eq!(store.len(), 1);
        assert_eq!(store.resolve(&old, T0 + 7 * DAY_MS), None);
        assert!(store.resolve(&new, T0 + 7 * DAY_MS).is_some());
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
        assert!(max_age > WORKSPACE_SESSIONS.max_lifetime.as_secs());
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
