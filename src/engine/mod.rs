//! The quota engine: counts usage per workspace in sliding windows, derives a
//! status, and admits or refuses requests. Pure: it reads time from an injected
//! [`Clock`] and does no I/O; callers (REST, WebSocket, proxy) publish the
//! transitions it returns.
//!
//! Concurrency: workspaces live in a `DashMap`, so every operation on one
//! workspace runs under that workspace's shard lock. That is what makes
//! [`Engine::try_admit`] exact — N concurrent callers against a limit L admit
//! exactly L — while operations on different workspaces rarely contend.
//!
//! The [`Engine`]'s methods are split by concern: `admission.rs` (`try_admit`,
//! `admit`, `count_admitted`), `records.rs` (`complete` — the settle —,
//! `release`, `record`, `reset`), `reservations.rs` (tokens held for calls in
//! flight),
//! `scopes.rs` (per-model and per-user limits, the day's breakdown),
//! `budget_rules.rs` (spend budgets),
//! `reads.rs` (`check`, `snapshot`, `usage`, `history`), `restore.rs`
//! (rebuilding state at start), `transitions.rs` (status changes, `tick`,
//! store health). This module holds the types, the workspace registry, and
//! `with_workspace`, the one way an operation reaches a workspace.

mod admission;
mod budget_rules;
mod classify;
mod clock;
mod config;
mod configure;
pub mod periods;
mod reads;
mod records;
mod reservations;
mod restore;
mod rules;
pub mod scopes;
pub mod settings;
pub mod spend;
mod transitions;
mod upstream_limits;
mod window;
mod workspace;

pub use classify::{classify, ErrorClass};
pub use clock::{rfc3339, Clock, ManualClock, SystemClock};
pub use config::EngineConfig;
pub use reservations::{CallScope, Hold, Reservations, MAX_HOLDS_PER_WORKSPACE};
pub use rules::{TokenRoom, Verdict, IN_FLIGHT_RETRY_MS};
pub use scopes::{LimitKind, Limited};
pub use upstream_limits::RateLimitHeaders;
pub use window::{Metric, SlidingWindow};
pub use workspace::{DurableUpstreamState, Transition};

use crate::wire::{CheckResult, LimitOverrides, Limits, QuotaStatus, UpstreamErrorReport};
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
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
    /// The hold this call settles (its tokens reserved at admission), if any.
    #[serde(default)]
    pub reservation_id: Option<String>,
    /// What the call cost, in nano-dollars, when known (priced from its
    /// usage, or reported by the app); added to the workspace's spend.
    #[serde(default)]
    pub cost_nano: Option<u64>,
    /// The model and end user of the call (per-model and per-user limits,
    /// the breakdown).
    #[serde(default)]
    pub scope: CallScope,
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

    /// This outcome settles the hold `reservation_id`.
    pub fn settling(mut self, reservation_id: Option<String>) -> Self {
        self.reservation_id = reservation_id;
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
    /// What a settled call added to the day's breakdown by model and user.
    pub tallied: Option<Box<scopes::Tallied>>,
}

/// The answer to [`Engine::try_admit`].
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    pub check: CheckResult,
    pub effect: Effect,
    /// Set when the request's tokens are what did not fit (the request
    /// alone would have been admitted): how long until they do, or that
    /// they never can.
    pub token_refusal: Option<TokenRoom>,
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

    /// Heap bytes held by one workspace's state (for the memory benchmark).
    pub fn workspace_heap_bytes(&self, id: &str) -> Option<usize> {
        self.workspaces.get(id).map(|ws| ws.heap_bytes())
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
            tallied: ws.pending_tally.take(),
            version: ws.version,
        };
        Ok((value, effect))
    }

    fn lock_not_normal(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding this lock cannot leave the set inconsistent in a
        // way that matters (it is a hint for the ticker), so poisoning is ignored.
        self.not_normal.lock().unwrap_or_else(|p| p.into_inner())
    }
}
