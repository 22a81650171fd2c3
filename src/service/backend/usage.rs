//! Usage: what a record or a proxied call counted, written where the kind
//! keeps it, and admission against the shared counters under Redis.

use super::events::EventKind;
use super::{Backend, Kind};
use crate::config::FailurePolicy;
use crate::engine::Hold;
use crate::service::records::Idempotency;
use crate::service::ServiceError;
use crate::store::redis::{AddCode, AddGuard, SharedTotals};
use crate::store::{ClaimOutcome, IdempotencyClaim, StoreError, IDEMPOTENCY_TTL_MS};
use crate::wire::Limits;

/// What the shared counters said about one more proxied request.
pub(in crate::service) enum SharedAdmission {
    /// No shared counters: this instance's engine decides alone.
    NotShared,
    /// Counted in Redis (and announced).
    Admitted,
    /// No room: other instances' traffic filled a window.
    Full(SharedTotals),
    /// The workspace's key in Redis is not the one this instance holds.
    KeyChanged,
    /// Redis did not answer (reported); the failure policy decides.
    Unreachable(FailurePolicy),
}

impl Backend {
    /// Counts a record's (or a batch's) usage where it is kept, once per
    /// `idempotency` key; awaited. `expected_key`: the digest (hex) this
    /// instance holds for the workspace's key, which Redis must still hold.
    pub(in crate::service) async fn count_record(
        &self,
        id: &str,
        now_ms: u64,
        (requests, tokens): (u64, u64),
        settles: Vec<String>,
        idempotency: Option<&Idempotency>,
        expected_key: impl FnOnce() -> String,
    ) -> Result<ClaimOutcome, ServiceError> {
        match &self.kind {
            Kind::Memory(keys) => Ok(match idempotency {
                Some(idem) => keys.claim(id, idem, now_ms),
                None => ClaimOutcome::Counted,
            }),
            Kind::Sqlite(store) => {
                let _timer = self.store_timer();
                let written = match idempotency {
                    Some(idem) => {
                        let claim = IdempotencyClaim {
                            key_digest: idem.key_digest,
                            fingerprint: idem.fingerprint,
                            not_before_ms: now_ms.saturating_sub(IDEMPOTENCY_TTL_MS),
                        };
                        store
                            .append_usage_once(id, now_ms, requests, tokens, claim)
                            .await
                    }
                    None => store
                        .append_usage(id, now_ms, requests, tokens)
                        .await
                        .map(|()| ClaimOutcome::Counted),
                };
                written.map_err(|e| ServiceError::Store(self.failed(e)))
            }
            Kind::Redis(shared) => {
                let guard = AddGuard {
                    limits: None,
                    expected_key: Some(expected_key()),
                    idempotency: idempotency
                        .map(|i| (hex::encode(i.key_digest), hex::encode(i.fingerprint))),
                    hold: None,
                    settles,
                };
                let totals = shared
                    .redis
                    .add(id, now_ms, requests, tokens, &guard)
                    .await
                    .map_err(|e| ServiceError::Store(self.failed(e)))?;
                match totals.code {
                    // Without limits nothing is refused for room.
                    AddCode::Counted | AddCode::Refused => Ok(ClaimOutcome::Counted),
                    AddCode::Replayed => Ok(ClaimOutcome::Replayed),
                    AddCode::Mismatch => Ok(ClaimOutcome::Mismatch),
                    AddCode::KeyChanged => Err(ServiceError::KeyChanged),
                }
            }
        }
    }

    /// Admits one proxied request against the shared counters (Redis), which
    /// decide for every instance at once.
    pub(in crate::service) async fn admit_shared(
        &self,
        id: &str,
        now_ms: u64,
        limits: Limits,
        expected_key: String,
        hold: Option<&Hold>,
    ) -> SharedAdmission {
        let Kind::Redis(shared) = &self.kind else {
            return SharedAdmission::NotShared;
        };
        let guard = AddGuard {
            limits: Some(limits),
            expected_key: Some(expected_key),
            idempotency: None,
            hold: hold.cloned(),
            settles: Vec::new(),
        };
        match shared.redis.add(id, now_ms, 1, 0, &guard).await {
            Ok(totals) if totals.code == AddCode::KeyChanged => SharedAdmission::KeyChanged,
            Ok(totals) if totals.admitted => {
                self.announce(
                    id,
                    EventKind::Admitted {
                        hold: hold.cloned(),
                    },
                );
                SharedAdmission::Admitted
            }
            Ok(totals) => SharedAdmission::Full(totals),
            Err(e) => {
                self.report(&e);
                SharedAdmission::Unreachable(shared.policy)
            }
        }
    }

    /// Writes merged proxied usage (the flush task of `behind.rs`), and
    /// under Redis releases the holds those calls settled.
    /// Writes `requests` at once and waits for them to be kept (memory:
    /// nothing to keep; Redis counts requests in its admission script).
    pub(in crate::service) async fn write_usage_now(
        &self,
        id: &str,
        at_ms: u64,
        requests: u64,
    ) -> Result<(), StoreError> {
        match &self.kind {
            Kind::Sqlite(_) => self.write_usage(id, at_ms, requests, 0, Vec::new()).await,
            Kind::Memory(_) | Kind::Redis(_) => Ok(()),
        }
    }

    pub(super) async fn write_usage(
        &self,
        id: &str,
        at_ms: u64,
        requests: u64,
        tokens: u64,
        settles: Vec<String>,
    ) -> Result<(), StoreError> {
        let written = match &self.kind {
            Kind::Memory(_) => Ok(()),
            Kind::Sqlite(store) => {
                let _timer = self.store_timer();
                store.append_usage(id, at_ms, requests, tokens).await
            }
            Kind::Redis(shared) => {
                let guard = AddGuard {
                    settles,
                    ..AddGuard::default()
                };
                shared
                    .redis
                    .add(id, at_ms, requests, tokens, &guard)
                    .await
                    .map(|_| ())
            }
        };
        written.map_err(|e| self.failed(e))
    }

    /// Clears a workspace's usage (admin reset); awaited. Under Redis the
    /// other instances are told.
    pub(in crate::service) async fn clear_usage(&self, id: &str) -> Result<(), ServiceError> {
        match &self.kind {
            Kind::Memory(_) => Ok(()),
            Kind::Sqlite(store) => store
                .clear_usage(id)
                .await
                .map_err(|e| ServiceError::Store(self.failed(e))),
            Kind::Redis(shared) => {
                shared
                    .redis
                    .clear_usage(id)
                    .await
                    .map_err(|e| ServiceError::Store(self.failed(e)))?;
                self.announce(id, EventKind::Reset);
                Ok(())
            }
        }
    }

    /// Times a store write for `quota_store_latency_seconds`.
    pub(in crate::service) fn store_timer(&self) -> Option<prometheus::HistogramTimer> {
        let inner = self.service.upgrade()?;
        Some(inner.metrics.store_latency.start_timer())
    }
}
