//! Browser sessions (`sessions` table), by the digest of their id.

use super::values::{bad_value, get_u64, sat};
use super::SqliteStore;
use crate::store::{StoreError, StoredSession};
use rusqlite::params;

impl SqliteStore {
    /// Stores a session just opened. `workspace_id` `None` is the admin.
    pub async fn save_session(&self, session: &StoredSession) -> Result<(), StoreError> {
        let s = session.clone();
        self.write("save session", move |c| {
            c.prepare_cached(
                "INSERT INTO sessions (digest, workspace_id, expires_at_ms, created_at_ms,
                                       absolute_expires_at_ms, admin_key_binding)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (digest) DO UPDATE SET
                    workspace_id = excluded.workspace_id,
                    expires_at_ms = excluded.expires_at_ms,
                    created_at_ms = excluded.created_at_ms,
                    absolute_expires_at_ms = excluded.absolute_expires_at_ms,
                    admin_key_binding = excluded.admin_key_binding",
            )?
            .execute(params![
                &s.digest[..],
                s.workspace_id,
                sat(s.expires_at_ms),
                sat(s.created_at_ms),
                sat(s.absolute_expires_at_ms),
                s.admin_key_binding.as_ref().map(|b| &b[..]),
            ])?;
            Ok(())
        })
        .await
    }

    /// Moves a stored session's expiry forward. A session that is gone (signed
    /// out, revoked, pruned) stays gone: `false` then.
    pub async fn extend_session(
        &self,
        digest: [u8; 32],
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write("extend session", move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE sessions SET expires_at_ms = ?2
                     WHERE digest = ?1 AND expires_at_ms < ?2",
                )?
                .execute(params![&digest[..], sat(expires_at_ms)])?;
            Ok(changed > 0)
        })
        .await
    }

    /// Ends a session. `false` if it was not stored.
    pub async fn delete_session(&self, digest: [u8; 32]) -> Result<bool, StoreError> {
        self.write("delete session", move |c| {
            let deleted = c
                .prepare_cached("DELETE FROM sessions WHERE digest = ?1")?
                .execute([&digest[..]])?;
            Ok(deleted > 0)
        })
        .await
    }

    /// Every session that has not ended (sliding or absolute) at `now_ms`.
    pub async fn load_sessions(&self, now_ms: u64) -> Result<Vec<StoredSession>, StoreError> {
        let now = sat(now_ms);
        self.read("load sessions", move |c| {
            let mut stmt = c.prepare(
                "SELECT digest, workspace_id, expires_at_ms, created_at_ms,
                        absolute_expires_at_ms, admin_key_binding
                 FROM sessions
                 WHERE expires_at_ms > ?1 AND absolute_expires_at_ms > ?1",
            )?;
            let rows = stmt.query_map([now], |row| {
                let digest32 = |idx: usize, bytes: Vec<u8>| {
                    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                        bad_value(
                            idx,
                            format!("session digest of {} bytes, not 32", bytes.len()),
                        )
                    })
                };
                let digest = digest32(0, row.get(0)?)?;
                let binding: Option<Vec<u8>> = row.get(5)?;
                Ok(StoredSession {
                    digest,
                    workspace_id: row.get(1)?,
                    expires_at_ms: get_u64(row, 2)?,
                    created_at_ms: get_u64(row, 3)?,
                    absolute_expires_at_ms: get_u64(row, 4)?,
                    admin_key_binding: binding.map(|b| digest32(5, b)).transpose()?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Deletes these sessions (ended by the cap or by the admin), in one
    /// write.
    pub async fn delete_sessions(&self, digests: Vec<[u8; 32]>) -> Result<u64, StoreError> {
        self.write("delete sessions", move |c| {
            let mut deleted = 0;
            let mut stmt = c.prepare_cached("DELETE FROM sessions WHERE digest = ?1")?;
            for digest in &digests {
                deleted += stmt.execute([&digest[..]])? as u64;
            }
            Ok(deleted)
        })
        .await
    }
}
