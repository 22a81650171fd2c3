//! What happened, kept for later: status transitions (the alert history),
//! the upstream's last word per workspace, the admin audit trail; and the
//! upkeep of everything kept (pruning, the health probe). Only SQLite keeps
//! history: under Redis each instance keeps its own in memory (every change
//! reaches it as an event), and the originating instance alerts.

use super::{Backend, Kind};
use crate::engine::Transition;
use crate::service::ServiceError;
use crate::store::StoredAudit;

/// Usage older than the day window is never needed again; a minute of margin
/// keeps the oldest day bucket whole.
pub const USAGE_HORIZON_MS: u64 = 86_400_000 + 60_000;

impl Backend {
    /// Appends transitions in the background, in order.
    pub(in crate::service) fn transitions_behind(&self, transitions: Vec<Transition>) {
        let Kind::Sqlite(store) = &self.kind else {
            return;
        };
        if transitions.is_empty() {
            return;
        }
        let store = store.clone();
        self.behind(async move {
            for t in &transitions {
                store
                    .append_transition(
                        &t.workspace_id,
                        t.from.as_str(),
                        t.to.as_str(),
                        t.at_ms,
                        &t.reason,
                    )
                    .await?;
            }
            Ok(())
        });
    }

    /// Appends to the admin audit trail; awaited.
    pub(in crate::service) async fn audit(
        &self,
        action: &str,
        id: Option<&str>,
        detail: &str,
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let Kind::Sqlite(store) = &self.kind else {
            return Ok(());
        };
        store
            .append_audit(action, id, detail, now_ms)
            .await
            .map_err(|e| ServiceError::Store(self.failed(e)))
    }

    /// The newest `limit` audit entries (of `workspace_id` only, if given),
    /// newest first; `None` where no audit trail is kept (memory and Redis:
    /// `audit` keeps nothing there).
    pub(in crate::service) async fn audit_trail(
        &self,
        workspace_id: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<StoredAudit>>, ServiceError> {
        let Kind::Sqlite(store) = &self.kind else {
            return Ok(None);
        };
        store
            .load_audit_newest(workspace_id, limit)
            .await
            .map(Some)
            .map_err(|e| ServiceError::Store(self.failed(e)))
    }

    /// Deletes what has expired: old usage and history and idempotency keys
    /// (SQLite), expired sessions (Redis; every instance prunes, and deleting
    /// what another already deleted costs nothing; Redis expires its
    /// idempotency keys on its own).
    pub(in crate::service) async fn prune(&self, now_ms: u64, history_ms: u64) {
        match &self.kind {
            Kind::Memory(_) => {}
            Kind::Redis(shared) => match shared.redis.prune_sessions(now_ms).await {
                Ok(sessions) => tracing::debug!(sessions, "pruned expired sessions"),
                Err(e) => self.report(&e),
            },
            Kind::Sqlite(store) => {
                match store.prune(now_ms, USAGE_HORIZON_MS, history_ms).await {
                    Ok(stats) => tracing::debug!(?stats, "pruned old data"),
                    Err(e) => self.report(&e),
                }
                // Per-day rows past the spend ledger's reach (and an export's,
                // the same 400 days), a day more for every zone's today.
                let day =
                    chrono::DateTime::from_timestamp_millis(now_ms.min(i64::MAX as u64) as i64)
                        .unwrap_or_default()
                        .date_naive()
                        - chrono::Duration::days(crate::engine::spend::SPEND_DAYS_KEPT + 1);
                match store.prune_days(&day.format("%Y-%m-%d").to_string()).await {
                    Ok(rows) => tracing::debug!(rows, "pruned per-day rows"),
                    Err(e) => self.report(&e),
                }
                let cutoff = now_ms.saturating_sub(crate::store::IDEMPOTENCY_TTL_MS);
                match store.prune_idempotency_keys(cutoff).await {
                    Ok(keys) => tracing::debug!(keys, "pruned idempotency keys"),
                    Err(e) => self.report(&e),
                }
            }
        }
    }

    /// Whether the store answers (always, in memory).
    pub(in crate::service) async fn ping(&self) -> bool {
        match &self.kind {
            Kind::Memory(_) => true,
            Kind::Sqlite(store) => store.ping().await.is_ok(),
            Kind::Redis(shared) => shared.redis.ping().await.is_ok(),
        }
    }

    /// Whether anything is kept at all (the health probe has nothing to
    /// probe in memory).
    pub(in crate::service) fn is_persistent(&self) -> bool {
        !matches!(self.kind, Kind::Memory(_))
    }
}
