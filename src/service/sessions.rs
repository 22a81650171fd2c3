//! Browser sessions, kept durable the way workspaces and their key digests
//! are: in the SQLite `sessions` table, or under Redis in `qa:sessions` with
//! events on `qa:events` so every instance knows every session at once.
//!
//! What is written when:
//! - signing in writes the session and answers only once it is kept (a cookie
//!   handed out survives a restart; if the store fails, no cookie at all);
//! - signing out forgets it here at once, then deletes it (awaited);
//! - rotating or revoking a workspace's keys deletes its sessions in the same
//!   write as the key change (see `rotate_key`, `revoke_keys`);
//! - using a session reads memory only; its expiry is pushed forward at most
//!   once a day (`session::refreshed_expiry`), written in the background.
//!
//! Only the digest of the session id is ever stored or sent to Redis.

use super::shared::SessionOwner;
use super::{Caller, QuotaService, ServiceError};
use crate::auth::key_digest;
use crate::session::{fresh_expiry, new_session_id, SessionDigest};
use crate::store::redis::SharedSession;
use crate::store::StoreError;
use std::collections::HashSet;

/// A session just opened: the cookie value (for this browser only; never
/// stored) and who it acts for. No `Debug`: the id is a credential and must
/// not end up in a log line.
pub struct OpenedSession {
    pub id: String,
    pub caller: Caller,
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
        let expires_at_ms = fresh_expiry(now);
        if !self
            .store_session(digest, &caller, key, expires_at_ms)
            .await?
        {
            return Ok(None);
        }
        self.inner
            .sessions
            .insert(digest, caller.clone(), expires_at_ms, now);
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
            // Best effort: nobody ever received this session's id.
            let _ = self.unstore_session(digest).await;
            return Ok(None);
        }
        self.shared_session_opened(digest, &caller, key, expires_at_ms)
            .await;
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

    /// Signs out: the session stops working on this instance at once, then is
    /// deleted from the store (awaited) and, under Redis, on every instance.
    /// On a store failure the error is returned and the stored session stays
    /// until a retry (or its expiry).
    pub async fn close_session(&self, id: &str) -> Result<(), ServiceError> {
        let digest = key_digest(id);
        self.inner.sessions.remove(&digest);
        self.unstore_session(digest).await?;
        self.shared_session_closed(digest).await;
        Ok(())
    }

    /// Writes a new session. `false` (nothing kept) when, under Redis, the
    /// key turned out to be rotated or revoked by another instance meanwhile.
    async fn store_session(
        &self,
        digest: SessionDigest,
        caller: &Caller,
        key: &str,
        expires_at_ms: u64,
    ) -> Result<bool, ServiceError> {
        let workspace_id = match caller {
            Caller::Admin => None,
            Caller::Workspace(id) => Some(id.as_str()),
        };
        if let Some(store) = self.store() {
            store
                .save_session(digest, workspace_id, expires_at_ms)
                .await
                .map_err(|e| {
                    self.store_failed(&e);
                    ServiceError::Store(e)
                })?;
        }
        let Some(shared) = self.shared() else {
            return Ok(true);
        };
        let digest_hex = hex::encode(digest);
        let session = SharedSession {
            workspace_id: workspace_id.map(str::to_string),
            expires_at_ms,
        };
        let failed = |e: StoreError| {
            self.shared_failed(&e);
            ServiceError::Store(e)
        };
        shared
            .redis
            .save_session(&digest_hex, &session)
            .await
            .map_err(failed)?;
        let Some(workspace_id) = workspace_id else {
            return Ok(true);
        };
        // Another instance revoking this workspace sets the new key first and
        // deletes the sessions second: if the key read here is still ours, that
        // delete comes after our write and removes it; if not, we remove it.
        let current = shared
            .redis
            .workspace_key_digest(workspace_id)
            .await
            .map_err(failed)?;
        if current.as_deref() == Some(hex::encode(key_digest(key)).as_str()) {
            return Ok(true);
        }
        shared
            .redis
            .delete_session(&digest_hex)
            .await
            .map_err(failed)?;
        Ok(false)
    }

    async fn unstore_session(&self, digest: SessionDigest) -> Result<(), ServiceError> {
        if let Some(store) = self.store() {
            store.delete_session(digest).await.map_err(|e| {
                self.store_failed(&e);
                ServiceError::Store(e)
            })?;
        }
        if let Some(shared) = self.shared() {
            shared
                .redis
                .delete_session(&hex::encode(digest))
                .await
                .map_err(|e| {
                    self.shared_failed(&e);
                    ServiceError::Store(e)
                })?;
        }
        Ok(())
    }

    /// Background write of a refreshed expiry: the request that used the
    /// session does not wait for it. If it fails, the stored expiry is the
    /// previous one (at most a day earlier) and the store is marked unhealthy.
    fn extend_session_in_background(
        &self,
        digest: SessionDigest,
        caller: &Caller,
        expires_at_ms: u64,
    ) {
        if self.store().is_none() && self.shared().is_none() {
            return;
        }
        let service = self.clone();
        let workspace_id = match caller {
            Caller::Admin => None,
            Caller::Workspace(id) => Some(id.clone()),
        };
        super::persist::spawn(async move {
            if let Some(store) = service.store() {
                if let Err(e) = store.extend_session(digest, expires_at_ms).await {
                    service.store_failed(&e);
                }
            }
            if let Some(shared) = service.shared() {
                let session = SharedSession {
                    workspace_id,
                    expires_at_ms,
                };
                match shared
                    .redis
                    .extend_session(&hex::encode(digest), &session)
                    .await
                {
                    Ok(true) => service.shared_session_extended(digest, expires_at_ms),
                    // Signed out or revoked elsewhere meanwhile: nothing to share.
                    Ok(false) => {}
                    Err(e) => service.shared_failed(&e),
                }
            }
        });
    }

    /// Puts a stored session back into memory at start (SQLite or Redis).
    /// `keyed_workspaces`: the workspaces that have a key (not revoked); a
    /// session of any other workspace cannot act and is skipped.
    pub(super) fn restore_session(
        &self,
        digest: SessionDigest,
        workspace_id: Option<String>,
        expires_at_ms: u64,
        now_ms: u64,
        keyed_workspaces: &HashSet<&str>,
    ) {
        if expires_at_ms <= now_ms {
            return;
        }
        let caller = match workspace_id {
            None => Caller::Admin,
            Some(id) if keyed_workspaces.contains(id.as_str()) => Caller::Workspace(id),
            Some(_) => return,
        };
        self.inner.sessions.restore(digest, caller, expires_at_ms);
    }

    /// A session opened on another instance.
    pub(super) fn apply_session_opened(
        &self,
        digest: SessionDigest,
        owner: SessionOwner,
        expires_at_ms: u64,
    ) {
        let caller = match owner {
            SessionOwner::Admin => Caller::Admin,
            SessionOwner::Workspace { id, key_digest } => {
                // Its event may arrive after a rotation or revocation that
                // happened later: only a key this instance still honours counts.
                let mut opened_with = [0u8; 32];
                if hex::decode_to_slice(&key_digest, &mut opened_with).is_err()
                    || !self.inner.registry.holds(&opened_with, &id)
                {
                    return;
                }
                Caller::Workspace(id)
            }
        };
        let now = self.engine().now_ms();
        if expires_at_ms > now {
            self.inner
                .sessions
                .insert(digest, caller, expires_at_ms, now);
        }
    }

    pub(super) fn apply_session_extended(&self, digest: SessionDigest, expires_at_ms: u64) {
        self.inner.sessions.extend(&digest, expires_at_ms);
    }

    pub(super) fn apply_session_closed(&self, digest: SessionDigest) {
        self.inner.sessions.remove(&digest);
    }

    /// Forgets expired sessions in memory (called with the periodic prune).
    pub(super) fn sweep_sessions(&self, now_ms: u64) {
        self.inner.sessions.sweep(now_ms);
    }
}
