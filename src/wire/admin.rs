//! What the admin's workspace management sends and gets back, over REST
//! (`/api/admin/*`) and the admin page's server functions alike: a created
//! or rotated key, a workspace's settings, the workspace list, the audit
//! trail, and a refusal that names the field at fault.

use super::{Limits, QuotaStatus, SettingsPatch};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedWorkspace {
    pub id: String,
    /// Shown once: only its digest is kept.
    pub api_key: String,
    pub limits: Limits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RotatedKey {
    pub id: String,
    /// Shown once. Every earlier key of the workspace has stopped working.
    pub api_key: String,
}

/// A workspace's limits and settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkspaceSettingsView {
    pub id: String,
    pub limits: Limits,
    /// Every setting, as `PATCH` takes them (`limits` is above).
    pub settings: SettingsPatch,
}

/// One workspace as the admin's list shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkspaceSummary {
    pub id: String,
    pub status: QuotaStatus,
    /// Whether the workspace has a working key (a workspace has at most
    /// one; `false` after its keys were revoked, until a rotation).
    pub has_key: bool,
    pub limits: Limits,
    /// Its IANA time zone.
    pub time_zone: String,
    /// How many spend budgets it has.
    pub budgets: usize,
    /// How many per-model rules.
    pub model_limits: usize,
    /// How many per-user overrides (besides the default, if any).
    pub user_overrides: usize,
}

/// Answer of `GET /api/admin/workspaces`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkspaceList {
    /// By id; the first 1 000.
    pub workspaces: Vec<WorkspaceSummary>,
    /// How many workspaces there are, listed or not.
    pub total: usize,
}

/// One entry of the admin audit trail. Every entry is an admin action (no
/// other caller may change what is audited).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// When (Unix ms).
    pub at_ms: u64,
    /// The same time, RFC 3339 in UTC.
    pub at: String,
    /// What: `create_workspace`, `rotate_key`, `revoke_keys`,
    /// `update_settings`, `reset`, `end_session`, `end_sessions`.
    pub action: String,
    /// The workspace acted on; null for an action on none (an admin
    /// session ended).
    pub workspace_id: Option<String>,
    /// The change itself (for `update_settings`, the patch as sent).
    pub detail: String,
}

/// Answer of `GET /api/admin/audit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditTrail {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Whether this server keeps an audit trail at all: only with SQLite
    /// storage (in memory and under Redis nothing is kept, and `entries` is
    /// always empty).
    pub kept: bool,
}

/// Why an admin action from the admin page was refused: what the REST
/// endpoint would have answered, with the field at fault apart from the
/// message, so the page can show it beside that input. A refusal is an
/// answer of the server function, not its error, so the browser logs no
/// failed request for a typo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRefusal {
    /// The HTTP status REST answers with (400, 401, 403, 404, 409, 503).
    pub status: u16,
    /// The REST error code (`invalid_field`, `already_exists`, …).
    pub code: String,
    pub message: String,
    /// The field at fault, as the API names it (`id`, `time_zone`,
    /// `budgets[1].anchor`, `model_limits.gpt-4o.tokens_per_day`), when one is.
    pub field: Option<String>,
}

/// What an admin server function answers: done, or refused.
pub type AdminResult<T> = Result<T, AdminRefusal>;
