//! The proxy's own errors, in OpenAI's shape so that OpenAI's SDKs parse (and
//! back off on) them unchanged.

use crate::engine::TokenRoom;
use crate::upstream::ForwardError;
use crate::wire::QuotaStatus;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// An error in OpenAI's shape, which OpenAI's SDKs parse (and back off on)
/// unchanged: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiError {
    pub error: OpenAiErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    /// For people: what happened and, for a 429, when to retry.
    pub message: String,
    /// OpenAI's error type, e.g. `requests`, `insufficient_quota`,
    /// `invalid_request_error`, `server_error`, `upstream_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault (e.g. `store` for a refused stored
    /// object), as OpenAI names it; null otherwise.
    pub param: Option<String>,
    /// Machine-readable, e.g. `rate_limit_exceeded`, `insufficient_quota`,
    /// `invalid_api_key`, `endpoint_not_available`, `invalid_path`.
    pub code: String,
}

/// An error in OpenAI's shape (see [`OpenAiError`]).
pub fn openai_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    openai_error_param(status, kind, code, None, message)
}

/// [`openai_error`] naming the request field at fault.
pub fn openai_error_param(
    status: StatusCode,
    kind: &str,
    code: &str,
    param: Option<String>,
    message: &str,
) -> Response {
    let body = OpenAiError {
        error: OpenAiErrorBody {
            message: message.to_string(),
            kind: kind.to_string(),
            param,
            code: code.to_string(),
        },
    };
    (status, Json(body)).into_response()
}

/// [`openai_error`] with `retry-after` (whole seconds).
pub fn retry_later(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    seconds: u64,
) -> Response {
    let mut response = openai_error(status, kind, code, message);
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(seconds));
    response
}

pub fn forward_error(error: ForwardError) -> Response {
    match error {
        ForwardError::Denied {
            status,
            retry_after_s,
            tokens,
        } => {
            if let Some(TokenRoom::TooLarge { need, limit, label }) = tokens {
                // As OpenAI says it: a 429 on tokens, with no retry time,
                // since waiting cannot help.
                return openai_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "tokens",
                    "rate_limit_exceeded",
                    &format!(
                        "Request too large for this workspace on {} (blocked by quota-alert before reaching OpenAI): Limit {limit}, Requested {need} (the prompt plus max_tokens, or the default output reserve when none is given). The input or output tokens must be reduced in order to run successfully.",
                        label.to_lowercase()
                    ),
                );
            }
            if let Some(TokenRoom::Limited(limited)) = tokens {
                return limited_error(&limited);
            }
            if status == QuotaStatus::Degraded && tokens.is_none() {
                // Fail-closed policy while the shared store is unreachable.
                return retry_later(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "quota_store_unavailable",
                    "quota-alert cannot reach its shared store and is configured to refuse traffic until it returns.",
                    5,
                );
            }
            let (kind, code, message) = match (&tokens, status) {
                (Some(TokenRoom::Wait { reason, .. }), _) => (
                    "tokens",
                    "rate_limit_exceeded",
                    format!(
                        "Rate limit reached for this workspace on tokens (blocked by quota-alert before reaching OpenAI). {reason}"
                    ),
                ),
                (_, QuotaStatus::QuotaExceeded) => (
                    "insufficient_quota",
                    "insufficient_quota",
                    "This workspace's quota is used up (blocked by quota-alert before reaching OpenAI).".to_string(),
                ),
                _ => (
                    "requests",
                    "rate_limit_exceeded",
                    "Rate limit reached for this workspace (blocked by quota-alert before reaching OpenAI).".to_string(),
                ),
            };
            let message = match retry_after_s {
                Some(s) => format!("{message} Please try again in {s:.1}s."),
                None => message,
            };
            let mut response = openai_error(StatusCode::TOO_MANY_REQUESTS, kind, code, &message);
            if let Some(seconds) = retry_after_s {
                let headers = response.headers_mut();
                // `retry-after` is whole seconds (rounded up, never early);
                // OpenAI's SDKs prefer the precise `retry-after-ms`.
                if let Ok(v) = HeaderValue::from_str(&(seconds.ceil() as u64).to_string()) {
                    headers.insert("retry-after", v);
                }
                if let Ok(v) =
                    HeaderValue::from_str(&((seconds * 1000.0).ceil() as u64).to_string())
                {
                    headers.insert("retry-after-ms", v);
                }
            }
            response
        }
        ForwardError::BadUser { param, problem } => openai_error_param(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_user",
            Some(param.to_string()),
            &format!("{param} names the end user for quota-alert's per-user limits and {problem}."),
        ),
        ForwardError::BadModel { problem } => openai_error_param(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_model",
            Some("model".to_string()),
            &format!("model names the model for quota-alert's per-model limits and breakdown and {problem}."),
        ),
        ForwardError::KeyRevoked => openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided: this key was rotated or revoked.",
        ),
        ForwardError::UnknownWorkspace => openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "This workspace no longer exists.",
        ),
        ForwardError::Timeout => openai_error(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_error",
            "upstream_timeout",
            "OpenAI did not answer in time.",
        ),
        ForwardError::Unreachable(detail) => openai_error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "upstream_unreachable",
            &format!("OpenAI could not be reached: {detail}."),
        ),
    }
}

/// A call refused by a per-model or per-user limit or a hard budget, as
/// OpenAI would say it: a 429 of type `requests` or `tokens`
/// (`rate_limit_exceeded`), or `insufficient_quota` for money, with
/// `retry-after` when waiting helps (a budget: when it resets).
fn limited_error(limited: &crate::engine::Limited) -> Response {
    use crate::engine::LimitKind;
    let (kind, code, what) = match limited.kind {
        LimitKind::Requests => ("requests", "rate_limit_exceeded", "Rate limit reached"),
        LimitKind::Tokens => ("tokens", "rate_limit_exceeded", "Rate limit reached"),
        LimitKind::Spend | LimitKind::Unpriced => {
            ("insufficient_quota", "insufficient_quota", "Budget reached")
        }
    };
    let mut message = format!(
        "{what} for this workspace (blocked by quota-alert before reaching OpenAI). {}",
        limited.reason
    );
    let seconds = limited.wait_ms.map(|ms| ms as f64 / 1000.0);
    match seconds {
        Some(s) => message.push_str(&format!(" Please try again in {s:.1}s.")),
        None if limited.kind == LimitKind::Unpriced => message.push_str(" Waiting will not help: the operator can price the model (QUOTA_PRICES_FILE)."),
        None => message.push_str(" Waiting will not help: ask for fewer tokens (a smaller max_tokens) or raise the limit."),
    }
    let mut response = openai_error(StatusCode::TOO_MANY_REQUESTS, kind, code, &message);
    if let Some(seconds) = seconds {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&(seconds.ceil() as u64).to_string()) {
            headers.insert("retry-after", v);
        }
        if let Ok(v) = HeaderValue::from_str(&((seconds * 1000.0).ceil() as u64).to_string()) {
            headers.insert("retry-after-ms", v);
        }
    }
    response
}
