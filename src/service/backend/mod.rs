//! Where the service keeps what it counts: one seam, chosen once at start.
//!
//! [`Backend`] is the only thing the service calls to keep anything. It is
//! one of three kinds, picked by `QUOTA_DATABASE_URL` when the service is
//! built and never changed after:
//!
//! | kind | for | what survives a restart |
//! | --- | --- | --- |
//! | [`Kind::Memory`] | tests, benchmarks | nothing |
//! | [`Kind::Sqlite`] | one instance (the default) | everything, in one file |
//! | [`Kind::Redis`] | several instances | counters, workspaces, keys, sessions |
//!
//! Each concern has its own file, and each operation there is written once,
//! with every kind's answer side by side, so what a kind does *not* keep is
//! said rather than silently skipped:
//!
//! - `usage.rs`: records and proxied usage (awaited, or merged and written
//!   behind), admission against the shared counters, admin reset;
//! - `workspaces.rs`: creating a workspace, changing its key;
//! - `sessions.rs`: browser sessions (digests only);
//! - `history.rs`: transitions, upstream state, the audit trail, pruning and
//!   the health probe;
//! - `events.rs`: what Redis instances tell each other on `qa:events`
//!   (`service::replication` is the receiving side);
//! - `behind.rs`: writes the caller does not wait for, bounded and tracked
//!   so that shutdown can drain them.
//!
//! Every failure an operation returns has already been reported (the store
//! is marked unhealthy: every workspace DEGRADED), so a caller never has to
//! remember to; the caller only decides what the failure means for its
//! answer.

mod behind;
pub(super) mod events;
mod history;
mod sessions;
mod usage;
mod workspaces;

pub use behind::{
    background_stats, background_tasks_in_flight, BackgroundStats, MAX_BACKGROUND_TASKS,
};
pub use history::USAGE_HORIZON_MS;
pub(super) use usage::SharedAdmission;

use super::records::IdempotencyMemory;
use super::replication::Shared;
use super::{Inner, QuotaService};
use crate::store::{SqliteStore, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

/// The kind of backend, chosen once.
pub(super) enum Kind {
    /// Nothing is persistent. `Idempotency-Key`s are kept in memory (bounded)
    /// because a retried record must still count once.
    Memory(IdempotencyMemory),
    Sqlite(SqliteStore),
    /// Boxed: the Redis client is large, and there is one `Kind` per process.
    Redis(Box<Shared>),
}

pub(super) struct Backend {
    kind: Kind,
    /// Writes behind: the pending merged writes and the tracked tasks.
    behind: behind::Behind,
    /// The service, to report failures of writes nobody waits for.
    service: Weak<Inner>,
    /// Set by [`drain`](Self::drain) as it closes SQLite: a write failing
    /// from then on is a late write, not a failing store.
    closed: AtomicBool,
}

impl Backend {
    pub(super) fn new(kind: Kind, service: Weak<Inner>) -> Self {
        Self {
            kind,
            behind: behind::Behind::default(),
            service,
            closed: AtomicBool::new(false),
        }
    }

    pub(super) fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The Redis side, for the parts of the service that exist only there
    /// (replication, key lookups, admission against the shared counters).
    pub(super) fn redis(&self) -> Option<&Shared> {
        match &self.kind {
            Kind::Redis(shared) => Some(shared),
            Kind::Memory(_) | Kind::Sqlite(_) => None,
        }
    }

    /// Reports a failure (logged once, the store marked unhealthy) and hands
    /// it back for the caller's answer.
    pub(super) fn failed(&self, error: StoreError) -> StoreError {
        self.report(&error);
        error
    }

    pub(super) fn report(&self, error: &StoreError) {
        if self.closed.load(Ordering::Acquire) {
            // After shutdown began closing the store: a store marked
            // unhealthy now would turn every workspace DEGRADED (an alert
            // for each) on every clean stop. A write refused because the
            // store is closed is the expected case; anything else (disk
            // full in the last batch) is a real loss and says so.
            match error {
                StoreError::Closed { .. } => {
                    tracing::warn!(%error, "write after shutdown lost")
                }
                _ => tracing::error!(%error, "write failed during shutdown"),
            }
            return;
        }
        match &self.kind {
            Kind::Redis(_) => tracing::error!(%error, "shared store (Redis) failed"),
            Kind::Memory(_) | Kind::Sqlite(_) => {
                tracing::error!(%error, "usage store write failed")
            }
        }
        if let Some(inner) = self.service.upgrade() {
            QuotaService { inner }.mark_store_unhealthy();
        }
    }

    /// Waits for every write behind to finish (shutdown), at most `limit`;
    /// then closes the SQLite writer so the last commit is on disk (within
    /// the same `limit`: a writer stuck on the disk must not hold the
    /// process).
    pub(super) async fn drain(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let drained = self.behind.drain(limit).await;
        let Kind::Sqlite(store) = &self.kind else {
            return drained;
        };
        self.closed.store(true, Ordering::Release);
        match tokio::time::timeout_at(deadline, store.close()).await {
            Ok(Ok(())) => drained,
            Ok(Err(error)) => {
                tracing::error!(%error, "closing the database failed");
                drained
            }
            Err(_) => {
                tracing::error!(?limit, "closing the database timed out");
                false
            }
        }
    }
}
