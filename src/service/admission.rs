//! The proxy's path through the service: admission (exact, under the
//! workspace's lock; or against the shared counters under Redis), the
//! outcome of an admitted call, and what both keep behind.

use super::backend::SharedAdmission;
use super::{FailurePolicy, QuotaService, ServiceError};
use crate::engine::{
    Admission, CallOutcome, CallScope, Effect, EngineError, Hold, TokenRoom, Transition,
    IN_FLIGHT_RETRY_MS,
};
use crate::wire::{CheckResult, QuotaStatus};

/// Prefix of every reservation id: readable in logs, checkable at the API.
pub const RESERVATION_ID_PREFIX: &str = "rsv_";

/// Whether `id` is shaped like a reservation id this service makes
/// (`rsv_` and 32 lowercase hex digits): what the API accepts back.
pub fn is_reservation_id(id: &str) -> bool {
    id.strip_prefix(RESERVATION_ID_PREFIX).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl QuotaService {
    /// Keeps what a counted call cost (written behind, merged per
    /// workspace and local day).
    pub(super) fn spend_behind(&self, id: &str, outcome: &CallOutcome, effect: &Effect) {
        if let Some(tallied) = &effect.tallied {
            self.backend().detail_behind(id, tallied);
        }
        let Some(cost) = outcome.cost_nano.filter(|c| *c > 0) else {
            return;
        };
        if let Some(day) = self.inner.engine.local_day_now(id) {
            self.backend()
                .spend_behind(id, day.format("%Y-%m-%d").to_string(), cost);
        }
    }

    /// A new hold of `tokens` for one call: a random, unguessable id (128
    /// bits, so instances sharing Redis never collide), expiring after the
    /// configured bound (`QUOTA_RESERVATION_TTL_S`).
    pub fn new_hold(&self, tokens: u64) -> Hold {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        let engine = &self.inner.engine;
        Hold {
            reservation_id: format!("{RESERVATION_ID_PREFIX}{}", hex::encode(bytes)),
            tokens,
            expires_at_ms: engine.now_ms() + engine.config().reservation_ttl_ms,
            cost_nano: 0,
            scope: CallScope::default(),
            unpriced: false,
        }
    }

    /// A hold for one call of `scope` that may read `prompt` tokens and
    /// write `max_output`: those tokens, and its worst-case cost at the
    /// model's price in force now (nothing for a model the table does not
    /// price, marked `unpriced`: such calls count no spend, so a money
    /// limit refuses them, see docs/DEPLOYMENT.md).
    pub fn hold_for_call(&self, prompt: u64, max_output: u64, scope: CallScope) -> Hold {
        let now = self.inner.engine.now_ms();
        let cost = scope.model.as_deref().map(|model| {
            self.inner
                .config
                .prices
                .worst_case_nano(model, now, prompt, max_output)
        });
        Hold {
            cost_nano: cost.flatten().unwrap_or(0),
            unpriced: matches!(cost, Some(None)),
            scope,
            ..self.new_hold(prompt.saturating_add(max_output))
        }
    }

    /// What a call of `model` that used `usage` cost now, in nano-dollars;
    /// `None` for a model the table does not price.
    pub fn price_call(
        &self,
        model: Option<&str>,
        usage: &crate::pricing::TokenUsage,
    ) -> Option<u64> {
        let now = self.inner.engine.now_ms();
        self.inner
            .config
            .prices
            .cost_nano(model?, now, usage, false)
    }

    /// Admits (and counts) one request that reserves no tokens.
    pub async fn try_admit(&self, id: &str) -> Result<Admission, ServiceError> {
        self.admit(id, None).await
    }

    /// Admits (and counts) one request, reserving `hold`'s tokens if given
    /// (proxy, tracked client, `POST /api/quota/reserve`); the request is
    /// written behind. Under Redis the shared counters decide (see
    /// `replication` for the failure policy); otherwise this instance's
    /// engine, exactly, under its lock. Settle with [`complete`](Self::complete)
    /// (an outcome naming the hold) or [`release`](Self::release).
    pub async fn admit(&self, id: &str, hold: Option<Hold>) -> Result<Admission, ServiceError> {
        self.admit_with(id, hold, false).await
    }

    /// Like [`admit`](Self::admit), answered only once the request is kept
    /// (`POST /api/quota/reserve`: an acknowledged reservation's request
    /// survives a `kill -9`, as a record does). Under Redis the admission
    /// script is that write already. If the write fails the hold is
    /// released and the failure returned (the store is then unhealthy).
    pub async fn admit_kept(&self, id: &str, hold: Hold) -> Result<Admission, ServiceError> {
        self.admit_with(id, Some(hold), true).await
    }

    async fn admit_with(
        &self,
        id: &str,
        hold: Option<Hold>,
        kept: bool,
    ) -> Result<Admission, ServiceError> {
        let admission = if self.backend().redis().is_some() {
            self.admit_shared(id, hold).await?
        } else {
            let admission = self.inner.engine.admit(id, hold.as_ref())?;
            if admission.check.allowed {
                let now = self.inner.engine.now_ms();
                if kept {
                    if let Err(e) = self.backend().write_usage_now(id, now, 1).await {
                        if let Some(hold) = &hold {
                            let _ = self.inner.engine.release(id, &hold.reservation_id);
                        }
                        return Err(ServiceError::Store(e));
                    }
                } else {
                    self.backend().usage_behind(id, now, (1, 0), None);
                }
            }
            admission
        };
        self.count_admission(admission.check.allowed);
        if admission.check.allowed {
            self.keep_effect(id, &admission.effect, false);
            self.publish(id, &admission.effect);
        }
        Ok(admission)
    }

    /// Admission against the shared counters; the local engine answers
    /// first for what only it knows (the upstream's 429s and quota).
    async fn admit_shared(&self, id: &str, hold: Option<Hold>) -> Result<Admission, ServiceError> {
        let engine = &self.inner.engine;
        let (local, room) = engine.check_call(id, hold.as_ref())?;
        if !local.allowed {
            let mut refusal = refused(local);
            refusal.token_refusal = room;
            return Ok(refusal);
        }
        // `check_call` took the hold; given back unless the shared store
        // admits the call (also if this future is dropped while waiting).
        let mut taken = TakenHold {
            service: self,
            id,
            reservation_id: hold.as_ref().map(|h| h.reservation_id.as_str()),
        };
        let limits = engine
            .limits(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        let expected = self.expected_key(id);
        match self
            .backend()
            .admit_shared(id, engine.now_ms(), limits, expected, hold.as_ref())
            .await
        {
            // Not reached: only called under Redis.
            SharedAdmission::NotShared => {
                taken.give_back();
                Ok(engine.admit(id, hold.as_ref())?)
            }
            SharedAdmission::Admitted => {
                // Kept: it is the call's hold now, settled with the call.
                taken.reservation_id = None;
                Ok(Admission {
                    check: CheckResult {
                        allowed: true,
                        status: local.status,
                        retry_after_s: None,
                    },
                    effect: engine.count_admitted(id, hold.as_ref())?,
                    token_refusal: None,
                })
            }
            SharedAdmission::KeyChanged => {
                taken.give_back();
                self.reload_workspace_key(id).await;
                Err(ServiceError::KeyChanged)
            }
            SharedAdmission::Full(totals) => {
                // Other instances' traffic (or their calls in flight) filled
                // a window before their events reached us; the local view
                // catches up within moments, so the retry hint is short.
                let need = hold.as_ref().map_or(1, |h| h.tokens.max(1));
                let held = totals.reserved_tokens;
                let requests_full = totals.minute_requests + 1 > limits.requests_per_minute
                    || totals.day_requests + 1 > limits.requests_per_day;
                let day_full = totals.day_requests + 1 > limits.requests_per_day
                    || totals.day_tokens >= limits.tokens_per_day;
                let status = if day_full {
                    QuotaStatus::QuotaExceeded
                } else {
                    QuotaStatus::RateLimited
                };
                let token_refusal = (!requests_full && hold.is_some()).then(|| {
                    let too_large = [
                        ("Tokens per minute", limits.tokens_per_minute),
                        ("Tokens per day", limits.tokens_per_day),
                    ]
                    .into_iter()
                    .find(|(_, limit)| need > *limit);
                    match too_large {
                        Some((label, limit)) => TokenRoom::TooLarge { need, limit, label },
                        None => TokenRoom::Wait {
                            wait_ms: IN_FLIGHT_RETRY_MS,
                            reason: format!(
                                "Tokens per minute limit: {} used and {held} held for calls in flight of {} across every instance; this request needs {need}.",
                                totals.minute_tokens, limits.tokens_per_minute
                            ),
                        },
                    }
                });
                let mut refusal = refused(CheckResult {
                    allowed: false,
                    status: if token_refusal.is_some() {
                        local.status
                    } else {
                        status
                    },
                    retry_after_s: Some(1.0),
                });
                if matches!(token_refusal, Some(TokenRoom::TooLarge { .. })) {
                    refusal.check.retry_after_s = None;
                }
                refusal.token_refusal = token_refusal;
                Ok(refusal)
            }
            SharedAdmission::Unreachable(FailurePolicy::Open) => {
                // Admitted here alone, as without Redis (its per-model or
                // per-user request was counted twice: stricter, once).
                taken.give_back();
                Ok(engine.admit(id, hold.as_ref())?)
            }
            SharedAdmission::Unreachable(FailurePolicy::Closed) => Ok(refused(CheckResult {
                allowed: false,
                status: QuotaStatus::Degraded,
                retry_after_s: Some(5.0),
            })),
        }
    }
}

/// A hold `check_call` took for a call the shared store has not admitted
/// yet: released when dropped, unless the store admitted it (`None`).
struct TakenHold<'a> {
    service: &'a QuotaService,
    id: &'a str,
    reservation_id: Option<&'a str>,
}

impl TakenHold<'_> {
    fn give_back(&mut self) {
        if let Some(reservation_id) = self.reservation_id.take() {
            // Local only: the shared store holds nothing for this call.
            if let Ok(effect) = self.service.inner.engine.release(self.id, reservation_id) {
                self.service.publish(self.id, &effect);
            }
        }
    }
}

