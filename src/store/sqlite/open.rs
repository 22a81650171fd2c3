//! Opening: the directory and file created if needed, the write connection
//! made WAL with `synchronous=FULL`, the integrity check, the migrations and a
//! test write; then the read connection and the writer thread.

use super::{writer, Inner, SqliteStore};
use crate::store::{migrations, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a statement waits for a lock held by another connection (our own
/// reader during a checkpoint, or another process on the same file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Integrity problems reported by the start-up check, at most.
const QUICK_CHECK_MAX_ERRORS: u32 = 10;

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
        let reader = open_reader(&path).map_err(open_err)?;
        let queue = writer::start(writer, path.clone())
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;

        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                queue,
                reader: Mutex::new(reader),
            }),
        })
    }
}

/// The read-only connection every read goes through (see the module docs of
/// `store::sqlite`).
fn open_reader(path: &Path) -> Result<Connection, String> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|c| c.busy_timeout(BUSY_TIMEOUT).map(|()| c))
    .map_err(|e| format!("cannot open a read connection: {e}"))
}

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
