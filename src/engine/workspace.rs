//! One workspace's counts and what the upstream last told us about it.

use super::reservations::Reservations;
use super::window::SlidingWindow;
use super::RateLimitHeaders;
use crate::wire::{LastError, Limits, QuotaStatus};
use serde::Serialize;
use std::collections::VecDeque;

/// A status change, kept as the workspace's alert history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    pub workspace_id: String,
    pub from: QuotaStatus,
    pub to: QuotaStatus,
    pub at_ms: u64,
    /// The status message at the time: why it changed.
    pub reason: String,
}

/// The part of [`UpstreamState`] that must survive a restart: blocks OpenAI
/// imposed that our own counts cannot rebuild.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DurableUpstreamState {
    pub rate_limited_until_ms: Option<u64>,
    pub quota_exhausted_at_ms: Option<u64>,
    pub next_probe_at_ms: u64,
}

/// What the upstream (OpenAI) said, as opposed to what we counted ourselves.
#[derive(Clone, Debug, Default)]
pub struct UpstreamState {
    /// An upstream 429 `rate_limit_exceeded` blocks until this instant.
    pub rate_limited_until_ms: Option<u64>,
    /// When the upstream said `insufficient_quota`; cleared by a later success,
    /// an admin reset, or a day after it was set.
    pub quota_exhausted_at_ms: Option<u64>,
    /// Earliest instant a probe request may pass while the quota is exhausted.
    pub next_probe_at_ms: u64,
    /// Failures (5xx, timeouts) since the last success, newest last.
    pub recent_failures_ms: VecDeque<u64>,
    /// The last `x-ratelimit-*` headers seen, and when.
    pub observed_limits: Option<(RateLimitHeaders, u64)>,
}

#[derive(Clone, Debug)]
pub struct WorkspaceState {
    pub limits: Limits,
    pub minute: SlidingWindow,
    pub day: SlidingWindow,
    /// Tokens held for calls in flight; they count against both token
    /// windows until settled (see `reservations.rs`).
    pub reservations: Reservations,
    pub upstream: UpstreamState,
    pub status: QuotaStatus,
    pub last_error: Option<LastError>,
    pub history: VecDeque<Transition>,
    pub version: u64,
    pub updated_at_ms: u64,
    /// The last unusual-traffic flag: what, and when.
    pub anomaly: Option<(String, u64)>,
    /// A flag raised by the current operation, for its `Effect`.
    pub pending_anomaly: Option<Transition>,
    /// What the current operation added to the day's breakdown, for its
    /// `Effect` (the store keeps it).
    pub pending_tally: Option<Box<super::scopes::Tallied>>,
    /// Time zone, budgets, per-model and per-user limits; `None` for the
    /// defaults (UTC, none), which most workspaces keep: boxed so that they
    /// cost one pointer.
    pub settings: Option<Box<super::settings::WorkspaceSettings>>,
    /// Money spent per local day (empty, and free, until a call is priced).
    pub spend: super::spend::SpendLedger,
    /// Per-model and per-user counts, and the day's breakdown.
    pub scopes: super::scopes::Scopes,
}

impl UpstreamState {
    pub fn durable(&self) -> DurableUpstreamState {
        DurableUpstreamState {
            rate_limited_until_ms: self.rate_limited_until_ms,
            quota_exhausted_at_ms: self.quota_exhausted_at_ms,
            next_probe_at_ms: self.next_probe_at_ms,
        }
    }

    pub fn restore(&mut self, durable: &DurableUpstreamState) {
        self.rate_limited_until_ms = durable.rate_limited_until_ms;
        self.quota_exhausted_at_ms = durable.quota_exhausted_at_ms;
        self.next_probe_at_ms = durable.next_probe_at_ms;
    }
}

impl WorkspaceState {
    pub fn new(limits: Limits, now_ms: u64) -> Self {
        Self {
            limits,
            minute: SlidingWindow::minute(),
            day: SlidingWindow::day(),
            reservations: Reservations::default(),
            upstream: UpstreamState::default(),
            status: QuotaStatus::Normal,
            last_error: None,
            history: VecDeque::new(),
            version: 0,
            updated_at_ms: now_ms,
            anomaly: None,
            pending_anomaly: None,
            pending_tally: None,
            settings: None,
            spend: super::spend::SpendLedger::default(),
            scopes: super::scopes::Scopes::default(),
        }
    }

    /// Slides every window and forgets expired upstream state.
    pub fn advance(&mut self, now_ms: u64, degraded_window_ms: u64) {
        self.minute.evict(now_ms);
        self.day.evict(now_ms);
        self.reservations.expire(now_ms);
        let up = &mut self.upstream;
        if up
            .rate_limited_until_ms
            .is_some_and(|until| until <= now_ms)
        {
            up.rate_limited_until_ms = None;
        }
        // The day window rolling over ends an upstream quota block as it would a
        // local one.
        if up
            .quota_exhausted_at_ms
            .is_some_and(|at| now_ms >= at + self.day.length_ms())
        {
            up.quota_exhausted_at_ms = None;
        }
        while up
            .recent_failures_ms
            .front()
            .is_some_and(|&t| t + degraded_window_ms <= now_ms)
        {
            up.recent_failures_ms.pop_front();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.minute.heap_bytes()
            + self.day.heap_bytes()
            + self.reservations.heap_bytes()
            + self.upstream.recent_failures_ms.capacity() * 8
            + self.history.capacity() * std::mem::size_of::<Transition>()
            + self.spend.heap_bytes()
            + self.scopes.heap_bytes()
    }
}
