//! What a finished call changes: its counts, the upstream's state (rate
//! limits, quota, failures), the last error, unusual-traffic flags; and the
//! admin reset.

use super::workspace::WorkspaceState;
use super::{
    classify, rfc3339, rules, CallOutcome, Effect, Engine, EngineError, ErrorClass, Transition,
    MAX_RECENT_FAILURES,
};
use crate::wire::LastError;

impl Engine {
    /// Records the outcome of a request admitted by [`admit`](Self::admit)
    /// (the request itself is already counted). This is the *settle*: the
    /// hold named by `outcome.reservation_id` is released and the call's
    /// real tokens (less or more than held) are counted. A hold already gone
    /// (expired, settled elsewhere) releases nothing and the tokens still
    /// count: what was answered is never lost.
    pub fn complete(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, EngineError> {
        self.apply(id, outcome, false)
    }

    /// Releases a hold without counting anything (the call never reached the
    /// upstream, or its caller went away before an answer came).
    pub fn release(&self, id: &str, reservation_id: &str) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.advance(now, engine.config.degraded_window_ms);
            if ws.reservations.release(reservation_id).is_some() {
                ws.version += 1;
            }
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }

    /// The ids of the workspace's holds (for the sweep of holds the shared
    /// store no longer has).
    pub fn hold_ids(&self, id: &str) -> Vec<String> {
        self.workspaces
            .get(id)
            .map(|ws| ws.reservations.ids())
            .unwrap_or_default()
    }

    /// Releases each of `reservation_ids` still held (settled elsewhere,
    /// where the event saying so never arrived); how many went.
    pub fn drop_holds(
        &self,
        id: &str,
        reservation_ids: &[String],
    ) -> Result<(usize, Effect), EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.advance(now, engine.config.degraded_window_ms);
            let dropped = reservation_ids
                .iter()
                .filter(|r| ws.reservations.release(r).is_some())
                .count();
            if dropped > 0 {
                ws.version += 1;
            }
            (dropped, engine.transition_if_changed(id, ws, now))
        })
    }

    /// Records a call an app made itself: counts the request, its tokens and
    /// its outcome. A call reserved first (`POST /api/quota/reserve`) names
    /// its reservation: its request was counted then, so this settles it
    /// like [`complete`](Self::complete).
    pub fn record(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, EngineError> {
        self.apply(id, outcome, outcome.reservation_id.is_none())
    }

    /// Clears one workspace's counts and upstream state (admin reset).
    pub fn reset(&self, id: &str) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.minute.clear();
            ws.day.clear();
            ws.reservations.clear();
            ws.spend.clear();
            ws.scopes.clear();
            ws.upstream = Default::default();
            ws.last_error = None;
            ws.version += 1;
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }

    fn apply(
        &self,
        id: &str,
        outcome: &CallOutcome,
        count_request: bool,
    ) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.advance(now, engine.config.degraded_window_ms);
            let released = outcome
                .reservation_id
                .as_ref()
                .and_then(|r| ws.reservations.release(r));
            // Failed requests count toward the request windows as OpenAI counts
            // them; tokens only when the upstream reported usage.
            let requests = u64::from(count_request);
            if requests > 0 || outcome.tokens > 0 {
                ws.minute.add(now, requests, outcome.tokens);
                ws.day.add(now, requests, outcome.tokens);
            }
            let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
            let today = super::periods::local_day(zone, now);
            if let Some(cost) = outcome.cost_nano {
                ws.spend.add(today, cost);
            }
            // The rules the call was held under (or, for a call that held
            // nothing, the rules that cover it now); what the outcome names
            // of model and user wins over what the hold knew.
            let (keys, scope) = match released {
                Some(held) => (
                    held.keys,
                    super::CallScope {
                        model: outcome.scope.model.clone().or(held.scope.model),
                        user: outcome.scope.user.clone().or(held.scope.user),
                    },
                ),
                None => (
                    ws.scopes.keys_for(ws.settings.as_deref(), &outcome.scope),
                    outcome.scope.clone(),
                ),
            };
            let tallied = ws.scopes.settle(
                now,
                today,
                super::scopes::Settled {
                    keys: &keys,
                    scope: &scope,
                    tally: super::scopes::Tally {
                        requests: 1,
                        tokens: outcome.tokens,
                        cost_nano: outcome.cost_nano.unwrap_or(0),
                    },
                    count_request,
                },
            );
            ws.pending_tally = Some(Box::new(tallied));
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
    pub(super) fn flag_unusual_traffic(&self, id: &str, ws: &mut WorkspaceState, now: u64) {
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
}
