//! The Prometheus text of `/metrics`: the registry's counters plus what
//! only the service knows (statuses, webhooks, background writes).

use super::backend::{background_stats, background_tasks_in_flight, MAX_BACKGROUND_TASKS};
use super::QuotaService;

impl QuotaService {
    /// The Prometheus text of `/metrics`.
    pub fn render_metrics(&self) -> String {
        let webhooks = self
            .alert_stats()
            .map(|s| {
                use std::sync::atomic::Ordering::Relaxed;
                vec![
                    ("delivered", s.delivered.load(Relaxed)),
                    ("failed", s.failed.load(Relaxed)),
                    ("deduplicated", s.deduplicated.load(Relaxed)),
                    ("dropped", s.dropped.load(Relaxed)),
                ]
            })
            .unwrap_or_default();
        let mut text = self
            .inner
            .metrics
            .render(&self.inner.engine.status_counts(), &webhooks);
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let stats = background_stats();
        let _ = write!(
            text,
            "# HELP quota_background_tasks_total Background writes: tasks started, tasks not started because {MAX_BACKGROUND_TASKS} were running, and writes merged into a pending one.\n\
             # TYPE quota_background_tasks_total counter\n\
             quota_background_tasks_total{{result=\"spawned\"}} {}\n\
             quota_background_tasks_total{{result=\"dropped\"}} {}\n\
             quota_background_tasks_total{{result=\"merged\"}} {}\n\
             # HELP quota_background_tasks_in_flight Background tasks running now.\n\
             # TYPE quota_background_tasks_in_flight gauge\n\
             quota_background_tasks_in_flight {}\n",
            stats.spawned.load(Relaxed),
            stats.dropped.load(Relaxed),
            stats.merged.load(Relaxed),
            background_tasks_in_flight(),
        );
        if self.backend().redis().is_some() {
            let r = self.inner.reconciliation.last();
            let _ = write!(
                text,
                "# HELP quota_reconciliation_difference What the last reconciliation pass found between each workspace's shared running totals and the buckets and holds they sum (summed over workspaces, repaired by the pass; should be 0).\n\
                 # TYPE quota_reconciliation_difference gauge\n\
                 quota_reconciliation_difference{{counter=\"requests\"}} {}\n\
                 quota_reconciliation_difference{{counter=\"tokens\"}} {}\n\
                 quota_reconciliation_difference{{counter=\"reserved_tokens\"}} {}\n\
                 quota_reconciliation_difference{{counter=\"orphan_holds\"}} {}\n\
                 quota_reconciliation_difference{{counter=\"ghost_holds\"}} {}\n\
                 # HELP quota_reconciliation_passes_total Reconciliation passes finished.\n\
                 # TYPE quota_reconciliation_passes_total counter\n\
                 quota_reconciliation_passes_total {}\n\
                 # HELP quota_reconciliation_failed_workspaces Workspaces the last pass could not check.\n\
                 # TYPE quota_reconciliation_failed_workspaces gauge\n\
                 quota_reconciliation_failed_workspaces {}\n",
                r.requests, r.tokens, r.reserved_tokens, r.orphan_holds, r.ghost_holds, r.passes, r.failed,
            );
        }
        text
    }
}
