//! Reconciliation under Redis: every [`RECONCILE_EVERY`], each workspace's
//! running totals (what admission decides by) are compared with the buckets
//! and holds they are the sum of, any difference is repaired in the same
//! atomic script, and what was found is exposed on `/metrics`
//! (`quota_reconciliation_difference`; it should stay 0: a non-zero value
//! means some path changed a total without its bucket, a bug worth a look).
//!
//! Every instance runs it: it is idempotent, and one instance cannot know
//! another is alive. Its cost is one short script per workspace per pass.

use super::Shared;
use crate::service::QuotaService;
use crate::store::Drift;
use std::sync::Mutex;
use std::time::Duration;

/// How often each instance reconciles every workspace.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// What the last pass found, summed over workspaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Passes finished since start.
    pub passes: u64,
    /// Workspaces checked by the last pass.
    pub workspaces: u64,
    /// Workspaces the last pass could not check (Redis failed).
    pub failed: u64,
    /// Requests the totals were off by (either direction, both windows).
    pub requests: u64,
    /// Tokens the totals were off by (either direction, both windows).
    pub tokens: u64,
    /// Reserved tokens the total was off by.
    pub reserved_tokens: u64,
    /// Holds found without an expiry (released by the pass).
    pub orphan_holds: u64,
    /// Holds this instance kept that Redis no longer has (settled on
    /// another instance whose event never arrived): released here.
    pub ghost_holds: u64,
}

/// The last report; read by `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Reconciliation(Mutex<ReconcileReport>);

impl Reconciliation {
    pub(crate) fn last(&self) -> ReconcileReport {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl QuotaService {
    /// Runs one reconciliation pass now (the background task runs one every
    /// [`RECONCILE_EVERY`]) and returns what it found. `None` without Redis.
    pub async fn reconcile_now(&self) -> Option<ReconcileReport> {
        let shared = self.backend().redis()?.clone();
        Some(self.reconcile(&shared).await)
    }

    async fn reconcile(&self, shared: &Shared) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        for id in self.engine().workspace_ids() {
            match shared.redis.reconcile(&id, true).await {
                Ok(drift) => {
                    report.workspaces += 1;
                    add(&mut report, &id, &drift);
                }
                Err(error) => {
                    report.failed += 1;
                    self.backend().report(&error);
                    continue;
                }
            }
            report.ghost_holds += self.sweep_ghost_holds(shared, &id).await as u64;
        }
        let mut last = self
            .inner
            .reconciliation
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        report.passes = last.passes + 1;
        *last = report;
        report
    }

    /// Releases the holds this instance keeps for `id` that Redis no longer
    /// has. The local ids are read *before* Redis: each of those was in
    /// Redis before it was here (this instance's admission script, or
    /// another's whose event followed its script), so one missing there now
    /// was released there; holds arriving meanwhile are not touched.
    pub(super) async fn sweep_ghost_holds(&self, shared: &Shared, id: &str) -> usize {
        let local = self.engine().hold_ids(id);
        if local.is_empty() {
            return 0;
        }
        let Ok(remote) = shared.redis.hold_ids(id).await else {
            return 0;
        };
        let ghosts: Vec<String> = local.into_iter().filter(|h| !remote.contains(h)).collect();
        if ghosts.is_empty() {
            return 0;
        }
        match self.engine().drop_holds(id, &ghosts) {
            Ok((dropped, effect)) => {
                if dropped > 0 {
                    tracing::warn!(
                        workspace = id,
                        dropped,
                        "released holds settled on another instance whose events were missed"
                    );
                    self.keep_effect(id, &effect, false);
                    self.publish(id, &effect);
                }
                dropped
            }
            Err(_) => 0,
        }
    }

    /// [`sweep_ghost_holds`](Self::sweep_ghost_holds) for every workspace:
    /// after a resubscription, for the events missed while away.
    pub(super) async fn sweep_all_ghost_holds(&self, shared: &Shared) {
        for id in self.engine().workspace_ids() {
            self.sweep_ghost_holds(shared, &id).await;
        }
    }

    pub(super) fn spawn_reconciliation(&self, shared: Shared) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        self.spawn_until_shutdown(async move {
            let mut interval = tokio::time::interval(RECONCILE_EVERY);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            interval.tick().await; // The first tick is immediate; start was just loaded.
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                QuotaService { inner }.reconcile(&shared).await;
            }
        });
    }
}

fn add(report: &mut ReconcileReport, id: &str, drift: &Drift) {
    if drift.is_zero() {
        return;
    }
    tracing::warn!(
        workspace = id,
        ?drift,
        "shared usage totals differed from their buckets; repaired"
    );
    report.requests += drift.requests();
    report.tokens += drift.tokens();
    report.reserved_tokens += drift.reserved_tokens.unsigned_abs();
    report.orphan_holds += drift.orphan_holds.unsigned_abs();
}
