//! The SQLite store.
//!
//! # Writes: one writer thread, group commit
//!
//! Every write goes to one dedicated OS thread that owns the read-write
//! [`Connection`]. SQLite allows one writer at a time anyway, so a single
//! owner removes lock contention (no `SQLITE_BUSY` between our own tasks) and
//! keeps blocking file I/O off the async runtime.
//!
//! A write is *acknowledged only once it is on disk*: the caller's future
//! resolves after the `COMMIT` that contains it has returned, and the database
//! runs with `journal_mode=WAL` and `synchronous=FULL`, so that commit has
//! fsynced the WAL. Paying one fsync per record would cap the server at a few
//! hundred (disk) to a few thousand (SSD) records a second, so commits are
//! grouped: the writer takes the first queued operation, then everything else
//! already queued (up to [`MAX_BATCH`]), runs them all in ONE transaction,
//! commits once, and only then answers each caller through its oneshot. Under
//! load, the queue fills while a commit's fsync is in flight, so the next
//! batch is larger: the fsync cost is shared by everyone who arrived during
//! the previous one. With one caller at a time a batch is one operation and
//! latency is a single fsync, as without batching.
//!
//! Each operation in a batch runs inside its own `SAVEPOINT`, so one failing
//! operation (a constraint, say) is rolled back and reported to its caller
//! alone, while the others still commit. If SQLite abandons the whole
//! transaction (disk full, I/O error) or the `COMMIT` fails, every caller of
//! the batch gets the error: nothing is ever acknowledged that is not on disk.
//!
//! The queue is a bounded tokio channel ([`QUEUE_CAPACITY`]): callers await
//! their acknowledgement, so the number of queued operations is bounded by the
//! number of concurrent callers anyway; the bound only adds async back-pressure
//! (`send().await`, never a blocked runtime thread) if some caller ever fires
//! writes without awaiting them.
//!
//! # Reads: a second, read-only connection
//!
//! Reads use their own read-only connection (behind a mutex, run on the
//! blocking pool). In WAL mode readers and the writer do not block each
//! other, so a large read (loading a day of usage at start, a long history)
//! never delays the group commits every request is waiting on. Consistency is
//! the same as through the writer: a write is acknowledged after its commit,
//! and a read started after that sees it.

use super::migrations;
use super::{
    ClaimOutcome, IdempotencyClaim, PruneStats, StoreError, StoredAudit, StoredSession,
    StoredTransition, StoredWorkspace, UsageRow,
};
use crate::wire::Limits;
use rusqlite::{params, Connection, OpenFlags, Row};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most operations committed by one transaction.
const MAX_BATCH: usize = 1000;
/// Most operations waiting for the writer (see the module docs).
const QUEUE_CAPACITY: usize = 8192;
/// How long a statement waits for a lock held by another connection (our own
/// reader during a checkpoint, or another process on the same file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Integrity problems reported by the start-up check, at most.
const QUICK_CHECK_MAX_ERRORS: u32 = 10;

