//! Per-second usage (`usage` table), the admin reset that clears it, and the
//! `Idempotency-Key` claims that guard a record (`idempotency_keys` table).

use super::upstream::SAVE_UPSTREAM_STATE;
use super::values::{get_u64, sat};
use super::SqliteStore;
use crate::store::{ClaimOutcome, DetailRow, Dimension, IdempotencyClaim, StoreError, UsageRow};
use rusqlite::params;

/// Adds to a workspace's second (summing, saturating at `i64::MAX` as SQLite
/// integers do): the one upsert both usage writes share.
const ADD_USAGE: &str = "INSERT INTO usage (workspace_id, second, requests, tokens)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (workspace_id, second) DO UPDATE SET
        requests = CASE WHEN requests > 9223372036854775807 - excluded.requests
                   THEN 9223372036854775807 ELSE requests + excluded.requests END,
        tokens = CASE WHEN tokens > 9223372036854775807 - excluded.tokens
                 THEN 9223372036854775807 ELSE tokens + excluded.tokens END";

/// Adds to a workspace's spend on one local day (saturating).
const ADD_SPEND: &str = "INSERT INTO spend (workspace_id, day, nano_usd) VALUES (?1, ?2, ?3)
     ON CONFLICT (workspace_id, day) DO UPDATE SET
        nano_usd = CASE WHEN nano_usd > 9223372036854775807 - excluded.nano_usd
                   THEN 9223372036854775807 ELSE nano_usd + excluded.nano_usd END";

/// Adds to a workspace's usage of one model or user on one local day.
const ADD_DETAIL: &str =
    "INSERT INTO usage_by (workspace_id, day, dimension, name, requests, tokens, nano_usd)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (workspace_id, day, dimension, name) DO UPDATE SET
        requests = CASE WHEN requests > 9223372036854775807 - excluded.requests
                   THEN 9223372036854775807 ELSE requests + excluded.requests END,
        tokens = CASE WHEN tokens > 9223372036854775807 - excluded.tokens
                 THEN 9223372036854775807 ELSE tokens + excluded.tokens END,
        nano_usd = CASE WHEN nano_usd > 9223372036854775807 - excluded.nano_usd
                   THEN 9223372036854775807 ELSE nano_usd + excluded.nano_usd END";

impl SqliteStore {
    /// The rows of `usage_by` for local days `[first, last]` (`YYYY-MM-DD`)
    /// of one workspace, or of every workspace when `workspace` is `None`.
    pub async fn load_detail(
        &self,
        workspace: Option<&str>,
        first: &str,
        last: &str,
    ) -> Result<Vec<DetailRow>, StoreError> {
        let (workspace, first, last) = (
            workspace.map(str::to_string),
            first.to_string(),
            last.to_string(),
        );
        self.read("load usage by model and user", move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT workspace_id, day, dimension, name, requests, tokens, nano_usd FROM usage_by
                 WHERE (?1 IS NULL OR workspace_id = ?1) AND day >= ?2 AND day <= ?3
                 ORDER BY workspace_id, day, dimension, nano_usd DESC, tokens DESC, name",
            )?;
            let rows = stmt.query_map(params![workspace, first, last], |row| {
                let dimension: String = row.get(2)?;
                Ok(DetailRow {
                    workspace_id: row.get(0)?,
                    day: row.get(1)?,
                    dimension: if dimension == "user" {
                        Dimension::User
                    } else {
                        Dimension::Model
                    },
                    name: row.get(3)?,
                    requests: get_u64(row, 4)?,
                    tokens: get_u64(row, 5)?,
                    nano_usd: get_u64(row, 6)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// One workspace's usage per second in `[from_ms, to_ms)`: (second,
    /// requests, tokens), oldest first.
    pub async fn usage_between(
        &self,
        workspace: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, u64, u64)>, StoreError> {
        let workspace = workspace.to_string();
        self.read("load usage for an export", move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT second, requests, tokens FROM usage
                 WHERE workspace_id = ?1 AND second >= ?2 AND second < ?3 ORDER BY second",
            )?;
            let rows = stmt.query_map(
                params![workspace, sat(from_ms / 1000), sat(to_ms.div_ceil(1000))],
                |row| Ok((get_u64(row, 0)?, get_u64(row, 1)?, get_u64(row, 2)?)),
            )?;
            rows.collect()
        })
        .await
    }

    /// Every workspace's spend per local day: (workspace, `YYYY-MM-DD`, nano-dollars).
    pub async fn load_spend(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.read("load spend", |c| {
            let mut stmt = c.prepare("SELECT workspace_id, day, nano_usd FROM spend")?;
            let rows =
                stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, get_u64(row, 2)?)))?;
            rows.collect()
        })
        .await
    }

