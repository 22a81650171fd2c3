//! Restoring from a store at start. These rebuild state silently: no
//! transitions, nothing to publish. Call [`Engine::settle`] once everything
//! for a workspace is in.

use super::workspace::DurableUpstreamState;
use super::{Engine, EngineError, Transition};
use crate::wire::QuotaStatus;

impl Engine {
    /// Adds usage counted at `at_ms` (in the past). Feed rows in time order.
    pub fn restore_usage(
        &self,
        id: &str,
        at_ms: u64,
        requests: u64,
        tokens: u64,
    ) -> Result<(), EngineError> {
        let mut ws = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        ws.minute.add(at_ms, requests, tokens);
        ws.day.add(at_ms, requests, tokens);
        Ok(())
    }

    pub fn restore_upstream(
        &self,
        id: &str,
        durable: &DurableUpstreamState,
    ) -> Result<(), EngineError> {
        let mut ws = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        ws.upstream.restore(durable);
        Ok(())
    }

    /// Restores the alert history (oldest first).
    pub fn restore_history(&self, id: &str, history: Vec<Transition>) -> Result<(), EngineError> {
        let mut ws = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        let skip = history.len().saturating_sub(self.config.history_len);
        ws.history = history.into_iter().skip(skip).collect();
        Ok(())
    }

    /// Sets the stored status to what the rules say now, without a transition:
    /// after a restart the status is "as before", not a change.
    pub fn settle(&self, id: &str) -> Result<QuotaStatus, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            ws.status = verdict.status;
            let mut not_normal = engine.lock_not_normal();
            if ws.status == QuotaStatus::Normal {
                not_normal.remove(id);
            } else {
                not_normal.insert(id.to_string());
            }
            (ws.status, None)
        })
        .map(|(status, _)| status)
    }
}
