//! Scale-out over Redis: admission against the shared counters, usage added
//! to them, and every change broadcast to the other instances, which apply it
//! to their own engine (so their WebSockets see it) — see `store::redis`.
//!
//! Failure policy (`QUOTA_REDIS_FAILURE_POLICY`): while Redis is unreachable
//! every workspace is DEGRADED, and admission either falls back to this
//! instance's own counts (`open`, the default: traffic keeps flowing, limits
//! are enforced per instance) or refuses with 503 (`closed`: never risk going
//! over). Records are answered 503 and not counted anywhere (a retry counts
//! once), and so are sign-ins (no cookie without a stored session).
//!
//! Keys across instances:
//! - **Created or rotated elsewhere works here at once.** A key this instance
//!   does not know is looked up in Redis by its digest (`learn_key`, called
//!   before a request is authenticated) before it is refused. Keys Redis does
//!   not know either are remembered as unknown for [`NEGATIVE_TTL`] (at most
//!   [`NEGATIVE_CACHE_MAX`] of them), and at most [`LOOKUPS_PER_SECOND`]
//!   lookups reach Redis per second: a flood of random keys costs Redis
//!   nothing more than that.
//! - **Revoked or rotated elsewhere is refused here, even if the event was
//!   missed.** Every admission and record carries the key digest this
//!   instance holds for the workspace; the admission script compares it with
//!   `qa:{ws}:key` and refuses a stale one, after which this instance reloads
//!   the workspace's key (forgetting the old one, its sessions and sockets).
//!   Everything else (reads, WebSockets) catches up by a reload of every
//!   key and session, done on every (re)subscribe to `qa:events` and whenever
//!   the key epoch in Redis moves (polled every [`EPOCH_POLL`]): within about
//!   a second of the change while Redis is reachable, even over a
//!   subscription that silently stopped delivering.
//! - **A session ended elsewhere ends here, even if the event was missed.**
//!   Every delete of a session before its expiry (sign-out, the admin, the
//!   cap, a key change) moves the session epoch in Redis in the same
//!   transaction; the same poll reloads the sessions when it moved.
//!
//! Browser sessions are shared too (`service::sessions`): stored in Redis,
//! loaded at start, and opened, extended and closed on every instance through
//! the same events; a key change (`key_changed`) ends a workspace's sessions
//! everywhere, as it does its keys.

use super::records::Idempotency;
use super::{Caller, QuotaService, ServiceError};
use crate::auth::key_digest;
use crate::engine::{Admission, CallOutcome, Effect};
use crate::store::redis::{
    AddCode, AddGuard, RedisShared, SharedWorkspace, EVENTS_CHANNEL, REVOKED_DIGEST_HEX,
};
use crate::store::{ClaimOutcome, StoreError};
use crate::wire::{CheckResult, LimitOverrides, Limits, QuotaStatus};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a key Redis did not know is refused without asking again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Unknown keys remembered at most; past it, unknown keys are still looked
/// up, within [`LOOKUPS_PER_SECOND`].
pub const NEGATIVE_CACHE_MAX: usize = 10_000;
/// Lookups of unknown keys sent to Redis per second, per instance; past it
/// an unknown key is refused (401) without a lookup.
pub const LOOKUPS_PER_SECOND: u32 = 100;
/// How often the key epoch is read from Redis.
pub const EPOCH_POLL: Duration = Duration::from_secs(1);

/// Looking up keys this instance has not heard of, and the key epoch.
pub(super) struct KeyLookups {
    unknown: Mutex<HashMap<[u8; 32], Instant>>,
    budget: governor::DefaultDirectRateLimiter,
    /// The key epoch the last reload started from.
    epoch: AtomicU64,
    /// The session epoch the last reload (of everything, or of sessions)
    /// started from.
    session_epoch: AtomicU64,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Default for KeyLookups {
    fn default() -> Self {
        let per_second =
            std::num::NonZeroU32::new(LOOKUPS_PER_SECOND).unwrap_or(std::num::NonZeroU32::MIN);
        Self {
            unknown: Mutex::new(HashMap::new()),
            budget: governor::RateLimiter::direct(governor::Quota::per_second(per_second)),
            epoch: AtomicU64::new(0),
            session_epoch: AtomicU64::new(0),
            reloading: tokio::sync::Mutex::new(()),
        }
    }
}

impl KeyLookups {
    fn recently_unknown(&self, digest: &[u8; 32]) -> bool {
        let unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        unknown
            .get(digest)
            .is_some_and(|until| *until > Instant::now())
    }

