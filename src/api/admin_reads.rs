//! `GET /api/admin/workspaces` and `GET /api/admin/audit`: what the admin
//! reads about workspaces (admin key or admin session only). The handlers
//! and the admin page's server functions go through [`workspaces`] and
//! [`audit`], so both check and answer alike.

use super::admin::existing_workspace;
use super::doc_text as text;
use super::error::ApiError;
use super::extract::{AdminAuth, ApiQuery};
use crate::service::{QuotaService, ServiceError, DEFAULT_AUDIT_ENTRIES, MAX_AUDIT_ENTRIES};
use crate::wire::{AuditTrail, ErrorBody, WorkspaceList};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// `?workspace_id=&limit=` of `GET /api/admin/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub workspace_id: Option<String>,
    pub limit: Option<u64>,
}

/// List every workspace.
///
/// Each with its status, whether it has a working key, its limits, and its
/// settings in brief (`GET /api/admin/workspaces/{id}` has them whole). The
/// first 1 000 by id; `total` says how many there are.
#[utoipa::path(
    get,
    path = "/api/admin/workspaces",
    tag = "admin",
    responses(
        (status = 200, description = "The workspaces, by id.", body = WorkspaceList),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn list_workspaces(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
) -> Json<WorkspaceList> {
    Json(workspaces(&service))
}

/// The workspace list: the one path for REST and the admin page.
pub fn workspaces(service: &QuotaService) -> WorkspaceList {
    let (workspaces, total) = service.workspace_summaries();
    WorkspaceList { workspaces, total }
}

/// Read the audit trail.
///
/// Every admin change (workspace created, key rotated or revoked, settings
/// changed, quota reset, sessions ended), newest first; one workspace's with
/// `?workspace_id=`. Kept only with SQLite storage: otherwise `kept` is
/// false and the list empty. Entries older than `QUOTA_HISTORY_HORIZON_DAYS`
/// are pruned.
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "admin",
    params(
        ("workspace_id" = Option<String>, Query, description = "Only this workspace's entries."),
        ("limit" = Option<u64>, Query, description = "How many entries, newest first: 1 to 1000 (default 100)."),
    ),
    responses(
        (status = 200, description = "The audit trail, newest first.", body = AuditTrail),
        (status = 400, description = "`invalid_query` (an unknown parameter, or `limit` not from 1 to 1000) or `invalid_workspace_id`.", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::ADMIN_ONLY, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = "`store_unavailable`: the store could not be read; retry.", body = ErrorBody),
    ),
    security(("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn audit_trail(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditTrail>, ApiError> {
    Ok(Json(audit(&service, query).await?))
}

/// The audit trail, checked: the one path for REST and the admin page.
pub async fn audit(service: &QuotaService, query: AuditQuery) -> Result<AuditTrail, ApiError> {
    let limit = match query.limit {
        None => DEFAULT_AUDIT_ENTRIES,
        Some(n) if (1..=MAX_AUDIT_ENTRIES as u64).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be from 1 to {MAX_AUDIT_ENTRIES}"),
            )
            .with_field("limit"))
        }
    };
    if let Some(id) = &query.workspace_id {
        existing_workspace(service, id).map_err(|e| e.with_field("workspace_id"))?;
    }
    service
        .audit_trail(query.workspace_id.as_deref(), limit)
        .await
        .map_err(|e| match e {
            // `ServiceError`'s own wording is about a write not kept.
            ServiceError::Store(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("The audit trail could not be read from the store: {e}"),
            ),
            e => e.into(),
        })
}