/// The store. Cheap to clone: every clone shares one writer thread and one
/// read connection.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    queue: mpsc::Sender<Msg>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database at `path`,
    /// checks its integrity, runs the schema migrations and starts the writer.
    ///
    /// Fails, with a message naming the file, if the directory or file cannot
    /// be created or written, if the file is not a SQLite database or is
    /// corrupt, or if its schema is newer than this program. Blocking: call it
    /// at start, before serving (or from `spawn_blocking`).
    ///
    /// `PRAGMA quick_check` reads the whole file, so opening a large database
    /// takes time proportional to its size (roughly a second per few hundred MB).
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let open_err = |problem: String| StoreError::Open {
            path: path.clone(),
            problem,
        };
        create_parent_dir(&path).map_err(open_err)?;
        let writer = open_writer(&path)?;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.busy_timeout(BUSY_TIMEOUT).map(|()| c))
        .map_err(|e| open_err(format!("cannot open a read connection: {e}")))?;

        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("quota-store-writer".into())
            .spawn(move || Writer::new(writer, thread_path).run(receiver))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;

        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                queue,
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Finishes every write queued before it, checkpoints the WAL into the
    /// main file and closes the write connection. Every later write, from any
    /// clone, fails with [`StoreError::Closed`]; reads keep working until the
    /// last clone is dropped. Optional:
    /// dropping every clone also stops the writer, and acknowledged writes are
    /// on disk either way; this only makes the shutdown tidy and observable.
    pub async fn close(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        if self.inner.queue.send(Msg::Close(ack)).await.is_err() {
            return Ok(()); // Already closed.
        }
        done.await.unwrap_or(Ok(()))
    }

    /// Checks that the writer is alive and the database answers, through the
    /// same queue and transaction as every write.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.write("ping", |c| {
            c.prepare_cached("SELECT count(*) FROM meta")?
                .query_row([], |row| row.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }

    // ---- workspaces -------------------------------------------------------

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

    /// Forgets a workspace's usage and upstream state (admin reset). Ordered with
    /// every other write, so usage appended after the reset is kept.
    pub async fn clear_usage(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write("clear usage", move |c| {
            for sql in [
                "DELETE FROM usage WHERE workspace_id = ?1",
                "DELETE FROM upstream_state WHERE workspace_id = ?1",
            ] {
                c.prepare_cached(sql)?.execute([&id])?;
            }
            Ok(())
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
                        tokens_per_minute, tokens_per_day, created_at_ms
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
                })
            })?;
            rows.collect()
        })
        .await
    }

    // ---- usage ------------------------------------------------------------

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
            c.prepare_cached(
                "INSERT INTO usage (workspace_id, second, requests, tokens)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (workspace_id, second) DO UPDATE SET
                    requests = CASE WHEN requests > 9223372036854775807 - excluded.requests
                               THEN 9223372036854775807 ELSE requests + excluded.requests END,
                    tokens = CASE WHEN tokens > 9223372036854775807 - excluded.tokens
                             THEN 9223372036854775807 ELSE tokens + excluded.tokens END",
            )?
            .execute(params![id, sat(at_ms / 1000), sat(requests), sat(tokens)])?;
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
                c.prepare_cached(
                    "INSERT INTO usage (workspace_id, second, requests, tokens)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (workspace_id, second) DO UPDATE SET
                        requests = CASE WHEN requests > 9223372036854775807 - excluded.requests
                                   THEN 9223372036854775807 ELSE requests + excluded.requests END,
                        tokens = CASE WHEN tokens > 9223372036854775807 - excluded.tokens
                                 THEN 9223372036854775807 ELSE tokens + excluded.tokens END",
                )?
                .execute(params![
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

    // ---- upstream state ---------------------------------------------------

    /// Stores the workspace's upstream state, replacing the previous one. The
    /// text is opaque to the store (the engine serialises it, as JSON).
    pub async fn save_upstream_state(
        &self,
        workspace_id: &str,
        json: &str,
    ) -> Result<(), StoreError> {
        let (id, json) = (workspace_id.to_string(), json.to_string());
        self.write("save upstream state", move |c| {
            c.prepare_cached(
                "INSERT INTO upstream_state (workspace_id, state) VALUES (?1, ?2)
                 ON CONFLICT (workspace_id) DO UPDATE SET state = excluded.state",
            )?
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

    // ---- browser sessions -------------------------------------------------

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

    // ---- retention --------------------------------------------------------

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

    // ---- plumbing ---------------------------------------------------------

    /// Queues `f` for the writer and waits until the transaction that ran it
    /// has committed (or failed).
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (ack, done) = oneshot::channel();
        let job = Box::new(TypedJob {
            op,
            f: Some(f),
            out: None,
            ack,
        });
        let closed = || StoreError::Closed {
            path: self.inner.path.clone(),
        };
        self.inner
            .queue
            .send(Msg::Job(job))
            .await
            .map_err(|_| closed())?;
        // A dropped ack means the writer stopped before answering.
        done.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Runs `f` on the read connection, on the blocking pool when there is a
    /// tokio runtime (inline otherwise).
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let run = move || {
            // A panic elsewhere while holding the lock leaves the connection
            // usable (SQLite state is not shared with Rust invariants).
            let conn = inner.reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(|e| classify(&inner.path, op, e))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.spawn_blocking(run).await.unwrap_or_else(|e| {
                Err(StoreError::Failed {
                    path: self.inner.path.clone(),
                    op,
                    problem: format!("read task failed: {e}"),
                })
            }),
            Err(_) => run(),
        }
    }
}

// ---- opening -------------------------------------------------------------

fn create_parent_dir(path: &Path) -> Result<(), String> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.exists() && !parent.is_dir() {
        return Err(format!("{} is not a directory", parent.display()));
    }
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create directory {}: {e}", parent.display()))
}

/// Opens the write connection and readies the file: WAL, full sync, integrity
/// check, migrations, and one real write so that a file we cannot write is
/// refused now rather than at the first record.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |problem: String| StoreError::Open {
        path: path.to_path_buf(),
        problem,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_err(e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_err(e.to_string()))?;
    // Room for every statement the writer prepares (the default is 16).
    conn.set_prepared_statement_cache_capacity(32);
    // SQLite silently falls back to read-only when the OS refuses writing.
    if conn.is_readonly("main").unwrap_or(true) {
        return Err(open_err("the file is not writable".to_string()));
    }
    // The first statement reads the header: a file that is not a database
    // fails here ("file is not a database").
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| open_err(e.to_string()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_err(format!(
            "cannot switch to WAL journal mode (got `{mode}`); is the file on a filesystem without shared memory support?"
        )));
    }
    // FULL: in WAL mode, fsync the WAL on every commit, so a commit that has
    // returned (and hence every acknowledged record) survives a power cut.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| open_err(e.to_string()))?;
    // Keep the WAL file from staying huge after a burst (64 MiB).
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(|e| open_err(e.to_string()))?;
    quick_check(&conn).map_err(|problem| StoreError::Corrupt {
        path: path.to_path_buf(),
        problem,
    })?;
    migrations::migrate(&conn).map_err(open_err)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('last_opened_ms', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [now_ms().to_string()],
    )
    .map_err(|e| open_err(format!("test write failed: {e}")))?;
    Ok(conn)
}

