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
//! Browser sessions are shared too (`service::session_lifecycle`): stored in Redis,
//! loaded at start, and opened, extended and closed on every instance through
//! the same events; a key change (`key_changed`) ends a workspace's sessions
//! everywhere, as it does its keys.

use super::backend::events::{EventKind, SharedEvent};
use super::QuotaService;
use crate::auth::key_digest;
use crate::store::redis::{RedisShared, SharedWorkspace, EVENTS_CHANNEL, REVOKED_DIGEST_HEX};
use crate::store::StoreError;
use crate::wire::{LimitOverrides, Limits};
use futures_util::StreamExt;
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

impl QuotaService {
    /// The digest this instance holds for the workspace's key (hex), as
    /// Redis should still have it.
    pub(super) fn expected_key(&self, id: &str) -> String {
        self.inner
            .registry
            .current_digest(id)
            .map(hex::encode)
            .unwrap_or_else(|| REVOKED_DIGEST_HEX.to_string())
    }

    /// Redis said the workspace's key is not the one this instance holds:
    /// take Redis's.
    pub(super) async fn reload_workspace_key(&self, id: &str) {
        let Some(shared) = self.backend().redis() else {
            return;
        };
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
            Err(e) => self.backend().report(&e),
        }
    }

    /// Makes sure a key this instance does not know has been looked up in
    /// Redis (a key created or rotated on another instance a moment ago).
    /// Call before authenticating; cheap for known keys and without Redis.
    pub async fn learn_key(&self, key: &str) {
        let Some(shared) = self.backend().redis() else {
            return;
        };
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
            Err(e) => self.backend().report(&e),
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
        let Some(shared) = self.backend().redis().cloned() else {
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
        let Some(shared) = self.backend().redis().cloned() else {
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
                let stored = super::session_lifecycle::stored_from_shared(digest, session.clone());
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

    /// Loads workspaces and day usage from Redis, then listens for the other
    /// instances' events (reconnecting on its own).
    pub(super) async fn load_from_redis(&self, shared: Shared) -> Result<usize, StoreError> {
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
                let stored = super::session_lifecycle::stored_from_shared(digest, session);
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
        self.spawn_until_shutdown(async move {
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
                                QuotaService { inner }.backend().report(&e);
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
                    QuotaService { inner }
                        .backend()
                        .report(&StoreError::Closed {
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
        self.spawn_until_shutdown(async move {
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
                    service.backend().report(&e);
                }
            }
        });
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
                    let times = super::session_lifecycle::SharedSessionTimes {
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
