//! The dashboard's data: every workspace (admin) or the caller's own, with the
//! last hour of per-minute usage and the alert history.

use super::whoami::Session;
use crate::wire::Caller;
use crate::wire::{MinuteUsage, QuotaSnapshot, QuotaStatus};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Minutes of per-minute usage the charts show.
pub const HISTORY_MINUTES: u64 = 60;
/// Alert history entries sent per workspace (newest first).
pub const MAX_ALERTS: usize = 50;

/// One status transition, for the alert history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEntry {
    pub from: QuotaStatus,
    pub to: QuotaStatus,
    pub at_ms: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceReport {
    pub snapshot: QuotaSnapshot,
    /// Oldest first, one entry per minute, zero-filled.
    pub history: Vec<MinuteUsage>,
    /// Newest first, at most [`MAX_ALERTS`].
    pub alerts: Vec<AlertEntry>,
    /// Transitions in total (the list may be cut).
    pub alert_count: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardReport {
    pub viewer: Caller,
    /// Server time of the data, so relative times render the same on the
    /// server and in the browser.
    pub now_ms: u64,
    /// Most severe status first, then by id.
    pub workspaces: Vec<WorkspaceReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum DashboardAnswer {
    SignedOut { session: Session },
    Ready(Box<DashboardReport>),
}

#[server(prefix = "/api/fn", endpoint = "dashboard")]
pub async fn dashboard_data() -> Result<DashboardAnswer, ServerFnError> {
    let (state, session) = super::whoami::server::session().await?;
    let Session::SignedIn(viewer) = session else {
        return Ok(DashboardAnswer::SignedOut { session });
    };
    let ids = match &viewer {
        Caller::Admin => state.service.engine().workspace_ids(),
        Caller::Workspace(id) => vec![id.clone()],
    };
    let mut workspaces: Vec<WorkspaceReport> = ids
        .iter()
        // A workspace removed between listing and reading is simply skipped.
        .filter_map(|id| server::report(&state, id))
        .collect();
    workspaces.sort_by(|a, b| {
        b.snapshot
            .status
            .cmp(&a.snapshot.status)
            .then_with(|| a.snapshot.workspace_id.cmp(&b.snapshot.workspace_id))
    });
    Ok(DashboardAnswer::Ready(Box::new(DashboardReport {
        viewer,
        now_ms: state.service.engine().now_ms(),
        workspaces,
    })))
}

#[cfg(feature = "ssr")]
mod server {
    use super::{AlertEntry, WorkspaceReport, HISTORY_MINUTES, MAX_ALERTS};
    use crate::api::AppState;
    use crate::engine::rfc3339;

    pub fn report(state: &AppState, id: &str) -> Option<WorkspaceReport> {
        let snapshot = state.service.snapshot(id).ok()?;
        let usage = state.service.usage(id, HISTORY_MINUTES).ok()?;
        let transitions = state.service.engine().history(id).ok()?;
        let alert_count = transitions.len();
        let alerts = transitions
            .into_iter()
            .rev()
            .take(MAX_ALERTS)
            .map(|t| AlertEntry {
                from: t.from,
                to: t.to,
                at_ms: t.at_ms,
                at: rfc3339(t.at_ms),
                reason: t.reason,
            })
            .collect();
        Some(WorkspaceReport {
            snapshot,
            history: usage.history,
            alerts,
            alert_count,
        })
    }
}
