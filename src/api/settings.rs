//! `GET` and `PATCH /api/admin/workspaces/{id}`: a workspace's limits and
//! settings (time zone, budgets, per-model and per-user limits), read and
//! changed by the admin. A refused field is a 400 `invalid_field` whose
//! message starts with the field's path (`budgets[0].anchor: …`), so a form
//! can show it beside that field.

use super::admin::{limit_out_of_range, MAX_LIMIT};
use super::doc_text as text;
use super::error::ApiError;
use super::extract::{validate_workspace_id, AdminAuth, ApiJson};
use crate::service::{QuotaService, SettingsError};
// The answer lives with the wire types: the admin page gets it too.
pub use crate::wire::WorkspaceSettingsView;
use crate::wire::{ErrorBody, SettingsPatch};
use axum::extract::{Path, State};
use axum::Json;

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(field) => {
                ApiError::bad_request("invalid_field", field.to_string()).with_field(field.field)
            }
            SettingsError::Service(e) => e.into(),
        }
    }
}

/// The price table calls are costed with.
///
/// The shipped table (`config/prices.json`) with the operator's
/// `QUOTA_PRICES_FILE` on top, in the same format: USD per 1M tokens per
/// model, each model's prices oldest first (a call is priced with the one
/// in force on its day).
#[utoipa::path(
    get,
    path = "/api/admin/prices",
    tag = "admin",
    responses(
        (status = 200, description = "The price table in force.", body = Object),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn prices(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
) -> Json<serde_json::Value> {
    Json(service.config().prices.to_json())
}

/// A workspace's limits and settings.
#[utoipa::path(
    get,
    path = "/api/admin/workspaces/{id}",
    tag = "admin",
    params(("id" = String, Path, description = text::WORKSPACE_ID_PATH)),
    responses(
        (status = 200, description = "The workspace's limits and settings.", body = WorkspaceSettingsView),
        (status = 400, description = text::BAD_WORKSPACE_ID, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn workspace_settings(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<WorkspaceSettingsView>, ApiError> {
    Ok(Json(read(&service, id)?))
}

/// Reading a workspace's settings: the one path for REST and the admin page.
pub fn read(service: &QuotaService, id: String) -> Result<WorkspaceSettingsView, ApiError> {
    validate_workspace_id(&id)?;
    let (limits, settings) = service.workspace_settings(&id)?;
    Ok(WorkspaceSettingsView {
        id,
        limits,
        settings,
    })
}

/// Change a workspace's limits and settings.
///
/// Any of `limits` (each window optional), `time_zone`, `budgets`,
/// `model_limits`, `user_limits`; what the body leaves out stays as it is,
/// and a list or map given replaces the one before whole. Checked as a
/// whole before anything changes, and written to the audit trail.
#[utoipa::path(
    patch,
    path = "/api/admin/workspaces/{id}",
    tag = "admin",
    params(("id" = String, Path, description = text::WORKSPACE_ID_PATH)),
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "Changed: the workspace's limits and settings now.", body = WorkspaceSettingsView),
        (status = 400, description = "`invalid_field`: the message starts with the field at fault (`time_zone`, `budgets[0].anchor`, `model_limits.gpt-4o.tokens_per_day`, …) and says what it must be; or `invalid_json`, `invalid_body` (an unknown field or a wrong type), `invalid_workspace_id`. Nothing changed.", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 408, description = text::BODY_TIMEOUT, body = ErrorBody),
        (status = 413, description = text::PAYLOAD_TOO_LARGE, body = ErrorBody),
        (status = 415, description = text::UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn update_workspace_settings(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<Json<WorkspaceSettingsView>, ApiError> {
    Ok(Json(update(&service, id, &patch).await?))
}

/// Changing a workspace's settings, checked: the one path for REST and the
/// admin page (the caller has checked that it is the admin).
pub async fn update(
    service: &QuotaService,
    id: String,
    patch: &SettingsPatch,
) -> Result<WorkspaceSettingsView, ApiError> {
    validate_workspace_id(&id)?;
    if let Some(name) = patch.limits.as_ref().and_then(limit_out_of_range) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("{name}: must be from 1 to {MAX_LIMIT}"),
        )
        .with_field(name));
    }
    let (limits, settings) = service.update_settings(&id, patch).await?;
    Ok(WorkspaceSettingsView {
        id,
        limits,
        settings,
    })
}