    fn remember_unknown(&self, digest: [u8; 32]) {
        let mut unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if unknown.len() >= NEGATIVE_CACHE_MAX {
            unknown.retain(|_, until| *until > now);
        }
        if unknown.len() < NEGATIVE_CACHE_MAX {
            unknown.insert(digest, now + NEGATIVE_TTL);
        }
    }

    fn forget_unknown(&self) {
        self.unknown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

pub use crate::config::FailurePolicy;

#[derive(Clone)]
pub struct Shared {
    pub redis: RedisShared,
    /// Distinguishes this instance's own events on the channel.
    pub instance: String,
    pub policy: FailurePolicy,
}

#[derive(Debug, Serialize, Deserialize)]
struct SharedEvent {
    origin: String,
    /// Empty for session events: they are about a browser, not one
    /// workspace's quota (their owner is in the event).
    #[serde(default)]
    workspace_id: String,
    #[serde(flatten)]
    kind: EventKind,
}

/// Who a shared session acts for. A workspace session names the digest of
/// the key it was opened with, so an instance that has already applied a
/// later key change refuses it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "caller", rename_all = "snake_case")]
pub(super) enum SessionOwner {
    /// With the hex of `browser_session::admin_key_binding` of the admin key that
    /// opened it: an instance running another admin key refuses it.
    Admin {
        #[serde(default)]
        admin_key_binding: Option<String>,
    },
    Workspace {
        id: String,
        key_digest: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum EventKind {
    Created {
        key_digest: String,
        limits: Limits,
    },
    /// The workspace's keys were replaced (`Some`) or revoked (`None`).
    KeyChanged {
        key_digest: Option<String>,
    },
    Admitted,
    Completed {
        outcome: CallOutcome,
    },
    Recorded {
        outcome: CallOutcome,
    },
    /// A batch, counted all at once.
    RecordedBatch {
        outcomes: Vec<CallOutcome>,
    },
    Reset,
    /// Digests (hex) only: the session id never leaves the browser and us.
    SessionOpened {
        session_digest: String,
        expires_at_ms: u64,
        /// Absent (0) from older instances.
        #[serde(default)]
        created_at_ms: u64,
        #[serde(default)]
        absolute_expires_at_ms: u64,
        owner: SessionOwner,
    },
    SessionExtended {
        session_digest: String,
        expires_at_ms: u64,
    },
    SessionClosed {
        session_digest: String,
    },
}

impl QuotaService {
    pub(super) fn shared(&self) -> Option<&Shared> {
        self.inner.shared.as_ref()
    }

    pub(super) async fn shared_create(
        &self,
        id: &str,
        limits: Limits,
        digest: [u8; 32],
    ) -> Result<(), ServiceError> {
        let Some(shared) = self.shared() else {
            return Ok(());
        };
        let workspace = SharedWorkspace {
            id: id.to_string(),
            key_digest: hex::encode(digest),
            limits,
        };
        match shared.redis.save_workspace(&workspace).await {
            Ok(true) => {
                // Awaited: the key is handed out only once the others can
                // know it (they would also look it up, see `learn_key`).
                self.broadcast_now(
                    id,
                    EventKind::Created {
                        key_digest: workspace.key_digest,
                        limits,
                    },
                )
                .await;
                Ok(())
            }
            Ok(false) => Err(ServiceError::Engine(
                crate::engine::EngineError::AlreadyExists(id.to_string()),
            )),
            Err(e) => {
                self.shared_failed(&e);
                Err(ServiceError::Store(e))
            }
        }
    }

    /// Admission against the shared counters (see the module's failure policy).
    pub(super) async fn shared_admit(
        &self,
        shared: &Shared,
        id: &str,
    ) -> Result<Admission, ServiceError> {
        let engine = self.engine();
        // Upstream blocks (429s, insufficient_quota) live in every engine, not
        // in Redis: ask the local engine first.
        let local = engine.check(id)?;
        if !local.allowed {
            return Ok(Admission {
                check: local,
                effect: Effect {
                    anomaly: None,
                    transition: None,
                    version: 0,
                },
            });
        }
        let limits = engine
            .limits(id)
            .ok_or_else(|| crate::engine::EngineError::NotFound(id.to_string()))?;
        let guard = AddGuard {
            limits: Some(limits),
            expected_key: Some(self.expected_key(id)),
            idempotency: None,
        };
        match shared.redis.add(id, engine.now_ms(), 1, 0, &guard).await {
            Ok(totals) if totals.code == AddCode::KeyChanged => {
                self.reload_workspace_key(id).await;
                Err(ServiceError::KeyChanged)
            }
            Ok(totals) if totals.admitted => {
                let effect = engine.count_admitted(id)?;
                self.broadcast(id, EventKind::Admitted);
                Ok(Admission {
                    check: CheckResult {
                        allowed: true,
                        status: local.status,
                        retry_after_s: None,
                    },
                    effect,
                })
            }
            Ok(totals) => {
                // Other instances' traffic filled the window before their events
                // reached us; the local view catches up within moments.
                let day_full = totals.day_requests + 1 > limits.requests_per_day
                    || totals.day_tokens >= limits.tokens_per_day;
                Ok(Admission {
                    check: CheckResult {
                        allowed: false,
                        status: if day_full {
                            QuotaStatus::QuotaExceeded
                        } else {
                            QuotaStatus::RateLimited
                        },
                        retry_after_s: Some(1.0),
                    },
                    effect: Effect {
                        anomaly: None,
                        transition: None,
                        version: 0,
                    },
                })
            }
            Err(e) => {
                self.shared_failed(&e);
                match shared.policy {
                    FailurePolicy::Open => Ok(engine.try_admit(id)?),
                    FailurePolicy::Closed => Ok(Admission {
                        check: CheckResult {
                            allowed: false,
                            status: QuotaStatus::Degraded,
                            retry_after_s: Some(5.0),
                        },
                        effect: Effect {
                            anomaly: None,
                            transition: None,
                            version: 0,
                        },
                    }),
                }
            }
        }
    }

    /// Adds a record's (or batch's) usage to the shared counters, once per
    /// idempotency key and only while this instance's key of the workspace
    /// is Redis's; awaited.
    pub(super) async fn shared_count(
        &self,
        id: &str,
        now_ms: u64,
        requests: u64,
        tokens: u64,
        idempotency: Option<&Idempotency>,
    ) -> Result<ClaimOutcome, ServiceError> {
        let Some(shared) = self.shared() else {
            return Ok(ClaimOutcome::Counted);
        };
        let guard = AddGuard {
            limits: None,
            expected_key: Some(self.expected_key(id)),
            idempotency: idempotency
                .map(|i| (hex::encode(i.key_digest), hex::encode(i.fingerprint))),
        };
        match shared.redis.add(id, now_ms, requests, tokens, &guard).await {
            // Without limits nothing is refused for room.
            Ok(totals) => match totals.code {
                AddCode::Counted | AddCode::Refused => Ok(ClaimOutcome::Counted),
                AddCode::Replayed => Ok(ClaimOutcome::Replayed),
                AddCode::Mismatch => Ok(ClaimOutcome::Mismatch),
                AddCode::KeyChanged => {
                    self.reload_workspace_key(id).await;
                    Err(ServiceError::KeyChanged)
                }
            },
            Err(e) => {
                self.shared_failed(&e);
                Err(ServiceError::Store(e))
            }
        }
    }

    /// The digest this instance holds for the workspace's key (hex), as
    /// Redis should still have it.
    fn expected_key(&self, id: &str) -> String {
        self.inner
            .registry
            .current_digest(id)
            .map(hex::encode)
            .unwrap_or_else(|| REVOKED_DIGEST_HEX.to_string())
    }

    /// Redis said the workspace's key is not the one this instance holds:
    /// take Redis's.
    async fn reload_workspace_key(&self, id: &str) {
        let Some(shared) = self.shared() else { return };
        match shared.redis.current_key(id).await {
            Ok(Some(current)) => {
                tracing::warn!(
                    workspace_id = id,
                    "missed a key change of this workspace; reloaded it from Redis"
                );
                let digest = (current != REVOKED_DIGEST_HEX).then_some(current.as_str());
                self.apply_key_change(id, digest);
            }
            Ok(None) => {}
            Err(e) => self.shared_failed(&e),
        }
    }

    pub(super) fn shared_completed(&self, id: &str, outcome: &CallOutcome) {
        if self.shared().is_none() {
            return;
        }
        self.shared_tokens_in_background(id, self.engine().now_ms(), outcome.tokens);
        self.broadcast(
            id,
            EventKind::Completed {
                outcome: outcome.clone(),
            },
        );
    }

    pub(super) fn shared_recorded(&self, id: &str, outcomes: &[CallOutcome]) {
        if self.shared().is_none() {
            return;
        }
        let kind = match outcomes {
            [outcome] => EventKind::Recorded {
                outcome: outcome.clone(),
            },
            _ => EventKind::RecordedBatch {
                outcomes: outcomes.to_vec(),
            },
        };
        self.broadcast(id, kind);
    }

    /// Makes sure a key this instance does not know has been looked up in
    /// Redis (a key created or rotated on another instance a moment ago).
    /// Call before authenticating; cheap for known keys and without Redis.
    pub async fn learn_key(&self, key: &str) {
        let Some(shared) = self.shared() else { return };
        if self.inner.registry.knows(key) {
            return;
        }
        let digest = key_digest(key);
        let lookups = &self.inner.lookups;
        if lookups.recently_unknown(&digest) || lookups.budget.check().is_err() {
            return;
        }
        match shared.redis.lookup_key(&hex::encode(digest)).await {
            Ok(Some(workspace)) => self.learn_workspace(&shared.redis, &workspace).await,
            Ok(None) => lookups.remember_unknown(digest),
            Err(e) => self.shared_failed(&e),
        }
    }

    /// Applies a workspace as Redis holds it: created here if new (with its
    /// day of usage), its key replaced if it changed.
    async fn learn_workspace(&self, redis: &RedisShared, w: &SharedWorkspace) {
        if !self.engine().contains(&w.id) {
            self.apply_created(&w.id, &w.key_digest, w.limits);
            if let Ok(buckets) = redis.load_day_buckets(&w.id).await {
                for (minute, requests, tokens) in buckets {
                    let _ = self
                        .engine()
                        .restore_usage(&w.id, minute * 60_000, requests, tokens);
                }
            }
            let _ = self.engine().settle(&w.id);
            self.inner.lookups.forget_unknown();
            return;
        }
        if self.expected_key(&w.id) != w.key_digest {
            let digest = (w.key_digest != REVOKED_DIGEST_HEX).then_some(w.key_digest.as_str());
            self.apply_key_change(&w.id, digest);
            self.inner.lookups.forget_unknown();
        }
    }

    /// Reloads every workspace's key and every session from Redis: what
    /// this instance may have missed while it was not subscribed. Usage of
    /// workspaces already known is not reloaded (Redis decides admission;
    /// the local view catches up with the next events).
    async fn shared_reload(&self) -> Result<(), StoreError> {
        let Some(shared) = self.shared().cloned() else {
            return Ok(());
        };
        let _one_at_a_time = self.inner.lookups.reloading.lock().await;
        // Read before loading: a change made during the load moves an epoch
        // past what is stored below, and the next poll loads again.
        let (epoch, session_epoch) = shared.redis.epochs().await?;
        let workspaces = shared.redis.load_workspaces().await?;
        for w in &workspaces {
            self.learn_workspace(&shared.redis, w).await;
        }
        let keyed: HashSet<&str> = workspaces
            .iter()
            .filter(|w| w.key_digest != REVOKED_DIGEST_HEX)
            .map(|w| w.id.as_str())
            .collect();
        self.reload_sessions(&shared, |id| keyed.contains(id))
            .await?;
        self.inner.lookups.epoch.store(epoch, Ordering::Release);
        self.inner
            .lookups
            .session_epoch
            .store(session_epoch, Ordering::Release);
        Ok(())
    }

    /// Reloads only the sessions (the session epoch moved, the key epoch did
    /// not): a session ended on another instance whose `session_closed`
    /// event never arrived here ends here too. The workspaces whose keys
    /// this instance holds are the ones whose sessions can act.
    async fn shared_reload_sessions(&self) -> Result<(), StoreError> {
        let Some(shared) = self.shared().cloned() else {
            return Ok(());
        };
        let _one_at_a_time = self.inner.lookups.reloading.lock().await;
        let (_, session_epoch) = shared.redis.epochs().await?;
        let registry = &self.inner.registry;
        self.reload_sessions(&shared, |id| registry.current_digest(id).is_some())
            .await?;
        self.inner
            .lookups
            .session_epoch
            .store(session_epoch, Ordering::Release);
        Ok(())
    }

    /// Sessions stored in Redis are restored (those of a workspace for
    /// which `keyed` holds); sessions known here before the
    /// load that Redis no longer has (signed out or ended elsewhere) are
    /// forgotten. One opened here during the load is not in the first list,
    /// so it is never forgotten by mistake.
    async fn reload_sessions(
        &self,
        shared: &Shared,
        keyed: impl Fn(&str) -> bool,
    ) -> Result<(), StoreError> {
        let known_before = self.inner.sessions.digests();
        let now = self.engine().now_ms();
        let loaded = shared.redis.load_sessions(now).await?;
        let keyed: HashSet<&str> = loaded
            .iter()
            .filter_map(|(_, session)| session.workspace_id.as_deref())
            .filter(|id| keyed(id))
            .collect();
        let mut stored = HashSet::new();
        for (digest_hex, session) in &loaded {
            if let Some(digest) = decode_digest(digest_hex) {
                stored.insert(digest);
                let stored = super::sessions::stored_from_shared(digest, session.clone());
                self.restore_session(stored, now, &keyed);
            }
        }
        for digest in known_before {
            if !stored.contains(&digest) {
                self.apply_session_closed(digest);
            }
        }
        Ok(())
    }

    pub(super) async fn shared_reset(&self, id: &str) -> Result<(), ServiceError> {
        let Some(shared) = self.shared() else {
            return Ok(());
        };
        shared.redis.clear_usage(id).await.map_err(|e| {
            self.shared_failed(&e);
            ServiceError::Store(e)
        })?;
        self.broadcast(id, EventKind::Reset);
        Ok(())
    }

    /// Tells the other instances about a session opened here. Awaited, like
    /// [`shared_session_closed`](Self::shared_session_closed): a spawned
    /// publish could overtake the other, and an instance that saw "closed"
    /// before "opened" would keep a signed-out session.
    pub(super) async fn shared_session_opened(
        &self,
        digest: [u8; 32],
        key: &str,
        session: &crate::browser_session::SessionInfo,
    ) {
        if self.shared().is_none() {
            return;
        }
        let owner = match &session.caller {
            Caller::Admin => SessionOwner::Admin {
                admin_key_binding: session.admin_key.map(hex::encode),
            },
            Caller::Workspace(id) => SessionOwner::Workspace {
                id: id.clone(),
                key_digest: hex::encode(key_digest(key)),
            },
        };
        self.broadcast_now(
            "",
            EventKind::SessionOpened {
                session_digest: hex::encode(digest),
                expires_at_ms: session.expires_at_ms,
                created_at_ms: session.created_at_ms,
                absolute_expires_at_ms: session.absolute_expires_at_ms,
                owner,
            },
        )
        .await;
    }

    pub(super) fn shared_session_extended(&self, digest: [u8; 32], expires_at_ms: u64) {
        self.broadcast(
            "",
            EventKind::SessionExtended {
                session_digest: hex::encode(digest),
                expires_at_ms,
            },
        );
    }

    pub(super) async fn shared_session_closed(&self, digest: [u8; 32]) {
        self.broadcast_now(
            "",
            EventKind::SessionClosed {
                session_digest: hex::encode(digest),
            },
        )
        .await;
    }

    /// Publishes in the background (the caller does not wait for Redis).
    fn broadcast(&self, id: &str, kind: EventKind) {
        let Some((shared, payload)) = self.event_payload(id, kind) else {
            return;
        };
        let service = self.clone();
        super::persist::spawn(async move {
            if let Err(e) = shared.redis.publish(&payload).await {
                service.shared_failed(&e);
            }
        });
    }

    /// Publishes before returning, so that two events of one caller reach
    /// the channel in order. A failure is handled as in
    /// [`broadcast`](Self::broadcast): the store is marked unhealthy, the
    /// change itself stands (it is in Redis; the others load it at start).
    async fn broadcast_now(&self, id: &str, kind: EventKind) {
        let Some((shared, payload)) = self.event_payload(id, kind) else {
            return;
        };
        if let Err(e) = shared.redis.publish(&payload).await {
            self.shared_failed(&e);
        }
    }

    fn event_payload(&self, id: &str, kind: EventKind) -> Option<(Shared, String)> {
        let shared = self.shared().cloned()?;
        let event = SharedEvent {
            origin: shared.instance.clone(),
            workspace_id: id.to_string(),
            kind,
        };
        let payload = serde_json::to_string(&event).ok()?;
        Some((shared, payload))
    }

    pub(super) fn shared_failed(&self, error: &StoreError) {
        tracing::error!(%error, "shared store (Redis) failed");
        for t in self.engine().set_store_healthy(false) {
            self.publish_transition(&t);
        }
    }

    /// Loads workspaces and day usage from Redis, then listens for the other
    /// instances' events (reconnecting on its own).
    pub(super) async fn shared_start(&self) -> Result<usize, StoreError> {
        let Some(shared) = self.shared().cloned() else {
            return Ok(0);
        };
        let workspaces = shared.redis.load_workspaces().await?;
        for w in &workspaces {
            self.apply_created(&w.id, &w.key_digest, w.limits);
            for (minute, requests, tokens) in shared.redis.load_day_buckets(&w.id).await? {
                let _ = self
                    .engine()
                    .restore_usage(&w.id, minute * 60_000, requests, tokens);
            }
            let _ = self.engine().settle(&w.id);
        }
        let keyed: HashSet<&str> = workspaces
            .iter()
            .filter(|w| w.key_digest != REVOKED_DIGEST_HEX)
            .map(|w| w.id.as_str())
            .collect();
        let now = self.engine().now_ms();
        for (digest_hex, session) in shared.redis.load_sessions(now).await? {
            if let Some(digest) = decode_digest(&digest_hex) {
                let stored = super::sessions::stored_from_shared(digest, session);
                self.restore_session(stored, now, &keyed);
            }
        }
        for w in &workspaces {
            // Data written before `qa:{ws}:key` existed.
            shared.redis.backfill_key(w).await?;
        }
        let (epoch, session_epoch) = shared.redis.epochs().await?;
        self.inner.lookups.epoch.store(epoch, Ordering::Release);
        self.inner
            .lookups
            .session_epoch
            .store(session_epoch, Ordering::Release);
        self.spawn_subscription(shared.clone());
        self.spawn_epoch_poll(shared);
        Ok(workspaces.len())
    }

    /// Listens to the other instances' events, resubscribing on its own;
    /// every (re)subscription first reloads keys and sessions, so nothing
    /// published while it was away is missed.
    fn spawn_subscription(&self, shared: Shared) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let service = QuotaService { inner };
                let client = shared.redis.client().clone();
                drop(service);
                if let Ok(mut pubsub) = client.get_async_pubsub().await {
                    if pubsub.subscribe(EVENTS_CHANNEL).await.is_ok() {
                        let Some(inner) = weak.upgrade() else { return };
                        if let Err(e) = (QuotaService { inner }).shared_reload().await {
                            if let Some(inner) = weak.upgrade() {
                                QuotaService { inner }.shared_failed(&e);
                            }
                        }
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let Some(inner) = weak.upgrade() else { return };
                            let Ok(payload) = message.get_payload::<String>() else {
                                continue;
                            };
                            if let Ok(event) = serde_json::from_str::<SharedEvent>(&payload) {
                                QuotaService { inner }.apply_event(&shared.instance, event);
                            }
                        }
                    }
                }
                // Lost the subscription: Redis is down or restarting.
                if let Some(inner) = weak.upgrade() {
                    QuotaService { inner }.shared_failed(&StoreError::Closed {
                        path: "redis pub/sub".into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    /// Reads the key and session epochs every [`EPOCH_POLL`] and reloads
    /// when one moved (keys and sessions, or sessions only): a key change or
    /// a session's end whose event never arrived (on a subscription that
    /// still looks alive) is caught up within that time.
    fn spawn_epoch_poll(&self, shared: Shared) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(EPOCH_POLL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let service = QuotaService { inner };
                let Ok((epoch, session_epoch)) = shared.redis.epochs().await else {
                    continue;
                };
                let lookups = &service.inner.lookups;
                let reloaded = if epoch != lookups.epoch.load(Ordering::Acquire) {
                    service.shared_reload().await
                } else if session_epoch != lookups.session_epoch.load(Ordering::Acquire) {
                    service.shared_reload_sessions().await
                } else {
                    Ok(())
                };
                if let Err(e) = reloaded {
                    service.shared_failed(&e);
                }
            }
        });
    }

    pub(super) async fn shared_key_change(
        &self,
        id: &str,
        digest: Option<[u8; 32]>,
    ) -> Result<(), ServiceError> {
        let Some(shared) = self.shared() else {
            return Ok(());
        };
        let digest_hex = digest.map(hex::encode);
        let failed = |e: StoreError| {
            self.shared_failed(&e);
            ServiceError::Store(e)
        };
        shared
            .redis
            .set_workspace_key(id, digest_hex.clone())
            .await
            .map_err(failed)?;
        // After the key: a sign-in racing with this change either wrote its
        // session before this delete, or reads the new key and removes its own
        // (see `store_session`).
        shared
            .redis
            .delete_workspace_sessions(id)
            .await
            .map_err(failed)?;
        // Awaited, in order with the answer to the admin.
        self.broadcast_now(
            id,
            EventKind::KeyChanged {
                key_digest: digest_hex,
            },
        )
        .await;
        Ok(())
    }

    fn apply_key_change(&self, id: &str, digest_hex: Option<&str>) {
        // Already applied (learned by a lookup or a reload first): closing
        // the sessions again would end ones opened with the new key.
        if self.expected_key(id) == digest_hex.unwrap_or(REVOKED_DIGEST_HEX) {
            return;
        }
        self.inner.registry.begin_change(id);
        self.revoke_locally(id);
        let mut digest = [0u8; 32];
        if let Some(hex_digest) = digest_hex {
            if hex::decode_to_slice(hex_digest, &mut digest).is_ok() {
                self.inner.registry.restore(digest, id);
            }
        }
    }

    fn apply_created(&self, id: &str, digest_hex: &str, limits: Limits) {
        let exact = LimitOverrides::exactly(limits);
        let _ = self.engine().create_workspace(id, &exact);
        let mut digest = [0u8; 32];
        if digest_hex != REVOKED_DIGEST_HEX && hex::decode_to_slice(digest_hex, &mut digest).is_ok()
        {
            self.inner.registry.restore(digest, id);
        }
    }

    fn apply_event(&self, own_instance: &str, event: SharedEvent) {
        if event.origin == own_instance {
            return;
        }
        let id = event.workspace_id.as_str();
        let effect = match event.kind {
            EventKind::Created { key_digest, limits } => {
                self.apply_created(id, &key_digest, limits);
                return;
            }
            EventKind::KeyChanged { key_digest } => {
                self.apply_key_change(id, key_digest.as_deref());
                return;
            }
            EventKind::SessionOpened {
                session_digest,
                expires_at_ms,
                created_at_ms,
                absolute_expires_at_ms,
                owner,
            } => {
                if let Some(digest) = decode_digest(&session_digest) {
                    let times = super::sessions::SharedSessionTimes {
                        created_at_ms,
                        expires_at_ms,
                        absolute_expires_at_ms,
                    };
                    self.apply_session_opened(digest, owner, times);
                }
                return;
            }
            EventKind::SessionExtended {
                session_digest,
                expires_at_ms,
            } => {
                if let Some(digest) = decode_digest(&session_digest) {
                    self.apply_session_extended(digest, expires_at_ms);
                }
                return;
            }
            EventKind::SessionClosed { session_digest } => {
                if let Some(digest) = decode_digest(&session_digest) {
                    self.apply_session_closed(digest);
                }
                return;
            }
            EventKind::Admitted => self.engine().count_admitted(id),
            EventKind::Completed { outcome } => self.engine().complete(id, &outcome),
            EventKind::Recorded { outcome } => self.engine().record(id, &outcome),
            EventKind::RecordedBatch { outcomes } => {
                let mut last = Err(crate::engine::EngineError::NotFound(id.to_string()));
                for outcome in &outcomes {
                    last = self.engine().record(id, outcome);
                }
                last
            }
            EventKind::Reset => self.engine().reset(id),
        };
        if effect.is_ok() {
            // The originating instance logged and alerted this change.
            self.publish_quiet(id);
        }
    }
}

/// A 32-byte digest from its hex form; `None` for anything else.
fn decode_digest(digest_hex: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(digest_hex, &mut digest).ok()?;
    Some(digest)
}
