//! Between the engine and the store: what gets written when, and rebuilding the
//! engine from the store at start.
//!
//! Durability policy: a REST record is answered only after its usage is
//! committed (group commit keeps that cheap). Proxied requests, transitions
//! and upstream blocks are written in the background — still group-committed
//! within milliseconds — so the proxy's response path never waits on a disk.

use super::{QuotaService, ServiceError};
use crate::engine::{DurableUpstreamState, Effect, Transition};
use crate::model::{LimitOverrides, QuotaStatus};
use crate::store::{SqliteStore, StoreError};
use std::collections::HashSet;

/// Usage older than the day window is never needed again; a minute of margin
/// keeps the oldest day bucket whole.
pub const USAGE_HORIZON_MS: u64 = 86_400_000 + 60_000;

impl QuotaService {
    pub(super) fn store(&self) -> Option<&SqliteStore> {
        self.inner.store.as_ref()
    }

    /// Writes usage and waits for the commit. A failure marks the store
    /// unhealthy (every workspace DEGRADED) and is returned.
    pub(super) async fn persist_usage(
        &self,
        id: &str,
        at_ms: u64,
        requests: u64,
        tokens: u64,
    ) -> Result<(), ServiceError> {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let _timer = self.metrics().store_latency.start_timer();
        match store.append_usage(id, at_ms, requests, tokens).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.store_failed(&e);
                Err(ServiceError::Store(e))
            }
        }
    }

    /// Background write of what an operation changed besides usage.
    pub(super) fn persist_effect_in_background(
        &self,
        id: &str,
        effect: &Effect,
        upstream_changed: bool,
    ) {
        let Some(store) = self.store().cloned() else {
            return;
        };
        let transition = effect.transition.clone();
        let anomaly = effect.anomaly.clone();
        let upstream = upstream_changed
            .then(|| self.engine().durable_upstream(id))
            .flatten();
        if transition.is_none() && anomaly.is_none() && upstream.is_none() {
            return;
        }
        let service = self.clone();
        let id = id.to_string();
        spawn(async move {
            let mut result = Ok(());
            for t in transition.iter().chain(anomaly.iter()) {
                if result.is_err() {
                    break;
                }
                result = store
                    .append_transition(
                        &t.workspace_id,
                        t.from.as_str(),
                        t.to.as_str(),
                        t.at_ms,
                        &t.reason,
                    )
                    .await;
            }
            if let (Ok(()), Some(state)) = (&result, upstream) {
                let json = serde_json::to_string(&state).unwrap_or_default();
                result = store.save_upstream_state(&id, &json).await;
            }
            if let Err(e) = result {
                service.store_failed(&e);
            }
        });
    }

    /// Background write of usage (proxy path).
    pub(super) fn persist_usage_in_background(
        &self,
        id: &str,
        at_ms: u64,
        requests: u64,
        tokens: u64,
    ) {
        if self.store().is_none() || (requests == 0 && tokens == 0) {
            return;
        }
        let service = self.clone();
        let id = id.to_string();
        spawn(async move {
            let _ = service.persist_usage(&id, at_ms, requests, tokens).await;
        });
    }

    /// Clears a workspace's stored usage (admin reset) and waits for it.
    pub(super) async fn persist_reset(&self, id: &str) -> Result<(), ServiceError> {
        let Some(store) = self.store() else {
            return Ok(());
        };
        store.clear_usage(id).await.map_err(|e| {
            self.store_failed(&e);
            ServiceError::Store(e)
        })?;
        self.persist_audit("reset", Some(id), "admin reset").await
    }

    pub(super) async fn persist_audit(
        &self,
        action: &str,
        id: Option<&str>,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let now = self.engine().now_ms();
        store
            .append_audit(action, id, detail, now)
            .await
            .map_err(|e| {
                self.store_failed(&e);
                ServiceError::Store(e)
            })
    }

    pub(super) fn store_failed(&self, error: &StoreError) {
        tracing::error!(%error, "usage store write failed");
        for t in self.engine().set_store_healthy(false) {
            self.publish_transition(&t);
        }
    }

    /// Called by the ticker while the store is unhealthy.
    pub(super) async fn probe_store(&self) {
        let reachable = if let Some(shared) = self.shared() {
            shared.redis.ping().await.is_ok()
        } else if let Some(store) = self.store() {
            store.ping().await.is_ok()
        } else {
            return;
        };
        if reachable {
            tracing::info!("usage store reachable again");
            for t in self.engine().set_store_healthy(true) {
                self.publish_transition(&t);
            }
        }
    }

    pub(super) async fn prune(&self) {
        let now = self.engine().now_ms();
        self.sweep_sessions(now);
        if let Some(shared) = self.shared() {
            // Every instance prunes; deleting what another already deleted
            // costs nothing.
            match shared.redis.prune_sessions(now).await {
                Ok(sessions) => tracing::debug!(sessions, "pruned expired sessions"),
                Err(e) => self.shared_failed(&e),
            }
        }
        let Some(store) = self.store() else { return };
        let history_ms = self.config().history_horizon_ms;
        match store.prune(now, USAGE_HORIZON_MS, history_ms).await {
            Ok(stats) => tracing::debug!(?stats, "pruned old data"),
            Err(e) => self.store_failed(&e),
        }
    }

    /// Rebuilds workspaces, keys, windows, upstream blocks, history and browser
    /// sessions from the store, then settles every status silently ("as
    /// before", not a change).
    pub(super) async fn restore(&self, store: &SqliteStore) -> Result<usize, StoreError> {
        let engine = self.engine();
        let now = engine.now_ms();
        let workspaces = store.load_workspaces().await?;
        for w in &workspaces {
            let exact = LimitOverrides::exactly(w.limits);
            // Already present only if restored twice; either way the stored
            // limits are the truth.
            let _ = engine.create_workspace(&w.id, &exact);
            if w.key_digest != [0; 32] {
                self.inner.registry.restore(w.key_digest, &w.id);
            }
        }

        for row in store
            .load_usage(now.saturating_sub(USAGE_HORIZON_MS))
            .await?
        {
            let _ = engine.restore_usage(
                &row.workspace_id,
                row.second * 1000,
                row.requests,
                row.tokens,
            );
        }

        for (id, json) in store.load_upstream_states().await? {
            if let Ok(state) = serde_json::from_str::<DurableUpstreamState>(&json) {
                let _ = engine.restore_upstream(&id, &state);
            }
        }

        let history_len = engine.config().history_len;
        for w in &workspaces {
            let history = store
                .load_transitions(&w.id, history_len)
                .await?
                .into_iter()
                .filter_map(|t| {
                    Some(Transition {
                        workspace_id: t.workspace_id,
                        from: parse_status(&t.from)?,
                        to: parse_status(&t.to)?,
                        at_ms: t.at_ms,
                        reason: t.reason,
                    })
                })
                .collect();
            let _ = engine.restore_history(&w.id, history);
            let _ = engine.settle(&w.id);
        }

        let keyed: HashSet<&str> = workspaces
            .iter()
            .filter(|w| w.key_digest != [0; 32])
            .map(|w| w.id.as_str())
            .collect();
        for session in store.load_sessions(now).await? {
            self.restore_session(session, now, &keyed);
        }
        Ok(workspaces.len())
    }
}

fn parse_status(text: &str) -> Option<QuotaStatus> {
    QuotaStatus::ALL.into_iter().find(|s| s.as_str() == text)
}

pub(super) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    // Writes are triggered from sync code (a stream's drop guard) too; without a
    // runtime there is nothing to persist through, which only happens in tests.
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(task);
    }
}
