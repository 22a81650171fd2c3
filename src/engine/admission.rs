//! Admission: a request is checked and counted in one step under the
//! workspace's shard lock (see [`Engine::admit`]), or counted as admitted
//! elsewhere. With a [`Hold`], its tokens are reserved in the same step.

use super::reads::check_result;
use super::reservations::{Hold, MAX_HOLDS_PER_WORKSPACE};
use super::rules::{token_room, TokenRoom, IN_FLIGHT_RETRY_MS};
use super::{Admission, Effect, Engine, EngineError};
use crate::wire::CheckResult;

/// A call refused as RATE_LIMITED whose tokens do not fit either is refused
/// *for its tokens* (the usual cause once holds fill a window), so it says
/// so — as the shared store's refusal does under Redis.
pub(super) fn refused_for_tokens(
    ws: &super::workspace::WorkspaceState,
    now: u64,
    status: crate::wire::QuotaStatus,
    tokens: Option<u64>,
) -> Option<TokenRoom> {
    match tokens {
        Some(tokens) if status == crate::wire::QuotaStatus::RateLimited => {
            Some(token_room(ws, now, tokens)).filter(|room| *room != TokenRoom::Fits)
        }
        _ => None,
    }
}

/// A call that would hold tokens waits while the workspace already has
/// [`MAX_HOLDS_PER_WORKSPACE`] holds open (the bound on its map of holds).
pub(super) fn holds_full(ws: &super::workspace::WorkspaceState) -> Option<TokenRoom> {
    (ws.reservations.len() >= MAX_HOLDS_PER_WORKSPACE).then(|| TokenRoom::Wait {
        wait_ms: IN_FLIGHT_RETRY_MS,
        reason: format!("{MAX_HOLDS_PER_WORKSPACE} calls of this workspace are in flight."),
    })
}

/// The refusal of a call refused by the verdict, with the token room that
/// explains it: its retry hint is when *its* tokens fit (a window that frees
/// one token in 20 s may free this call's 500 only in 50 s, and a retry at
/// 20 s is refused again), and none when they never can.
pub(super) fn refused_check(verdict: &super::Verdict, room: Option<&TokenRoom>) -> CheckResult {
    let mut check = check_result(verdict);
    match room {
        Some(TokenRoom::Wait { wait_ms, .. }) => {
            let wait_s = *wait_ms as f64 / 1000.0;
            check.retry_after_s = Some(check.retry_after_s.map_or(wait_s, |s| s.max(wait_s)));
        }
        Some(TokenRoom::TooLarge { .. }) => check.retry_after_s = None,
        Some(TokenRoom::Limited(limited)) => {
            check.retry_after_s = limited.wait_ms.map(|ms| ms as f64 / 1000.0)
        }
        Some(TokenRoom::Fits) | None => {}
    }
    check
}

impl TokenRoom {
    /// `other()`'s room when this one fits.
    fn or_else(self, other: impl FnOnce() -> TokenRoom) -> TokenRoom {
        match self {
            TokenRoom::Fits => other(),
            room => room,
        }
    }
}

/// Whether a call fits its per-model and per-user limits and the
/// workspace's hard budgets (its worst-case cost beside what is spent and
/// held). Advances the scopes it reads.
pub(super) fn rule_room(
    ws: &mut super::workspace::WorkspaceState,
    now: u64,
    hold: &Hold,
    keys: &super::scopes::ScopeKeys,
) -> TokenRoom {
    if ws.settings.is_none() {
        return TokenRoom::Fits;
    }
    if hold.unpriced {
        if let Some(refusal) = super::budget_rules::unpriced_refusal(ws, keys, &hold.scope) {
            return TokenRoom::Limited(refusal);
        }
    }
    ws.scopes.advance(now, keys);
    let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
    let day = super::periods::Period::Day.bounds(zone, now);
    let need = super::scopes::Need {
        tokens: hold.tokens,
        cost_nano: hold.cost_nano,
        today: day.first_day,
        day_end_ms: day.end_ms,
    };
    let scoped = super::scopes::scoped_room(ws, now, keys, &need);
    let budget = super::budget_rules::budget_room(ws, now, hold.cost_nano);
    let refusal = match (scoped, budget) {
        (a, Some(b)) => super::scopes::Limited::longest(a, b),
        (a, None) => a,
    };
    refusal.map_or(TokenRoom::Fits, TokenRoom::Limited)
}

