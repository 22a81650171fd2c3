//! `/v1/*`: an OpenAI-compatible proxy. Point any OpenAI SDK's base URL at
//! `http://<quota-alert>/v1` and use a workspace key as its API key.
//!
//! Requests over quota are refused here with OpenAI's own error shape and a
//! `retry-after`, so SDK back-off works unchanged and nothing reaches OpenAI.
//! Upstream answers (errors included) pass through as they came.

use crate::model::QuotaStatus;
use crate::service::{AuthError, Caller, QuotaService};
use crate::upstream::{ForwardError, ForwardRequest, ForwardedBody, TrackedClient};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Largest request body forwarded (OpenAI's own upload limit for audio is 25 MB).
pub const MAX_PROXY_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Any OpenAI API call, accounted to the workspace whose key it carries.
///
/// One passthrough for every OpenAI path and method (`GET`, `POST`, `PUT`,
/// `PATCH`, `DELETE`): point an OpenAI SDK's base URL at `/v1` and use a
/// workspace key as its API key. The request is admitted against the
/// workspace's quota first; a refused one gets a local 429 in OpenAI's own
/// error shape, with `retry-after` and `retry-after-ms`, so SDK back-off works
/// unchanged and nothing reaches OpenAI. Admitted requests are forwarded with
/// the server's OpenAI key, and the answer (errors and `stream: true` event
/// streams included) comes back as OpenAI sent it, then is recorded. Errors
/// raised here use OpenAI's shape (`OpenAiError`), not the API's.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/v1/{path}",
    tag = "proxy",
    params(("path" = String, Path, description = "The OpenAI API path after `/v1/`, e.g. `chat/completions` (may contain `/`). The query string is forwarded as it is.")),
    request_body(
        content = inline(Option<serde_json::Value>),
        description = "Whatever the OpenAI endpoint takes, forwarded unchanged (any content type, e.g. JSON or multipart; at most 32 MiB). None for a GET or DELETE.",
    ),
    responses(
        (status = 200, description = "OpenAI's answer, passed through with its status and headers: JSON, or `text/event-stream` for `stream: true`. OpenAI's own errors (its 4xx and 5xx, its own 429s included) pass through unchanged too.",
            content(
                (serde_json::Value = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 401, description = "`invalid_api_key`: no key, a malformed `Authorization` header, a key that is not valid, or a workspace that no longer exists.", body = OpenAiError),
        (status = 403, description = "`workspace_key_required`: the admin key has no workspace to account usage to.", body = OpenAiError),
        (status = 408, description = "`request_timeout`: the whole body did not arrive within `QUOTA_HTTP_BODY_TIMEOUT_S` (default 30 s).", body = OpenAiError),
        (status = 413, description = "`payload_too_large`: the request body is over 32 MiB.", body = OpenAiError),
        (status = 429, description = "Refused here, before reaching OpenAI: the workspace is `RATE_LIMITED` (`type` `requests`, `code` `rate_limit_exceeded`) or `QUOTA_EXCEEDED` (`type` and `code` `insufficient_quota`). The message says when to retry.",
            body = OpenAiError,
            headers(
                ("retry-after" = u64, description = "Whole seconds until a request may be admitted (rounded up, never early)."),
                ("retry-after-ms" = u64, description = "The same in milliseconds, which OpenAI's SDKs prefer."),
            )),
        (status = 502, description = "`upstream_unreachable`: OpenAI could not be reached.", body = OpenAiError),
        (status = 503, description = "`quota_store_unavailable`: the shared quota store (Redis) is unreachable and the failure policy is closed.", body = OpenAiError,
            headers(("retry-after" = u64, description = "Seconds to wait (5)."))),
        (status = 504, description = "`upstream_timeout`: OpenAI did not answer in time.", body = OpenAiError),
    ),
    security(("workspace_key" = [])),
)]
pub async fn proxy(
    State(service): State<QuotaService>,
    State(client): State<TrackedClient>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let workspace = match proxy_caller(&service, &headers).await {
        Ok(workspace) => workspace,
        Err(response) => return response,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return openai_error(
                rejection.status(),
                "invalid_request_error",
                "invalid_body",
                &format!(
                    "The request body could not be read: {}",
                    rejection.body_text()
                ),
            )
        }
    };
    let path = uri.path().strip_prefix("/v1").unwrap_or(uri.path());
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let request = ForwardRequest {
        method,
        path_and_query,
        headers,
        body,
    };
    match client.forward(&workspace, request).await {
        Ok(forwarded) => {
            let mut response = match forwarded.body {
                ForwardedBody::Full(bytes) => Response::new(Body::from(bytes)),
                ForwardedBody::Stream(stream) => Response::new(Body::from_stream(stream)),
            };
            *response.status_mut() = forwarded.status;
            *response.headers_mut() = forwarded.headers;
            response
        }
        Err(error) => forward_error(error),
    }
}

