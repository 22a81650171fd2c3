//! Workspace keys: rotation and revocation, stored before they take
//! effect, one at a time, ending the workspace's sessions and sockets.

use super::Registry;
use super::{QuotaService, ServiceError};
use crate::engine::EngineError;

impl QuotaService {
    /// Replaces a workspace's keys with a new one (the old ones stop working at
    /// once, open WebSockets and browser sessions included). Returns the key.
    ///
    /// The new key is stored before the old one stops working: if the store
    /// fails, the error is returned (503) and the old key stays the
    /// workspace's key, here and in the store.
    pub async fn rotate_key(&self, id: &str) -> Result<String, ServiceError> {
        if !self.inner.engine.contains(id) {
            return Err(ServiceError::Engine(EngineError::NotFound(id.to_string())));
        }
        let (key, digest) = Registry::new_key();
        let _one_at_a_time = self.inner.key_changes.lock().await;
        // Sign-ins of this workspace that overlap this change undo themselves
        // (see `open_session`), whether or not the store accepts it.
        self.inner.registry.begin_change(id);
        self.backend().change_key(id, Some(digest)).await?;
        self.revoke_locally(id);
        self.inner.registry.restore(digest, id);
        // The key has changed for good: an audit entry the store cannot take
        // must not hide the new key from the only one who will ever see it.
        self.audit_best_effort("rotate_key", id, "key rotated")
            .await;
        tracing::info!(workspace_id = id, "workspace key rotated");
        Ok(key)
    }

    /// Revokes every key of a workspace; nothing can act for it until a new
    /// key is issued with [`rotate_key`](Self::rotate_key). Stored first, like
    /// a rotation: on a store failure the key keeps working and the error
    /// says so.
    pub async fn revoke_keys(&self, id: &str) -> Result<(), ServiceError> {
        if !self.inner.engine.contains(id) {
            return Err(ServiceError::Engine(EngineError::NotFound(id.to_string())));
        }
        let _one_at_a_time = self.inner.key_changes.lock().await;
        self.inner.registry.begin_change(id);
        self.backend().change_key(id, None).await?;
        self.revoke_locally(id);
        self.audit_best_effort("revoke_keys", id, "keys revoked")
            .await;
        tracing::info!(workspace_id = id, "workspace keys revoked");
        Ok(())
    }

    pub(super) async fn audit_best_effort(&self, action: &str, id: &str, detail: &str) {
        if let Err(error) = self.audit(action, Some(id), detail).await {
            tracing::error!(%error, workspace_id = id, action, "audit entry not stored");
        }
    }

    /// Appends to the audit trail (kept by SQLite only).
    pub(super) async fn audit(
        &self,
        action: &str,
        id: Option<&str>,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let now = self.inner.engine.now_ms();
        self.backend().audit(action, id, detail, now).await
    }

    /// Forgets keys and sessions of a workspace and tells its WebSockets.
    /// Keys go first: `open_session` relies on it to never keep a session
    /// opened with a key revoked meanwhile.
    pub(super) fn revoke_locally(&self, id: &str) {
        self.inner.registry.revoke_workspace(id);
        // Each closed session also signals its own sockets; the workspace's
        // key sockets learn of it below.
        let _ = self.inner.sessions.close_workspace(id);
        let _ = self.inner.revocations.send(id.to_string());
    }
}
