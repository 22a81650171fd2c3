//! Reads: whether one more request would pass, the snapshot and usage report
//! the API and the WebSocket send, the history, the state to persist. Reads
//! still bring a workspace up to date (windows slide) but never transition it.

use super::window::Metric as M;
use super::workspace::{DurableUpstreamState, WorkspaceState};
use super::{rfc3339, Engine, EngineError, SlidingWindow, Transition, Verdict};
use crate::wire::{
    CheckResult, MinuteUsage, QuotaSnapshot, UpstreamLimits, UsageReport, WindowUsage,
};

impl Engine {
    /// Would one more request be allowed now, and if not, when?
    pub fn check(&self, id: &str) -> Result<CheckResult, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            (check_result(&verdict), None)
        })
        .map(|(check, _)| check)
    }

    /// Whether a money limit covers a call of `scope` now (a hard budget of
    /// the workspace, or a daily budget of its model's or user's rule): such
    /// a call must not be able to cost more than its hold, so the proxy
    /// sends the output cap it held when the request names none.
    pub fn money_limited(&self, id: &str, scope: &super::CallScope) -> bool {
        self.workspaces.get(id).is_some_and(|ws| {
            let keys = ws.scopes.keys_for(ws.settings.as_deref(), scope);
            super::budget_rules::money_limit(&ws, &keys).is_some()
        })
    }

    /// [`check`](Self::check) for a call that needs `tokens`, under Redis
    /// before the shared store admits it: a refusal as RATE_LIMITED comes
    /// with the token room that explains it, as [`admit`](Self::admit)
    /// answers. A call that passes has its hold taken (and its request
    /// counted against its per-model and per-user rules) here and now,
    /// under the lock that checked it: counted only after the shared
    /// store's answer, every call of a burst passed this check before the
    /// first was held, and 20 of 40 went through a budget that held 3.
    /// [`count_admitted`](Self::count_admitted) then counts the rest;
    /// a call the store refuses is [`release`](Self::release)d.
    pub fn check_call(
        &self,
        id: &str,
        hold: Option<&super::Hold>,
    ) -> Result<(CheckResult, Option<super::TokenRoom>), EngineError> {
        let tokens = hold.map(|h| h.tokens);
        self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            if verdict.allowed {
                // Holds admitted by the shared store are counted here after
                // (`count_admitted`), so their bound is checked here before;
                // so are the per-model and per-user limits and the hard
                // budgets, which the shared store does not keep (this
                // instance's view holds every instance's settled calls).
                let full = hold.and_then(|hold| {
                    super::admission::holds_full(ws).or_else(|| {
                        let keys = ws.scopes.keys_for(ws.settings.as_deref(), &hold.scope);
                        match super::admission::rule_room(ws, now, hold, &keys) {
                            super::TokenRoom::Fits => {
                                ws.scopes.count_request(now, &keys);
                                ws.reservations.hold(hold, keys);
                                None
                            }
                            room => Some(room),
                        }
                    })
                });
                let check = match &full {
                    None => check_result(&verdict),
                    Some(room) => CheckResult {
                        allowed: false,
                        ..super::admission::refused_check(&verdict, Some(room))
                    },
                };
                return ((check, full), None);
            }
            let room = super::admission::refused_for_tokens(ws, now, verdict.status, tokens);
            (
                (
                    super::admission::refused_check(&verdict, room.as_ref()),
                    room,
                ),
                None,
            )
        })
        .map(|(answer, _)| answer)
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
}

pub(super) fn check_result(verdict: &Verdict) -> CheckResult {
    CheckResult {
        allowed: verdict.allowed,
        status: verdict.status,
        retry_after_s: verdict.retry_after_ms.map(ms_to_s),
    }
}

fn ms_to_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn window_usage(
    window: &SlidingWindow,
    metric: M,
    limit: u64,
    reserved: u64,
    now: u64,
) -> WindowUsage {
    let current = window.total(metric);
    let percentage = if limit == 0 {
        100.0
    } else {
        (current as f64 * 1000.0 / limit as f64).round() / 10.0
    };
    WindowUsage {
        current,
        reserved,
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
    let held = ws.reservations.total();
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
            0,
            now,
        ),
        requests_per_day: window_usage(&ws.day, M::Requests, ws.limits.requests_per_day, 0, now),
        tokens_per_minute: window_usage(
            &ws.minute,
            M::Tokens,
            ws.limits.tokens_per_minute,
            held,
            now,
        ),
        tokens_per_day: window_usage(&ws.day, M::Tokens, ws.limits.tokens_per_day, held, now),
        retry_after_s: verdict.retry_after_ms.map(ms_to_s),
        last_error: ws.last_error.clone(),
        budgets: super::budget_rules::usage(ws, now),
        by_model: breakdown_rows(ws, now, true),
        by_user: breakdown_rows(ws, now, false),
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

/// Today's top models or users, with the share of the rule that covers each.
fn breakdown_rows(ws: &WorkspaceState, now: u64, models: bool) -> Vec<crate::wire::UsageBreakdown> {
    let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
    let today = super::periods::local_day(zone, now);
    let (by_model, by_user) = ws.scopes.breakdown(today, crate::wire::BREAKDOWN_TOP);
    let rows = if models { by_model } else { by_user };
    rows.into_iter()
        .map(|(name, tally)| {
            let limit_percentage = ws.settings.as_deref().and_then(|settings| {
                let scope = super::CallScope {
                    model: models.then(|| name.clone()),
                    user: (!models).then(|| name.clone()),
                };
                let keys = ws.scopes.keys_for(Some(settings), &scope);
                let (rule, counts) = if models {
                    let key = keys.model?;
                    (
                        settings.model_limits.get(&*key)?,
                        ws.scopes.model_counts(&key),
                    )
                } else {
                    let key = keys.user?;
                    (
                        super::scopes::rule_for_user(settings, &key)?,
                        ws.scopes.user_counts(&key),
                    )
                };
                let empty = super::scopes::ScopeCounts::default();
                Some(super::scopes::rule_percentage(
                    rule,
                    counts.unwrap_or(&empty),
                    today,
                ))
            });
            crate::wire::UsageBreakdown {
                name,
                requests: tally.requests,
                tokens: tally.tokens,
                spent_usd: crate::pricing::nano_to_usd(tally.cost_nano),
                limit_percentage,
            }
        })
        .collect()
}
