//! Browser sessions in the `qa:sessions` hash, and the session epoch moved
//! by every session deleted before its expiry.

use super::{RedisShared, SESSIONS_KEY, SESSION_EPOCH};
use crate::store::StoreError;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

/// A browser session as Redis holds it (keyed by the hex digest of its id).
/// Entries written before sessions had lifetimes and bindings are read as
/// opened a TTL before their expiry (the earliest they can have been) and
/// without an admin key binding (so an admin session of then ends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSession {
    /// `None`: the admin.
    pub workspace_id: Option<String>,
    pub expires_at_ms: u64,
    #[serde(default)]
    pub created_at_ms: u64,
    #[serde(default)]
    pub absolute_expires_at_ms: u64,
    /// Admin sessions: hex of `browser_session::admin_key_binding` of the admin key
    /// that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key_binding: Option<String>,
}

impl RedisShared {
    pub async fn save_session(
        &self,
        digest_hex: &str,
        session: &SharedSession,
    ) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let json = serde_json::to_string(session).unwrap_or_default();
        con.hset::<_, _, _, ()>(SESSIONS_KEY, digest_hex, json)
            .await
            .map_err(|e| self.failed("save session", e))
    }

    /// Moves a stored session's expiry forward; `false` if it is gone.
    pub async fn extend_session(
        &self,
        digest_hex: &str,
        session: &SharedSession,
    ) -> Result<bool, StoreError> {
        let mut con = self.connection.clone();
        let json = serde_json::to_string(session).unwrap_or_default();
        let changed: i64 = self
            .extend_session_script
            .key(SESSIONS_KEY)
            .arg(digest_hex)
            .arg(json)
            .arg(session.expires_at_ms)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed("extend session", e))?;
        Ok(changed == 1)
    }

    /// Ends a session (signed out), moving the session epoch in the same
    /// transaction.
    pub async fn delete_session(&self, digest_hex: &str) -> Result<(), StoreError> {
        self.delete_sessions_by_digest(&[digest_hex.to_string()])
            .await
    }

    /// Deletes these sessions (ended by the cap or by the admin).
    pub async fn delete_sessions_by_digest(
        &self,
        digests_hex: &[String],
    ) -> Result<(), StoreError> {
        if digests_hex.is_empty() {
            return Ok(());
        }
        let mut con = self.connection.clone();
        // One MULTI: no instance can read the epoch as moved and still find
        // the sessions, nor find them gone with the epoch unmoved.
        redis::pipe()
            .atomic()
            .hdel(SESSIONS_KEY, digests_hex)
            .ignore()
            .incr(SESSION_EPOCH, 1)
            .ignore()
            .query_async::<()>(&mut con)
            .await
            .map_err(|e| self.failed("delete sessions", e))
    }

    /// Ends every session of a workspace (its keys were rotated or revoked).
    pub async fn delete_workspace_sessions(&self, id: &str) -> Result<u64, StoreError> {
        self.delete_sessions("workspace", id.to_string(), "delete workspace sessions")
            .await
    }

    /// Deletes sessions expired at `now_ms`.
    pub async fn prune_sessions(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.delete_sessions("expired", now_ms.to_string(), "prune sessions")
            .await
    }

    async fn delete_sessions(
        &self,
        rule: &str,
        arg: String,
        op: &'static str,
    ) -> Result<u64, StoreError> {
        let mut con = self.connection.clone();
        let deleted: i64 = self
            .delete_sessions_script
            .key(SESSIONS_KEY)
            .key(SESSION_EPOCH)
            .arg(rule)
            .arg(arg)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed(op, e))?;
        Ok(deleted.max(0) as u64)
    }

    /// Every readable session not expired at `now_ms`: (hex digest, session).
    pub async fn load_sessions(
        &self,
        now_ms: u64,
    ) -> Result<Vec<(String, SharedSession)>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Vec<(String, String)> = con
            .hgetall(SESSIONS_KEY)
            .await
            .map_err(|e| self.failed("load sessions", e))?;
        Ok(raw
            .into_iter()
            .filter_map(|(digest, json)| {
                let mut session: SharedSession = serde_json::from_str(&json).ok()?;
                if session.absolute_expires_at_ms == 0 {
                    let policy = crate::browser_session::WORKSPACE_SESSIONS;
                    let ttl = u64::try_from(policy.idle_ttl.as_millis()).unwrap_or(u64::MAX);
                    session.created_at_ms = session.expires_at_ms.saturating_sub(ttl);
                    session.absolute_expires_at_ms = policy.absolute_end(session.created_at_ms);
                }
                (session.expires_at_ms > now_ms && session.absolute_expires_at_ms > now_ms)
                    .then_some((digest, session))
            })
            .collect())
    }
}
