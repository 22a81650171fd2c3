//! `/api/admin/*`: workspace management (admin key only).

use super::error::ApiError;
use super::extract::{validate_workspace_id, AdminAuth, ApiJson};
use crate::model::{LimitOverrides, Limits};
use crate::service::QuotaService;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Largest limit accepted for any window.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    pub id: String,
    #[serde(default)]
    pub limits: LimitOverrides,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedWorkspace {
    pub id: String,
    /// Shown once: only its digest is kept.
    pub api_key: String,
    pub limits: Limits,
}

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

#[derive(Debug, Serialize, Deserialize)]
pub struct RotatedKey {
    pub id: String,
    /// Shown once. Every earlier key of the workspace has stopped working.
    pub api_key: String,
}

/// `POST /api/admin/workspaces/{id}/rotate-key`
pub async fn rotate_key(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<RotatedKey>, ApiError> {
    validate_workspace_id(&id)?;
    let api_key = service.rotate_key(&id).await?;
    Ok(Json(RotatedKey { id, api_key }))
}

/// `POST /api/admin/workspaces/{id}/revoke`: every key and session of the
/// workspace stops working at once, open WebSockets included.
pub async fn revoke_keys(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    validate_workspace_id(&id)?;
    service.revoke_keys(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
