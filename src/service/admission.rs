//! The proxy's path through the service: admission (exact, under the
//! workspace's lock; or against the shared counters under Redis), the
//! outcome of an admitted call, and what both keep behind.

use super::backend::SharedAdmission;
use super::{FailurePolicy, QuotaService, ServiceError};
use crate::engine::{Admission, CallOutcome, Effect, EngineError, Transition};
use crate::wire::{CheckResult, QuotaStatus};

impl QuotaService {
    /// Admits (and counts) one proxied request; written behind. Under
    /// Redis the shared counters decide (see `replication` for the failure
    /// policy); otherwise this instance's engine, exactly, under its lock.
    pub async fn try_admit(&self, id: &str) -> Result<Admission, ServiceError> {
        let admission = if self.backend().redis().is_some() {
            self.admit_shared(id).await?
        } else {
            let admission = self.inner.engine.try_admit(id)?;
            if admission.check.allowed {
                let now = self.inner.engine.now_ms();
                self.backend().usage_behind(id, now, 1, 0);
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
    async fn admit_shared(&self, id: &str) -> Result<Admission, ServiceError> {
        let engine = &self.inner.engine;
        let local = engine.check(id)?;
        if !local.allowed {
            return Ok(refused(local));
        }
        let limits = engine
            .limits(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        let expected = self.expected_key(id);
        match self
            .backend()
            .admit_shared(id, engine.now_ms(), limits, expected)
            .await
        {
            // Not reached: only called under Redis.
            SharedAdmission::NotShared => Ok(engine.try_admit(id)?),
            SharedAdmission::Admitted => Ok(Admission {
                check: CheckResult {
                    allowed: true,
                    status: local.status,
                    retry_after_s: None,
                },
                effect: engine.count_admitted(id)?,
            }),
            SharedAdmission::KeyChanged => {
                self.reload_workspace_key(id).await;
                Err(ServiceError::KeyChanged)
            }
            SharedAdmission::Full(totals) => {
                // Other instances' traffic filled the window before their
                // events reached us; the local view catches up within moments.
                let day_full = totals.day_requests + 1 > limits.requests_per_day
                    || totals.day_tokens >= limits.tokens_per_day;
                let status = if day_full {
                    QuotaStatus::QuotaExceeded
                } else {
                    QuotaStatus::RateLimited
                };
                Ok(refused(CheckResult {
                    allowed: false,
                    status,
                    retry_after_s: Some(1.0),
                }))
            }
            SharedAdmission::Unreachable(FailurePolicy::Open) => Ok(engine.try_admit(id)?),
            SharedAdmission::Unreachable(FailurePolicy::Closed) => Ok(refused(CheckResult {
                allowed: false,
                status: QuotaStatus::Degraded,
                retry_after_s: Some(5.0),
            })),
        }
    }

    /// The outcome of an admitted request; written behind (this runs on the
    /// proxy's response path, and in a stream's drop guard).
    pub fn complete(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, EngineError> {
        let effect = self.inner.engine.complete(id, outcome)?;
        let now = self.inner.engine.now_ms();
        self.backend().usage_behind(id, now, 0, outcome.tokens);
        let upstream_changed = outcome.error.is_some() || !outcome.headers.is_empty();
        self.keep_effect(id, &effect, upstream_changed);
        self.backend().announce_completed(id, outcome);
        self.publish(id, &effect);
        Ok(effect)
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
            transition: None,
            version: 0,
        },
    }
}
