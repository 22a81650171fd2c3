//! `/api/quota/*`: status, check, notifications, usage, record, reset.

use super::error::ApiError;
use super::extract::{target_workspace, AdminAuth, ApiJson, ApiQuery, Auth, WorkspaceQuery};
use crate::engine::CallOutcome;
use crate::model::{
    CheckResult, Notification, QuotaSnapshot, RecordBatch, RecordRequest, UsageReport,
};
use crate::service::QuotaService;
use crate::upstream::error_body::parse_error_body;
use crate::upstream::headers::RateLimitHeaders;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    service.record(&id, &outcome).await?;
    Ok(Json(service.snapshot(&id)?))
}

/// Most outcomes one batch may carry.
pub const MAX_BATCH_RECORDS: usize = 1_000;
const MAX_HEADERS: usize = 100;
const MAX_HEADER_VALUE_LEN: usize = 1_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct BatchRecorded {
    pub recorded: usize,
    pub snapshot: QuotaSnapshot,
}

/// Many outcomes in one call. All are validated before any is counted, so a bad
/// record (named by its index) leaves the counts untouched.
pub async fn record_batch(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
    ApiJson(body): ApiJson<RecordBatch>,
) -> Result<Json<BatchRecorded>, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    if body.records.is_empty() || body.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("records must hold 1 to {MAX_BATCH_RECORDS} outcomes"),
        ));
    }
    let outcomes = body
        .records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            outcome_from_record(record).map_err(|mut e| {
                e.message = format!("records[{i}].{}", e.message);
                e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for outcome in &outcomes {
        service.record(&id, outcome).await?;
    }
    Ok(Json(BatchRecorded {
        recorded: outcomes.len(),
        snapshot: service.snapshot(&id)?,
    }))
}

/// Validates a record body and turns it into an engine outcome. Error messages
/// start with the offending field's name.
pub fn outcome_from_record(body: RecordRequest) -> Result<CallOutcome, ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_body", message);
    if body.tokens_used > MAX_TOKENS_PER_CALL {
        return Err(invalid(format!(
            "tokens_used must be at most {MAX_TOKENS_PER_CALL}"
        )));
    }
    let retry_after_ms = match body.retry_after_s {
        None => None,
        Some(s) if s.is_finite() && (0.0..=MAX_RETRY_AFTER_S).contains(&s) => {
            Some((s * 1000.0).round() as u64)
        }
        Some(_) => {
            return Err(invalid(format!(
                "retry_after_s must be a number of seconds from 0 to {MAX_RETRY_AFTER_S}"
            )))
        }
    };
    let headers = match &body.headers {
        None => RateLimitHeaders::default(),
        Some(map) => {
            if map.len() > MAX_HEADERS {
                return Err(invalid(format!(
                    "headers may hold at most {MAX_HEADERS} entries"
                )));
            }
            if let Some((name, _)) = map.iter().find(|(_, v)| v.len() > MAX_HEADER_VALUE_LEN) {
                return Err(invalid(format!(
                    "headers.{name} must be at most {MAX_HEADER_VALUE_LEN} bytes"
                )));
            }
            let lower: BTreeMap<String, &str> = map
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
                .collect();
            RateLimitHeaders::parse(|name| lower.get(name).copied())
        }
    };
    if let Some(status) = body.http_status {
        if !(100..=599).contains(&status) {
            return Err(invalid(
                "http_status must be an HTTP status from 100 to 599".into(),
            ));
        }
    }
    let error = match (body.error, body.error_body) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "error_body: send either `error` or `error_body`, not both".into(),
            ))
        }
        (Some(error), None) => Some(error),
        (None, Some(raw)) => {
            let bytes = serde_json::to_vec(&raw).unwrap_or_default();
            if bytes.len() > MAX_ERROR_FIELD_LEN * 4 {
                return Err(invalid("error_body is too large".into()));
            }
            Some(parse_error_body(body.http_status, &bytes))
        }
        (None, None) if body.http_status.is_some_and(|s| s >= 400) => {
            Some(parse_error_body(body.http_status, b""))
        }
        (None, None) => None,
    };
    match (body.success, error) {
        (true, Some(_)) => Err(invalid(
            "error: a successful call (`success: true`) cannot carry an error".into(),
        )),
        (true, None) => Ok(CallOutcome {
            tokens: body.tokens_used,
            retry_after_ms,
            headers,
            ..CallOutcome::default()
        }),
        (false, None) => Err(invalid(
            "error: a failed call (`success: false`) needs an `error` object (or `http_status` with `error_body`)".into(),
        )),
        (false, Some(error)) => {
            if let Some(status) = error.http_status {
                if !(100..=599).contains(&status) {
                    return Err(invalid("error.http_status must be an HTTP status from 100 to 599".into()));
                }
            }
            if error.http_status.is_none() && error.code.is_none() && error.error_type.is_none() {
                return Err(invalid("error: give at least one of `http_status`, `type` or `code`".into()));
            }
            for (name, value) in [
                ("error.type", &error.error_type),
                ("error.code", &error.code),
                ("error.message", &error.message),
            ] {
                if value.as_ref().is_some_and(|v| v.len() > MAX_ERROR_FIELD_LEN) {
                    return Err(invalid(format!("{name} must be at most {MAX_ERROR_FIELD_LEN} bytes")));
                }
            }
            Ok(CallOutcome {
                tokens: body.tokens_used,
                error: Some(error),
                retry_after_ms,
                headers,
                tokens_estimated: false,
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
            service.reset(&id).await?;
            vec![id]
        }
        None => service.reset_all().await?,
    };
    Ok(Json(ResetResponse { reset }))
}