fn quick_check(conn: &Connection) -> Result<(), String> {
    let sql = format!("PRAGMA quick_check({QUICK_CHECK_MAX_ERRORS})");
    let problems: Vec<String> = conn
        .prepare(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| e.to_string())?;
    if problems.len() == 1 && problems[0] == "ok" {
        Ok(())
    } else {
        // SQLite puts several problems in one row, separated by newlines:
        // keep the message on one line for the log.
        let problems = problems.join("\n").replace('\n', "; ");
        Err(format!("integrity check failed: {problems}"))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---- the writer thread ---------------------------------------------------

enum Msg {
    Job(Box<dyn Job>),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// One queued write: run it in the batch's transaction, then (after the
/// commit) tell the caller how it went.
trait Job: Send {
    fn op(&self) -> &'static str;
    fn execute(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>, path: &Path);
}

struct TypedJob<T, F> {
    op: &'static str,
    f: Option<F>,
    /// The value `f` returned, held until the commit decides its fate.
    out: Option<T>,
    ack: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
{
    fn op(&self) -> &'static str {
        self.op
    }

    fn execute(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if let Some(f) = self.f.take() {
            self.out = Some(f(conn)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>, path: &Path) {
        let TypedJob { op, out, ack, .. } = *self;
        let reply = outcome.and_then(|()| {
            out.ok_or_else(|| StoreError::Failed {
                path: path.to_path_buf(),
                op,
                problem: "internal error: the operation did not run".to_string(),
            })
        });
        // The caller may have given up waiting; nothing to do then.
        let _ = ack.send(reply);
    }
}

struct Writer {
    conn: Connection,
    path: PathBuf,
}

impl Writer {
    fn new(conn: Connection, path: PathBuf) -> Self {
        Self { conn, path }
    }

    fn run(self, mut queue: mpsc::Receiver<Msg>) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
        let mut close_ack = None;
        // `blocking_recv` returns None once every sender (every clone of the
        // store) is gone: then the thread ends and the connection closes.
        while close_ack.is_none() {
            let Some(first) = queue.blocking_recv() else {
                break;
            };
            match first {
                Msg::Job(job) => batch.push(job),
                Msg::Close(ack) => close_ack = Some(ack),
            }
            // Group commit: take whatever else is already waiting.
            while close_ack.is_none() && batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(Msg::Job(job)) => batch.push(job),
                    Ok(Msg::Close(ack)) => close_ack = Some(ack),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                let outcomes = self.run_batch(&mut batch);
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    job.finish(outcome, &self.path);
                }
            }
        }
        // Refuse anything still queued: its callers get `Closed`.
        queue.close();
        while let Ok(msg) = queue.try_recv() {
            match msg {
                Msg::Job(job) => job.finish(Err(self.closed()), &self.path),
                Msg::Close(ack) => {
                    let _ = ack.send(Ok(()));
                }
            }
        }
        // Fold the WAL back into the main file so a stopped server leaves one
        // self-contained file. Best effort: the WAL is replayed on the next
        // open anyway.
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "checkpoint at close failed");
        }
        let path = self.path.clone();
        let closed = self.conn.close().map_err(|(_, e)| StoreError::Failed {
            path,
            op: "close",
            problem: e.to_string(),
        });
        if let Err(e) = &closed {
            tracing::warn!(error = %e, "closing the database failed");
        }
        if let Some(ack) = close_ack {
            let _ = ack.send(closed);
        }
    }

    /// Runs the batch in one transaction; one outcome per job, in order.
    fn run_batch(&self, batch: &mut [Box<dyn Job>]) -> Vec<Result<(), StoreError>> {
        let n = batch.len();
        let all_fail = |e: StoreError| vec![Err(e); n];
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            return all_fail(self.failed("begin transaction", e));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in batch.iter_mut() {
            outcomes.push(self.run_job(job.as_mut()));
            if self.conn.is_autocommit() {
                // SQLite rolled the whole transaction back (disk full, I/O
                // error...): nothing of this batch will reach the disk.
                let cause = outcomes
                    .pop()
                    .and_then(Result::err)
                    .map_or_else(|| "transaction aborted".to_string(), |e| e.to_string());
                let e = StoreError::Failed {
                    path: self.path.clone(),
                    op: "write batch",
                    problem: format!("the transaction was rolled back: {cause}"),
                };
                tracing::error!(error = %e, ops = n, "write batch lost");
                return all_fail(e);
            }
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            let e = self.failed("commit", e);
            tracing::error!(error = %e, ops = n, "commit failed");
            return all_fail(e);
        }
        outcomes
    }

    /// Runs one job inside a savepoint, so its failure undoes only its own
    /// changes.
    fn run_job(&self, job: &mut dyn Job) -> Result<(), StoreError> {
        let op = job.op();
        self.exec_cached("SAVEPOINT job")
            .map_err(|e| self.failed(op, e))?;
        match job.execute(&self.conn) {
            Ok(()) => self
                .exec_cached("RELEASE job")
                .map_err(|e| self.failed(op, e)),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.exec_cached("ROLLBACK TO job");
                    let _ = self.exec_cached("RELEASE job");
                }
                let e = classify(&self.path, op, e);
                tracing::warn!(error = %e, "store operation failed");
                Err(e)
            }
        }
    }

    fn exec_cached(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    fn failed(&self, op: &'static str, e: rusqlite::Error) -> StoreError {
        classify(&self.path, op, e)
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed {
            path: self.path.clone(),
        }
    }
}

// ---- values --------------------------------------------------------------

/// Turns a rusqlite error into ours: damage to the file, or to a value in it,
/// is `Corrupt`; anything else is a failed operation.
fn classify(path: &Path, op: &'static str, e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    let corrupt = match &e {
        rusqlite::Error::SqliteFailure(err, _) => matches!(
            err.code,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase
        ),
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => true,
        _ => false,
    };
    if corrupt {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("{op}: {e}"),
        }
    } else {
        StoreError::Failed {
            path: path.to_path_buf(),
            op,
            problem: e.to_string(),
        }
    }
}

/// SQLite integers are i64: larger values are stored as `i64::MAX` (no limit,
/// count or instant of this program comes near it).
fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn sat_usize(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A non-negative integer column; a negative one is bad data, not a panic.
fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

fn bad_value(idx: usize, problem: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, problem.into())
}
