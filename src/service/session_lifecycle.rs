//! Browser sessions, kept durable the way workspaces and their key digests
//! are: in the SQLite `sessions` table, or under Redis in `qa:sessions` with
//! events on `qa:events` so every instance knows every session at once.
//!
//! What is written when:
//! - signing in writes the session and answers only once it is kept (a cookie
//!   handed out survives a restart; if the store fails, no cookie at all);
//!   past `QUOTA_MAX_SESSIONS_PER_WORKSPACE`, the owner's oldest session ends
//!   (deleted in the same sign-in, awaited);
//! - signing out, and the admin ending a session, forget it here at once,
//!   then delete it (awaited);
//! - rotating or revoking a workspace's keys deletes its sessions in the same
//!   write as the key change (see `rotate_key`, `revoke_keys`);
//! - using a session reads memory only; its expiry is pushed forward at most
//!   once per refresh interval (`browser_session::SessionPolicy`), in the background.
//!
//! However a session ends, the index signals its digest and the WebSockets
//! opened with it close (see `api::ws`). Only the digest of the session id is
//! ever stored or sent to Redis.
//!
//! Over 400 lines: opening, resolving, closing, the admin's listing and
//! ending, restoring and applying other instances' events are one concern
//! (a session's life), kept together so each rule is written once.

use super::backend::events::SessionOwner;
use super::{Caller, QuotaService, ServiceError};
use crate::auth::key_digest;
use crate::browser_session::{
    new_session_id, session_handle, SessionDigest, SessionInfo, SessionPolicy,
};
use crate::store::redis::SharedSession;
use crate::store::StoredSession;
use std::collections::HashSet;

/// A session just opened: the cookie value (for this browser only; never
/// stored) and who it acts for. No `Debug`: the id is a credential and must
/// not end up in a log line.
pub struct OpenedSession {
    pub id: String,
    pub caller: Caller,
}

/// A session as the admin sees it: its public handle, never the cookie nor
/// its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    pub handle: String,
    pub caller: Caller,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub absolute_expires_at_ms: u64,
}

impl QuotaService {
    /// Signs in with `key`. `Ok(None)` when the key is not valid, or stopped
    /// being valid (rotated, revoked) while the session was being written.
    /// Answers once the session is stored; a store failure is an error and
    /// opens nothing.
    pub async fn open_session(&self, key: &str) -> Result<Option<OpenedSession>, ServiceError> {
        // Read before the key is checked: a key change that begins after
        // this (see `rotate_key`) is seen by the re-check below.
        let changes = |caller: &Caller| match caller {
            Caller::Workspace(id) => self.inner.registry.changes(id),
            Caller::Admin => 0,
        };
        let tentative = self.authenticate(key);
        let changes_before = tentative.as_ref().map(changes);
        let Some(caller) = tentative else {
            return Ok(None);
        };
        let (id, digest) = new_session_id();
        let now = self.engine().now_ms();
        let session = SessionInfo::fresh(caller.clone(), now, self.inner.sessions.admin_key());
        if !self.backend().save_session(digest, &session, key).await? {
            return Ok(None);
        }
        let Some(evicted) = self.inner.sessions.insert(digest, session.clone(), now) else {
            // Cannot happen for a session opened just now with the running
            // admin key; refusing is the safe answer all the same.
            let _ = self.backend().delete_session(digest).await;
            return Ok(None);
        };
        // A rotation or revocation on this instance may run concurrently: it
        // counts a change, deletes the workspace's sessions from the store
        // with the new key, then forgets the old key and closes the sessions
        // in memory. If the change began by now, its delete may have run
        // before our write, so the session is undone here; if not, its
        // delete and close both come after our write and insert, and end
        // this session themselves.
        if self.authenticate(key).as_ref() != Some(&caller)
            || changes_before != Some(changes(&caller))
        {
            self.inner.sessions.remove(&digest);
            let _ = self.backend().delete_session(digest).await;
            return Ok(None);
        }
        self.backend()
            .announce_session_opened(digest, key, &session)
            .await;
        if !evicted.is_empty() {
            tracing::info!(
                workspace_id = ?caller.workspace_id(),
                ended = evicted.len(),
                "sessions over the per-workspace cap ended, oldest first"
            );
            // The sign-in stands even if this delete fails: the evicted
            // session is already gone from memory (and on every instance once
            // they hear of it), and a restart evicts it again.
            let _ = self.backend().end_sessions(&evicted).await;
        }
        Ok(Some(OpenedSession { id, caller }))
    }

