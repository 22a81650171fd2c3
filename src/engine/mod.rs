//! The quota engine: counts usage per workspace in sliding windows, derives a
//! status, and admits or refuses requests. Pure: it reads time from an injected
//! [`Clock`] and does no I/O; callers (REST, WebSocket, proxy) publish the
//! transitions it returns.
//!
//! Concurrency: workspaces live in a `DashMap`, so every operation on one
//! workspace runs under that workspace's shard lock. That is what makes
//! [`Engine::try_admit`] exact — N concurrent callers against a limit L admit
//! exactly L — while operations on different workspaces rarely contend.

mod classify;
mod clock;
mod config;
mod rules;
mod upstream_limits;
mod window;
mod workspace;

pub use classify::{classify, ErrorClass};
pub use clock::{rfc3339, Clock, ManualClock, SystemClock};
pub use config::EngineConfig;
pub use rules::Verdict;
pub use upstream_limits::RateLimitHeaders;
pub use window::{Metric, SlidingWindow};
pub use workspace::{DurableUpstreamState, Transition};

use crate::wire::{
    CheckResult, LastError, LimitOverrides, Limits, MinuteUsage, QuotaSnapshot, QuotaStatus,
    UpstreamErrorReport, UpstreamLimits, UsageReport, WindowUsage,
};
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use window::Metric as M;
use workspace::WorkspaceState;

/// Upstream failures kept per workspace (the "failure queue" that makes it
/// DEGRADED): a tenant recording a flood of 5xx within the window holds at
/// most this many timestamps (or the configured threshold, if higher).
pub const MAX_RECENT_FAILURES: usize = 1_000;

/// The outcome of one call to OpenAI, however it reached us.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallOutcome {
    pub tokens: u64,
    /// `None` for a success.
    pub error: Option<UpstreamErrorReport>,
    /// The upstream's retry hint (`retry-after`), when given outside `headers`.
    pub retry_after_ms: Option<u64>,
    /// The upstream's `x-ratelimit-*` and `retry-after` headers, if seen.
    pub headers: RateLimitHeaders,
    /// Tokens were estimated (a stream broke before its usage arrived).
    pub tokens_estimated: bool,
}

impl CallOutcome {
    pub fn success(tokens: u64) -> Self {
        Self {
            tokens,
            ..Self::default()
        }
    }

    pub fn failure(error: UpstreamErrorReport, retry_after_ms: Option<u64>) -> Self {
        Self {
            error: Some(error),
            retry_after_ms,
            ..Self::default()
        }
    }

    pub fn with_headers(mut self, headers: RateLimitHeaders) -> Self {
        self.headers = headers;
        self
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("workspace `{0}` does not exist")]
    NotFound(String),
    #[error("workspace `{0}` already exists")]
    AlreadyExists(String),
}

/// What an operation changed, for the caller to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Effect {
    /// Set when the status changed.
    pub transition: Option<Transition>,
    /// Set when this operation revealed unusual traffic (a history entry with
    /// `from == to`, to be alerted like a transition).
    pub anomaly: Option<Transition>,
    /// The workspace's version after the operation.
    pub version: u64,
}

/// The answer to [`Engine::try_admit`].
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    pub check: CheckResult,
    pub effect: Effect,
}

pub struct Engine {
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    workspaces: DashMap<String, WorkspaceState>,
    /// Workspaces whose status is not NORMAL. Only these can change with time
    /// alone (a NORMAL workspace changes only when something is recorded), so the
    /// ticker looks at these instead of every workspace. A plain mutex: it is
    /// touched only on transitions, which are rare next to records.
    not_normal: Mutex<HashSet<String>>,
    store_healthy: AtomicBool,
}

impl Engine {
    pub fn new(config: EngineConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            workspaces: DashMap::new(),
            not_normal: Mutex::new(HashSet::new()),
            store_healthy: AtomicBool::new(true),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn workspace_count(&self) -> usize {
        self.workspaces.len()
    }

    pub fn workspace_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.workspaces.iter().map(|e| e.key().clone()).collect();
        ids.sort();
        ids
    }

