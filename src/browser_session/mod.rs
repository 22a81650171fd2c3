//! Browser sessions: signing in with a key sets an HttpOnly cookie holding a
//! random session id; the server keeps only the id's digest and who it is.
//! The WebSocket and server functions accept the cookie in place of a bearer key.
//!
//! This module is the in-memory index every request reads (synchronously, no
//! I/O on the request path), [`SessionIndex`]. Keeping it durable — the SQLite
//! `sessions` table, or the `qa:sessions` hash and events under Redis — is the
//! service's job (`service::sessions`); the index and the store always hold the
//! same expiry.
//!
//! Besides the index, what bounds a session, one concern per file:
//! - `lifetime.rs`: a sliding lifetime and an absolute one, shorter for the
//!   admin ([`SessionPolicy`]), and how often use pushes the expiry forward;
//! - `admin_key.rs`: the admin key an admin session was opened with (a session
//!   of another admin key never resolves, [`admin_key_binding`]);
//! - `cap.rs`: the cap on sessions per workspace (the oldest goes);
//! - `closures.rs`: the closure signal open WebSockets listen to (every way a
//!   session ends sends its digest, [`SessionIndex::closures`]);
//! - `cookie.rs`: the cookie that carries the session id;
//! - `handle.rs`: the name the admin lists and ends a session by.

mod admin_key;
mod cap;
mod closures;
mod cookie;
mod handle;
mod lifetime;

pub use admin_key::admin_key_binding;
pub use cookie::{
    clear_cookie, session_cookie, session_id_from_headers, SESSION_COOKIE, SESSION_COOKIE_MAX_AGE,
};
pub use handle::{is_session_handle, session_handle};
pub use lifetime::{SessionPolicy, ADMIN_SESSIONS, WORKSPACE_SESSIONS};

use crate::auth::{generate_secret, key_digest};
use crate::wire::Caller;
use admin_key::bound_to_running_key;
use cap::{Owner, OwnerCap};
use closures::ClosureSignal;
use dashmap::DashMap;
use tokio::sync::broadcast;

/// The SHA-256 digest of a session id: what is kept, stored and shared.
pub type SessionDigest = [u8; 32];

/// A fresh session id (the cookie value, never stored) and its digest.
pub fn new_session_id() -> (String, SessionDigest) {
    let id = generate_secret("");
    let digest = key_digest(&id);
    (id, digest)
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

    fn owner(&self) -> Owner {
        match &self.caller {
            Caller::Admin => None,
            Caller::Workspace(id) => Some(id.clone()),
        }
    }
}

/// A session that resolved: who it acts for, and the new expiry to store if
/// this use refreshed it.
#[derive(Debug, PartialEq, Eq)]
pub struct ResolvedSession {
    pub caller: Caller,
    pub refreshed_expiry: Option<u64>,
}

/// Live sessions by digest, with their lifetimes (Unix ms), in memory only
/// (what is stored is `service::sessions`' business).
pub struct SessionIndex {
    sessions: DashMap<SessionDigest, SessionInfo>,
    /// Sessions per owner, oldest first, for the cap.
    by_owner: OwnerCap,
    /// The running admin key's binding: admin sessions of any other key are
    /// refused.
    admin_key: [u8; 32],
    /// Every session that ends, however it ends, so open WebSockets of that
    /// session close at once.
    closed: ClosureSignal,
}

impl SessionIndex {
    /// An empty index for the admin key whose binding is `admin_key`, with at
    /// most `max_per_owner` sessions per workspace (and for the admin).
    pub fn new(admin_key: [u8; 32], max_per_owner: usize) -> Self {
        Self {
            sessions: DashMap::new(),
            by_owner: OwnerCap::new(max_per_owner),
            admin_key,
            closed: ClosureSignal::new(),
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
        bound_to_running_key(session, &self.admin_key) && session.ends_at_ms() > now_ms
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
        let evicted = self.by_owner.file(owner, created, digest, || {
            self.sessions.insert(digest, session).is_some()
        });
        for oldest in &evicted {
            if self.sessions.remove(oldest).is_some() {
                self.closed.ended(*oldest);
            }
        }
        Some(evicted)
    }

    /// The session's caller at `now_ms`, refreshing its expiry when due (see
    /// [`SessionPolicy::refreshed_expiry`]). A session that is over (or of
    /// another admin key) is forgotten.
    pub fn resolve(&self, digest: &SessionDigest, now_ms: u64) -> Option<ResolvedSession> {
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
        Some(ResolvedSession {
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
        self.by_owner.unfile(&session.owner(), digest);
        self.closed.ended(*digest);
        Some(session)
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
                self.by_owner.unfile(&owner, &digest);
                self.closed.ended(digest);
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
                let digests = self.by_owner.digests_of(&Some(id.to_string()));
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
        self.by_owner.count_of(&owner.map(str::to_string))
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

/// What the unit tests of every file here share: a fake clock's instants and
/// an index to open sessions in.
#[cfg(test)]
mod test_support {
    use super::{new_session_id, SessionDigest, SessionIndex, SessionInfo};
    use crate::wire::Caller;

    pub(super) const HOUR_MS: u64 = 3_600_000;
    pub(super) const DAY_MS: u64 = 24 * HOUR_MS;
    /// Some Unix instant (a fake clock: the index takes time as an argument).
    pub(super) const T0: u64 = 1_800_000_000_000;
    pub(super) const ADMIN_KEY: [u8; 32] = [7; 32];

    pub(super) fn acme() -> Caller {
        Caller::Workspace("acme".into())
    }

    pub(super) fn index() -> SessionIndex {
        SessionIndex::new(ADMIN_KEY, 1000)
    }

    pub(super) fn open(store: &SessionIndex, caller: Caller, now: u64) -> SessionDigest {
        let (_, digest) = new_session_id();
        store
            .insert(digest, SessionInfo::fresh(caller, now, ADMIN_KEY), now)
            .expect("accepted");
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{acme, index, open, DAY_MS, T0};
    use super::*;

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
    fn sweeping_forgets_only_expired_sessions() {
        let store = index();
        let old = open(&store, acme(), T0);
        let new = open(&store, acme(), T0 + DAY_MS);
        store.sweep(T0 + 7 * DAY_MS);
        assert_eq!(store.len(), 1);
        assert_eq!(store.resolve(&old, T0 + 7 * DAY_MS), None);
        assert!(store.resolve(&new, T0 + 7 * DAY_MS).is_some());
    }
}
