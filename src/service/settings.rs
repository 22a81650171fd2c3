//! Changing a workspace's limits and settings (`PATCH
//! /api/admin/workspaces/{id}`): checked, kept by the backend, then applied
//! to the engine, told to the other instances and written to the audit
//! trail — in that order, so a change the store refused changes nothing.

use super::{QuotaService, ServiceError};
use crate::engine::settings::{FieldError, WorkspaceSettings};
use crate::wire::{Limits, SettingsPatch};

/// Why a settings change was not made.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A field of the patch is wrong; nothing changed.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Reads stored settings JSON (`None` or unreadable: the defaults, logged).
pub(in crate::service) fn parse_stored(id: &str, json: Option<&str>) -> WorkspaceSettings {
    let Some(json) = json else {
        return WorkspaceSettings::default();
    };
    let parsed = serde_json::from_str::<SettingsPatch>(json)
        .map_err(|e| e.to_string())
        .and_then(|patch| {
            WorkspaceSettings::default()
                .patched(&patch)
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(workspace_id = id, %error, "stored settings unreadable; using the defaults");
            WorkspaceSettings::default()
        }
    }
}

/// The JSON a store keeps for `settings` (`None` for the defaults).
pub(in crate::service) fn stored_form(settings: &WorkspaceSettings) -> Option<String> {
    (*settings != WorkspaceSettings::default())
        .then(|| serde_json::to_string(&settings.to_patch()).unwrap_or_default())
}

impl QuotaService {
    /// A workspace's limits and its settings as an admin writes them.
    pub fn workspace_settings(&self, id: &str) -> Result<(Limits, SettingsPatch), ServiceError> {
        let (limits, settings) = self.engine().settings(id)?;
        Ok((limits, settings.to_patch()))
    }

    /// Applies `patch` (what it leaves out stays); answers the workspace's
    /// limits and settings after it.
    pub async fn update_settings(
        &self,
        id: &str,
        patch: &SettingsPatch,
    ) -> Result<(Limits, SettingsPatch), SettingsError> {
        // One admin change at a time (as key changes): two interleaved
        // patches could leave memory with one and the store with the other.
        let _one_at_a_time = self.inner.key_changes.lock().await;
        let (limits, current) = self.engine().settings(id).map_err(ServiceError::from)?;
        let limits = match &patch.limits {
            Some(overrides) => limits.with_overrides(overrides),
            None => limits,
        };
        let next = current.patched(patch)?;
        self.backend()
            .save_settings(id, limits, stored_form(&next))
            .await?;
        let effect = self
            .engine()
            .configure(id, limits, next.clone())
            .map_err(ServiceError::from)?;
        self.keep_effect(id, &effect, false);
        self.publish(id, &effect);
        // Best effort, as for key changes: the change is kept and applied by
        // now, and answering 503 would tell the admin it was not.
        let detail = serde_json::to_string(patch).unwrap_or_default();
        self.audit_best_effort("update_settings", id, &detail).await;
        tracing::info!(workspace_id = id, "workspace settings changed");
        Ok((limits, next.to_patch()))
    }

    /// Another instance's (or the store's) limits and settings, applied here.
    pub(super) fn apply_settings(&self, id: &str, limits: Limits, settings: Option<&str>) {
        let settings = parse_stored(id, settings);
        if let Ok(effect) = self.engine().configure(id, limits, settings) {
            self.keep_effect(id, &effect, false);
            self.publish(id, &effect);
        }
    }
}
