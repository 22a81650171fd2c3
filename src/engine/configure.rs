//! Changing a workspace's limits and settings after it was created.

use super::settings::WorkspaceSettings;
use super::{Effect, Engine, EngineError};
use crate::wire::Limits;

impl Engine {
    /// A workspace's limits and settings.
    pub fn settings(&self, id: &str) -> Result<(Limits, WorkspaceSettings), EngineError> {
        let ws = self
            .workspaces
            .get(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        Ok((
            ws.limits,
            ws.settings.as_deref().cloned().unwrap_or_default(),
        ))
    }

    /// Sets the workspace's limits and settings; its status is evaluated
    /// again at once (a lower limit can rate-limit it, a higher one end
    /// that).
    pub fn configure(
        &self,
        id: &str,
        limits: Limits,
        settings: WorkspaceSettings,
    ) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.limits = limits;
            ws.settings = (settings != WorkspaceSettings::default()).then(|| Box::new(settings));
            ws.version += 1;
            engine.refresh(ws, now);
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }

    /// Today in the workspace's time zone: the day spend is added to now.
    pub fn local_day_now(&self, id: &str) -> Option<chrono::NaiveDate> {
        let ws = self.workspaces.get(id)?;
        let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
        Some(super::periods::local_day(zone, self.clock.now_ms()))
    }

    /// Puts back spend kept by the store (at start); no status change is
    /// published (`settle` after restoring everything).
    pub fn restore_spend(
        &self,
        id: &str,
        day: chrono::NaiveDate,
        nano: u64,
    ) -> Result<(), EngineError> {
        self.with_workspace(id, |ws, _, _| {
            ws.spend.add(day, nano);
            ((), None)
        })
        .map(|_| ())
    }
}
