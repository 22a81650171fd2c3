//! Between the engine and the store: what gets written when, and rebuilding the
//! engine from the store at start.
//!
//! Durability policy: a REST record is answered only after its usage is
//! committed (group commit keeps that cheap). Proxied requests, transitions
//! and upstream blocks are written in the background — still group-committed
//! within milliseconds — so the proxy's response path never waits on a disk.
//!
//! Background work is bounded. Usage (SQLite rows of proxied calls, tokens
//! added to the Redis counters after a call) and upstream state (the latest
//! per workspace wins) are never dropped: they are merged into pending maps
//! per (workspace, second) and written by ONE flush task, so a burst while
//! the store is slow makes the writes larger, not more numerous. Everything
//! else spawned in the background (transitions, events for the other
//! instances, session expiry refreshes) runs under a process-wide limit of
//! [`MAX_BACKGROUND_TASKS`] at once; past it the task is not started and is
//! counted as dropped (`quota_background_tasks_total{result="dropped"}`):
//! none of those is acknowledged data, and each has a later repair (the
//! engine's own status, the key epoch and resubscribe reload, the next
//! refresh).

use super::{QuotaService, ServiceError};
use crate::engine::{DurableUpstreamState, Effect, Transition};
use crate::store::{SqliteStore, StoreError};
use crate::wire::{LimitOverrides, QuotaStatus};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Background tasks running at once, per process (see the module docs).
pub const MAX_BACKGROUND_TASKS: usize = 1024;

/// What background work did, for `/metrics`.
#[derive(Debug, Default)]
pub struct BackgroundStats {
    /// Tasks started.
    pub spawned: AtomicU64,
    /// Tasks not started: [`MAX_BACKGROUND_TASKS`] were running.
    pub dropped: AtomicU64,
    /// Writes merged into a pending one instead of a task of their own.
    pub merged: AtomicU64,
}

fn permits() -> &'static Arc<tokio::sync::Semaphore> {
    static PERMITS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(MAX_BACKGROUND_TASKS)))
}

/// The process-wide background counters.
pub fn background_stats() -> &'static BackgroundStats {
    static STATS: OnceLock<BackgroundStats> = OnceLock::new();
    STATS.get_or_init(BackgroundStats::default)
}

/// Background tasks running now.
pub fn background_tasks_in_flight() -> usize {
    MAX_BACKGROUND_TASKS - permits().available_permits()
}

/// Writes waiting for the flush task, merged by key.
#[derive(Default)]
pub(super) struct Background {
    /// (workspace, second) → (requests, tokens) for SQLite.
    usage: Mutex<HashMap<(String, u64), (u64, u64)>>,
    /// (workspace, second) → tokens for the Redis counters.
    shared_tokens: Mutex<HashMap<(String, u64), u64>>,
    /// workspace → its latest durable upstream state (JSON).
    upstream: Mutex<HashMap<String, String>>,
    flushing: AtomicBool,
}

impl Background {
    fn is_empty(&self) -> bool {
        lock(&self.usage).is_empty()
            && lock(&self.shared_tokens).is_empty()
            && lock(&self.upstream).is_empty()
    }
}

