//! `POST /api/quota/record` and `/record/batch`: calls an app made to OpenAI
//! itself, validated field by field, counted once per `Idempotency-Key`.

use super::doc_text as text;
use super::error::ApiError;
use super::extract::{target_workspace, ApiJson, ApiQuery, Auth, WorkspaceQuery};
use crate::engine::CallOutcome;
use crate::service::{is_reservation_id, Idempotency, QuotaService, Recorded, ServiceError};
use crate::upstream::error_body::parse_error_body;
use crate::upstream::headers::RateLimitHeaders;
use crate::wire::{ErrorBody, QuotaSnapshot, RecordBatch, RecordRequest};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Largest token count one call may report: far above any model's context, low
/// enough that sums cannot overflow.
pub const MAX_TOKENS_PER_CALL: u64 = 100_000_000;
/// Longest retry hint accepted, in seconds (a day).
pub const MAX_RETRY_AFTER_S: f64 = 86_400.0;
const MAX_ERROR_FIELD_LEN: usize = 2_000;

/// Record the outcome of one call to OpenAI.
///
/// Counts the request and its tokens, learns from the error and rate-limit
/// headers, and answers with the new snapshot. Acknowledged only once stored;
/// a 503 means nothing was counted. With `Idempotency-Key`, a retry of the
/// same request (within 24 h) is not counted again: it is answered 200 with
/// the current snapshot and `idempotent-replayed: true`.
#[utoipa::path(
    post,
    path = "/api/quota/record",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters, chosen by the client per request: a retry with the same key and body (within 24 h) is not counted twice.")),
    request_body = RecordRequest,
    responses(
        (status = 200, description = "Recorded: the snapshot after counting it (or, for a retry with the same `Idempotency-Key`, not counted again: the current snapshot and `idempotent-replayed: true`).", body = QuotaSnapshot),
        (status = 400, description = text::BAD_RECORD, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 408, description = text::BODY_TIMEOUT, body = ErrorBody),
        (status = 413, description = text::PAYLOAD_TOO_LARGE, body = ErrorBody),
        (status = 415, description = text::UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: this `Idempotency-Key` was used for a different request.", body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn record(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RecordRequest>,
) -> Result<Response, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    let outcome = outcome_from_record(body, &service)?;
    let outcomes = [outcome];
    let recorded =
        record_outcomes(&service, &headers, &query, id.clone(), "record", &outcomes).await?;
    Ok(replayed_marker(recorded, Json(service.snapshot(&id)?)))
}

