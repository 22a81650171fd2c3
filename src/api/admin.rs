//! `/api/admin/*`: workspace and session management (admin key only).

use super::doc_text as text;
use super::error::ApiError;
use super::extract::{validate_workspace_id, AdminAuth, ApiJson, ApiQuery};
use crate::browser_session::is_session_handle;
use crate::service::QuotaService;
use crate::wire::Caller;
// The answers live with the wire types: the admin page gets them too.
pub use crate::wire::{CreatedWorkspace, RotatedKey};
use crate::wire::{ErrorBody, LimitOverrides};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest limit accepted for any window.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

/// The first of `limits` (as `limits.<window>`) outside 1 to [`MAX_LIMIT`],
/// if any: creating a workspace and changing one check them alike.
pub(super) fn limit_out_of_range(limits: &LimitOverrides) -> Option<&'static str> {
    [
        ("limits.requests_per_minute", limits.requests_per_minute),
        ("limits.requests_per_day", limits.requests_per_day),
        ("limits.tokens_per_minute", limits.tokens_per_minute),
        ("limits.tokens_per_day", limits.tokens_per_day),
    ]
    .into_iter()
    .find(|(_, value)| value.is_some_and(|v| !(1..=MAX_LIMIT).contains(&v)))
    .map(|(name, _)| name)
}

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
    Ok((StatusCode::CREATED, Json(create(&service, body).await?)))
}

/// Creating a workspace, checked: the one path for REST and the admin page
/// (the caller has checked that it is the admin).
pub async fn create(
    service: &QuotaService,
    body: CreateWorkspace,
) -> Result<CreatedWorkspace, ApiError> {
    validate_workspace_id(&body.id).map_err(|e| e.with_field("id"))?;
    if let Some(name) = limit_out_of_range(&body.limits) {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("{name} must be from 1 to {MAX_LIMIT}"),
        )
        .with_field(name));
    }
    let (api_key, limits) = service
        .create_workspace(&body.id, &body.limits)
        .await
        .map_err(|e| match ApiError::from(e) {
            // The id is taken: that is the id field's fault.
            e if e.code == "already_exists" => e.with_field("id"),
            e => e,
        })?;
    Ok(CreatedWorkspace {
        id: body.id,
        api_key,
        limits,
    })
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
    Ok(Json(rotate(&service, id).await?))
}

/// Rotating a workspace's key: the one path for REST and the admin page.
pub async fn rotate(service: &QuotaService, id: String) -> Result<RotatedKey, ApiError> {
    validate_workspace_id(&id)?;
    let api_key = service.rotate_key(&id).await?;
    Ok(RotatedKey { id, api_key })
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
    revoke(&service, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoking a workspace's keys: the one path for REST and the admin page.
pub async fn revoke(service: &QuotaService, id: &str) -> Result<(), ApiError> {
    validate_workspace_id(id)?;
    Ok(service.revoke_keys(id).await?)
}

/// `?workspace_id=` of the session endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsQuery {
    pub workspace_id: Option<String>,
}

/// A browser session as the admin sees it. The handle names it for
/// `DELETE /api/admin/sessions/{handle}`; it is neither the cookie nor the
/// digest the server keeps, and cannot be turned into either.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminSession {
    /// 16 lowercase hex characters.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    pub handle: String,
    /// Opened with the admin key.
    pub admin: bool,
    /// The workspace of a workspace session; null for the admin.
    pub workspace_id: Option<String>,
    /// Signed in at (Unix ms).
    pub created_at_ms: u64,
    /// Ends at (Unix ms) unless used: 7 days after the last use for a
    /// workspace session, 12 hours for the admin's (pushed forward at most
    /// daily, or hourly for the admin's).
    pub expires_at_ms: u64,
    /// Ends at (Unix ms) however much it is used: 30 days after the sign-in
    /// for a workspace session, 7 days for the admin's.
    pub absolute_expires_at_ms: u64,
}

/// Answer of `GET /api/admin/sessions`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// Newest first; at most [`MAX_LISTED_SESSIONS`].
    pub sessions: Vec<AdminSession>,
    /// How many sessions matched, listed or not.
    pub total: usize,
}