    /// Adds `requests` and `tokens` to the workspace's row for the second
    /// `at_ms / 1000`. Resolves once the sum is committed to disk. Counts
    /// saturate at `i64::MAX` instead of overflowing.
    pub async fn append_usage(
        &self,
        workspace_id: &str,
        at_ms: u64,
        requests: u64,
        tokens: u64,
    ) -> Result<(), StoreError> {
        if requests == 0 && tokens == 0 {
            return Ok(());
        }
        let id = workspace_id.to_string();
        self.write("append usage", move |c| {
            c.prepare_cached(ADD_USAGE)?.execute(params![
                id,
                sat(at_ms / 1000),
                sat(requests),
                sat(tokens)
            ])?;
            Ok(())
        })
        .await
    }

    /// Writes a batch of the background's usage rows and upstream states in
    /// ONE transaction (one fsync): the group commit of the proxy's
    /// write-behind, however many workspaces and seconds it holds. Rows are
    /// summed into what is there ([`UsageRow::second`] is a second, not ms);
    /// states replace the workspace's previous one.
    pub async fn write_behind_batch(
        &self,
        usage: Vec<UsageRow>,
        upstream_states: Vec<(String, String)>,
        spend: Vec<(String, String, u64)>,
        detail: Vec<DetailRow>,
    ) -> Result<(), StoreError> {
        if usage.is_empty() && upstream_states.is_empty() && spend.is_empty() && detail.is_empty() {
            return Ok(());
        }
        self.write("write-behind batch", move |c| {
            let mut add = c.prepare_cached(ADD_USAGE)?;
            for row in usage.iter().filter(|r| r.requests > 0 || r.tokens > 0) {
                add.execute(params![
                    row.workspace_id,
                    sat(row.second),
                    sat(row.requests),
                    sat(row.tokens)
                ])?;
            }
            let mut save = c.prepare_cached(SAVE_UPSTREAM_STATE)?;
            for (id, json) in &upstream_states {
                save.execute(params![id, json])?;
            }
            let mut spent = c.prepare_cached(ADD_SPEND)?;
            for (id, day, nano) in &spend {
                spent.execute(params![id, day, sat(*nano)])?;
            }
            let mut by = c.prepare_cached(ADD_DETAIL)?;
            for row in &detail {
                by.execute(params![
                    row.workspace_id,
                    row.day,
                    row.dimension.as_str(),
                    row.name,
                    sat(row.requests),
                    sat(row.tokens),
                    sat(row.nano_usd)
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// Like [`append_usage`](Self::append_usage), guarded by an
    /// idempotency claim: in ONE transaction, the key is looked up and, if it
    /// is new (or expired), kept together with the usage. So a retry is
    /// either counted with its key or replayed, never both, and two
    /// concurrent uses of one key count once (the writer runs them one after
    /// the other).
    pub async fn append_usage_once(
        &self,
        workspace_id: &str,
        at_ms: u64,
        requests: u64,
        tokens: u64,
        claim: IdempotencyClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        let id = workspace_id.to_string();
        self.write("append usage once", move |c| {
            let prior: Option<Vec<u8>> = c
                .prepare_cached(
                    "SELECT fingerprint FROM idempotency_keys
                     WHERE workspace_id = ?1 AND key_digest = ?2 AND created_at_ms >= ?3",
                )?
                .query_row(
                    params![id, &claim.key_digest[..], sat(claim.not_before_ms)],
                    |row| row.get(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            if let Some(prior) = prior {
                return Ok(if prior == claim.fingerprint {
                    ClaimOutcome::Replayed
                } else {
                    ClaimOutcome::Mismatch
                });
            }
            c.prepare_cached(
                "INSERT INTO idempotency_keys (workspace_id, key_digest, fingerprint, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (workspace_id, key_digest) DO UPDATE SET
                    fingerprint = excluded.fingerprint,
                    created_at_ms = excluded.created_at_ms",
            )?
            .execute(params![
                id,
                &claim.key_digest[..],
                &claim.fingerprint[..],
                sat(at_ms)
            ])?;
            if requests > 0 || tokens > 0 {
                c.prepare_cached(ADD_USAGE)?.execute(params![
                    id,
                    sat(at_ms / 1000),
                    sat(requests),
                    sat(tokens)
                ])?;
            }
            Ok(ClaimOutcome::Counted)
        })
        .await
    }

    /// Deletes the per-day rows (`usage_by`, `spend`) of local days before
    /// `before_day` (`YYYY-MM-DD`); how many went. Kept for ever, a tenant
    /// naming a new model and user on every call added 2 002 rows a day
    /// to the file, each day, past anything the ledger or an export reads.
    pub async fn prune_days(&self, before_day: &str) -> Result<u64, StoreError> {
        let before_day = before_day.to_string();
        self.write("prune per-day rows", move |c| {
            let mut deleted = 0;
            for sql in [
                "DELETE FROM usage_by WHERE day < ?1",
                "DELETE FROM spend WHERE day < ?1",
            ] {
                deleted += c.prepare_cached(sql)?.execute([&before_day])?;
            }
            Ok(deleted as u64)
        })
        .await
    }

    /// Deletes idempotency keys created before `before_ms`; how many went.
    pub async fn prune_idempotency_keys(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.write("prune idempotency keys", move |c| {
            let deleted = c
                .prepare_cached("DELETE FROM idempotency_keys WHERE created_at_ms < ?1")?
                .execute([sat(before_ms)])?;
            Ok(deleted as u64)
        })
        .await
    }

    /// Every usage row of a second that ends at or after `since_ms` (so the
    /// second holding `since_ms` is included), by workspace then second.
    pub async fn load_usage(&self, since_ms: u64) -> Result<Vec<UsageRow>, StoreError> {
        let since_second = sat(since_ms / 1000);
        self.read("load usage", move |c| {
            let mut stmt = c.prepare(
                "SELECT workspace_id, second, requests, tokens FROM usage
                 WHERE second >= ?1 ORDER BY workspace_id, second",
            )?;
            let rows = stmt.query_map([since_second], |row| {
                Ok(UsageRow {
                    workspace_id: row.get(0)?,
                    second: get_u64(row, 1)?,
                    requests: get_u64(row, 2)?,
                    tokens: get_u64(row, 3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Forgets a workspace's usage and upstream state (admin reset). Ordered with
    /// every other write, so usage appended after the reset is kept.
    pub async fn clear_usage(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write("clear usage", move |c| {
            for sql in [
                "DELETE FROM usage WHERE workspace_id = ?1",
                "DELETE FROM upstream_state WHERE workspace_id = ?1",
                "DELETE FROM spend WHERE workspace_id = ?1",
                "DELETE FROM usage_by WHERE workspace_id = ?1",
            ] {
                c.prepare_cached(sql)?.execute([&id])?;
            }
            Ok(())
        })
        .await
    }
}