    /// How many workspaces are in each status (as last evaluated).
    pub fn status_counts(&self) -> Vec<(QuotaStatus, usize)> {
        let mut counts = [0usize; 5];
        for ws in self.workspaces.iter() {
            counts[ws.status as usize] += 1;
        }
        QuotaStatus::ALL
            .iter()
            .map(|s| (*s, counts[*s as usize]))
            .collect()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.workspaces.contains_key(id)
    }

    pub fn create_workspace(
        &self,
        id: &str,
        overrides: &LimitOverrides,
    ) -> Result<Limits, EngineError> {
        use dashmap::mapref::entry::Entry;
        let limits = self.config.default_limits.with_overrides(overrides);
        match self.workspaces.entry(id.to_string()) {
            Entry::Occupied(_) => Err(EngineError::AlreadyExists(id.to_string())),
            Entry::Vacant(slot) => {
                slot.insert(WorkspaceState::new(limits, self.clock.now_ms()));
                Ok(limits)
            }
        }
    }

    pub fn remove_workspace(&self, id: &str) -> bool {
        self.lock_not_normal().remove(id);
        self.workspaces.remove(id).is_some()
    }

    pub fn limits(&self, id: &str) -> Option<Limits> {
        self.workspaces.get(id).map(|w| w.limits)
    }

