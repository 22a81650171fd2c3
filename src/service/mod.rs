//! The quota service: the engine plus what surrounds it at run time — the
//! workspace registry (keys), the per-workspace event bus, and the ticker that
//! turns the passing of time into status changes. REST, WebSocket, the
//! proxy and the server functions all go through this one API.

mod bus;
mod connections;
mod credentials;
mod persist;
mod records;
mod registry;
mod sessions;
mod shared;

pub use bus::Bus;
pub use connections::{ConnectionSlot, ConnectionSlots};
pub use credentials::{presented, AuthError, Credential, Resolved};
pub use persist::{
    background_stats, background_tasks_in_flight, BackgroundStats, MAX_BACKGROUND_TASKS,
    USAGE_HORIZON_MS,
};
pub use records::{Idempotency, Recorded, MAX_IDEMPOTENCY_KEYS_IN_MEMORY};
pub use registry::Registry;
pub use sessions::{OpenedSession, SessionView};
pub use shared::{FailurePolicy, Shared};

use crate::alerts::Alerts;
use crate::browser_session::SessionIndex;
use crate::config::Config;
use crate::engine::{Admission, CallOutcome, Clock, Effect, Engine, EngineError, Transition};
use crate::metrics::Metrics;
use crate::store::{SqliteStore, StoreError};
use crate::wire::{Caller, CheckResult, LimitOverrides, Limits, QuotaSnapshot, UsageReport};

/// Old usage and history are pruned about every 15 minutes (at 250 ms ticks).
const PRUNE_EVERY_TICKS: u64 = 3_600;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct QuotaService {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    engine: Engine,
    registry: Registry,
    bus: Bus,
    sessions: SessionIndex,
    /// Open WebSockets per caller, capped (`QUOTA_MAX_WS_PER_WORKSPACE`).
    connections: ConnectionSlots,
    store: Option<SqliteStore>,
    shared: Option<Shared>,
    alerts: std::sync::OnceLock<Alerts>,
    metrics: Metrics,
    /// Flips to true when the server starts shutting down; WebSocket sessions
    /// watch it to close with "going away".
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Workspaces whose keys were just rotated or revoked; open WebSockets
    /// re-check their credentials when their workspace appears here.
    revocations: tokio::sync::broadcast::Sender<String>,
    /// `Idempotency-Key`s when there is neither SQLite nor Redis (bounded).
    idempotency: records::IdempotencyMemory,
    /// Background writes: how many run, and what is merged while they wait.
    background: persist::Background,
    /// Under Redis: lookups of unknown keys, and the last key epoch loaded.
    lookups: shared::KeyLookups,
    /// Rotations and revocations run one at a time: each stores its key and
    /// then applies it here, and two interleaved could leave memory holding
    /// one key and the store another (a restart would swap the working key),
    /// or both keys working. Admin actions are rare; one lock for all.
    key_changes: tokio::sync::Mutex<()>,
}

/// What a service operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The caller's workspace key was rotated or revoked (found out from
    /// Redis by an instance that had missed the change); nothing was counted.
    #[error("The key was rotated or revoked; use the workspace's current key.")]
    KeyChanged,
    /// The `Idempotency-Key` was already used for a different request.
    #[error("This Idempotency-Key was already used for a different request; use a new key for a new request.")]
    IdempotencyKeyReused,
}

