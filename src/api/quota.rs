//! `/api/quota/*`: status, check, notifications, usage, reset (records are
//! `api::record`).

use super::doc_text as text;
use super::error::ApiError;
use super::extract::{target_workspace, AdminAuth, ApiJson, ApiQuery, Auth, WorkspaceQuery};
use crate::service::QuotaService;
use crate::wire::{CheckResult, ErrorBody, Notification, QuotaSnapshot, UsageReport};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const DEFAULT_HISTORY_MINUTES: u64 = 60;
const MAX_HISTORY_MINUTES: u64 = 1_440;

/// A workspace's quota right now.
///
/// Status, message, the four windows, when requests are allowed again, the last upstream error and the limits OpenAI last reported.
#[utoipa::path(
    get,
    path = "/api/quota/status",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY)),
    responses(
        (status = 200, description = "The snapshot.", body = QuotaSnapshot),
        (status = 400, description = text::BAD_WORKSPACE_QUERY, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn status(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
) -> Result<Json<QuotaSnapshot>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    Ok(Json(service.snapshot(&id)?))
}

/// May one more request be sent now?
///
/// Read-only: nothing is counted. Ask before calling OpenAI; record the outcome after.
#[utoipa::path(
    get,
    path = "/api/quota/check",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY)),
    responses(
        (status = 200, description = "The answer, with the status and when to retry.", body = CheckResult),
        (status = 400, description = text::BAD_WORKSPACE_QUERY, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn check(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
) -> Result<Json<CheckResult>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    Ok(Json(service.check(&id)?))
}

/// What a UI should show about the quota.
///
/// A title, message and level derived from the status; `show` is false while all is NORMAL.
#[utoipa::path(
    get,
    path = "/api/quota/notifications",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY)),
    responses(
        (status = 200, description = "The notification.", body = Notification),
        (status = 400, description = text::BAD_WORKSPACE_QUERY, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn notifications(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
) -> Result<Json<Notification>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    Ok(Json(Notification::from(&service.snapshot(&id)?)))
}

/// The four windows plus per-minute history.
///
/// History is zero-filled, oldest first, one entry per minute asked for.
#[utoipa::path(
    get,
    path = "/api/quota/usage",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY),
        ("minutes" = Option<u64>, Query, minimum = 1, maximum = 1440, description = "Minutes of history, 1 to 1440 (default 60).")),
    responses(
        (status = 200, description = "The usage report.", body = UsageReport),
        (status = 400, description = text::BAD_WORKSPACE_QUERY, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn usage(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    let minutes = query.minutes.unwrap_or(DEFAULT_HISTORY_MINUTES);
    if !(1..=MAX_HISTORY_MINUTES).contains(&minutes) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("minutes must be from 1 to {MAX_HISTORY_MINUTES}"),
        ));
    }
    Ok(Json(service.usage(&id, minutes)?))
}

/// Body of `POST /api/quota/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The workspace to reset; absent resets every workspace.
    #[serde(default)]
    pub workspace_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResetResponse {
    /// The ids of the workspaces that were reset.
    pub reset: Vec<String>,
}

/// Reset one workspace's counts and status, or every workspace's.
///
/// Clears the windows and any upstream block (e.g. `QUOTA_EXCEEDED` after
/// billing was fixed). Keys are unchanged.
#[utoipa::path(
    post,
    path = "/api/quota/reset",
    tag = "quota",
    request_body = ResetRequest,
    responses(
        (status = 200, description = "Reset: which workspaces.", body = ResetResponse),
        (status = 400, description = text::BAD_BODY_OR_ID, body = ErrorBody),
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
pub async fn reset(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<Json<ResetResponse>, ApiError> {
    let reset = match body.workspace_id {
        Some(id) => {
            super::extract::validate_workspace_id(&id)?;
            service.reset(&id).await?;
            vec![id]
        }
        None => service.reset_all().await?,
    };
    Ok(Json(ResetResponse { reset }))
}
