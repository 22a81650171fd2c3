//! When a status changes: after an operation (`transition_if_changed`,
//! called by every operation that changes a workspace), with time alone
//! ([`Engine::tick`], over the non-NORMAL workspaces only), and with the
//! store's health ([`Engine::set_store_healthy`]).

use super::workspace::WorkspaceState;
use super::{rules, Engine, Transition, Verdict};
use crate::wire::QuotaStatus;
use std::sync::atomic::Ordering;

impl Engine {
    /// Marks the usage store reachable or not. While it is not, every workspace
    /// is at least DEGRADED.
    pub fn set_store_healthy(&self, healthy: bool) -> Vec<Transition> {
        if self.store_healthy.swap(healthy, Ordering::SeqCst) == healthy {
            return Vec::new();
        }
        self.workspace_ids()
            .iter()
            .filter_map(|id| self.reevaluate(id))
            .collect()
    }

    pub fn store_healthy(&self) -> bool {
        self.store_healthy.load(Ordering::SeqCst)
    }

    /// Re-evaluates workspaces whose status may change with time alone (windows
    /// sliding, retry times passing) and returns the transitions.
    pub fn tick(&self) -> Vec<Transition> {
        let ids: Vec<String> = self.lock_not_normal().iter().cloned().collect();
        ids.iter().filter_map(|id| self.reevaluate(id)).collect()
    }

    fn reevaluate(&self, id: &str) -> Option<Transition> {
        self.with_workspace(id, |ws, now, engine| {
            engine.refresh(ws, now);
            ((), engine.transition_if_changed(id, ws, now))
        })
        .ok()
        .and_then(|(_, effect)| effect.transition)
    }

    pub(super) fn refresh(&self, ws: &mut WorkspaceState, now: u64) -> Verdict {
        ws.advance(now, self.config.degraded_window_ms);
        rules::evaluate(ws, now, &self.config, self.store_healthy())
    }

    /// Compares the rules' verdict with the stored status and, on a change,
    /// stores it, keeps it in the history and returns it.
    pub(super) fn transition_if_changed(
        &self,
        id: &str,
        ws: &mut WorkspaceState,
        now: u64,
    ) -> Option<Transition> {
        let verdict = rules::evaluate(ws, now, &self.config, self.store_healthy());
        ws.updated_at_ms = now;
        if verdict.status == ws.status {
            return None;
        }
        let transition = Transition {
            workspace_id: id.to_string(),
            from: ws.status,
            to: verdict.status,
            at_ms: now,
            reason: verdict.message,
        };
        ws.status = verdict.status;
        ws.version += 1;
        if ws.history.len() >= self.config.history_len {
            ws.history.pop_front();
        }
        ws.history.push_back(transition.clone());
        let mut not_normal = self.lock_not_normal();
        if ws.status == QuotaStatus::Normal {
            not_normal.remove(id);
        } else {
            not_normal.insert(id.to_string());
        }
        Some(transition)
    }
}
