//! The status rules: from a workspace's counts and upstream state to a status, a
//! message for people, and when requests are allowed again. Pure functions.

use super::config::EngineConfig;
use super::window::{Metric, SlidingWindow};
use super::workspace::WorkspaceState;
use crate::wire::QuotaStatus;

/// The verdict for one workspace at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub status: QuotaStatus,
    pub message: String,
    /// Milliseconds until a request is allowed; `None` when allowed now.
    pub retry_after_ms: Option<u64>,
    /// Whether the next request may pass. Differs from `retry_after_ms.is_none()`
    /// only for the probe let through while the upstream quota is exhausted.
    pub allowed: bool,
}

struct WindowRef<'a> {
    label: &'static str,
    window: &'a SlidingWindow,
    metric: Metric,
    limit: u64,
    short: bool,
    /// Held for calls in flight (token windows; 0 for request windows).
    reserved: u64,
}

impl WindowRef<'_> {
    /// Milliseconds until `need` more fits beside what is used and held; 0
    /// when it fits now, `None` when it never can (`need` alone is over the
    /// limit).
    ///
    /// When only the holds are in the way (used + need fits, used + held +
    /// need does not), the wait is until the calls in flight settle, which
    /// nothing here can know: it is then what the window alone needs, but at
    /// least [`IN_FLIGHT_RETRY_MS`].
    fn wait_for(&self, now_ms: u64, need: u64) -> Option<u64> {
        window_wait(
            self.window,
            self.metric,
            self.limit,
            self.reserved,
            now_ms,
            need,
        )
    }

    fn used_and_held(&self) -> u64 {
        self.window.total(self.metric).saturating_add(self.reserved)
    }
}

/// Milliseconds until `need` more of `metric` fits in `window` under
/// `limit` beside `reserved`; 0 when it fits now, `None` when it never can.
/// See [`WindowRef::wait_for`]; shared with the per-model and per-user
/// windows (`scopes.rs`).
pub(super) fn window_wait(
    window: &SlidingWindow,
    metric: Metric,
    limit: u64,
    reserved: u64,
    now_ms: u64,
    need: u64,
) -> Option<u64> {
    if need > limit {
        return None;
    }
    let with_holds = reserved.saturating_add(need);
    match window.wait_for_room_ms(now_ms, metric, limit, with_holds) {
        Some(wait) => Some(wait),
        None => window
            .wait_for_room_ms(now_ms, metric, limit, need)
            .map(|wait| wait.max(IN_FLIGHT_RETRY_MS)),
    }
}

/// The retry hint when a window is full only of tokens held for calls in
/// flight: they settle within a call's time, typically a second or two.
pub const IN_FLIGHT_RETRY_MS: u64 = 1_000;

fn windows(ws: &WorkspaceState) -> [WindowRef<'_>; 4] {
    let held = ws.reservations.total();
    [
        WindowRef {
            label: "Requests per minute",
            window: &ws.minute,
            metric: Metric::Requests,
            limit: ws.limits.requests_per_minute,
            short: true,
            reserved: 0,
        },
        WindowRef {
            label: "Tokens per minute",
            window: &ws.minute,
            metric: Metric::Tokens,
            limit: ws.limits.tokens_per_minute,
            short: true,
            reserved: held,
        },
        WindowRef {
            label: "Requests per day",
            window: &ws.day,
            metric: Metric::Requests,
            limit: ws.limits.requests_per_day,
            short: false,
            reserved: 0,
        },
        WindowRef {
            label: "Tokens per day",
            window: &ws.day,
            metric: Metric::Tokens,
            limit: ws.limits.tokens_per_day,
            short: false,
            reserved: held,
        },
    ]
}

