//! What the admin reads about workspaces: the list with each one's status,
//! key and settings in brief, and the audit trail. One function each, called
//! by REST (`GET /api/admin/workspaces`, `GET /api/admin/audit`) and by the
//! admin page's server functions alike.

use super::{QuotaService, ServiceError};
use crate::engine::rfc3339;
use crate::wire::{AuditEntry, AuditTrail, WorkspaceSummary};

/// The most workspaces one listing returns (the first by id).
pub const MAX_LISTED_WORKSPACES: usize = 1_000;

/// The most audit entries one read returns, and how many when not asked.
pub const MAX_AUDIT_ENTRIES: usize = 1_000;
pub const DEFAULT_AUDIT_ENTRIES: usize = 100;

impl QuotaService {
    /// The first [`MAX_LISTED_WORKSPACES`] workspaces by id, and how many
    /// there are in all.
    pub fn workspace_summaries(&self) -> (Vec<WorkspaceSummary>, usize) {
        let ids = self.engine().workspace_ids();
        let total = ids.len();
        let summaries = ids
            .iter()
            .take(MAX_LISTED_WORKSPACES)
            // A workspace removed between listing and reading is skipped.
            .filter_map(|id| self.workspace_summary(id))
            .collect();
        (summaries, total)
    }

    fn workspace_summary(&self, id: &str) -> Option<WorkspaceSummary> {
        let snapshot = self.engine().snapshot(id).ok()?;
        let (limits, settings) = self.engine().settings(id).ok()?;
        Some(WorkspaceSummary {
            id: id.to_string(),
            status: snapshot.status,
            has_key: self.inner.registry.current_digest(id).is_some(),
            limits,
            time_zone: settings.time_zone.name().to_string(),
            budgets: settings.budgets.len(),
            model_limits: settings.model_limits.len(),
            user_overrides: settings.user_limits.overrides.len(),
        })
    }

    /// The newest `limit` audit entries, newest first, of `workspace_id`
    /// only when it is given. The caller checks `limit` (1 to
    /// [`MAX_AUDIT_ENTRIES`]) and that the workspace exists.
    pub async fn audit_trail(
        &self,
        workspace_id: Option<&str>,
        limit: usize,
    ) -> Result<AuditTrail, ServiceError> {
        let limit = limit.clamp(1, MAX_AUDIT_ENTRIES);
        let Some(stored) = self.backend().audit_trail(workspace_id, limit).await? else {
            return Ok(AuditTrail {
                entries: Vec::new(),
                kept: false,
            });
        };
        Ok(AuditTrail {
            entries: stored
                .into_iter()
                .map(|a| AuditEntry {
                    at_ms: a.at_ms,
                    at: rfc3339(a.at_ms),
                    action: a.action,
                    workspace_id: a.workspace_id,
                    detail: a.detail,
                })
                .collect(),
            kept: true,
        })
    }
}
