//! Calls an app records itself (`POST /api/quota/record` and `/batch`).
//!
//! - **Stored, then counted.** The usage of a record (or of a whole batch,
//!   summed into one write) goes to the store first — SQLite, or the Redis
//!   counters — and only once that succeeded is it counted in the engine. A
//!   batch is one write, so it is all or nothing, counting included: a store
//!   failure leaves nothing of it counted anywhere, and the 503 that says so
//!   can be retried without counting twice.
//! - **Once per `Idempotency-Key`.** With a key, the store keeps it (its
//!   digest, and the fingerprint of the request) in the same write as the
//!   usage: SQLite in one transaction (`idempotency_keys`), Redis in the
//!   admission script (`SET` with a 24 h expiry). A retry with the same key
//!   and request is *replayed*: nothing is counted, the answer has the same
//!   status and shape (the snapshot is the current one). The same key with a
//!   different request is refused (`idempotency_key_reused`). Two concurrent
//!   uses of one key count once: the SQLite writer and Redis both run one
//!   write at a time. Without SQLite or Redis the keys are kept in memory,
//!   at most [`MAX_IDEMPOTENCY_KEYS_IN_MEMORY`] per workspace (the oldest are
//!   forgotten first, and with them their protection).

use super::backend::Kind;
use super::{QuotaService, ServiceError};
use crate::auth::key_digest;
use crate::engine::{CallOutcome, Effect, EngineError};
use crate::store::{ClaimOutcome, IDEMPOTENCY_TTL_MS};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Idempotency keys kept per workspace when nothing is persistent.
pub const MAX_IDEMPOTENCY_KEYS_IN_MEMORY: usize = 10_000;

/// A request's `Idempotency-Key` (as its digest: it is client text, kept
/// like every other client-chosen value) and the fingerprint of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub key_digest: [u8; 32],
    pub fingerprint: [u8; 32],
}

impl Idempotency {
    /// `request`: everything that makes two requests the same (endpoint and
    /// the records as validated).
    pub fn new(key: &str, request: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Self {
            key_digest: key_digest(key),
            fingerprint: Sha256::digest(request).into(),
        }
    }
}

/// What a record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Counted,
    /// A retry of a request already counted under its `Idempotency-Key`.
    Replayed,
}

/// Idempotency keys in memory, per workspace, oldest first.
#[derive(Default)]
pub(super) struct IdempotencyMemory {
    workspaces: Mutex<HashMap<String, Seen>>,
}

#[derive(Default)]
struct Seen {
    by_key: HashMap<[u8; 32], ([u8; 32], u64)>,
    order: VecDeque<([u8; 32], u64)>,
}

impl IdempotencyMemory {
    pub(super) fn claim(&self, workspace: &str, idem: &Idempotency, now_ms: u64) -> ClaimOutcome {
        // Held for a few map operations, never across an await; a poisoned
        // lock only means another request panicked mid-update of plain maps.
        let mut all = self
            .workspaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let seen = all.entry(workspace.to_string()).or_default();
        while let Some(&(key, at)) = seen.order.front() {
            let full = seen.order.len() >= MAX_IDEMPOTENCY_KEYS_IN_MEMORY;
            if at + IDEMPOTENCY_TTL_MS > now_ms && !full {
                break;
            }
            seen.order.pop_front();
            if seen.by_key.get(&key).is_some_and(|(_, a)| *a == at) {
                seen.by_key.remove(&key);
            }
        }
        if let Some((fingerprint, _)) = seen.by_key.get(&idem.key_digest) {
            return if *fingerprint == idem.fingerprint {
                ClaimOutcome::Replayed
            } else {
                ClaimOutcome::Mismatch
            };
        }
        seen.by_key
            .insert(idem.key_digest, (idem.fingerprint, now_ms));
        seen.order.push_back((idem.key_digest, now_ms));
        ClaimOutcome::Counted
    }

    /// Keys held for `workspace` (tests, metrics).
    pub(super) fn len(&self, workspace: &str) -> usize {
        self.workspaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(workspace)
            .map_or(0, |s| s.by_key.len())
    }
}

