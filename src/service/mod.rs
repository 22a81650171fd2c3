//! The quota service: the engine plus what surrounds it at run time — the
//! workspace registry (keys), the per-workspace event bus, and the ticker that
//! turns the passing of time into status changes. REST, WebSocket, the
//! proxy and the server functions all go through this one API.

mod admin_reads;
mod admission;
mod backend;
mod bus;
mod connections;
mod credentials;
pub mod export;
mod keys;
mod lifecycle;
mod metrics_text;
mod records;
mod registry;
mod replication;
mod restore;
mod session_lifecycle;
mod settings;

pub use admin_reads::{DEFAULT_AUDIT_ENTRIES, MAX_AUDIT_ENTRIES, MAX_LISTED_WORKSPACES};
pub use admission::{is_reservation_id, RESERVATION_ID_PREFIX};
pub use backend::{
    background_stats, background_tasks_in_flight, BackgroundStats, MAX_BACKGROUND_TASKS,
    USAGE_HORIZON_MS,
};
pub use bus::Bus;
pub use connections::{ConnectionSlot, ConnectionSlots};
pub use credentials::{presented, AuthError, Credential, Resolved};
pub use lifecycle::SHUTDOWN_DRAIN;
pub use records::{Idempotency, Recorded, MAX_IDEMPOTENCY_KEYS_IN_MEMORY};
pub use registry::Registry;
pub use replication::{FailurePolicy, ReconcileReport, Shared, RECONCILE_EVERY};
pub use session_lifecycle::{OpenedSession, SessionView};
pub use settings::SettingsError;

use crate::alerts::Alerts;
use crate::browser_session::SessionIndex;
use crate::config::Config;
use crate::engine::{Clock, Effect, Engine, EngineError, Transition};
use crate::metrics::Metrics;
use crate::store::{SqliteStore, StoreError};
use crate::wire::{Caller, CheckResult, LimitOverrides, Limits, QuotaSnapshot, UsageReport};
use backend::{Backend, Kind};

use std::sync::Arc;

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
    /// Where everything counted is kept: memory, SQLite or Redis, chosen
    /// once when the service is built.
    backend: Backend,
    alerts: std::sync::OnceLock<Alerts>,
    metrics: Metrics,
    /// Flips to true when the server starts shutting down; WebSocket sessions
    /// watch it to close with "going away".
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Workspaces whose keys were just rotated or revoked; open WebSockets
    /// re-check their credentials when their workspace appears here.
    revocations: tokio::sync::broadcast::Sender<String>,
    /// Under Redis: lookups of unknown keys, and the last key epoch loaded.
    lookups: replication::KeyLookups,
    /// The ticker and, under Redis, the subscription and the epoch poll:
    /// `shutdown` stops them and waits for them.
    tasks: tokio_util::task::TaskTracker,
    /// Cancelled by `shutdown` (after requests drained): stops `tasks`.
    stop_tasks: tokio_util::sync::CancellationToken,
    /// Rotations and revocations run one at a time: each stores its key and
    /// then applies it here, and two interleaved could leave memory holding
    /// one key and the store another (a restart would swap the working key),
    /// or both keys working. Admin actions are rare; one lock for all.
    key_changes: tokio::sync::Mutex<()>,
    /// Under Redis: what the last reconciliation pass found.
    reconciliation: replication::Reconciliation,
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
        Self::build(
            config,
            clock,
            Kind::Memory(records::IdempotencyMemory::default()),
        )
    }

    /// A service backed by `store`, rebuilt from what it holds.
    pub async fn with_store(
        config: Config,
        clock: Arc<dyn Clock>,
        store: SqliteStore,
    ) -> Result<Self, StoreError> {
        let service = Self::build(config, clock, Kind::Sqlite(store.clone()));
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
        let service = Self::build(config, clock, Kind::Redis(Box::new(shared.clone())));
        let restored = service.load_from_redis(shared).await?;
        tracing::info!(workspaces = restored, "state loaded from Redis");
        Ok(service)
    }

    fn build(config: Config, clock: Arc<dyn Clock>, kind: Kind) -> Self {
        let engine = Engine::new(config.engine.clone(), clock);
        let registry = Registry::new(config.admin_key.expose());
        let sessions = SessionIndex::new(
            crate::browser_session::admin_key_binding(config.admin_key.expose()),
            config.session_caps.max_sessions_per_workspace,
        );
        let connections = ConnectionSlots::new(config.session_caps.max_ws_per_caller);
        Self {
            inner: Arc::new_cyclic(|weak| Inner {
                config,
                engine,
                registry,
                bus: Bus::default(),
                sessions,
                connections,
                backend: Backend::new(kind, weak.clone()),
                alerts: std::sync::OnceLock::new(),
                metrics: Metrics::new(),
                shutdown: tokio::sync::watch::channel(false).0,
                revocations: tokio::sync::broadcast::channel(64).0,
                key_changes: tokio::sync::Mutex::new(()),
                lookups: replication::KeyLookups::default(),
                reconciliation: replication::Reconciliation::default(),
                tasks: tokio_util::task::TaskTracker::new(),
                stop_tasks: tokio_util::sync::CancellationToken::new(),
            }),
        }
    }

    fn backend(&self) -> &Backend {
        &self.inner.backend
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
        let claim: Option<crate::alerts::ClaimFn> = self.backend().redis().map(|shared| {
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

    /// Open WebSockets per caller.
    pub fn connections(&self) -> &ConnectionSlots {
        &self.inner.connections
    }

    pub fn revocations(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.revocations.subscribe()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether this instance shares its state over Redis.
    pub fn is_shared(&self) -> bool {
        self.backend().redis().is_some()
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
        let now = self.inner.engine.now_ms();
        if let Err(e) = self
            .backend()
            .create_workspace(id, limits, digest, now)
            .await
        {
            self.inner.registry.revoke_workspace(id);
            self.inner.engine.remove_workspace(id);
            return Err(e);
        }
        self.audit("create_workspace", Some(id), &format!("{limits:?}"))
            .await?;
        tracing::info!(workspace_id = id, "workspace created");
        Ok((key, limits))
    }

    /// Whether the store answers (always true without one).
    pub async fn store_ready(&self) -> bool {
        self.backend().ping().await
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

    pub async fn reset(&self, id: &str) -> Result<Effect, ServiceError> {
        let effect = self.inner.engine.reset(id)?;
        tracing::info!(workspace_id = id, "quota reset by admin");
        self.backend().clear_usage(id).await?;
        self.audit("reset", Some(id), "admin reset").await?;
        self.keep_effect(id, &effect, false);
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
                tallied: None,
                transition: Some(transition.clone()),
                version: 0,
            };
            self.keep_effect(&transition.workspace_id, &effect, false);
        }
        if refresh_usage {
            for id in self.inner.bus.subscribed_ids() {
                self.inner
                    .bus
                    .refresh_with(&id, || self.inner.engine.snapshot(&id).ok());
            }
        }
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