    /// The caller of a session cookie, from memory (no I/O on the request
    /// path). When this use makes the session due for a later expiry, the new
    /// expiry is written in the background.
    pub fn session_caller(&self, id: &str) -> Option<Caller> {
        let digest = key_digest(id);
        let resolved = self
            .inner
            .sessions
            .resolve(&digest, self.engine().now_ms())?;
        if let Some(expires_at_ms) = resolved.refreshed_expiry {
            self.extend_session_in_background(digest, &resolved.caller, expires_at_ms);
        }
        Some(resolved.caller)
    }

    /// When the session of this digest ends if not used again (Unix ms), or
    /// `None` if it is over. Does not count as a use: an open WebSocket
    /// re-checks its session with it, and must not keep it alive forever.
    pub fn session_ends_at(&self, digest: &SessionDigest) -> Option<u64> {
        self.inner.sessions.ends_at(digest, self.engine().now_ms())
    }

    /// Digests of sessions as they end, however they end.
    pub fn session_closures(&self) -> tokio::sync::broadcast::Receiver<SessionDigest> {
        self.inner.sessions.closures()
    }

    /// Signs out: the session stops working on this instance at once, then is
    /// deleted from the store (awaited) and, under Redis, on every instance.
    /// On a store failure the error is returned and the stored session stays
    /// until a retry (or its expiry).
    pub async fn close_session(&self, id: &str) -> Result<(), ServiceError> {
        let digest = key_digest(id);
        self.inner.sessions.remove(&digest);
        self.backend().delete_session(digest).await?;
        self.backend().announce_session_closed(digest).await;
        Ok(())
    }

    /// Live sessions, of one workspace or all (the admin's included), oldest
    /// first (ties by handle, so the order is stable).
    pub fn list_sessions(&self, workspace: Option<&str>) -> Vec<SessionView> {
        let now = self.engine().now_ms();
        let mut views: Vec<SessionView> = self
            .inner
            .sessions
            .list(workspace, now)
            .into_iter()
            .map(|(digest, s)| SessionView {
                handle: session_handle(&digest),
                caller: s.caller,
                created_at_ms: s.created_at_ms,
                expires_at_ms: s.expires_at_ms,
                absolute_expires_at_ms: s.absolute_expires_at_ms,
            })
            .collect();
        views.sort_by(|a, b| (a.created_at_ms, &a.handle).cmp(&(b.created_at_ms, &b.handle)));
        views
    }

    /// Ends the session named `handle` (admin). `Ok(None)` if there is no
    /// such session; else who it acted for. Its WebSockets close at once.
    pub async fn end_session_by_handle(
        &self,
        handle: &str,
    ) -> Result<Option<Caller>, ServiceError> {
        let Some(digest) = self.inner.sessions.find_handle(handle) else {
            return Ok(None);
        };
        let Some(session) = self.inner.sessions.remove(&digest) else {
            return Ok(None);
        };
        self.backend().end_sessions(&[digest]).await?;
        let workspace = session.caller.workspace_id();
        self.audit(
            "end_session",
            workspace,
            &format!("session {handle} ended by the admin"),
        )
        .await?;
        tracing::info!(workspace_id = ?workspace, handle, "session ended by the admin");
        Ok(Some(session.caller))
    }

    /// Ends every session of a workspace (admin); how many there were. Its
    /// keys stay valid: this signs browsers out, it revokes nothing.
    pub async fn end_workspace_sessions(&self, workspace: &str) -> Result<usize, ServiceError> {
        if !self.engine().contains(workspace) {
            return Err(ServiceError::Engine(crate::engine::EngineError::NotFound(
                workspace.to_string(),
            )));
        }
        let ended = self.inner.sessions.close_workspace(workspace);
        self.backend().end_sessions(&ended).await?;
        self.audit(
            "end_sessions",
            Some(workspace),
            &format!("{} sessions ended by the admin", ended.len()),
        )
        .await?;
        tracing::info!(
            workspace_id = workspace,
            ended = ended.len(),
            "sessions ended by the admin"
        );
        Ok(ended.len())
    }

    /// Writes a refreshed expiry behind: the request that used the session
    /// does not wait for it (see `backend::sessions`).
    fn extend_session_in_background(
        &self,
        digest: SessionDigest,
        caller: &Caller,
        expires_at_ms: u64,
    ) {
        let Some(session) = self
            .inner
            .sessions
            .get(&digest)
            .filter(|s| s.caller == *caller)
        else {
            return;
        };
        self.backend()
            .extend_session_behind(digest, session, expires_at_ms);
    }

