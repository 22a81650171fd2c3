//! Persistent state: workspaces and their key digests, limits, per-second usage,
//! status transitions (the alert history), upstream state, the admin audit
//! trail and browser sessions (digests only), in one SQLite file (see
//! [`SqliteStore`]).
//!
//! The database is named by `QUOTA_DATABASE_URL` ([`DATABASE_URL_ENV`]),
//! default [`DEFAULT_DATABASE_URL`]; [`path_from_url`] turns it into a path.
//!
//! Usage is kept per workspace per *second*. That is fine enough to rebuild
//! both the minute window (1-second buckets) and the day window (1-minute
//! buckets) exactly after a restart, and coarse enough that a busy workspace
//! writes at most 86 400 rows a day.

mod migrations;
pub mod redis;
mod sqlite;

pub use self::redis::{Drift, RedisShared};
pub use sqlite::SqliteStore;

/// How long an `Idempotency-Key` is remembered (24 h).
pub const IDEMPOTENCY_TTL_MS: u64 = 86_400_000;

use crate::wire::Limits;
use std::path::{Path, PathBuf};

/// The environment variable naming the database.
pub const DATABASE_URL_ENV: &str = "QUOTA_DATABASE_URL";

/// A file under `./data/`, relative to the working directory; created (with
/// its directory) on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/quota-alert.db";

/// Everything that can go wrong with the store. Every message names the
/// database file (or the URL) and the problem, so that a server refusing to
/// start says exactly what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `QUOTA_DATABASE_URL` could not be understood.
    #[error("invalid database URL `{url}`: {problem}")]
    InvalidUrl { url: String, problem: String },
    /// The file could not be created, opened, made WAL, written or migrated.
    #[error("cannot open database {}: {problem}", path.display())]
    Open { path: PathBuf, problem: String },
    /// The file is damaged: SQLite's integrity check failed, or a row holds a
    /// value this program never writes.
    #[error("database {} is corrupt: {problem}", path.display())]
    Corrupt { path: PathBuf, problem: String },
    /// One operation failed (disk full, I/O error, constraint...).
    #[error("database {}: {op} failed: {problem}", path.display())]
    Failed {
        path: PathBuf,
        op: &'static str,
        problem: String,
    },
    /// The store was closed, or its writer thread is gone.
    #[error("database {} is closed", path.display())]
    Closed { path: PathBuf },
}

/// A workspace as stored. The key exists only as its SHA-256 digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWorkspace {
    pub id: String,
    pub key_digest: [u8; 32],
    pub limits: Limits,
    pub created_at_ms: u64,
    /// `wire::SettingsPatch` as JSON, if the workspace has settings.
    pub settings: Option<String>,
}

/// Which breakdown a [`DetailRow`] is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    Model,
    User,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Model => "model",
            Dimension::User => "user",
        }
    }
}

/// One workspace's usage of one model or user on one local day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailRow {
    pub workspace_id: String,
    /// `YYYY-MM-DD` in the workspace's time zone.
    pub day: String,
    pub dimension: Dimension,
    pub name: String,
    pub requests: u64,
    pub tokens: u64,
    pub nano_usd: u64,
}

/// Usage of one workspace during one second (`second` = Unix time in seconds,
/// i.e. every record whose `at_ms / 1000` is `second`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    pub workspace_id: String,
    pub second: u64,
    pub requests: u64,
    pub tokens: u64,
}

/// One status change of the alert history. Statuses are kept as the text the
/// caller gave (the engine's `QuotaStatus` names); the store does not parse them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTransition {
    pub workspace_id: String,
    pub from: String,
    pub to: String,
    pub at_ms: u64,
    pub reason: String,
}

/// A browser session as stored: the digest of its id (the cookie value itself
/// is never stored), who it acts for (`None`: the admin), when it was opened
/// and when it ends (sliding and absolute), and for an admin session the
/// binding of the admin key that opened it (`browser_session::admin_key_binding`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    pub digest: [u8; 32],
    pub workspace_id: Option<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub absolute_expires_at_ms: u64,
    pub admin_key_binding: Option<[u8; 32]>,
}

/// One entry of the admin audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAudit {
    pub at_ms: u64,
    pub action: String,
    pub workspace_id: Option<String>,
    pub detail: String,
}

/// A retry's identity: the digest of its `Idempotency-Key` and of the
/// request it was first used for (see [`SqliteStore::append_usage_once`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key_digest: [u8; 32],
    pub fingerprint: [u8; 32],
    /// Keys older than this (Unix ms) are expired: a reuse counts again.
    pub not_before_ms: u64,
}

/// What a write guarded by an [`IdempotencyClaim`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// First use: counted, and the key kept.
    Counted,
    /// The key was already used for this same request: nothing counted.
    Replayed,
    /// The key was already used for a different request: nothing counted.
    Mismatch,
}

/// What [`SqliteStore::prune`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub usage_rows: u64,
    pub transitions: u64,
    pub audit_entries: u64,
    pub sessions: u64,
}

/// The file a database URL names. Accepted forms:
///
/// - `sqlite://data/quota-alert.db` (relative to the working directory) and
///   `sqlite:///var/lib/quota-alert.db` (absolute),
/// - `sqlite:data/quota-alert.db`,
/// - a plain path, `data/quota-alert.db` or `/var/lib/quota-alert.db`.
///
/// Refused: other schemes, in-memory databases (nothing would survive a
/// restart, which defeats the point), query strings (`?mode=...`: this store
/// always creates the file and decides its own settings) and empty paths.
/// No percent-decoding is done: the path is taken literally.
pub fn path_from_url(url: &str) -> Result<PathBuf, StoreError> {
    let invalid = |problem: &str| StoreError::InvalidUrl {
        url: url.to_string(),
        problem: problem.to_string(),
    };
    let trimmed = url.trim();
    let (is_url, rest) = if let Some(rest) = strip_prefix_ignore_case(trimmed, "sqlite://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "sqlite:") {
        (true, rest)
    } else if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(invalid(&format!(
            "unsupported scheme `{scheme}` (only sqlite is supported)"
        )));
    } else {
        (false, trimmed)
    };
    if is_url && rest.contains('?') {
        return Err(invalid(
            "query parameters are not supported; give only the file path",
        ));
    }
    if rest.is_empty() {
        return Err(invalid("no file path given"));
    }
    if rest == ":memory:" || rest.starts_with("file::memory:") {
        return Err(invalid(
            "an in-memory database would lose everything on restart; give a file path",
        ));
    }
    Ok(PathBuf::from(rest))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl StoreError {
    /// The database file this error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::InvalidUrl { .. } => None,
            Self::Open { path, .. }
            | Self::Corrupt { path, .. }
            | Self::Failed { path, .. }
            | Self::Closed { path } => Some(path),
        }
    }
}
