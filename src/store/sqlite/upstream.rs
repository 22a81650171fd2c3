//! The upstream state of each workspace (`upstream_state` table): one opaque
//! JSON text per workspace, replaced as a whole.

use super::SqliteStore;
use crate::store::StoreError;
use rusqlite::params;

/// Replaces a workspace's upstream state (shared with the write-behind batch).
pub(super) const SAVE_UPSTREAM_STATE: &str =
    "INSERT INTO upstream_state (workspace_id, state) VALUES (?1, ?2)
     ON CONFLICT (workspace_id) DO UPDATE SET state = excluded.state";

impl SqliteStore {
    /// Stores the workspace's upstream state, replacing the previous one. The
    /// text is opaque to the store (the engine serialises it, as JSON).
    pub async fn save_upstream_state(
        &self,
        workspace_id: &str,
        json: &str,
    ) -> Result<(), StoreError> {
        let (id, json) = (workspace_id.to_string(), json.to_string());
        self.write("save upstream state", move |c| {
            c.prepare_cached(SAVE_UPSTREAM_STATE)?
                .execute(params![id, json])?;
            Ok(())
        })
        .await
    }

    /// `(workspace id, state)` for every workspace that has one, by id.
    pub async fn load_upstream_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read("load upstream states", |c| {
            let mut stmt =
                c.prepare("SELECT workspace_id, state FROM upstream_state ORDER BY workspace_id")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}