    /// Puts a stored session back into memory at start (SQLite or Redis).
    /// `keyed_workspaces`: the workspaces that have a key (not revoked); a
    /// session of any other workspace cannot act and is skipped, as is an
    /// admin session of another admin key (`QUOTA_ADMIN_RESET_KEY` changed)
    /// or one over its cap (`QUOTA_MAX_SESSIONS_PER_WORKSPACE` lowered).
    /// Those are deleted from the store in the background.
    pub(super) fn restore_session(
        &self,
        stored: StoredSession,
        now_ms: u64,
        keyed_workspaces: &HashSet<&str>,
    ) {
        let caller = match stored.workspace_id {
            None => Caller::Admin,
            Some(id) if keyed_workspaces.contains(id.as_str()) => Caller::Workspace(id),
            Some(_) => return,
        };
        let digest = stored.digest;
        let session = SessionInfo {
            caller,
            created_at_ms: stored.created_at_ms,
            expires_at_ms: stored.expires_at_ms,
            absolute_expires_at_ms: stored.absolute_expires_at_ms,
            admin_key: stored.admin_key_binding,
        };
        let doomed = match self.inner.sessions.restore(digest, session, now_ms) {
            Some(evicted) => evicted,
            None => vec![digest],
        };
        if !doomed.is_empty() {
            let service = self.clone();
            self.backend().spawn(async move {
                let _ = service.backend().end_sessions(&doomed).await;
            });
        }
    }

    /// A session opened on another instance.
    pub(super) fn apply_session_opened(
        &self,
        digest: SessionDigest,
        owner: SessionOwner,
        times: SharedSessionTimes,
    ) {
        let (caller, admin_key) = match owner {
            SessionOwner::Admin { admin_key_binding } => {
                let mut binding = [0u8; 32];
                // No (or an unreadable) binding: an instance of an older
                // release; refused, as its sessions are at restore.
                let Some(hex_binding) = admin_key_binding else {
                    return;
                };
                if hex::decode_to_slice(&hex_binding, &mut binding).is_err() {
                    return;
                }
                (Caller::Admin, Some(binding))
            }
            SessionOwner::Workspace { id, key_digest } => {
                // Its event may arrive after a rotation or revocation that
                // happened later: only a key this instance still honours counts.
                let mut opened_with = [0u8; 32];
                if hex::decode_to_slice(&key_digest, &mut opened_with).is_err()
                    || !self.inner.registry.holds(&opened_with, &id)
                {
                    return;
                }
                (Caller::Workspace(id), None)
            }
        };
        let now = self.engine().now_ms();
        let policy = SessionPolicy::of(&caller);
        // An older instance sends no creation time: it opened it just now.
        let created_at_ms = if times.absolute_expires_at_ms == 0 {
            now
        } else {
            times.created_at_ms
        };
        let absolute_expires_at_ms = if times.absolute_expires_at_ms == 0 {
            policy.absolute_end(now)
        } else {
            times.absolute_expires_at_ms
        };
        let session = SessionInfo {
            caller,
            created_at_ms,
            expires_at_ms: times.expires_at_ms.min(absolute_expires_at_ms),
            absolute_expires_at_ms,
            admin_key,
        };
        // Sessions this evicts are evicted (and deleted) by the instance that
        // opened it too: same sessions, same order.
        let _ = self.inner.sessions.insert(digest, session, now);
    }

    pub(super) fn apply_session_extended(&self, digest: SessionDigest, expires_at_ms: u64) {
        self.inner.sessions.extend(&digest, expires_at_ms);
    }

    /// A session closed on another instance: it ends here too, and so do
    /// this instance's WebSockets opened with it.
    pub(super) fn apply_session_closed(&self, digest: SessionDigest) {
        self.inner.sessions.remove(&digest);
    }

    /// Forgets expired sessions in memory (called with the periodic prune).
    pub(super) fn sweep_sessions(&self, now_ms: u64) {
        self.inner.sessions.sweep(now_ms);
    }
}

/// The lifetimes a `session_opened` event carries.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SharedSessionTimes {
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub absolute_expires_at_ms: u64,
}

/// A Redis entry as a stored session (one restore path for both stores).
pub(super) fn stored_from_shared(digest: SessionDigest, session: SharedSession) -> StoredSession {
    let admin_key_binding = session.admin_key_binding.and_then(|hex_binding| {
        let mut binding = [0u8; 32];
        hex::decode_to_slice(&hex_binding, &mut binding)
            .ok()
            .map(|()| binding)
    });
    StoredSession {
        digest,
        workspace_id: session.workspace_id,
        created_at_ms: session.created_at_ms,
        expires_at_ms: session.expires_at_ms,
        absolute_expires_at_ms: session.absolute_expires_at_ms,
        admin_key_binding,
    }
}
