//! The schema, as an ordered list of migrations. `PRAGMA user_version` holds how
//! many have run; at start every later one runs, each with the version bump in
//! the same transaction. Never edit a migration that has shipped: append one.

use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema. STRICT tables make SQLite refuse a value of the
    // wrong type instead of storing it; CHECKs keep what we read back sane.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE workspaces (
        id                  TEXT PRIMARY KEY NOT NULL,
        key_digest          BLOB NOT NULL CHECK (length(key_digest) = 32),
        requests_per_minute INTEGER NOT NULL CHECK (requests_per_minute >= 0),
        requests_per_day    INTEGER NOT NULL CHECK (requests_per_day >= 0),
        tokens_per_minute   INTEGER NOT NULL CHECK (tokens_per_minute >= 0),
        tokens_per_day      INTEGER NOT NULL CHECK (tokens_per_day >= 0),
        created_at_ms       INTEGER NOT NULL CHECK (created_at_ms >= 0)
    ) STRICT;

    -- One row per workspace per second with any usage.
    CREATE TABLE usage (
        workspace_id TEXT NOT NULL,
        second       INTEGER NOT NULL CHECK (second >= 0),
        requests     INTEGER NOT NULL CHECK (requests >= 0),
        tokens       INTEGER NOT NULL CHECK (tokens >= 0),
        PRIMARY KEY (workspace_id, second)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX usage_by_second ON usage (second);

    -- The alert history; seq is insertion order, the order that counts.
    CREATE TABLE transitions (
        seq          INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        from_status  TEXT NOT NULL,
        to_status    TEXT NOT NULL,
        at_ms        INTEGER NOT NULL CHECK (at_ms >= 0),
        reason       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX transitions_by_workspace ON transitions (workspace_id, seq);
    CREATE INDEX transitions_by_time ON transitions (at_ms);

    CREATE TABLE audit (
        seq          INTEGER PRIMARY KEY,
        at_ms        INTEGER NOT NULL CHECK (at_ms >= 0),
        action       TEXT NOT NULL,
        workspace_id TEXT,
        detail       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_time ON audit (at_ms);

    -- What OpenAI last told us about a workspace, as the engine serialised it.
    CREATE TABLE upstream_state (
        workspace_id TEXT PRIMARY KEY NOT NULL,
        state        TEXT NOT NULL
    ) STRICT;
    "#,
    // 2: browser sessions, so that signing in survives a restart. Only the
    // digest of the cookie's random id is kept (like key digests), never the
    // id itself. NULL workspace_id is the admin: "admin" is a valid workspace
    // id, so it cannot stand for the admin here.
    r#"
    CREATE TABLE sessions (
        digest        BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        workspace_id  TEXT,
        expires_at_ms INTEGER NOT NULL CHECK (expires_at_ms >= 0)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX sessions_by_workspace ON sessions (workspace_id);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);
    "#,
    // 3: Idempotency-Key of `POST /api/quota/record[/batch]`, per workspace:
    // the SHA-256 of the key (it is client text, kept as a digest like
    // everything else a client chooses), the SHA-256 of the request it was
    // used for, and when. Written in the same transaction as the usage it
    // counted, so a retry is either counted (no row) or replayed (row).
    // Pruned after 24 h.
    r#"
    CREATE TABLE idempotency_keys (
        workspace_id  TEXT NOT NULL,
        key_digest    BLOB NOT NULL CHECK (length(key_digest) = 32),
        fingerprint   BLOB NOT NULL CHECK (length(fingerprint) = 32),
        created_at_ms INTEGER NOT NULL CHECK (created_at_ms >= 0),
        PRIMARY KEY (workspace_id, key_digest)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at_ms);
    "#,
    // 4: session lifetimes and the admin key binding. `created_at_ms` and the
    // absolute end bound a session however much it is used; an admin session
    // keeps a digest of the admin key that opened it (`browser_session::
    // admin_key_binding`), so another admin key never honours it. Rows from
    // before: a workspace session is taken as opened a TTL (7 days) before
    // its expiry, the earliest it can have been; admin sessions carry no
    // binding to check, so they end (the admin signs in once more).
    r#"
    ALTER TABLE sessions ADD COLUMN created_at_ms INTEGER NOT NULL DEFAULT 0
        CHECK (created_at_ms >= 0);
    ALTER TABLE sessions ADD COLUMN absolute_expires_at_ms INTEGER NOT NULL DEFAULT 0
        CHECK (absolute_expires_at_ms >= 0);
    ALTER TABLE sessions ADD COLUMN admin_key_binding BLOB
        CHECK (admin_key_binding IS NULL OR length(admin_key_binding) = 32);
    DELETE FROM sessions WHERE workspace_id IS NULL;
    UPDATE sessions SET
        created_at_ms = max(expires_at_ms - 604800000, 0),
        absolute_expires_at_ms = max(expires_at_ms - 604800000, 0) + 2592000000;
    "#,
    // 5: a workspace's settings beyond its limits (time zone, budgets, per
    // model and per user limits), as the JSON an admin sent
    // (`wire::SettingsPatch`, every field set); NULL keeps the defaults.
    r#"
    ALTER TABLE workspaces ADD COLUMN settings TEXT;
    "#,
    // 6: money spent per workspace and local day of its time zone
    // (`YYYY-MM-DD`), in nano-dollars: what budgets are checked against.
    r#"
    CREATE TABLE spend (
        workspace_id TEXT NOT NULL,
        day          TEXT NOT NULL,
        nano_usd     INTEGER NOT NULL CHECK (nano_usd >= 0),
        PRIMARY KEY (workspace_id, day)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 7: usage and spend per workspace, local day and model or end user
    // (`dimension` 'model' or 'user'), for the breakdown after a restart
    // and the CSV export. Names are capped per workspace and day as the
    // breakdown caps them (1 000, then "(other)"), so a tenant sending a
    // new user label on every call adds at most 2 002 rows a day.
    r#"
    CREATE TABLE usage_by (
        workspace_id TEXT NOT NULL,
        day          TEXT NOT NULL,
        dimension    TEXT NOT NULL CHECK (dimension IN ('model', 'user')),
        name         TEXT NOT NULL,
        requests     INTEGER NOT NULL CHECK (requests >= 0),
        tokens       INTEGER NOT NULL CHECK (tokens >= 0),
        nano_usd     INTEGER NOT NULL CHECK (nano_usd >= 0),
        PRIMARY KEY (workspace_id, day, dimension, name)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 8: `usage_by` by day, for the prune of days past the ledger's reach
    // (a delete by day alone would read the whole table every prune).
    r#"
    CREATE INDEX usage_by_day ON usage_by (day);
    "#,
];

/// Brings the schema up to date. Returns the problem as text for the caller to
/// wrap with the file name.
pub(crate) fn migrate(conn: &Connection) -> Result<(), String> {
    // IMMEDIATE: take the write lock before reading the version, so two
    // processes starting on one file cannot both run a migration.
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| format!("cannot start the migration transaction: {e}"))?;
    let result = migrate_in_transaction(conn);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = conn.execute_batch(end);
    result?;
    ended.map_err(|e| format!("cannot commit the migrations: {e}"))
}

fn migrate_in_transaction(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    let supported = MIGRATIONS.len();
    let current = usize::try_from(version)
        .map_err(|_| format!("schema version {version} is not a valid version"))?;
    if current > supported {
        return Err(format!(
            "schema version {current} is newer than this program supports ({supported}); \
             it was written by a newer release"
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let next = index + 1;
        conn.execute_batch(sql)
            .map_err(|e| format!("migration to schema version {next} failed: {e}"))?;
        conn.pragma_update(None, "user_version", next as i64)
            .map_err(|e| format!("cannot record schema version {next}: {e}"))?;
    }
    Ok(())
}
