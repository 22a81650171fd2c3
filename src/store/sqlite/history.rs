//! The alert history (`transitions` table) and the admin audit trail
//! (`audit` table): append-only, read newest `limit` entries, oldest first
//! (the admin page reads the audit trail newest first, optionally of one
//! workspace).

use super::values::{get_u64, sat, sat_usize};
use super::SqliteStore;
use crate::store::{StoreError, StoredAudit, StoredTransition};
use rusqlite::params;

impl SqliteStore {
    // ---- alert history ----------------------------------------------------

    pub async fn append_transition(
        &self,
        workspace_id: &str,
        from: &str,
        to: &str,
        at_ms: u64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (id, from, to, reason) = (
            workspace_id.to_string(),
            from.to_string(),
            to.to_string(),
            reason.to_string(),
        );
        self.write("append transition", move |c| {
            c.prepare_cached(
                "INSERT INTO transitions (workspace_id, from_status, to_status, at_ms, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, from, to, sat(at_ms), reason])?;
            Ok(())
        })
        .await
    }

    /// The workspace's last `limit` transitions, oldest first (newest last), in
    /// the order they were appended.
    pub async fn load_transitions(
        &self,
        workspace_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredTransition>, StoreError> {
        let id = workspace_id.to_string();
        let limit = sat_usize(limit);
        self.read("load transitions", move |c| {
            let mut stmt = c.prepare(
                "SELECT workspace_id, from_status, to_status, at_ms, reason FROM (
                    SELECT * FROM transitions WHERE workspace_id = ?1
                    ORDER BY seq DESC LIMIT ?2
                 ) ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![id, limit], |row| {
                Ok(StoredTransition {
                    workspace_id: row.get(0)?,
                    from: row.get(1)?,
                    to: row.get(2)?,
                    at_ms: get_u64(row, 3)?,
                    reason: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    // ---- audit trail ------------------------------------------------------

    pub async fn append_audit(
        &self,
        action: &str,
        workspace_id: Option<&str>,
        detail: &str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let (action, id, detail) = (
            action.to_string(),
            workspace_id.map(str::to_string),
            detail.to_string(),
        );
        self.write("append audit entry", move |c| {
            c.prepare_cached(
                "INSERT INTO audit (at_ms, action, workspace_id, detail) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![sat(at_ms), action, id, detail])?;
            Ok(())
        })
        .await
    }

    /// The last `limit` audit entries, oldest first (newest last).
    pub async fn load_audit(&self, limit: usize) -> Result<Vec<StoredAudit>, StoreError> {
        let limit = sat_usize(limit);
        self.read("load audit trail", move |c| {
            let mut stmt = c.prepare(
                "SELECT at_ms, action, workspace_id, detail FROM (
                    SELECT * FROM audit ORDER BY seq DESC LIMIT ?1
                 ) ORDER BY seq",
            )?;
            let rows = stmt.query_map([limit], |row| {
                Ok(StoredAudit {
                    at_ms: get_u64(row, 0)?,
                    action: row.get(1)?,
                    workspace_id: row.get(2)?,
                    detail: row.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// The newest `limit` audit entries, newest first; only `workspace_id`'s
    /// when it is given.
    pub async fn load_audit_newest(
        &self,
        workspace_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredAudit>, StoreError> {
        let id = workspace_id.map(str::to_string);
        let limit = sat_usize(limit);
        self.read("load audit trail", move |c| {
            // `?1 IS NULL` keeps one statement for both; the trail is pruned
            // to the history horizon, so the scan by `seq` stays short.
            let mut stmt = c.prepare_cached(
                "SELECT at_ms, action, workspace_id, detail FROM audit
                 WHERE ?1 IS NULL OR workspace_id = ?1
                 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![id, limit], |row| {
                Ok(StoredAudit {
                    at_ms: get_u64(row, 0)?,
                    action: row.get(1)?,
                    workspace_id: row.get(2)?,
                    detail: row.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}
