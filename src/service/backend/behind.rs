//! Writes the caller does not wait for (the proxy's usage, transitions,
//! upstream state, events for the other instances, session expiry
//! refreshes): bounded, merged where they can be, and tracked so shutdown
//! can wait for them.
//!
//! Usage (per workspace and second) and upstream state (the latest per
//! workspace wins) are never dropped: they are merged into pending maps and
//! written by ONE flush task, so a burst while the store is slow makes the
//! writes larger, not more numerous; under Redis a write that failed is
//! put back and tried again (see `keep_for_retry`). Under SQLite that task gathers for
//! [`FLUSH_INTERVAL`] and commits everything in one transaction (group
//! commit: a handful of fsyncs a second at any request rate, and after a
//! `kill -9` at most that interval of proxied usage missing; the record API
//! does not go through here, it writes before it answers). Everything else runs under a
//! process-wide limit of [`MAX_BACKGROUND_TASKS`] at once; past it the task
//! is not started and is counted as dropped
//! (`quota_background_tasks_total{result="dropped"}`): none of those is
//! acknowledged data, and each has a later repair (the engine's own status,
//! the key epoch and resubscribe reload, the next refresh).
//!
//! Every task is spawned on a `TaskTracker`: [`Backend::drain`] closes it and
//! waits, so a clean shutdown loses none of them.

use super::{Backend, Kind, QuotaService};
use crate::store::{StoreError, UsageRow};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// How long the SQLite flush task gathers before it writes: after `kill -9`
/// at most this much (plus one commit) of the proxy's usage is missing;
/// at 1 000 proxied requests a second it is ~4 commits a second instead of
/// one per request.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// How long the flush task waits before it tries again the Redis writes
/// that failed (see [`Backend::flush_pending`]).
pub const RETRY_DELAY: Duration = Duration::from_millis(500);

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

/// Usage of one workspace and second, waiting to be written.
#[derive(Debug, Default)]
pub(super) struct PendingUsage {
    pub requests: u64,
    pub tokens: u64,
    /// Holds the calls settled (Redis keeps them; released in the same
    /// script that adds the tokens, so the shared view never counts a call
    /// twice or not at all).
    pub settles: Vec<String>,
}

type DetailKey = (String, String, crate::store::Dimension, Box<str>);

/// Writes waiting for the flush task, merged by key, and the tasks running.
#[derive(Default)]
pub(super) struct Behind {
    /// (workspace, second) → what to add there.
    usage: Mutex<HashMap<(String, u64), PendingUsage>>,
    /// workspace → its latest durable upstream state (JSON).
    upstream: Mutex<HashMap<String, String>>,
    /// (workspace, local day `YYYY-MM-DD`) → nano-dollars to add (SQLite).
    spend: Mutex<HashMap<(String, String), u64>>,
    /// (workspace, local day, model or user, name) → what to add (SQLite).
    detail: Mutex<HashMap<DetailKey, crate::engine::scopes::Tally>>,
    flushing: AtomicBool,
    /// Wakes the flush task before its interval is up (shutdown).
    now: tokio::sync::Notify,
    tasks: TaskTracker,
}

impl Behind {
    fn is_empty(&self) -> bool {
        lock(&self.usage).is_empty()
            && lock(&self.upstream).is_empty()
            && lock(&self.spend).is_empty()
            && lock(&self.detail).is_empty()
    }

    /// Stops taking new tasks and waits for the running ones, at most `limit`.
    pub(super) async fn drain(&self, limit: Duration) -> bool {
        self.tasks.close();
        self.now.notify_one();
        tokio::time::timeout(limit, self.tasks.wait()).await.is_ok()
    }
}

/// Plain maps: a poisoned lock only means a panic elsewhere mid-insert.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn merged() {
    background_stats().merged.fetch_add(1, Ordering::Relaxed);
}

impl Backend {
    /// Runs `write` in the background, reporting its failure; dropped (and
    /// counted) past [`MAX_BACKGROUND_TASKS`]. Tracked: shutdown waits for it.
    pub(in crate::service) fn behind(
        &self,
        write: impl Future<Output = Result<(), StoreError>> + Send + 'static,
    ) {
        let service = self.service.clone();
        self.spawn(async move {
            if let Err(error) = write.await {
                if let Some(inner) = service.upgrade() {
                    inner.backend.report(&error);
                }
            }
        });
    }