impl QuotaService {
    /// Records one call an app made itself. Answers once the usage is stored.
    pub async fn record(&self, id: &str, outcome: &CallOutcome) -> Result<Effect, ServiceError> {
        self.record_all(id, std::slice::from_ref(outcome), None)
            .await
            .map(|(_, effect)| effect)
    }

    /// Records `outcomes` (one, or a batch) all or nothing, once per
    /// `idempotency` key (see the module docs). Answers once stored; the
    /// effect is the last outcome's (none when replayed).
    pub async fn record_all(
        &self,
        id: &str,
        outcomes: &[CallOutcome],
        idempotency: Option<&Idempotency>,
    ) -> Result<(Recorded, Effect), ServiceError> {
        let result = self.record_inner(id, outcomes, idempotency).await;
        let label = match &result {
            Ok((Recorded::Counted, _)) => "ok",
            Ok((Recorded::Replayed, _)) => "replayed",
            Err(ServiceError::Engine(_)) => "unknown_workspace",
            Err(ServiceError::Store(_)) => "store_error",
            Err(ServiceError::KeyChanged) => "key_changed",
            Err(ServiceError::IdempotencyKeyReused) => "idempotency_key_reused",
        };
        let counted = match &result {
            Ok((Recorded::Counted, _)) => outcomes.len() as u64,
            _ => 1,
        };
        self.metrics()
            .records
            .with_label_values(&[label])
            .inc_by(counted);
        result
    }

    async fn record_inner(
        &self,
        id: &str,
        outcomes: &[CallOutcome],
        idempotency: Option<&Idempotency>,
    ) -> Result<(Recorded, Effect), ServiceError> {
        let engine = self.engine();
        if !engine.contains(id) {
            return Err(ServiceError::Engine(EngineError::NotFound(id.to_string())));
        }
        // A call reserved first had its request counted at the reserve.
        let settles: Vec<String> = outcomes
            .iter()
            .filter_map(|o| o.reservation_id.clone())
            .collect();
        let requests = (outcomes.len() - settles.len()) as u64;
        let tokens = outcomes
            .iter()
            .fold(0u64, |sum, o| sum.saturating_add(o.tokens));
        let now = engine.now_ms();

        // 1. Kept (and shared) first.
        let claim = self
            .backend()
            .count_record(id, now, (requests, tokens), settles, idempotency, || {
                self.expected_key(id)
            })
            .await;
        if let Err(ServiceError::KeyChanged) = claim {
            self.reload_workspace_key(id).await;
        }
        let claim = claim?;
        match claim {
            ClaimOutcome::Counted => {}
            ClaimOutcome::Replayed => {
                return Ok((
                    Recorded::Replayed,
                    Effect {
                        anomaly: None,
                        tallied: None,
                        transition: None,
                        version: 0,
                    },
                ))
            }
            ClaimOutcome::Mismatch => return Err(ServiceError::IdempotencyKeyReused),
        }

        // 2. Then counted here, and told to the other instances.
        let mut last = Effect {
            anomaly: None,
            tallied: None,
            transition: None,
            version: 0,
        };
        for outcome in outcomes {
            let effect = engine.record(id, outcome)?;
            self.spend_behind(id, outcome, &effect);
            self.publish(id, &effect);
            self.keep_effect(
                id,
                &effect,
                outcome.error.is_some() || !outcome.headers.is_empty(),
            );
            last = effect;
        }
        self.backend().announce_recorded(id, outcomes);
        Ok((Recorded::Counted, last))
    }

    /// Idempotency keys held in memory for `workspace` (no store, no Redis:
    /// 0 with either, which keep them themselves).
    pub fn idempotency_keys_in_memory(&self, workspace: &str) -> usize {
        match self.backend().kind() {
            Kind::Memory(keys) => keys.len(workspace),
            Kind::Sqlite(_) | Kind::Redis(_) => 0,
        }
    }
}
