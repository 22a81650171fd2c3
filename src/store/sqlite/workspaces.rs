//! Workspaces and their key digests and limits (`workspaces` table).

use super::values::{bad_value, get_u64, sat};
use super::SqliteStore;
use crate::store::{StoreError, StoredWorkspace};
use crate::wire::Limits;
use rusqlite::params;

impl SqliteStore {
    /// Creates the workspace, or replaces everything stored about it.
    pub async fn save_workspace(
        &self,
        id: &str,
        key_digest: [u8; 32],
        limits: Limits,
        created_at_ms: u64,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write("save workspace", move |c| {
            c.prepare_cached(
                "INSERT INTO workspaces (id, key_digest, requests_per_minute, requests_per_day,
                                         tokens_per_minute, tokens_per_day, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET
                    key_digest = excluded.key_digest,
                    requests_per_minute = excluded.requests_per_minute,
                    requests_per_day = excluded.requests_per_day,
                    tokens_per_minute = excluded.tokens_per_minute,
                    tokens_per_day = excluded.tokens_per_day,
                    created_at_ms = excluded.created_at_ms",
            )?
            .execute(params![
                id,
                &key_digest[..],
                sat(limits.requests_per_minute),
                sat(limits.requests_per_day),
                sat(limits.tokens_per_minute),
                sat(limits.tokens_per_day),
                sat(created_at_ms),
            ])?;
            Ok(())
        })
        .await
    }

    /// Replaces the workspace's limits and settings (JSON, `None` for the
    /// defaults). `false` if there is no such workspace.
    pub async fn update_workspace_settings(
        &self,
        id: &str,
        limits: Limits,
        settings: Option<String>,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write("update workspace settings", move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE workspaces SET requests_per_minute = ?2, requests_per_day = ?3,
                        tokens_per_minute = ?4, tokens_per_day = ?5, settings = ?6
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    sat(limits.requests_per_minute),
                    sat(limits.requests_per_day),
                    sat(limits.tokens_per_minute),
                    sat(limits.tokens_per_day),
                    settings
                ])?;
            Ok(changed > 0)
        })
        .await
    }

    /// Replaces the workspace's key digest and, in the same transaction, ends
    /// its browser sessions (they were opened with a key that no longer
    /// works). `false` if there is no such workspace.
    pub async fn update_workspace_key(
        &self,
        id: &str,
        key_digest: [u8; 32],
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write("update workspace key", move |c| {
            let changed = c
                .prepare_cached("UPDATE workspaces SET key_digest = ?2 WHERE id = ?1")?
                .execute(params![id, &key_digest[..]])?;
            c.prepare_cached("DELETE FROM sessions WHERE workspace_id = ?1")?
                .execute([&id])?;
            Ok(changed > 0)
        })
        .await
    }

    /// Deletes the workspace with its usage, alert history, upstream state and
    /// sessions (a workspace later created with the same id starts clean). The
    /// audit trail is kept. `false` if there was no such workspace.
    pub async fn delete_workspace(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write("delete workspace", move |c| {
            for sql in [
                "DELETE FROM usage WHERE workspace_id = ?1",
                "DELETE FROM spend WHERE workspace_id = ?1",
                "DELETE FROM usage_by WHERE workspace_id = ?1",
                "DELETE FROM transitions WHERE workspace_id = ?1",
                "DELETE FROM upstream_state WHERE workspace_id = ?1",
                "DELETE FROM sessions WHERE workspace_id = ?1",
            ] {
                c.prepare_cached(sql)?.execute([&id])?;
            }
            let deleted = c
                .prepare_cached("DELETE FROM workspaces WHERE id = ?1")?
                .execute([&id])?;
            Ok(deleted > 0)
        })
        .await
    }

    /// Every workspace, by id.
    pub async fn load_workspaces(&self) -> Result<Vec<StoredWorkspace>, StoreError> {
        self.read("load workspaces", |c| {
            let mut stmt = c.prepare(
                "SELECT id, key_digest, requests_per_minute, requests_per_day,
                        tokens_per_minute, tokens_per_day, created_at_ms, settings
                 FROM workspaces ORDER BY id",
            )?;
            let rows = stmt.query_map([], |row| {
                let digest: Vec<u8> = row.get(1)?;
                let key_digest = <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
                    bad_value(1, format!("key digest of {} bytes, not 32", digest.len()))
                })?;
                Ok(StoredWorkspace {
                    id: row.get(0)?,
                    key_digest,
                    limits: Limits {
                        requests_per_minute: get_u64(row, 2)?,
                        requests_per_day: get_u64(row, 3)?,
                        tokens_per_minute: get_u64(row, 4)?,
                        tokens_per_day: get_u64(row, 5)?,
                    },
                    created_at_ms: get_u64(row, 6)?,
                    settings: row.get(7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}