    /// Like [`behind`](Self::behind) for a task that handles its own errors.
    pub(in crate::service) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        // Writes are triggered from sync code (a stream's drop guard) too;
        // without a runtime there is nothing to write through, which only
        // happens in tests.
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
        self.behind.tasks.spawn_on(
            async move {
                task.await;
                drop(permit);
            },
            &handle,
        );
    }

    /// Usage to write behind, merged per workspace and second. Only what
    /// the kind keeps is queued: SQLite keeps requests and tokens; Redis
    /// tokens and the hold `settles` releases (its admission script counted
    /// the request already); memory nothing.
    pub(in crate::service) fn usage_behind(
        &self,
        id: &str,
        at_ms: u64,
        (requests, tokens): (u64, u64),
        settles: Option<&str>,
    ) {
        let (requests, tokens, settles) = match &self.kind {
            Kind::Memory(_) => return,
            Kind::Sqlite(_) => (requests, tokens, None),
            Kind::Redis(_) => (0, tokens, settles),
        };
        if requests == 0 && tokens == 0 && settles.is_none() {
            return;
        }
        {
            let mut usage = lock(&self.behind.usage);
            let entry = usage.entry((id.to_string(), at_ms / 1000));
            if matches!(entry, std::collections::hash_map::Entry::Occupied(_)) {
                merged();
            }
            let pending = entry.or_default();
            pending.requests = pending.requests.saturating_add(requests);
            pending.tokens = pending.tokens.saturating_add(tokens);
            pending.settles.extend(settles.map(str::to_string));
        }
        self.schedule_flush();
    }

    /// Money spent on a workspace's local `day`, to write behind, merged
    /// (SQLite only for now: under Redis spend is not yet shared).
    pub(in crate::service) fn spend_behind(&self, id: &str, day: String, nano: u64) {
        if !matches!(self.kind, Kind::Sqlite(_)) || nano == 0 {
            return;
        }
        {
            let mut spend = lock(&self.behind.spend);
            let entry = spend.entry((id.to_string(), day)).or_default();
            *entry = entry.saturating_add(nano);
        }
        self.schedule_flush();
    }

    /// What a settled call added to a workspace's day by model and by user,
    /// to write behind, merged (SQLite only, like spend).
    pub(in crate::service) fn detail_behind(
        &self,
        id: &str,
        tallied: &crate::engine::scopes::Tallied,
    ) {
        if !matches!(self.kind, Kind::Sqlite(_)) {
            return;
        }
        {
            let day = tallied.day.format("%Y-%m-%d").to_string();
            let mut detail = lock(&self.behind.detail);
            for (dimension, name) in [
                (crate::store::Dimension::Model, &tallied.model),
                (crate::store::Dimension::User, &tallied.user),
            ] {
                let entry = detail
                    .entry((id.to_string(), day.clone(), dimension, name.clone()))
                    .or_default();
                entry.requests = entry.requests.saturating_add(tallied.tally.requests);
                entry.tokens = entry.tokens.saturating_add(tallied.tally.tokens);
                entry.cost_nano = entry.cost_nano.saturating_add(tallied.tally.cost_nano);
            }
        }
        self.schedule_flush();
    }

    /// A workspace's upstream state to write behind (SQLite only: under
    /// Redis every instance learns the upstream's answers from the events).
    pub(in crate::service) fn upstream_state_behind(
        &self,
        id: &str,
        state: impl FnOnce() -> Option<String>,
    ) {
        if !matches!(self.kind, Kind::Sqlite(_)) {
            return;
        }
        let Some(json) = state() else { return };
        if lock(&self.behind.upstream)
            .insert(id.to_string(), json)
            .is_some()
        {
            merged();
        }
        self.schedule_flush();
    }

    /// Starts the one flush task unless it runs already; it writes until
    /// nothing is pending. Under SQLite it first gathers for
    /// [`FLUSH_INTERVAL`] (group commit: one transaction, one fsync, for
    /// everything that arrived meanwhile, however many workspaces); under
    /// Redis, where a write costs no fsync and other instances are waiting
    /// for the settled count, it writes at once.
    fn schedule_flush(&self) {
        if self.behind.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(inner) = self.service.upgrade() else {
            self.behind.flushing.store(false, Ordering::Release);
            return;
        };
        let service = QuotaService { inner };
        let task = async move {
            let backend = &service.inner.backend;
            loop {
                if matches!(backend.kind, Kind::Sqlite(_)) && !backend.behind.tasks.is_closed() {
                    // Cut short by `drain`, so shutdown does not wait out
                    // the interval.
                    let _ =
                        tokio::time::timeout(FLUSH_INTERVAL, backend.behind.now.notified()).await;
                }
                if backend.flush_pending().await {
                    // Kept for another try: not at once against a store
                    // that just failed (cut short by `drain`).
                    let _ = tokio::time::timeout(RETRY_DELAY, backend.behind.now.notified()).await;
                }
                backend.behind.flushing.store(false, Ordering::Release);
                // Anything added after the last take but before the flag
                // dropped saw `flushing` set and left it to us.
                if backend.behind.is_empty() || backend.behind.flushing.swap(true, Ordering::AcqRel)
                {
                    break;
                }
            }
        };
        // The flush task is never dropped for the task limit: it is what
        // keeps the pending maps bounded in number of writers.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.behind.flushing.store(false, Ordering::Release);
            return;
        };
        background_stats().spawned.fetch_add(1, Ordering::Relaxed);
        self.behind.tasks.spawn_on(task, &handle);
    }

    /// Writes what is pending now, without waiting for the group commit
    /// (an export reads the store right after). The writes are sums, so
    /// racing the flush task is harmless: each writes what it took.
    pub(in crate::service) async fn flush_now(&self) {
        let _ = self.flush_pending().await;
    }

    /// Writes everything pending; whether some of it failed and was kept
    /// for another try.
    async fn flush_pending(&self) -> bool {
        let usage = std::mem::take(&mut *lock(&self.behind.usage));
        let upstream = std::mem::take(&mut *lock(&self.behind.upstream));
        let spend = std::mem::take(&mut *lock(&self.behind.spend));
        let detail = std::mem::take(&mut *lock(&self.behind.detail));
        match &self.kind {
            Kind::Memory(_) => false,
            Kind::Sqlite(store) => {
                let rows = usage
                    .into_iter()
                    .map(|((workspace_id, second), pending)| UsageRow {
                        workspace_id,
                        second,
                        requests: pending.requests,
                        tokens: pending.tokens,
                    })
                    .collect();
                let _timer = self.store_timer();
                let spend = spend
                    .into_iter()
                    .map(|((id, day), nano)| (id, day, nano))
                    .collect();
                let detail = detail
                    .into_iter()
                    .map(
                        |((workspace_id, day, dimension, name), tally)| crate::store::DetailRow {
                            workspace_id,
                            day,
                            dimension,
                            name: name.into(),
                            requests: tally.requests,
                            tokens: tally.tokens,
                            nano_usd: tally.cost_nano,
                        },
                    )
                    .collect();
                let written = store
                    .write_behind_batch(rows, upstream.into_iter().collect(), spend, detail)
                    .await;
                if let Err(error) = written {
                    let error = self.failed(error);
                    self.report(&error);
                }
                false
            }
            Kind::Redis(_) => {
                // One script per workspace and second, all in flight at once
                // (each is atomic on its own keys; order between them does
                // not matter).
                let writes = usage.into_iter().map(|((id, second), pending)| async move {
                    let written = self
                        .write_usage(
                            &id,
                            second * 1000,
                            pending.requests,
                            pending.tokens,
                            pending.settles.clone(),
                        )
                        .await;
                    match written {
                        Ok(()) => None,
                        Err(error) => {
                            self.report(&error);
                            Some(((id, second), pending))
                        }
                    }
                });
                let failed: Vec<_> = futures_util::future::join_all(writes)
                    .await
                    .into_iter()
                    .flatten()
                    .collect();
                self.keep_for_retry(failed)
            }
        }
    }

    /// Puts back the Redis writes that failed, for the flush task to try
    /// again: dropped, the holds they release would fill the workspace's
    /// shared windows on every instance until they expire, and their tokens
    /// would never count there. Kept as long as those holds would still be
    /// held (the reservation bound), not past shutdown; whether any was kept.
    fn keep_for_retry(&self, failed: Vec<((String, u64), PendingUsage)>) -> bool {
        let Some(inner) = self.service.upgrade() else {
            return false;
        };
        if failed.is_empty() || self.behind.tasks.is_closed() {
            return false;
        }
        let engine = &inner.engine;
        let oldest_ms = engine
            .now_ms()
            .saturating_sub(engine.config().reservation_ttl_ms);
        let mut usage = lock(&self.behind.usage);
        let mut kept = false;
        for (key, failed) in failed {
            if key.1 * 1000 < oldest_ms {
                continue;
            }
            let pending = usage.entry(key).or_default();
            pending.requests = pending.requests.saturating_add(failed.requests);
            pending.tokens = pending.tokens.saturating_add(failed.tokens);
            pending.settles.extend(failed.settles);
            kept = true;
        }
        kept
    }
}
