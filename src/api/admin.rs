//! `/api/admin/*`: workspace management (admin key only).

use super::error::ApiError;
use super::extract::{validate_workspace_id, AdminAuth, ApiJson};
use super::openapi::text;
use crate::model::{ApiError as ErrorBody, LimitOverrides, Limits};
use crate::service::QuotaService;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest limit accepted for any window.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

/// Body of `POST /api/admin/workspaces`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// 1 to 64 characters of lowercase letters, digits, `_` and `-`.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub id: String,
    /// Limits that differ from the server's defaults; each from 1 to 10^12.
    #[serde(default)]
    pub limits: LimitOverrides,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedWorkspace {
    pub id: String,
    /// Shown once: only its digest is kept.
    pub api_key: String,
    pub limits: Limits,
}

/// Create a workspace and its first key.
///
/// The key in the answer is the only time it is shown; keep it.
#[utoipa::path(
    post,
    path = "/api/admin/workspaces",
    tag = "admin",
    request_body = CreateWorkspace,
    responses(
        (status = 201, description = "Created: the workspace, its limits and its key.", body = CreatedWorkspace),
        (status = 400, description = text::BAD_BODY_OR_ID, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 409, description = "`already_exists`: a workspace with this id exists.", body = ErrorBody),
        (status = 408, description = text::BODY_TIMEOUT, body = ErrorBody),
        (status = 413, description = text::PAYLOAD_TOO_LARGE, body = ErrorBody),
        (status = 415, description = text::UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn create_workspace(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> Result<(StatusCode, Json<CreatedWorkspace>), ApiError> {
    validate_workspace_id(&body.id)?;
    for (name, value) in [
        (
            "limits.requests_per_minute",
            body.limits.requests_per_minute,
        ),
        ("limits.requests_per_day", body.limits.requests_per_day),
        ("limits.tokens_per_minute", body.limits.tokens_per_minute),
        ("limits.tokens_per_day", body.limits.tokens_per_day),
    ] {
        if value.is_some_and(|v| !(1..=MAX_LIMIT).contains(&v)) {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("{name} must be from 1 to {MAX_LIMIT}"),
            ));
        }
    }
    let (api_key, limits) = service.create_workspace(&body.id, &body.limits).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWorkspace {
            id: body.id,
            api_key,
            limits,
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedKey {
    pub id: String,
    /// Shown once. Every earlier key of the workspace has stopped working.
    pub api_key: String,
}

/// Replace a workspace's key.
///
/// Every earlier key of the workspace stops working at once: its sessions end
/// and its WebSockets are closed with 1008.
#[utoipa::path(
    post,
    path = "/api/admin/workspaces/{id}/rotate-key",
    tag = "admin",
    params(("id" = String, Path, description = text::WORKSPACE_ID_PATH)),
    responses(
        (status = 200, description = "The new key, shown only this once.", body = RotatedKey),
        (status = 400, description = text::BAD_WORKSPACE_ID, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn rotate_key(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<RotatedKey>, ApiError> {
    validate_workspace_id(&id)?;
    let api_key = service.rotate_key(&id).await?;
    Ok(Json(RotatedKey { id, api_key }))
}

/// Revoke every key of a workspace.
///
/// Every key and session of the workspace stops working at once, open
/// WebSockets included; rotate a new key to use it again.
#[utoipa::path(
    post,
    path = "/api/admin/workspaces/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = text::WORKSPACE_ID_PATH)),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = text::BAD_WORKSPACE_ID, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn revoke_keys(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    validate_workspace_id(&id)?;
    service.revoke_keys(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
