//! `/v1/*`: an OpenAI-compatible proxy. Point any OpenAI SDK's base URL at
//! `http://<quota-alert>/v1` and use a workspace key as its API key.
//!
//! Requests over quota are refused here with OpenAI's own error shape and a
//! `retry-after`, so SDK back-off works unchanged and nothing reaches OpenAI.
//! Upstream answers (errors included) pass through as they came.

use super::extract::bearer_key;
use crate::model::QuotaStatus;
use crate::service::{Caller, QuotaService};
use crate::upstream::{ForwardError, ForwardRequest, ForwardedBody, TrackedClient};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Largest request body forwarded (OpenAI's own upload limit for audio is 25 MB).
pub const MAX_PROXY_BODY_BYTES: usize = 32 * 1024 * 1024;

pub async fn proxy(
    State(service): State<QuotaService>,
    State(client): State<TrackedClient>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match bearer_key(&headers) {
        Ok(Some(key)) => key,
        Ok(None) | Err(_) => return openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Missing or malformed API key: use your quota-alert workspace key as the bearer token.",
        ),
    };
    let workspace = match service.authenticate(&key) {
        Some(Caller::Workspace(id)) => id,
        Some(Caller::Admin) => {
            return openai_error(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                "workspace_key_required",
                "The admin key has no workspace to account usage to: use a workspace key.",
            )
        }
        None => {
            return openai_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect API key provided: use your quota-alert workspace key.",
            )
        }
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

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
pub fn openai_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    });
    (status, Json(body)).into_response()
}