impl Drop for TakenHold<'_> {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl QuotaService {
    /// The outcome of an admitted request, settling its hold if it names
    /// one; written behind (this runs on the proxy's response path, and in a
    /// stream's drop guard).
    pub fn complete(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, EngineError> {
        let effect = self.inner.engine.complete(id, outcome)?;
        self.spend_behind(id, outcome, &effect);
        let now = self.inner.engine.now_ms();
        self.backend().usage_behind(
            id,
            now,
            (0, outcome.tokens),
            outcome.reservation_id.as_deref(),
        );
        let upstream_changed = outcome.error.is_some() || !outcome.headers.is_empty();
        self.keep_effect(id, &effect, upstream_changed);
        self.backend().announce_completed(id, outcome);
        self.publish(id, &effect);
        Ok(effect)
    }

    /// Releases a hold without counting anything: the call never got an
    /// answer to count (its caller went away first). Written behind.
    pub fn release(&self, id: &str, reservation_id: &str) {
        let Ok(effect) = self.inner.engine.release(id, reservation_id) else {
            return;
        };
        let now = self.inner.engine.now_ms();
        self.backend()
            .usage_behind(id, now, (0, 0), Some(reservation_id));
        self.backend().announce_released(id, reservation_id);
        self.keep_effect(id, &effect, false);
        self.publish(id, &effect);
    }

    /// Keeps what an operation changed besides usage, behind: its
    /// transitions and, if the upstream said something, the workspace's
    /// upstream state.
    pub(super) fn keep_effect(&self, id: &str, effect: &Effect, upstream_changed: bool) {
        let backend = self.backend();
        if upstream_changed {
            backend.upstream_state_behind(id, || {
                let state = self.inner.engine.durable_upstream(id)?;
                serde_json::to_string(&state).ok()
            });
        }
        let transitions: Vec<Transition> = effect
            .transition
            .iter()
            .chain(effect.anomaly.iter())
            .cloned()
            .collect();
        backend.transitions_behind(transitions);
    }

    fn count_admission(&self, allowed: bool) {
        let decision = if allowed { "allowed" } else { "denied" };
        self.inner
            .metrics
            .admissions
            .with_label_values(&[decision])
            .inc();
    }
}

/// A request not admitted: nothing counted, nothing changed.
fn refused(check: CheckResult) -> Admission {
    Admission {
        check,
        effect: Effect {
            anomaly: None,
            tallied: None,
            transition: None,
            version: 0,
        },
        token_refusal: None,
    }
}