impl Engine {
    /// Admits one request that reserves no tokens (see [`admit`](Self::admit)).
    pub fn try_admit(&self, id: &str) -> Result<Admission, EngineError> {
        self.admit(id, None)
    }

    /// Admits one request if every window has room — for the request, and
    /// for `hold`'s tokens beside those used and already held — counting the
    /// request and holding the tokens at once, so that concurrent callers
    /// cannot overshoot. Follow with [`settle`](Self::settle) (or
    /// [`release`](Self::release)).
    pub fn admit(&self, id: &str, hold: Option<&Hold>) -> Result<Admission, EngineError> {
        let (answer, effect) = self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            if !verdict.allowed {
                let room = refused_for_tokens(ws, now, verdict.status, hold.map(|h| h.tokens));
                return ((refused_check(&verdict, room.as_ref()), room), None);
            }
            let keys = hold.map(|h| ws.scopes.keys_for(ws.settings.as_deref(), &h.scope));
            if let (Some(hold), Some(keys)) = (hold, keys.as_ref()) {
                let room = holds_full(ws)
                    .unwrap_or_else(|| token_room(ws, now, hold.tokens))
                    .or_else(|| rule_room(ws, now, hold, keys));
                let retry_after_ms = match &room {
                    TokenRoom::Fits => None,
                    TokenRoom::Wait { wait_ms, .. } => Some(*wait_ms),
                    TokenRoom::TooLarge { .. } => None,
                    TokenRoom::Limited(limited) => limited.wait_ms,
                };
                if room != TokenRoom::Fits {
                    let check = CheckResult {
                        allowed: false,
                        status: verdict.status,
                        retry_after_s: retry_after_ms.map(|ms| ms as f64 / 1000.0),
                    };
                    return ((check, Some(room)), None);
                }
            }
            if ws.upstream.quota_exhausted_at_ms.is_some() {
                // This request is the probe; the next one waits a full interval.
                ws.upstream.next_probe_at_ms = now + engine.config.quota_probe_interval_ms;
            }
            ws.minute.add(now, 1, 0);
            ws.day.add(now, 1, 0);
            if let (Some(hold), Some(keys)) = (hold, keys) {
                ws.scopes.count_request(now, &keys);
                ws.reservations.hold(hold, keys);
            }
            ws.version += 1;
            engine.flag_unusual_traffic(id, ws, now);
            let transition = engine.transition_if_changed(id, ws, now);
            let check = CheckResult {
                allowed: true,
                status: ws.status,
                retry_after_s: None,
            };
            ((check, None), transition)
        })?;
        let (check, token_refusal) = answer;
        Ok(Admission {
            check,
            effect,
            token_refusal,
        })
    }

    /// Counts one request that was admitted elsewhere (by the shared store, or
    /// on another instance), without checking limits, holding `hold`'s
    /// tokens as that admission did.
    pub fn count_admitted(&self, id: &str, hold: Option<&Hold>) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.advance(now, engine.config.degraded_window_ms);
            if ws.upstream.quota_exhausted_at_ms.is_some() {
                ws.upstream.next_probe_at_ms = now + engine.config.quota_probe_interval_ms;
            }
            ws.minute.add(now, 1, 0);
            ws.day.add(now, 1, 0);
            // A hold this instance took already (`check_call`, its own
            // admission under Redis) had its scoped request counted then.
            if let Some(hold) = hold.filter(|h| !ws.reservations.contains(&h.reservation_id)) {
                let keys = ws.scopes.keys_for(ws.settings.as_deref(), &hold.scope);
                ws.scopes.count_request(now, &keys);
                ws.reservations.hold(hold, keys);
            }
            ws.version += 1;
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }
}
