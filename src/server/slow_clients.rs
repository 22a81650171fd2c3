//! Slow clients are cut off instead of holding a connection and its memory.
//!
//! Headers: hyper's header-read timeout (set in [`super::serve`]) closes a
//! connection that does not finish its request line and headers in time, and an
//! idle keep-alive connection that does not start its next request.
//!
//! Bodies: this middleware reads the whole body against one deadline and a size
//! limit before any handler runs. tower-http's `RequestBodyTimeoutLayer`
//! resets its timer on every frame, so a client trickling a byte at a time
//! would never be cut off; a single deadline for the whole body is what stops
//! that. Every handler here buffers its body anyway (JSON, or the proxy, which
//! forwards a complete body), so reading it up front costs nothing extra.

use crate::api::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The limits of [`read_body_within_deadline`].
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub deadline: Duration,
    /// `/v1/*`: the proxy forwards uploads (audio, files).
    pub proxy_max_bytes: usize,
    /// Everything else: JSON bodies and forms.
    pub max_bytes: usize,
}

pub async fn read_body_within_deadline(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let proxied = request.uri().path().starts_with("/v1/");
    let limit = if proxied {
        limits.proxy_max_bytes
    } else {
        limits.max_bytes
    };
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(limits.deadline, axum::body::to_bytes(body, limit)).await;
    let failure = match read {
        Ok(Ok(bytes)) => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_elapsed) => (
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "The request body was not received within {} s.",
                limits.deadline.as_secs()
            ),
        ),
        Ok(Err(e)) if is_length_limit(&e) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than this endpoint accepts ({limit} bytes)."),
        ),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("The request body could not be read: {e}"),
        ),
    };
    let (status, code, message) = failure;
    if proxied {
        crate::api::proxy::openai_error(status, "invalid_request_error", code, &message)
    } else {
        ApiError::new(status, code, message).into_response()
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