/// Applies the rules. `ws` must have been advanced to `now_ms`.
pub fn evaluate(
    ws: &WorkspaceState,
    now_ms: u64,
    config: &EngineConfig,
    store_healthy: bool,
) -> Verdict {
    let mut quota_wait: Option<u64> = None;
    let mut quota_reason: Option<String> = None;
    let mut rate_wait: Option<u64> = None;
    let mut rate_reason: Option<String> = None;
    let mut warning: Option<(f64, String)> = None;

    for w in windows(ws) {
        // Tokens held for calls in flight are as good as used: the status
        // says what the next request meets.
        let total = w.used_and_held();
        // A request needs one more unit of requests, and at least one unit of
        // tokens still free: both reduce to "room for 1".
        let wait = w.wait_for(now_ms, 1).unwrap_or(w.window.length_ms());
        if wait > 0 {
            let reason = format!("{} limit reached ({total}/{}).", w.label, w.limit);
            if w.short {
                if rate_wait.is_none_or(|r| wait > r) {
                    rate_reason = Some(reason);
                }
                rate_wait = Some(rate_wait.map_or(wait, |r| r.max(wait)));
            } else {
                if quota_wait.is_none_or(|q| wait > q) {
                    quota_reason = Some(reason);
                }
                quota_wait = Some(quota_wait.map_or(wait, |q| q.max(wait)));
            }
        } else if w.limit > 0 {
            let share = total as f64 / w.limit as f64;
            if share >= config.warning_threshold && warning.as_ref().is_none_or(|(s, _)| share > *s)
            {
                warning = Some((
                    share,
                    format!(
                        "{} at {:.0}% of the limit ({total}/{}).",
                        w.label,
                        share * 100.0,
                        w.limit
                    ),
                ));
            }
        }
    }

    // Spend budgets: a hard one spent blocks like a day window, until its
    // period resets; a soft one crossed (or any past the warning share) warns.
    let budgets = super::budget_rules::evaluate(ws, now_ms, config.warning_threshold);
    if let Some((wait, reason)) = &budgets.block {
        if quota_wait.is_none_or(|q| *wait > q) {
            quota_reason = Some(reason.clone());
        }
        quota_wait = Some(quota_wait.map_or(*wait, |q| q.max(*wait)));
    }
    if let Some((share, reason)) = budgets.warning {
        if warning.as_ref().is_none_or(|(s, _)| share > *s) {
            warning = Some((share, reason));
        }
    }

    let up = &ws.upstream;
    let mut probe_allowed = false;
    if up.quota_exhausted_at_ms.is_some() {
        let wait = up.next_probe_at_ms.saturating_sub(now_ms);
        probe_allowed = wait == 0;
        let reason = "OpenAI reports the billing quota is exhausted (insufficient_quota). \
                      Add credit or raise the plan's limit; the status clears on the next \
                      successful request, an admin reset, or after a day."
            .to_string();
        quota_reason = Some(match quota_reason {
            Some(local) => format!("{local} {reason}"),
            None => reason,
        });
        quota_wait = Some(quota_wait.map_or(wait, |q| q.max(wait)));
    }
    if let Some(until) = up.rate_limited_until_ms {
        let wait = until.saturating_sub(now_ms);
        if wait > 0 {
            let reason = "OpenAI answered 429 rate_limit_exceeded; requests resume when its \
                          retry time has passed."
                .to_string();
            if rate_wait.is_none_or(|r| wait > r) {
                rate_reason = Some(reason);
            }
            rate_wait = Some(rate_wait.map_or(wait, |r| r.max(wait)));
        }
    }

    // A request is allowed only when every blocking reason has cleared.
    let blocking_wait = match (quota_wait, rate_wait) {
        (Some(q), Some(r)) => Some(q.max(r)),
        (q, r) => q.or(r),
    };
    let local_quota_blocks = windows(ws)
        .iter()
        .any(|w| !w.short && w.wait_for(now_ms, 1) != Some(0));
    let rate_blocks = rate_wait.is_some_and(|r| r > 0);
    let allowed = !local_quota_blocks
        && budgets.block.is_none()
        && !rate_blocks
        && (up.quota_exhausted_at_ms.is_none() || probe_allowed);
    let retry_after_ms = if allowed { None } else { blocking_wait };

    let failures = up.recent_failures_ms.len() as u32;
    let upstream_unhealthy = failures >= config.degraded_failure_threshold;

    let (status, message) = if let Some(reason) = quota_reason {
        (QuotaStatus::QuotaExceeded, reason)
    } else if let (Some(reason), true) = (rate_reason, rate_blocks) {
        (QuotaStatus::RateLimited, reason)
    } else if !store_healthy {
        (
            QuotaStatus::Degraded,
            "The usage store is unreachable; counts are kept in memory until it returns."
                .to_string(),
        )
    } else if upstream_unhealthy {
        (
            QuotaStatus::Degraded,
            format!(
                "OpenAI is failing: {failures} errors (5xx or timeouts) in the last {}s and no \
                 success since. Requests may fail; it clears on the next success.",
                config.degraded_window_ms / 1000
            ),
        )
    } else if let Some((_, reason)) = warning {
        (QuotaStatus::Warning, reason)
    } else {
        (
            QuotaStatus::Normal,
            "All windows are below their limits.".to_string(),
        )
    };

    Verdict {
        status,
        message,
        retry_after_ms,
        allowed,
    }
}

