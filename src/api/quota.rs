//! `/api/quota/*`: status, check, notifications, usage, record, reset.

use super::error::ApiError;
use super::extract::{target_workspace, AdminAuth, ApiJson, ApiQuery, Auth, WorkspaceQuery};
use crate::engine::CallOutcome;
use crate::model::{CheckResult, Notification, QuotaSnapshot, RecordRequest, UsageReport};
use crate::service::QuotaService;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Largest token count one call may report: far above any model's context, low
/// enough that sums cannot overflow.
pub const MAX_TOKENS_PER_CALL: u64 = 100_000_000;
/// Longest retry hint accepted, in seconds (a day).
pub const MAX_RETRY_AFTER_S: f64 = 86_400.0;
const MAX_ERROR_FIELD_LEN: usize = 2_000;
const DEFAULT_HISTORY_MINUTES: u64 = 60;
const MAX_HISTORY_MINUTES: u64 = 1_440;

pub async fn status(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
) -> Result<Json<QuotaSnapshot>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    Ok(Json(service.snapshot(&id)?))
}

pub async fn check(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
) -> Result<Json<CheckResult>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    Ok(Json(service.check(&id)?))
}

pub async fn notifications(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
) -> Result<Json<Notification>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    Ok(Json(Notification::from(&service.snapshot(&id)?)))
}

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

pub async fn record(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
    ApiJson(body): ApiJson<RecordRequest>,
) -> Result<Json<QuotaSnapshot>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    let outcome = outcome_from_record(body)?;
    service.record(&id, &outcome)?;
    Ok(Json(service.snapshot(&id)?))
}

/// Validates a record body and turns it into an engine outcome.
pub fn outcome_from_record(body: RecordRequest) -> Result<CallOutcome, ApiError> {
    if body.tokens_used > MAX_TOKENS_PER_CALL {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("tokens_used must be at most {MAX_TOKENS_PER_CALL}"),
        ));
    }
    let retry_after_ms = match body.retry_after_s {
        None => None,
        Some(s) if s.is_finite() && (0.0..=MAX_RETRY_AFTER_S).contains(&s) => {
            Some((s * 1000.0).round() as u64)
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("retry_after_s must be a number of seconds from 0 to {MAX_RETRY_AFTER_S}"),
            ))
        }
    };
    match (body.success, body.error) {
        (true, Some(_)) => Err(ApiError::bad_request(
            "invalid_body",
            "error: a successful call (`success: true`) cannot carry an error",
        )),
        (true, None) => Ok(CallOutcome {
            tokens: body.tokens_used,
            error: None,
            retry_after_ms,
        }),
        (false, None) => Err(ApiError::bad_request(
            "invalid_body",
            "error: a failed call (`success: false`) needs an `error` object with at least `http_status` or `code`",
        )),
        (false, Some(error)) => {
            if let Some(status) = error.http_status {
                if !(100..=599).contains(&status) {
                    return Err(ApiError::bad_request(
                        "invalid_body",
                        "error.http_status must be an HTTP status from 100 to 599",
                    ));
                }
            }
            if error.http_status.is_none() && error.code.is_none() && error.error_type.is_none() {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "error: give at least one of `http_status`, `type` or `code`",
                ));
            }
            for (name, value) in [
                ("error.type", &error.error_type),
                ("error.code", &error.code),
                ("error.message", &error.message),
            ] {
                if value.as_ref().is_some_and(|v| v.len() > MAX_ERROR_FIELD_LEN) {
                    return Err(ApiError::bad_request(
                        "invalid_body",
                        format!("{name} must be at most {MAX_ERROR_FIELD_LEN} bytes"),
                    ));
                }
            }
            Ok(CallOutcome {
                tokens: body.tokens_used,
                error: Some(error),
                retry_after_ms,
            })
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[serde(default)]
    pub workspace_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ResetResponse {
    pub reset: Vec<String>,
}

pub async fn reset(
    State(service): State<QuotaService>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<Json<ResetResponse>, ApiError> {
    let reset = match body.workspace_id {
        Some(id) => {
            super::extract::validate_workspace_id(&id)?;
            service.reset(&id)?;
            vec![id]
        }
        None => service.reset_all(),
    };
    Ok(Json(ResetResponse { reset }))
}
