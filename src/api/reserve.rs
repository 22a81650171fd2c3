//! `POST /api/quota/reserve`: for apps that call OpenAI themselves, the
//! admission the proxy does for its own calls — one request counted and the
//! call's tokens held before it is made, refused (429) when they would take
//! a window over its limit — settled afterwards by `POST /api/quota/record`
//! naming the `reservation_id`.

use super::doc_text as text;
use super::error::ApiError;
use super::extract::{target_workspace, ApiJson, ApiQuery, Auth, WorkspaceQuery};
use super::record::MAX_TOKENS_PER_CALL;
use crate::engine::{rfc3339, TokenRoom};
use crate::service::QuotaService;
use crate::wire::{ErrorBody, QuotaStatus};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest `model` accepted (OpenAI's names are far shorter).
/// Body of `POST /api/quota/reserve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// The most tokens the call can use: its prompt plus its output cap
    /// (`max_tokens`), 1 to 100 000 000.
    pub tokens: u64,
    /// The model the call is for, 1 to 200 characters: its per-model
    /// limits apply, and its worst-case cost (every token at the model's
    /// output price) is held against hard budgets.
    #[serde(default)]
    pub model: Option<String>,
    /// The end user the call is for (a label, 1 to 200 characters): their
    /// per-user limits apply.
    #[serde(default)]
    pub user: Option<String>,
}

/// A hold on a workspace's token windows for one call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Reservation {
    /// Name it as `reservation_id` in `POST /api/quota/record` to settle the
    /// hold to the call's real usage.
    pub reservation_id: String,
    /// Tokens held.
    pub tokens: u64,
    /// RFC 3339 time the hold is released if never settled (a crashed
    /// caller): `QUOTA_RESERVATION_TTL_S` after it was made (default 600 s).
    pub expires_at: String,
}

/// Reserve tokens before calling OpenAI.
///
/// Counts one request and holds `tokens` in every token window until the
/// call is recorded (`POST /api/quota/record` with `reservation_id`: the
/// hold is released and the real usage counted, less or more) or the hold
/// expires. Refused with 429 when the request or its tokens do not fit now
/// beside what is used and held for other calls in flight — then nothing is
/// counted, and `retry-after` says when enough frees up.
#[utoipa::path(
    post,
    path = "/api/quota/reserve",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY)),
    request_body = ReserveRequest,
    responses(
        (status = 200, description = "Reserved: the hold to settle.", body = Reservation),
        (status = 400, description = "`invalid_json`, `invalid_body` (`tokens` must be 1 to 100000000, `model` and `user` 1 to 200 characters), `invalid_query`, `invalid_workspace_id` or `missing_workspace_id`.", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = "Not reserved, nothing counted. `insufficient_tokens`: the tokens do not fit beside those used and held now (`retry-after` says when enough frees up). `request_too_large`: `tokens` is over a token window's whole limit, so it never fits. `budget_exceeded`: its worst-case cost would take a hard budget (or a per-model or per-user daily budget) over. `model_not_priced`: such a budget applies and the price table has no price for `model`. `rate_limited` also for a per-model or per-user request limit. `rate_limited` / `quota_exceeded`: the workspace is RATE_LIMITED or QUOTA_EXCEEDED (`retry-after` when known). `too_many_requests`: over the API's own rate limit.", body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds until the reservation would fit (rounded up)."))),
        (status = 503, description = "`store_unavailable`: the shared store (Redis) is unreachable and the failure policy is closed.", body = ErrorBody),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn reserve(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
    ApiJson(body): ApiJson<ReserveRequest>,
) -> Result<Response, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    if !(1..=MAX_TOKENS_PER_CALL).contains(&body.tokens) {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("tokens must be a whole number from 1 to {MAX_TOKENS_PER_CALL}"),
        ));
    }
    if let Some(model) = &body.model {
        crate::engine::scopes::check_model_name(model)
            .map_err(|problem| ApiError::bad_request("invalid_body", format!("model {problem}")))?;
    }
    if let Some(user) = &body.user {
        crate::engine::scopes::check_user_label(user)
            .map_err(|problem| ApiError::bad_request("invalid_body", format!("user {problem}")))?;
    }
    // The split between prompt and output is unknown here, so every token
    // is held at the dearest rate: the most the call can cost.
    let hold = service.hold_for_call(
        0,
        body.tokens,
        crate::engine::CallScope {
            model: body.model.clone(),
            user: body.user.clone(),
        },
    );
    // Kept before it is answered: an acknowledged reservation's request is
    // never lost to a crash, like a record's.
    let admission = service.admit_kept(&id, hold.clone()).await?;
    if !admission.check.allowed {
        return Ok(refusal(
            admission.check.status,
            admission.check.retry_after_s,
            admission.token_refusal,
        )
        .into_response());
    }
    tracing::debug!(
        workspace_id = %id,
        reservation_id = %hold.reservation_id,
        tokens = hold.tokens,
        model = body.model.as_deref().unwrap_or("-"),
        "tokens reserved"
    );
    Ok(Json(Reservation {
        reservation_id: hold.reservation_id,
        tokens: hold.tokens,
        expires_at: rfc3339(hold.expires_at_ms),
    })
    .into_response())
}

/// A refused reservation, in the API's error shape with `retry-after`.
struct Refused {
    error: ApiError,
    retry_after_s: Option<f64>,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(seconds) = self.retry_after_s {
            if let Ok(value) = HeaderValue::from_str(&(seconds.ceil() as u64).to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

fn refusal(status: QuotaStatus, retry_after_s: Option<f64>, tokens: Option<TokenRoom>) -> Refused {
    let when = |s: Option<f64>| match s {
        Some(s) => format!(" Enough frees up in {s:.1}s."),
        None => String::new(),
    };
    let (code, message) = match tokens {
        Some(TokenRoom::TooLarge { need, limit, label }) => (
            "request_too_large",
            format!(
                "{need} tokens is more than the workspace's whole {} limit ({limit}): this call can never fit; ask for fewer tokens.",
                label.to_lowercase()
            ),
        ),
        Some(TokenRoom::Limited(limited)) => (
            match limited.kind {
                crate::engine::LimitKind::Spend => "budget_exceeded",
                crate::engine::LimitKind::Unpriced => "model_not_priced",
                crate::engine::LimitKind::Tokens => "insufficient_tokens",
                crate::engine::LimitKind::Requests => "rate_limited",
            },
            format!("{}{}", limited.reason, when(retry_after_s)),
        ),
        Some(TokenRoom::Wait { reason, .. }) => (
            "insufficient_tokens",
            format!("Not enough tokens free. {reason}{}", when(retry_after_s)),
        ),
        Some(TokenRoom::Fits) | None => match status {
            QuotaStatus::QuotaExceeded => (
                "quota_exceeded",
                format!("This workspace's quota is used up.{}", when(retry_after_s)),
            ),
            QuotaStatus::Degraded => (
                "store_unavailable",
                "quota-alert cannot reach its shared store and is configured to refuse traffic until it returns.".to_string(),
            ),
            _ => (
                "rate_limited",
                format!("This workspace is rate limited.{}", when(retry_after_s)),
            ),
        },
    };
    let status_code = if code == "store_unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    Refused {
        error: ApiError::new(status_code, code, message),
        retry_after_s,
    }
}