/// Whether a call needing `need` tokens fits every token window beside
/// what is used and held. `ws` must be advanced.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenRoom {
    Fits,
    /// Enough frees up in this many milliseconds; `reason` says which window.
    Wait {
        wait_ms: u64,
        reason: String,
    },
    /// The call alone needs more than a window's whole limit: it can never
    /// pass as asked (a smaller `max_tokens` might).
    TooLarge {
        need: u64,
        limit: u64,
        label: &'static str,
    },
    /// A per-model or per-user limit, or a hard budget, refuses the call
    /// (the workspace's windows have room).
    Limited(super::scopes::Limited),
}

pub fn token_room(ws: &WorkspaceState, now_ms: u64, need: u64) -> TokenRoom {
    let mut longest: Option<(u64, String)> = None;
    for w in windows(ws)
        .into_iter()
        .filter(|w| w.metric == Metric::Tokens)
    {
        match w.wait_for(now_ms, need) {
            None => {
                return TokenRoom::TooLarge {
                    need,
                    limit: w.limit,
                    label: w.label,
                }
            }
            Some(0) => {}
            Some(wait) => {
                if longest.as_ref().is_none_or(|(l, _)| wait > *l) {
                    let reason = format!(
                        "{} limit: {} used and {} held for calls in flight of {}; this request needs {need}.",
                        w.label,
                        w.window.total(w.metric),
                        w.reserved,
                        w.limit
                    );
                    longest = Some((wait, reason));
                }
            }
        }
    }
    match longest {
        None => TokenRoom::Fits,
        Some((wait_ms, reason)) => TokenRoom::Wait { wait_ms, reason },
    }
}

/// Minutes of history that make a workspace's "recent norm".
const NORM_MINUTES: u64 = 15;
/// A norm needs traffic in at least this many of those minutes; a workspace
/// waking from idle is not unusual.
const NORM_ACTIVE_MINUTES: usize = 5;

/// Says so when the last minute's requests jumped far above the workspace's
/// recent norm (average minute over the 15 before). `ws` must be advanced.
pub fn unusual_traffic(ws: &WorkspaceState, now_ms: u64, config: &EngineConfig) -> Option<String> {
    let last_minute = ws.minute.total(Metric::Requests);
    if last_minute < config.anomaly_min_requests {
        return None;
    }
    // Day buckets are clock minutes; the norm is the 15 before the current
    // one and the one before it (both overlap the sliding minute judged).
    let current_minute_start = now_ms - now_ms % 60_000;
    let norm_end = current_minute_start.saturating_sub(60_000);
    let norm_start = norm_end.saturating_sub(NORM_MINUTES * 60_000);
    let (norm_requests, active) = ws.day.requests_between(norm_start, norm_end);
    if active < NORM_ACTIVE_MINUTES {
        return None;
    }
    let norm = norm_requests as f64 / NORM_MINUTES as f64;
    (last_minute as f64 >= config.anomaly_factor * norm.max(1.0)).then(|| {
        format!(
            "Unusual traffic: {last_minute} requests in the last minute against a norm of {norm:.0} per minute over the last {NORM_MINUTES} minutes."
        )
    })
}
