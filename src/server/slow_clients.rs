//! Slow clients are cut off instead of holding a connection and its memory.
//!
//! Headers: hyper's header-read timeout (set in [`super::serve`]) closes a
//! connection that does not finish its request line and headers in time, and an
//! idle keep-alive connection that does not start its next request.
//!
//! Bodies: [`read_body`] reads a whole body against one deadline and a size
//! limit. tower-http's `RequestBodyTimeoutLayer` resets its timer on every
//! frame, so a client trickling a byte at a time would never be cut off; a
//! single deadline for the whole body is what stops that. This middleware
//! does it before any handler runs for everything but the proxy: those
//! handlers buffer their (small) bodies anyway. `/v1/*` is left to the proxy,
//! which calls [`read_body`] itself only once the caller is authenticated and
//! within its concurrency caps, so a request without a valid workspace key
//! never gets a byte of its body read.

use crate::api::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The limits of [`read_body_within_deadline`].
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub deadline: Duration,
    /// Everything but `/v1/*`: JSON bodies and forms.
    pub max_bytes: usize,
}

/// Why a body could not be read: status, error code, message.
pub type BodyError = (StatusCode, &'static str, String);

pub async fn read_body_within_deadline(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/v1" || path.starts_with("/v1/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match read_body(body, limits.max_bytes, limits.deadline).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err((status, code, message)) => ApiError::new(status, code, message).into_response(),
    }
}

/// The whole of `body`, at most `limit` bytes, within `deadline`.
pub async fn read_body(body: Body, limit: usize, deadline: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Err(_elapsed) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "The request body was not received within {} s.",
                deadline.as_secs()
            ),
        )),
        Ok(Err(e)) if is_length_limit(&e) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than this endpoint accepts ({limit} bytes)."),
        )),
        Ok(Err(e)) => Err((
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("The request body could not be read: {e}"),
        )),
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