    /// Would one more request be allowed now, and if not, when?
    pub fn check(&self, id: &str) -> Result<CheckResult, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            (check_result(&verdict), None)
        })
        .map(|(check, _)| check)
    }

    /// Admits one request if every window has room, counting it at once so that
    /// concurrent callers cannot overshoot. Follow with [`complete`](Self::complete).
    pub fn try_admit(&self, id: &str) -> Result<Admission, EngineError> {
        let (check, effect) = self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            if !verdict.allowed {
                return (check_result(&verdict), None);
            }
            if ws.upstream.quota_exhausted_at_ms.is_some() {
                // This request is the probe; the next one waits a full interval.
                ws.upstream.next_probe_at_ms = now + engine.config.quota_probe_interval_ms;
            }
            ws.minute.add(now, 1, 0);
            ws.day.add(now, 1, 0);
            ws.version += 1;
            engine.flag_unusual_traffic(id, ws, now);
            let transition = engine.transition_if_changed(id, ws, now);
            let check = CheckResult {
                allowed: true,
                status: ws.status,
                retry_after_s: None,
            };
            (check, transition)
        })?;
        Ok(Admission { check, effect })
    }

    /// Counts one request that was admitted elsewhere (by the shared store, or
    /// on another instance), without checking limits.
    pub fn count_admitted(&self, id: &str) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.advance(now, engine.config.degraded_window_ms);
            if ws.upstream.quota_exhausted_at_ms.is_some() {
                ws.upstream.next_probe_at_ms = now + engine.config.quota_probe_interval_ms;
            }
            ws.minute.add(now, 1, 0);
            ws.day.add(now, 1, 0);
            ws.version += 1;
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }

    /// Records the outcome of a request admitted by [`try_admit`](Self::try_admit)
    /// (the request itself is already counted).
    pub fn complete(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, EngineError> {
        self.apply(id, outcome, false)
    }

    /// Records a call that was made without admission (apps reporting calls they
    /// made themselves): counts the request, its tokens and its outcome.
    pub fn record(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, EngineError> {
        self.apply(id, outcome, true)
    }

    /// Clears one workspace's counts and upstream state (admin reset).
    pub fn reset(&self, id: &str) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.minute.clear();
            ws.day.clear();
            ws.upstream = Default::default();
            ws.last_error = None;
            ws.version += 1;
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }

    /// Marks the usage store reachable or not. While it is not, every workspace
    /// is at least DEGRADED.
    pub fn set_store_healthy(&self, healthy: bool) -> Vec<Transition> {
        if self.store_healthy.swap(healthy, Ordering::SeqCst) == healthy {
            return Vec::new();
        }
        self.workspace_ids()
            .iter()
            .filter_map(|id| self.reevaluate(id))
            .collect()
    }

    pub fn store_healthy(&self) -> bool {
        self.store_healthy.load(Ordering::SeqCst)
    }

    /// Re-evaluates workspaces whose status may change with time alone (windows
    /// sliding, retry times passing) and returns the transitions.
    pub fn tick(&self) -> Vec<Transition> {
        let ids: Vec<String> = self.lock_not_normal().iter().cloned().collect();
        ids.iter().filter_map(|id| self.reevaluate(id)).collect()
    }

    pub fn snapshot(&self, id: &str) -> Result<QuotaSnapshot, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            (
                build_snapshot(id, ws, &verdict, now, engine.config.anomaly_cooldown_ms),
                None,
            )
        })
        .map(|(snapshot, _)| snapshot)
    }

    /// The windows plus the last `minutes` minutes of usage, oldest first.
    pub fn usage(&self, id: &str, minutes: u64) -> Result<UsageReport, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            let snapshot = build_snapshot(id, ws, &verdict, now, engine.config.anomaly_cooldown_ms);
            let history = ws
                .day
                .history(now, minutes)
                .into_iter()
                .map(|(start_ms, requests, tokens)| MinuteUsage {
                    minute_start: start_ms / 1000,
                    requests,
                    tokens,
                })
                .collect();
            (UsageReport::new(&snapshot, history), None)
        })
        .map(|(report, _)| report)
    }

    /// Status transitions of one workspace, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<Transition>, EngineError> {
        self.workspaces
            .get(id)
            .map(|ws| ws.history.iter().cloned().collect())
            .ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    /// Upstream blocks to persist, if the workspace exists.
    pub fn durable_upstream(&self, id: &str) -> Option<DurableUpstreamState> {
        self.workspaces.get(id).map(|ws| ws.upstream.durable())
    }

    // --- Restoring from a store at start -----------------------------------
    // These rebuild state silently: no transitions, nothing to publish. Call
    // `settle` once everything for a workspace is in.

    /// Adds usage counted at `at_ms` (in the past). Feed rows in time order.
    pub fn restore_usage(
        &self,
        id: &str,
        at_ms: u64,
        requests: u64,
        tokens: u64,
    ) -> Result<(), EngineError> {
        let mut ws = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        ws.minute.add(at_ms, requests, tokens);
        ws.day.add(at_ms, requests, tokens);
        Ok(())
    }

    pub fn restore_upstream(
        &self,
        id: &str,
        durable: &DurableUpstreamState,
    ) -> Result<(), EngineError> {
        let mut ws = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        ws.upstream.restore(durable);
        Ok(())
    }

    /// Restores the alert history (oldest first).
    pub fn restore_history(&self, id: &str, history: Vec<Transition>) -> Result<(), EngineError> {
        let mut ws = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        let skip = history.len().saturating_sub(self.config.history_len);
        ws.history = history.into_iter().skip(skip).collect();
        Ok(())
    }

    /// Sets the stored status to what the rules say now, without a transition:
    /// after a restart the status is "as before", not a change.
    pub fn settle(&self, id: &str) -> Result<QuotaStatus, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            ws.status = verdict.status;
            let mut not_normal = engine.lock_not_normal();
            if ws.status == QuotaStatus::Normal {
                not_normal.remove(id);
            } else {
                not_normal.insert(id.to_string());
            }
            (ws.status, None)
        })
        .map(|(status, _)| status)
    }

    /// Heap bytes held by one workspace's state (for the memory benchmark).
    pub fn workspace_heap_bytes(&self, id: &str) -> Option<usize> {
        self.workspaces.get(id).map(|ws| ws.heap_bytes())
    }

    fn apply(
        &self,
        id: &str,
        outcome: &CallOutcome,
        count_request: bool,
    ) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.advance(now, engine.config.degraded_window_ms);
            // Failed requests count toward the request windows as OpenAI counts
            // them; tokens only when the upstream reported usage.
            let requests = u64::from(count_request);
            if requests > 0 || outcome.tokens > 0 {
                ws.minute.add(now, requests, outcome.tokens);
                ws.day.add(now, requests, outcome.tokens);
            }
            engine.apply_outcome(ws, outcome, now);
            if count_request {
                engine.flag_unusual_traffic(id, ws, now);
            }
            ws.version += 1;
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }

    fn apply_outcome(&self, ws: &mut WorkspaceState, outcome: &CallOutcome, now: u64) {
        let up = &mut ws.upstream;
        let headers = &outcome.headers;
        if !headers.is_empty() {
            up.observed_limits = Some((*headers, now));
        }
        // OpenAI saying it has nothing left blocks until its reset, whether or
        // not this particular call failed.
        if let Some(wait) = headers.exhausted_for_ms().filter(|&ms| ms > 0) {
            let until = now + wait;
            up.rate_limited_until_ms =
                Some(up.rate_limited_until_ms.map_or(until, |u| u.max(until)));
        }
        let Some(error) = &outcome.error else {
            // A success proves the upstream is healthy and the quota is there.
            up.recent_failures_ms.clear();
            up.quota_exhausted_at_ms = None;
            return;
        };
        let class = classify(error);
        match class {
            ErrorClass::RateLimited => {
                let wait = outcome
                    .retry_after_ms
                    .or(headers.retry_after_ms)
                    .or(headers.exhausted_for_ms())
                    .unwrap_or(self.config.default_rate_limit_backoff_ms);
                let until = now + wait;
                up.rate_limited_until_ms =
                    Some(up.rate_limited_until_ms.map_or(until, |u| u.max(until)));
            }
            ErrorClass::QuotaExhausted => {
                up.quota_exhausted_at_ms = Some(now);
                up.next_probe_at_ms = now + self.config.quota_probe_interval_ms;
            }
            ErrorClass::UpstreamFailure => {
                up.recent_failures_ms.push_back(now);
                // Bounded: the rule only needs to know the threshold was
                // reached, so the oldest beyond the cap are forgotten.
                let cap = MAX_RECENT_FAILURES.max(self.config.degraded_failure_threshold as usize);
                while up.recent_failures_ms.len() > cap {
                    up.recent_failures_ms.pop_front();
                }
            }
            ErrorClass::ClientError => {}
        }
        ws.last_error = Some(LastError {
            http_status: error.http_status,
            error_type: error.error_type.clone(),
            code: error.code.clone(),
            message: error.message.clone(),
            class: class.as_str().to_string(),
            at: rfc3339(now),
        });
    }

    /// Raises an unusual-traffic flag (at most once per cooldown): kept in the
    /// history, shown in the status message, returned for alerting.
    fn flag_unusual_traffic(&self, id: &str, ws: &mut WorkspaceState, now: u64) {
        let cooling = ws
            .anomaly
            .as_ref()
            .is_some_and(|(_, at)| now < at + self.config.anomaly_cooldown_ms);
        if cooling {
            return;
        }
        let Some(reason) = rules::unusual_traffic(ws, now, &self.config) else {
            return;
        };
        tracing::warn!(workspace_id = id, %reason, "unusual traffic");
        let flag = Transition {
            workspace_id: id.to_string(),
            from: ws.status,
            to: ws.status,
            at_ms: now,
            reason: reason.clone(),
        };
        if ws.history.len() >= self.config.history_len {
            ws.history.pop_front();
        }
        ws.history.push_back(flag.clone());
        ws.anomaly = Some((reason, now));
        ws.pending_anomaly = Some(flag);
    }

    fn reevaluate(&self, id: &str) -> Option<Transition> {
        self.with_workspace(id, |ws, now, engine| {
            engine.refresh(ws, now);
            ((), engine.transition_if_changed(id, ws, now))
        })
        .ok()
        .and_then(|(_, effect)| effect.transition)
    }

    fn refresh(&self, ws: &mut WorkspaceState, now: u64) -> Verdict {
        ws.advance(now, self.config.degraded_window_ms);
        rules::evaluate(ws, now, &self.config, self.store_healthy())
    }

    /// Runs `f` under the workspace's lock and turns the transition it returns
    /// into an [`Effect`].
    fn with_workspace<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut WorkspaceState, u64, &Self) -> (T, Option<Transition>),
    ) -> Result<(T, Effect), EngineError> {
        let mut ws = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        let now = self.clock.now_ms();
        let (value, transition) = f(&mut ws, now, self);
        let effect = Effect {
            transition,
            anomaly: ws.pending_anomaly.take(),
            version: ws.version,
        };
        Ok((value, effect))
    }

    /// Compares the rules' verdict with the stored status and, on a change,
    /// stores it, keeps it in the history and returns it.
    fn transition_if_changed(
        &self,
        id: &str,
        ws: &mut WorkspaceState,
        now: u64,
    ) -> Option<Transition> {
        let verdict = rules::evaluate(ws, now, &self.config, self.store_healthy());
        ws.updated_at_ms = now;
        if verdict.status == ws.status {
            return None;
        }
        let transition = Transition {
            workspace_id: id.to_string(),
            from: ws.status,
            to: verdict.status,
            at_ms: now,
            reason: verdict.message,
        };
        ws.status = verdict.status;
        ws.version += 1;
        if ws.history.len() >= self.config.history_len {
            ws.history.pop_front();
        }
        ws.history.push_back(transition.clone());
        let mut not_normal = self.lock_not_normal();
        if ws.status == QuotaStatus::Normal {
            not_normal.remove(id);
        } else {
            not_normal.insert(id.to_string());
        }
        Some(transition)
    }

    fn lock_not_normal(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding this lock cannot leave the set inconsistent in a
        // way that matters (it is a hint for the ticker), so poisoning is ignored.
        self.not_normal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn check_result(verdict: &Verdict) -> CheckResult {
    CheckResult {
        allowed: verdict.allowed,
        status: verdict.status,
        retry_after_s: verdict.retry_after_ms.map(ms_to_s),
    }
}

fn ms_to_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn window_usage(window: &SlidingWindow, metric: M, limit: u64, now: u64) -> WindowUsage {
    let current = window.total(metric);
    let percentage = if limit == 0 {
        100.0
    } else {
        (current as f64 * 1000.0 / limit as f64).round() / 10.0
    };
    WindowUsage {
        current,
        limit,
        percentage,
        resets_in_s: ms_to_s(window.resets_in_ms(now, metric)),
    }
}

fn build_snapshot(
    id: &str,
    ws: &WorkspaceState,
    verdict: &Verdict,
    now: u64,
    cooldown_ms: u64,
) -> QuotaSnapshot {
    let message = match &ws.anomaly {
        Some((note, at)) if now < at + cooldown_ms => format!("{} {note}", verdict.message),
        _ => verdict.message.clone(),
    };
    // The stored status is what subscribers were told; the verdict may be newer
    // only between a time-driven change and the next tick, so report the verdict.
    QuotaSnapshot {
        workspace_id: id.to_string(),
        status: verdict.status,
        message,
        requests_per_minute: window_usage(
            &ws.minute,
            M::Requests,
            ws.limits.requests_per_minute,
            now,
        ),
        requests_per_day: window_usage(&ws.day, M::Requests, ws.limits.requests_per_day, now),
        tokens_per_minute: window_usage(&ws.minute, M::Tokens, ws.limits.tokens_per_minute, now),
        tokens_per_day: window_usage(&ws.day, M::Tokens, ws.limits.tokens_per_day, now),
        retry_after_s: verdict.retry_after_ms.map(ms_to_s),
        last_error: ws.last_error.clone(),
        upstream_limits: ws.upstream.observed_limits.map(|(h, at)| UpstreamLimits {
            requests_limit: h.limit_requests,
            requests_remaining: h.remaining_requests,
            requests_reset_s: h.reset_requests_ms.map(ms_to_s),
            tokens_limit: h.limit_tokens,
            tokens_remaining: h.remaining_tokens,
            tokens_reset_s: h.reset_tokens_ms.map(ms_to_s),
            observed_at: rfc3339(at),
        }),
        updated_at: rfc3339(now),
        version: ws.version,
    }
}
