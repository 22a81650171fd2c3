//! The SQLite store: one file, one writer thread, one read connection.
//!
//! The handle, [`SqliteStore`], is defined here; its methods are split by
//! concern:
//!
//! - `open`: opening, WAL and pragma settings, integrity check, migrations;
//! - `writer`: the writer thread, its queue and group commit (every write is
//!   acknowledged only once on disk; see that module's docs);
//! - `workspaces`, `usage` (with idempotency claims), `history` (alert
//!   transitions and the audit trail), `sessions`, `upstream`: the queries of
//!   each table family;
//! - `prune`: retention across every table;
//! - `values`: error classification and integer conversions shared by all.
//!
//! # Reads: a second, read-only connection
//!
//! Reads use their own read-only connection (behind a mutex, run on the
//! blocking pool). In WAL mode readers and the writer do not block each
//! other, so a large read (loading a day of usage at start, a long history)
//! never delays the group commits every request is waiting on. Consistency is
//! the same as through the writer: a write is acknowledged after its commit,
//! and a read started after that sees it.

mod history;
mod open;
mod prune;
mod sessions;
mod upstream;
mod usage;
mod values;
mod workspaces;
mod writer;

use crate::store::StoreError;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use values::classify;

/// The store. Cheap to clone: every clone shares one writer thread and one
/// read connection.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    queue: writer::Queue,
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
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
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