/// Answer of `DELETE /api/admin/sessions?workspace_id=`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndedSessions {
    pub workspace_id: String,
    /// How many sessions were ended.
    pub ended: usize,
}

/// The most sessions one listing returns (the newest).
pub const MAX_LISTED_SESSIONS: usize = 10_000;

/// A workspace named by `?workspace_id=` that must exist.
pub(super) fn existing_workspace(service: &QuotaService, id: &str) -> Result<(), ApiError> {
    validate_workspace_id(id)?;
    if service.engine().contains(id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "workspace `{id}` does not exist"
        )))
    }
}

/// List browser sessions.
///
/// Every live session on this instance (under Redis, every instance's: they
/// share their sessions), or one workspace's with `?workspace_id=`. The
/// admin's own sessions are listed too (with `admin: true`) when no
/// workspace is named.
#[utoipa::path(
    get,
    path = "/api/admin/sessions",
    tag = "admin",
    params(("workspace_id" = Option<String>, Query, description = "Only this workspace's sessions.")),
    responses(
        (status = 200, description = "The sessions, newest first.", body = SessionList),
        (status = 400, description = "`invalid_query` or `invalid_workspace_id`.", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn list_sessions(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    ApiQuery(query): ApiQuery<SessionsQuery>,
) -> Result<Json<SessionList>, ApiError> {
    if let Some(id) = &query.workspace_id {
        existing_workspace(&service, id)?;
    }
    let views = service.list_sessions(query.workspace_id.as_deref());
    let total = views.len();
    let sessions = views
        .into_iter()
        .rev()
        .take(MAX_LISTED_SESSIONS)
        .map(|v| {
            let (admin, workspace_id) = match v.caller {
                Caller::Admin => (true, None),
                Caller::Workspace(id) => (false, Some(id)),
            };
            AdminSession {
                handle: v.handle,
                admin,
                workspace_id,
                created_at_ms: v.created_at_ms,
                expires_at_ms: v.expires_at_ms,
                absolute_expires_at_ms: v.absolute_expires_at_ms,
            }
        })
        .collect();
    Ok(Json(SessionList { sessions, total }))
}

/// End one browser session.
///
/// The session stops working at once, on every instance and for good (it is
/// deleted from the store), and its open WebSockets close with 1008. Audited
/// as `end_session`.
#[utoipa::path(
    delete,
    path = "/api/admin/sessions/{handle}",
    tag = "admin",
    params(("handle" = String, Path, description = "The session's handle, from `GET /api/admin/sessions`.")),
    responses(
        (status = 204, description = "Ended."),
        (status = 400, description = "`invalid_session_handle`: not 16 lowercase hex characters.", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = "`not_found`: no live session has this handle.", body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn end_session(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    axum::extract::Path(handle): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    if !is_session_handle(&handle) {
        return Err(ApiError::bad_request(
            "invalid_session_handle",
            "A session handle is 16 lowercase hex characters, as `GET /api/admin/sessions` lists them.",
        ));
    }
    match service.end_session_by_handle(&handle).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found(format!(
            "no live session has the handle `{handle}`"
        ))),
    }
}

/// End every browser session of a workspace.
///
/// Signs every browser of the workspace out (its WebSockets opened with a
/// session close with 1008); its key keeps working: to stop the key, revoke
/// or rotate it. Audited as `end_sessions`.
#[utoipa::path(
    delete,
    path = "/api/admin/sessions",
    tag = "admin",
    params(("workspace_id" = String, Query, description = "The workspace whose sessions end (required).")),
    responses(
        (status = 200, description = "Ended; how many.", body = EndedSessions),
        (status = 400, description = "`missing_workspace_id`, `invalid_query` or `invalid_workspace_id`.", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn end_workspace_sessions(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    ApiQuery(query): ApiQuery<SessionsQuery>,
) -> Result<Json<EndedSessions>, ApiError> {
    let Some(id) = query.workspace_id else {
        return Err(ApiError::bad_request(
            "missing_workspace_id",
            "Name the workspace whose sessions end with `?workspace_id=`.",
        ));
    };
    existing_workspace(&service, &id)?;
    let ended = service.end_workspace_sessions(&id).await?;
    Ok(Json(EndedSessions {
        workspace_id: id,
        ended,
    }))
}
