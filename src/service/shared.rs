//! Scale-out over Redis: admission against the shared counters, usage added
//! to them, and every change broadcast to the other instances, which apply it
//! to their own engine (so their WebSockets see it) — see `store::redis`.
//!
//! Failure policy (`QUOTA_REDIS_FAILURE_POLICY`): while Redis is unreachable
//! every workspace is DEGRADED, and admission either falls back to this
//! instance's own counts (`open`, the default: traffic keeps flowing, limits
//! are enforced per instance) or refuses with 503 (`closed`: never risk going
//! over). Records are counted locally and answered 503 (not acknowledged),
//! and so are sign-ins (no cookie without a stored session).
//!
//! Browser sessions are shared too (`service::sessions`): stored in Redis,
//! loaded at start, and opened, extended and closed on every instance through
//! the same events; a key change (`key_changed`) ends a workspace's sessions
//! everywhere, as it does its keys.

use super::{Caller, QuotaService, ServiceError};
use crate::auth::key_digest;
use crate::engine::{Admission, CallOutcome, Effect};
use crate::model::{CheckResult, LimitOverrides, Limits, QuotaStatus};
use crate::store::redis::{RedisShared, SharedWorkspace, EVENTS_CHANNEL};
use crate::store::StoreError;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    Open,
    Closed,
}

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
    /// With the hex of `session::admin_key_binding` of the admin key that
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
                self.broadcast(
                    id,
                    EventKind::Created {
                        key_digest: workspace.key_digest,
                        limits,
                    },
                );
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
        match shared
            .redis
            .add(id, engine.now_ms(), 1, 0, Some(&limits))
            .await
        {
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

    /// Adds usage to the shared counters; awaited for records.
    pub(super) async fn shared_add(
        &self,
        id: &str,
        requests: u64,
        tokens: u64,
    ) -> Result<(), ServiceError> {
        let Some(shared) = self.shared() else {
            return Ok(());
        };
        if requests == 0 && tokens == 0 {
            return Ok(());
        }
        match shared
            .redis
            .add(id, self.engine().now_ms(), requests, tokens, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                self.shared_failed(&e);
                Err(ServiceError::Store(e))
            }
        }
    }

    pub(super) fn shared_completed(&self, id: &str, outcome: &CallOutcome) {
        if self.shared().is_none() {
            return;
        }
        let service = self.clone();
        let id = id.to_string();
        let outcome = outcome.clone();
        super::persist::spawn(async move {
            let _ = service.shared_add(&id, 0, outcome.tokens).await;
            service.broadcast(&id, EventKind::Completed { outcome });
        });
    }

    pub(super) fn shared_recorded(&self, id: &str, outcome: &CallOutcome) {
        if self.shared().is_some() {
            self.broadcast(
                id,
                EventKind::Recorded {
                    outcome: outcome.clone(),
                },
            );
        }
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
        session: &crate::session::SessionInfo,
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
        let revoked = "00".repeat(32);
        let keyed: HashSet<&str> = workspaces
            .iter()
            .filter(|w| w.key_digest != revoked)
            .map(|w| w.id.as_str())
            .collect();
        let now = self.engine().now_ms();
        for (digest_hex, session) in shared.redis.load_sessions(now).await? {
            if let Some(digest) = decode_digest(&digest_hex) {
                let stored = super::sessions::stored_from_shared(digest, session);
                self.restore_session(stored, now, &keyed);
            }
        }
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let service = QuotaService { inner };
                let client = shared.redis.client().clone();
                drop(service);
                if let Ok(mut pubsub) = client.get_async_pubsub().await {
                    if pubsub.subscribe(EVENTS_CHANNEL).await.is_ok() {
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
        Ok(workspaces.len())
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
        self.broadcast(
            id,
            EventKind::KeyChanged {
                key_digest: digest_hex,
            },
        );
        Ok(())
    }

    fn apply_key_change(&self, id: &str, digest_hex: Option<&str>) {
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
        if hex::decode_to_slice(digest_hex, &mut digest).is_ok() {
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