/// The workspace a proxied request is accounted to, from the one credential
/// resolver (`QuotaService::resolve_credential`). Only a bearer key opens
/// the proxy: OpenAI's SDKs send one, and a session cookie is refused so no
/// other site can make a signed-in browser spend the workspace's quota.
async fn proxy_caller(service: &QuotaService, headers: &HeaderMap) -> Result<String, Response> {
    let invalid = |message: &str| {
        openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message,
        )
    };
    match service.resolve_credential(headers, None).await {
        Ok(resolved) if resolved.credential.from_cookie() => Err(invalid(
            "Missing API key: use your quota-alert workspace key as the bearer token.",
        )),
        Ok(resolved) => match resolved.caller {
            Caller::Workspace(id) => Ok(id),
            Caller::Admin => Err(openai_error(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                "workspace_key_required",
                "The admin key has no workspace to account usage to: use a workspace key.",
            )),
        },
        Err(AuthError::InvalidKey) => Err(invalid(
            "Incorrect API key provided: use your quota-alert workspace key.",
        )),
        Err(AuthError::Missing | AuthError::SessionExpired) => Err(invalid(
            "Missing API key: use your quota-alert workspace key as the bearer token.",
        )),
        Err(error @ (AuthError::Malformed | AuthError::Ambiguous)) => {
            Err(invalid(&format!("Malformed API key: {error}")))
        }
    }
}

fn forward_error(error: ForwardError) -> Response {
    match error {
        ForwardError::Denied {
            status,
            retry_after_s,
        } => {
            if status == QuotaStatus::Degraded {
                // Fail-closed policy while the shared store is unreachable.
                let mut response = openai_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "quota_store_unavailable",
                    "quota-alert cannot reach its shared store and is configured to refuse traffic until it returns.",
                );
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static("5"));
                return response;
            }
            let (kind, code, message) = match status {
                QuotaStatus::QuotaExceeded => (
                    "insufficient_quota",
                    "insufficient_quota",
                    "This workspace's quota is used up (blocked by quota-alert before reaching OpenAI).",
                ),
                _ => (
                    "requests",
                    "rate_limit_exceeded",
                    "Rate limit reached for this workspace (blocked by quota-alert before reaching OpenAI).",
                ),
            };
            let message = match retry_after_s {
                Some(s) => format!("{message} Please try again in {s:.1}s."),
                None => message.to_string(),
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
    /// Always null here (OpenAI names a request field in it).
    pub param: Option<String>,
    /// Machine-readable, e.g. `rate_limit_exceeded`, `insufficient_quota`,
    /// `invalid_api_key`.
    pub code: String,
}

/// An error in OpenAI's shape (see [`OpenAiError`]).
pub fn openai_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = OpenAiError {
        error: OpenAiErrorBody {
            message: message.to_string(),
            kind: kind.to_string(),
            param: None,
            code: code.to_string(),
        },
    };
    (status, Json(body)).into_response()
}