/// The request header that makes a record safe to retry.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header, validated: 1 to 255 visible ASCII
/// characters, at most one header.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |message: &str| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key {message}"),
        )
    };
    if values.next().is_some() {
        return Err(invalid("must be sent once"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(invalid(&format!(
            "must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"
        )));
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "must be visible ASCII characters only (no spaces or control characters)",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Counts `outcomes` for `id` once per `Idempotency-Key`. If Redis says the
/// workspace's key changed meanwhile (this instance had missed it and has
/// now reloaded it), the caller is resolved again from the request and, if
/// it still acts for `id` (the admin, or the current key), tried once more.
async fn record_outcomes(
    service: &QuotaService,
    headers: &HeaderMap,
    query: &WorkspaceQuery,
    id: String,
    endpoint: &str,
    outcomes: &[CallOutcome],
) -> Result<Recorded, ApiError> {
    let idempotency = match idempotency_key(headers)? {
        Some(key) => {
            let request = serde_json::to_vec(&(endpoint, outcomes)).unwrap_or_default();
            Some(Idempotency::new(&key, &request))
        }
        None => None,
    };
    match service
        .record_all(&id, outcomes, idempotency.as_ref())
        .await
    {
        Err(ServiceError::KeyChanged) => {
            // Resolved afresh, not from the request's cache: the key it
            // carried may be the one that just changed.
            let caller = service.resolve_credential(headers, None).await?.caller;
            let again = target_workspace(service, &caller, query.workspace_id.as_deref())?;
            if again != id {
                return Err(ServiceError::KeyChanged.into());
            }
            Ok(service
                .record_all(&id, outcomes, idempotency.as_ref())
                .await?
                .0)
        }
        result => Ok(result?.0),
    }
}

/// A replayed answer says so in `idempotent-replayed: true`.
fn replayed_marker(recorded: Recorded, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if recorded == Recorded::Replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Most outcomes one batch may carry.
pub const MAX_BATCH_RECORDS: usize = 1_000;
const MAX_HEADERS: usize = 100;
const MAX_HEADER_VALUE_LEN: usize = 1_000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchRecorded {
    /// How many outcomes were counted (all of them).
    pub recorded: usize,
    pub snapshot: QuotaSnapshot,
}

/// Record many outcomes in one call.
///
/// All are validated before any is counted, so a bad record (named by its
/// index, e.g. `records[3].tokens_used`) leaves the counts untouched; the
/// batch is stored in one write, so a store failure (503) leaves nothing of
/// it counted. `Idempotency-Key` works as for a single record.
#[utoipa::path(
    post,
    path = "/api/quota/record/batch",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters, chosen by the client per request: a retry with the same key and body (within 24 h) is not counted twice.")),
    request_body = RecordBatch,
    responses(
        (status = 200, description = "All recorded: how many, and the snapshot after (a retry with the same `Idempotency-Key` is not counted again and carries `idempotent-replayed: true`).", body = BatchRecorded),
        (status = 400, description = text::BAD_RECORD, body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 408, description = text::BODY_TIMEOUT, body = ErrorBody),
        (status = 413, description = text::PAYLOAD_TOO_LARGE, body = ErrorBody),
        (status = 415, description = text::UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: this `Idempotency-Key` was used for a different request.", body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn record_batch(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RecordBatch>,
) -> Result<Response, ApiError> {
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
            outcome_from_record(record, &service).map_err(|mut e| {
                e.message = format!("records[{i}].{}", e.message);
                e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One write for the whole batch: all of it is counted, or none.
    let recorded =
        record_outcomes(&service, &headers, &query, id.clone(), "batch", &outcomes).await?;
    Ok(replayed_marker(
        recorded,
        Json(BatchRecorded {
            recorded: outcomes.len(),
            snapshot: service.snapshot(&id)?,
        }),
    ))
}

/// Most one call may say it cost: $1 000 000.
const MAX_COST_NANO_PER_CALL: u64 = 1_000_000 * 1_000_000_000;

/// Validates a record body and turns it into an engine outcome. Error messages
/// start with the offending field's name.
pub fn outcome_from_record(
    body: RecordRequest,
    service: &QuotaService,
) -> Result<CallOutcome, ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_body", message);
    if let Some(model) = &body.model {
        crate::engine::scopes::check_model_name(model)
            .map_err(|problem| invalid(format!("model {problem}")))?;
    }
    if let Some(user) = &body.user {
        crate::engine::scopes::check_user_label(user)
            .map_err(|problem| invalid(format!("user {problem}")))?;
    }
    let usage = match &body.usage {
        None => None,
        Some(usage) if usage.is_object() => {
            let wrapped = serde_json::json!({ "usage": usage });
            let mut parsed = crate::pricing::usage_from_response(&wrapped).unwrap_or_default();
            // The flat spelling too (`cached_tokens`, `reasoning_tokens`
            // beside the totals), for apps that report the parts themselves.
            if let Some(n) = usage.get("cached_tokens").and_then(serde_json::Value::as_u64) {
                parsed.cached = n;
            }
            if let Some(n) = usage.get("reasoning_tokens").and_then(serde_json::Value::as_u64) {
                parsed.reasoning = n;
            }
            if [parsed.prompt, parsed.completion, parsed.cached, parsed.reasoning]
                .iter()
                .any(|n| *n > MAX_TOKENS_PER_CALL)
            {
                return Err(invalid(format!(
                    "usage counts must be at most {MAX_TOKENS_PER_CALL} each"
                )));
            }
            Some(parsed)
        }
        Some(_) => {
            return Err(invalid(
                "usage must be an object, as OpenAI answers it (prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens; or input_tokens / output_tokens)".into(),
            ))
        }
    };
    let cost_nano = match body.cost_usd {
        // Priced from the usage at the model's price in force now, when
        // the app did not say what the call cost.
        None => usage.and_then(|usage| service.price_call(body.model.as_deref(), &usage)),
        Some(usd) => Some(
            crate::pricing::usd_to_nano(usd)
                .filter(|nano| *nano <= MAX_COST_NANO_PER_CALL)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_body",
                        "cost_usd must be a dollar amount from 0 to 1000000",
                    )
                })?,
        ),
    };
    let mut outcome = outcome_of(body.clone())?;
    outcome.cost_nano = cost_nano;
    if outcome.tokens == 0 {
        outcome.tokens = usage.map_or(0, |u| u.total());
    }
    outcome.scope = crate::engine::CallScope {
        model: body.model.clone(),
        user: body.user.clone(),
    };
    match body.reservation_id {
        None => Ok(outcome),
        Some(id) if is_reservation_id(&id) => Ok(outcome.settling(Some(id))),
        Some(_) => Err(ApiError::bad_request(
            "invalid_body",
            "reservation_id must be one `POST /api/quota/reserve` answered with (`rsv_` and 32 lowercase hex digits)",
        )),
    }
}

fn outcome_of(body: RecordRequest) -> Result<CallOutcome, ApiError> {
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
                reservation_id: None,
                cost_nano: None,
                scope: Default::default(),
            })
        }
    }
}