/// Plain maps: a poisoned lock only means a panic elsewhere mid-insert.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn merged() {
    background_stats().merged.fetch_add(1, Ordering::Relaxed);
}

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
        if let Some(state) = upstream_changed
            .then(|| self.engine().durable_upstream(id))
            .flatten()
        {
            let json = serde_json::to_string(&state).unwrap_or_default();
            if lock(&self.inner.background.upstream)
                .insert(id.to_string(), json)
                .is_some()
            {
                merged();
            }
            self.schedule_flush();
        }
        let transitions: Vec<Transition> = effect
            .transition
            .iter()
            .chain(effect.anomaly.iter())
            .cloned()
            .collect();
        if transitions.is_empty() {
            return;
        }
        let service = self.clone();
        spawn(async move {
            for t in &transitions {
                if let Err(e) = store
                    .append_transition(
                        &t.workspace_id,
                        t.from.as_str(),
                        t.to.as_str(),
                        t.at_ms,
                        &t.reason,
                    )
                    .await
                {
                    service.store_failed(&e);
                    break;
                }
            }
        });
    }

    /// Background write of usage (proxy path), merged per second.
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
        {
            let mut usage = lock(&self.inner.background.usage);
            let entry = usage.entry((id.to_string(), at_ms / 1000));
            if matches!(entry, std::collections::hash_map::Entry::Occupied(_)) {
                merged();
            }
            let (r, t) = entry.or_insert((0, 0));
            *r = r.saturating_add(requests);
            *t = t.saturating_add(tokens);
        }
        self.schedule_flush();
    }

    /// Background add of a finished call's tokens to the Redis counters,
    /// merged per second.
    pub(super) fn shared_tokens_in_background(&self, id: &str, at_ms: u64, tokens: u64) {
        if tokens == 0 {
            return;
        }
        {
            let mut pending = lock(&self.inner.background.shared_tokens);
            let entry = pending.entry((id.to_string(), at_ms / 1000));
            if matches!(entry, std::collections::hash_map::Entry::Occupied(_)) {
                merged();
            }
            let t = entry.or_insert(0);
            *t = t.saturating_add(tokens);
        }
        self.schedule_flush();
    }

    /// Starts the one flush task unless it runs already; it writes until
    /// nothing is pending.
    fn schedule_flush(&self) {
        let background = &self.inner.background;
        if background.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            background.flushing.store(false, Ordering::Release);
            return;
        };
        background_stats().spawned.fetch_add(1, Ordering::Relaxed);
        let service = self.clone();
        handle.spawn(async move {
            loop {
                service.flush_pending().await;
                let background = &service.inner.background;
                background.flushing.store(false, Ordering::Release);
                // Anything added after the last take but before the flag
                // dropped saw `flushing` set and left it to us.
                if background.is_empty() || background.flushing.swap(true, Ordering::AcqRel) {
                    break;
                }
            }
        });
    }

    async fn flush_pending(&self) {
        let background = &self.inner.background;
        let usage = std::mem::take(&mut *lock(&background.usage));
        let shared_tokens = std::mem::take(&mut *lock(&background.shared_tokens));
        let upstream = std::mem::take(&mut *lock(&background.upstream));
        for ((id, second), (requests, tokens)) in usage {
            let _ = self
                .persist_usage(&id, second * 1000, requests, tokens)
                .await;
        }
        for ((id, second), tokens) in shared_tokens {
            if let Some(shared) = self.shared() {
                let guard = crate::store::redis::AddGuard::default();
                if let Err(e) = shared
                    .redis
                    .add(&id, second * 1000, 0, tokens, &guard)
                    .await
                {
                    self.shared_failed(&e);
                }
            }
        }
        if let Some(store) = self.store() {
            for (id, json) in upstream {
                if let Err(e) = store.save_upstream_state(&id, &json).await {
                    self.store_failed(&e);
                }
            }
        }
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
        // Redis expires its copies on its own (PX).
        let cutoff = now.saturating_sub(crate::store::IDEMPOTENCY_TTL_MS);
        match store.prune_idempotency_keys(cutoff).await {
            Ok(keys) => tracing::debug!(keys, "pruned idempotency keys"),
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

/// Runs `task` in the background, unless [`MAX_BACKGROUND_TASKS`] already
/// run (then it is dropped and counted; see the module docs).
pub(super) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    // Writes are triggered from sync code (a stream's drop guard) too; without a
    // runtime there is nothing to persist through, which only happens in tests.
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let Ok(permit) = permits().clone().try_acquire_owned() else {
        background_stats().dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            limit = MAX_BACKGROUND_TASKS,
            "background task dropped: too many running"
        );
        return;
    };
    background_stats().spawned.fetch_add(1, Ordering::Relaxed);
    handle.spawn(async move {
        task.await;
        drop(permit);
    });
}
