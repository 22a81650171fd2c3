//! Browser sessions as kept: the digest of the session id (never the id),
//! who it acts for, its lifetimes, and for an admin session the binding of
//! the admin key that opened it.

use super::events::{EventKind, SessionOwner};
use super::{Backend, Kind};
use crate::auth::key_digest;
use crate::browser_session::{SessionDigest, SessionInfo};
use crate::service::ServiceError;
use crate::store::redis::SharedSession;
use crate::store::StoredSession;
use crate::wire::Caller;

impl Backend {
    /// Keeps a new session; awaited (a cookie is handed out only once its
    /// session survives a restart). `false` (nothing kept) when, under
    /// Redis, `key` turned out to be rotated or revoked by another instance
    /// meanwhile.
    pub(in crate::service) async fn save_session(
        &self,
        digest: SessionDigest,
        session: &SessionInfo,
        key: &str,
    ) -> Result<bool, ServiceError> {
        let failed = |e| ServiceError::Store(self.failed(e));
        let workspace_id = session.caller.workspace_id();
        match &self.kind {
            Kind::Memory(_) => Ok(true),
            Kind::Sqlite(store) => {
                let stored = StoredSession {
                    digest,
                    workspace_id: workspace_id.map(str::to_string),
                    created_at_ms: session.created_at_ms,
                    expires_at_ms: session.expires_at_ms,
                    absolute_expires_at_ms: session.absolute_expires_at_ms,
                    admin_key_binding: session.admin_key,
                };
                store.save_session(&stored).await.map_err(failed)?;
                Ok(true)
            }
            Kind::Redis(shared) => {
                let digest_hex = hex::encode(digest);
                let entry = shared_entry(session, session.expires_at_ms);
                shared
                    .redis
                    .save_session(&digest_hex, &entry)
                    .await
                    .map_err(failed)?;
                let Some(workspace_id) = workspace_id else {
                    return Ok(true);
                };
                // Another instance revoking this workspace sets the new key
                // first and deletes the sessions second: if the key read here
                // is still ours, that delete comes after our write and
                // removes it; if not, we remove it.
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
        }
    }

    /// Tells the other instances of a session opened here. Awaited, like
    /// [`end_sessions`](Self::end_sessions): a spawned publish could
    /// overtake the other, and an instance that saw "closed" before "opened"
    /// would keep a signed-out session.
    pub(in crate::service) async fn announce_session_opened(
        &self,
        digest: SessionDigest,
        key: &str,
        session: &SessionInfo,
    ) {
        if !matches!(self.kind, Kind::Redis(_)) {
            return;
        }
        let owner = match &session.caller {
            Caller::Admin => SessionOwner::Admin {
                admin_key_binding: session.admin_key.map(hex::encode),
            },
            Caller::Workspace(id) => SessionOwner::Workspace {
                id: id.clone(),
                key_digest: hex::encode(key_digest(key)),
            },
        };
        let opened = EventKind::SessionOpened {
            session_digest: hex::encode(digest),
            expires_at_ms: session.expires_at_ms,
            created_at_ms: session.created_at_ms,
            absolute_expires_at_ms: session.absolute_expires_at_ms,
            owner,
        };
        self.announce_now("", opened).await;
    }

    /// Deletes one session (sign-out, or a sign-in undone); awaited. Under
    /// Redis the caller announces its end (see
    /// [`end_sessions`](Self::end_sessions) for sessions ended by others).
    pub(in crate::service) async fn delete_session(
        &self,
        digest: SessionDigest,
    ) -> Result<(), ServiceError> {
        let failed = |e| ServiceError::Store(self.failed(e));
        match &self.kind {
            Kind::Memory(_) => Ok(()),
            Kind::Sqlite(store) => store
                .delete_session(digest)
                .await
                .map(|_| ())
                .map_err(failed),
            Kind::Redis(shared) => shared
                .redis
                .delete_session(&hex::encode(digest))
                .await
                .map_err(failed),
        }
    }

    /// Tells the other instances a session ended (their sockets close too).
    pub(in crate::service) async fn announce_session_closed(&self, digest: SessionDigest) {
        let closed = EventKind::SessionClosed {
            session_digest: hex::encode(digest),
        };
        self.announce_now("", closed).await;
    }

    /// Deletes sessions already gone from memory (ended by the admin, the
    /// cap or a restore that refused them) and, under Redis, tells the
    /// other instances; awaited.
    pub(in crate::service) async fn end_sessions(
        &self,
        digests: &[SessionDigest],
    ) -> Result<(), ServiceError> {
        if digests.is_empty() {
            return Ok(());
        }
        let failed = |e| ServiceError::Store(self.failed(e));
        match &self.kind {
            Kind::Memory(_) => Ok(()),
            Kind::Sqlite(store) => store
                .delete_sessions(digests.to_vec())
                .await
                .map(|_| ())
                .map_err(failed),
            Kind::Redis(shared) => {
                let hex: Vec<String> = digests.iter().map(hex::encode).collect();
                shared
                    .redis
                    .delete_sessions_by_digest(&hex)
                    .await
                    .map_err(failed)?;
                for digest in digests {
                    self.announce_session_closed(*digest).await;
                }
                Ok(())
            }
        }
    }

    /// Writes a session's later expiry in the background: the request that
    /// used it does not wait. `session`: the session as this instance holds
    /// it (its other fields never change). If the write fails, the stored
    /// expiry is the previous one (at most a refresh interval earlier).
    pub(in crate::service) fn extend_session_behind(
        &self,
        digest: SessionDigest,
        session: SessionInfo,
        expires_at_ms: u64,
    ) {
        match &self.kind {
            Kind::Memory(_) => {}
            Kind::Sqlite(store) => {
                let store = store.clone();
                self.behind(async move {
                    store
                        .extend_session(digest, expires_at_ms)
                        .await
                        .map(|_| ())
                });
            }
            Kind::Redis(shared) => {
                let redis = shared.redis.clone();
                let Some(inner) = self.service.upgrade() else {
                    return;
                };
                self.spawn(async move {
                    let backend = &inner.backend;
                    // The whole entry is rewritten, only if it still exists.
                    let entry = shared_entry(&session, expires_at_ms);
                    match redis.extend_session(&hex::encode(digest), &entry).await {
                        Ok(true) => backend.announce(
                            "",
                            EventKind::SessionExtended {
                                session_digest: hex::encode(digest),
                                expires_at_ms,
                            },
                        ),
                        // Signed out or revoked elsewhere meanwhile: nothing to share.
                        Ok(false) => {}
                        Err(e) => backend.report(&e),
                    }
                });
            }
        }
    }
}

/// A session as Redis keeps it.
fn shared_entry(session: &SessionInfo, expires_at_ms: u64) -> SharedSession {
    SharedSession {
        workspace_id: session.caller.workspace_id().map(str::to_string),
        created_at_ms: session.created_at_ms,
        expires_at_ms,
        absolute_expires_at_ms: session.absolute_expires_at_ms,
        admin_key_binding: session.admin_key.map(hex::encode),
    }
}
