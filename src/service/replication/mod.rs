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

mod apply;
mod reconcile;
mod reload;

use super::backend::events::SharedEvent;
use super::QuotaService;
use crate::store::redis::{RedisShared, EVENTS_CHANNEL, REVOKED_DIGEST_HEX};
use crate::store::StoreError;
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
pub(crate) use reconcile::Reconciliation;
pub use reconcile::{ReconcileReport, RECONCILE_EVERY};

#[derive(Clone)]
pub struct Shared {
    pub redis: RedisShared,
    /// Distinguishes this instance's own events on the channel.
    pub instance: String,
    pub policy: FailurePolicy,
}

impl QuotaService {
    /// Loads workspaces and day usage from Redis, then listens for the other
    /// instances' events (reconnecting on its own).
    pub(super) async fn load_from_redis(&self, shared: Shared) -> Result<usize, StoreError> {
        let workspaces = shared.redis.load_workspaces().await?;
        for w in &workspaces {
            self.apply_created(&w.id, &w.key_digest, w.limits);
            if w.settings.is_some() {
                self.apply_settings(&w.id, w.limits, w.settings.as_deref());
            }
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
                let stored = crate::service::session_lifecycle::stored_from_shared(digest, session);
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
        self.spawn_reconciliation(shared.clone());
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
                        let service = QuotaService { inner };
                        if let Err(e) = service.shared_reload().await {
                            service.backend().report(&e);
                        }
                        service.sweep_all_ghost_holds(&shared).await;
                        drop(service);
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
}

/// A 32-byte digest from its hex form; `None` for anything else.
pub(super) fn decode_digest(digest_hex: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(digest_hex, &mut digest).ok()?;
    Some(digest)
}
