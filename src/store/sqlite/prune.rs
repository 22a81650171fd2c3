//! Retention: one write that deletes what has aged out of every table
//! (usage, transitions, audit entries, expired sessions), so it spans the
//! table families and lives on its own.

use super::values::sat;
use super::SqliteStore;
use crate::store::{PruneStats, StoreError};

impl SqliteStore {
    /// Deletes usage of every second that ended before `now - usage_horizon`
    /// (rows that can no longer be in any window), transitions and audit
    /// entries older than `now - history_horizon`, and sessions expired at `now`.
    pub async fn prune(
        &self,
        now_ms: u64,
        usage_horizon_ms: u64,
        history_horizon_ms: u64,
    ) -> Result<PruneStats, StoreError> {
        // A row for second s covers [s*1000, s*1000 + 999]: it is entirely
        // before the cutoff exactly when s < cutoff / 1000 (floor).
        let usage_cutoff_second = sat(now_ms.saturating_sub(usage_horizon_ms) / 1000);
        let history_cutoff_ms = sat(now_ms.saturating_sub(history_horizon_ms));
        self.write("prune", move |c| {
            let usage_rows = c
                .prepare_cached("DELETE FROM usage WHERE second < ?1")?
                .execute([usage_cutoff_second])?;
            let transitions = c
                .prepare_cached("DELETE FROM transitions WHERE at_ms < ?1")?
                .execute([history_cutoff_ms])?;
            let audit_entries = c
                .prepare_cached("DELETE FROM audit WHERE at_ms < ?1")?
                .execute([history_cutoff_ms])?;
            let sessions = c
                .prepare_cached(
                    "DELETE FROM sessions WHERE expires_at_ms <= ?1 OR absolute_expires_at_ms <= ?1",
                )?
                .execute([sat(now_ms)])?;
            Ok(PruneStats {
                usage_rows: usage_rows as u64,
                transitions: transitions as u64,
                audit_entries: audit_entries as u64,
                sessions: sessions as u64,
            })
        })
        .await
    }
}