impl QuotaService {
    /// A service that keeps everything in memory (tests, benchmarks).
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self::build(config, clock, None)
    }

    /// A service backed by `store`, rebuilt from what it holds.
    pub async fn with_store(
        config: Config,
        clock: Arc<dyn Clock>,
        store: SqliteStore,
    ) -> Result<Self, StoreError> {
        let service = Self::build(config, clock, Some(store.clone()));
        let restored = service.restore(&store).await?;
        tracing::info!(workspaces = restored, path = %store.path().display(), "state restored");
        Ok(service)
    }

    /// A service sharing counters and events with other instances over Redis.
    pub async fn with_redis(
        config: Config,
        clock: Arc<dyn Clock>,
        shared: Shared,
    ) -> Result<Self, StoreError> {
        let mut service = Self::build(config, clock, None);
        if let Some(inner) = Arc::get_mut(&mut service.inner) {
            inner.shared = Some(shared);
        }
        let restored = service.shared_start().await?;
        tracing::info!(workspaces = restored, "state loaded from Redis");
        Ok(service)
    }

    fn build(config: Config, clock: Arc<dyn Clock>, store: Option<SqliteStore>) -> Self {
        let engine = Engine::new(config.engine.clone(), clock);
        let registry = Registry::new(config.admin_key.expose());
        let sessions = SessionIndex::new(
            crate::browser_session::admin_key_binding(config.admin_key.expose()),
            config.session_caps.max_sessions_per_workspace,
        );
        let connections = ConnectionSlots::new(config.session_caps.max_ws_per_caller);
        Self {
            inner: Arc::new(Inner {
                config,
                engine,
                registry,
                bus: Bus::default(),
                sessions,
                connections,
                store,
                shared: None,
                alerts: std::sync::OnceLock::new(),
                metrics: Metrics::new(),
                shutdown: tokio::sync::watch::channel(false).0,
                revocations: tokio::sync::broadcast::channel(64).0,
                idempotency: records::IdempotencyMemory::default(),
                key_changes: tokio::sync::Mutex::new(()),
                background: persist::Background::default(),
                lookups: shared::KeyLookups::default(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// Looks a key up: `None` for an unknown key. Requests are resolved with
    /// [`resolve_credential`](Self::resolve_credential), which calls this;
    /// sign-in (the key is in its body) calls it directly.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        self.inner.registry.authenticate(key)
    }

    /// Starts webhook delivery (call once, on the runtime). Until then, and
    /// without `QUOTA_WEBHOOK_URL`, transitions are only logged.
    pub fn start_alerts(&self) {
        let claim: Option<crate::alerts::ClaimFn> = self.shared().map(|shared| {
            let redis = shared.redis.clone();
            let claim: crate::alerts::ClaimFn = Arc::new(move |name: String, ttl_ms: u64| {
                let redis = redis.clone();
                Box::pin(async move {
                    // Redis down: better a duplicate alert than none.
                    redis.claim(&name, ttl_ms).await.unwrap_or(true)
                })
            });
            claim
        });
        let _ = self
            .inner
            .alerts
            .set(Alerts::start(self.config().alerts.clone(), claim));
    }

    /// Replaces a workspace's keys with a new one (the old ones stop working at
    /// once, open WebSockets and browser sessions included). Returns the key.
    ///
    /// The new key is stored before the old one stops working: if the store
    /// fails, the error is returned (503) and the old key stays the
    /// workspace's key, here and in the store.
    pub async fn rotate_key(&self, id: &str) -> Result<String, ServiceError> {
        if !self.inner.engine.contains(id) {
            return Err(ServiceError::Engine(EngineError::NotFound(id.to_string())));
        }
        let (key, digest) = Registry::new_key();
        let _one_at_a_time = self.inner.key_changes.lock().await;
        // Sign-ins of this workspace that overlap this change undo themselves
        // (see `open_session`), whether or not the store accepts it.
        self.inner.registry.begin_change(id);
        self.persist_key(id, Some(digest)).await?;
        self.revoke_locally(id);
        self.inner.registry.restore(digest, id);
        // The key has changed for good: an audit entry the store cannot take
        // must not hide the new key from the only one who will ever see it.
        self.audit_best_effort("rotate_key", id, "key rotated")
            .await;
        tracing::info!(workspace_id = id, "workspace key rotated");
        Ok(key)
    }

    /// Revokes every key of a workspace; nothing can act for it until a new
    /// key is issued with [`rotate_key`](Self::rotate_key). Stored first, like
    /// a rotation: on a store failure the key keeps working and the error
    /// says so.
    pub async fn revoke_keys(&self, id: &str) -> Result<(), ServiceError> {
        if !self.inner.engine.contains(id) {
            return Err(ServiceError::Engine(EngineError::NotFound(id.to_string())));
        }
        let _one_at_a_time = self.inner.key_changes.lock().await;
        self.inner.registry.begin_change(id);
        self.persist_key(id, None).await?;
        self.revoke_locally(id);
        self.audit_best_effort("revoke_keys", id, "keys revoked")
            .await;
        tracing::info!(workspace_id = id, "workspace keys revoked");
        Ok(())
    }

    async fn audit_best_effort(&self, action: &str, id: &str, detail: &str) {
        if let Err(error) = self.persist_audit(action, Some(id), detail).await {
            tracing::error!(%error, workspace_id = id, action, "audit entry not stored");
        }
    }

    /// Stores the key change; the workspace's stored sessions are deleted
    /// with it (in the same SQLite transaction; right after, under Redis).
    async fn persist_key(&self, id: &str, digest: Option<[u8; 32]>) -> Result<(), ServiceError> {
        self.shared_key_change(id, digest).await?;
        if let Some(store) = self.store() {
            // All zeroes: a digest no key hashes to, i.e. revoked.
            store
                .update_workspace_key(id, digest.unwrap_or([0; 32]))
                .await
                .map_err(|e| {
                    self.store_failed(&e);
                    ServiceError::Store(e)
                })?;
        }
        Ok(())
    }

    /// Forgets keys and sessions of a workspace and tells its WebSockets.
    /// Keys go first: `open_session` relies on it to never keep a session
    /// opened with a key revoked meanwhile.
    pub(super) fn revoke_locally(&self, id: &str) {
        self.inner.registry.revoke_workspace(id);
        // Each closed session also signals its own sockets; the workspace's
        // key sockets learn of it below.
        let _ = self.inner.sessions.close_workspace(id);
        let _ = self.inner.revocations.send(id.to_string());
    }

    /// Open WebSockets per caller.
    pub fn connections(&self) -> &ConnectionSlots {
        &self.inner.connections
    }

    pub fn revocations(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.revocations.subscribe()
    }

    /// Tells long-lived connections that the server is going away.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The Prometheus text of `/metrics`.
    pub fn render_metrics(&self) -> String {
        let webhooks = self
            .alert_stats()
            .map(|s| {
                use std::sync::atomic::Ordering::Relaxed;
                vec![
                    ("delivered", s.delivered.load(Relaxed)),
                    ("failed", s.failed.load(Relaxed)),
                    ("deduplicated", s.deduplicated.load(Relaxed)),
                    ("dropped", s.dropped.load(Relaxed)),
                ]
            })
            .unwrap_or_default();
        let mut text = self
            .inner
            .metrics
            .render(&self.inner.engine.status_counts(), &webhooks);
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let stats = persist::background_stats();
        let _ = write!(
            text,
            "# HELP quota_background_tasks_total Background writes: tasks started, tasks not started because {MAX_BACKGROUND_TASKS} were running, and writes merged into a pending one.\n\
             # TYPE quota_background_tasks_total counter\n\
             quota_background_tasks_total{{result=\"spawned\"}} {}\n\
             quota_background_tasks_total{{result=\"dropped\"}} {}\n\
             quota_background_tasks_total{{result=\"merged\"}} {}\n\
             # HELP quota_background_tasks_in_flight Background tasks running now.\n\
             # TYPE quota_background_tasks_in_flight gauge\n\
             quota_background_tasks_in_flight {}\n",
            stats.spawned.load(Relaxed),
            stats.dropped.load(Relaxed),
            stats.merged.load(Relaxed),
            persist::background_tasks_in_flight(),
        );
        text
    }

    /// Whether this instance shares its state over Redis.
    pub fn is_shared(&self) -> bool {
        self.inner.shared.is_some()
    }

    pub fn alert_stats(&self) -> Option<Arc<crate::alerts::AlertStats>> {
        self.inner.alerts.get().map(|a| a.stats.clone())
    }

    /// Creates a workspace and returns its (only ever shown once) key. With a
    /// store, the workspace exists only once it is committed.
    pub async fn create_workspace(
        &self,
        id: &str,
        overrides: &LimitOverrides,
    ) -> Result<(String, Limits), ServiceError> {
        let limits = self.inner.engine.create_workspace(id, overrides)?;
        let (key, digest) = self.inner.registry.issue_key(id);
        if let Err(e) = self.shared_create(id, limits, digest).await {
            self.inner.registry.revoke_workspace(id);
            self.inner.engine.remove_workspace(id);
            return Err(e);
        }
        if let Some(store) = self.store() {
            let now = self.inner.engine.now_ms();
            if let Err(e) = store.save_workspace(id, digest, limits, now).await {
                self.inner.registry.revoke_workspace(id);
                self.inner.engine.remove_workspace(id);
                return Err(ServiceError::Store(e));
            }
            self.persist_audit("create_workspace", Some(id), &format!("{limits:?}"))
                .await?;
        }
        tracing::info!(workspace_id = id, "workspace created");
        Ok((key, limits))
    }

    /// Whether the store answers (always true without one).
    pub async fn store_ready(&self) -> bool {
        if let Some(shared) = self.shared() {
            return shared.redis.ping().await.is_ok();
        }
        match self.store() {
            Some(store) => store.ping().await.is_ok(),
            None => true,
        }
    }

    pub fn snapshot(&self, id: &str) -> Result<QuotaSnapshot, EngineError> {
        self.inner.engine.snapshot(id)
    }

    pub fn check(&self, id: &str) -> Result<CheckResult, EngineError> {
        self.inner.engine.check(id)
    }

    pub fn usage(&self, id: &str, minutes: u64) -> Result<UsageReport, EngineError> {
        self.inner.engine.usage(id, minutes)
    }

    /// Admits (and counts) one proxied request; persisted in the background.
    /// With Redis, admission is decided by the shared counters.
    pub async fn try_admit(&self, id: &str) -> Result<Admission, ServiceError> {
        if let Some(shared) = self.shared().cloned() {
            let admission = self.shared_admit(&shared, id).await?;
            self.count_admission(admission.check.allowed);
            if admission.check.allowed {
                self.publish(id, &admission.effect);
            }
            return Ok(admission);
        }
        let admission = self.inner.engine.try_admit(id)?;
        self.count_admission(admission.check.allowed);
        if admission.check.allowed {
            let now = self.inner.engine.now_ms();
            self.persist_usage_in_background(id, now, 1, 0);
            self.persist_effect_in_background(id, &admission.effect, false);
            self.publish(id, &admission.effect);
        }
        Ok(admission)
    }

    /// The outcome of an admitted request; persisted in the background (this
    /// runs on the proxy's response path, and in a stream's drop guard).
    pub fn complete(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, EngineError> {
        let effect = self.inner.engine.complete(id, outcome)?;
        let now = self.inner.engine.now_ms();
        self.persist_usage_in_background(id, now, 0, outcome.tokens);
        self.persist_effect_in_background(
            id,
            &effect,
            outcome.error.is_some() || !outcome.headers.is_empty(),
        );
        self.shared_completed(id, outcome);
        self.publish(id, &effect);
        Ok(effect)
    }

    fn count_admission(&self, allowed: bool) {
        let decision = if allowed { "allowed" } else { "denied" };
        self.inner
            .metrics
            .admissions
            .with_label_values(&[decision])
            .inc();
    }

    pub async fn reset(&self, id: &str) -> Result<Effect, ServiceError> {
        let effect = self.inner.engine.reset(id)?;
        tracing::info!(workspace_id = id, "quota reset by admin");
        self.persist_reset(id).await?;
        self.shared_reset(id).await?;
        self.persist_effect_in_background(id, &effect, false);
        self.publish(id, &effect);
        Ok(effect)
    }

    pub async fn reset_all(&self) -> Result<Vec<String>, ServiceError> {
        let ids = self.inner.engine.workspace_ids();
        for id in &ids {
            match self.reset(id).await {
                // A workspace removed between listing and resetting is skipped.
                Err(ServiceError::Engine(_)) => {}
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        Ok(ids)
    }

    /// Looks for time-driven transitions and refreshes subscribers whose windows
    /// slid. Called by the ticker; public so tests can drive it with a fake clock.
    pub fn tick(&self, refresh_usage: bool) {
        for transition in self.inner.engine.tick() {
            self.publish_transition(&transition);
            let effect = Effect {
                anomaly: None,
                transition: Some(transition.clone()),
                version: 0,
            };
            self.persist_effect_in_background(&transition.workspace_id, &effect, false);
        }
        if refresh_usage {
            for id in self.inner.bus.subscribed_ids() {
                self.inner
                    .bus
                    .refresh_with(&id, || self.inner.engine.snapshot(&id).ok());
            }
        }
    }

    /// Starts the ticker on the current tokio runtime. It holds only a weak
    /// reference, so it ends when the last service handle is dropped.
    pub fn spawn_ticker(&self) {
        let weak = Arc::downgrade(&self.inner);
        let period = Duration::from_millis(self.inner.config.tick_ms.max(10));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut count: u64 = 0;
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                count += 1;
                let service = QuotaService { inner };
                // Usage meters slide slowly; refreshing them once a second is plenty.
                service.tick(count.is_multiple_of(4));
                if !service.engine().store_healthy() && count.is_multiple_of(8) {
                    service.probe_store().await;
                }
                if count.is_multiple_of(PRUNE_EVERY_TICKS) {
                    service.prune().await;
                }
            }
        });
    }

    fn alert(&self, transition: &Transition) {
        if let Some(alerts) = self.inner.alerts.get() {
            alerts.notify(transition);
        }
    }

    fn publish_transition(&self, transition: &Transition) {
        log_transition(transition);
        self.alert(transition);
        let id = &transition.workspace_id;
        self.inner
            .bus
            .publish_with(id, || self.inner.engine.snapshot(id).ok());
    }

    fn publish(&self, id: &str, effect: &Effect) {
        if let Some(transition) = &effect.transition {
            log_transition(transition);
            self.alert(transition);
        }
        if let Some(flag) = &effect.anomaly {
            self.alert(flag);
        }
        self.publish_quiet(id);
    }

    /// Publishes to subscribers without logging or alerting (changes that
    /// another instance already reported).
    pub(super) fn publish_quiet(&self, id: &str) {
        self.inner
            .bus
            .publish_with(id, || self.inner.engine.snapshot(id).ok());
    }
}

fn log_transition(t: &Transition) {
    tracing::info!(
        workspace_id = %t.workspace_id,
        from = %t.from,
        to = %t.to,
        reason = %t.reason,
        "quota status changed"
    );
}
