//! The one middleware in front of `/api/*`, `/api/fn/*` (server functions)
//! and `/v1/*` (the proxy). Before any body is read it
//!
//! 1. resolves the request's credential ([`super::extract::resolve_parts`]),
//!    once: handlers find the answer in the request's extensions;
//! 2. spends one request of the caller's rate-limit budget, or of the client
//!    address's when there is no valid credential ([`super::rate_limit`]);
//! 3. refuses cross-site state-changing requests made with the session
//!    cookie, and cross-site sign-ins ([`super::csrf`]).
//!
//! Refusals come in the endpoint's own error shape: OpenAI's on `/v1/*`, the
//! server-function error encoding on `/api/fn/*`, the API's elsewhere.
//! Probes (`/healthz`, `/readyz`, `/metrics`), the fixed documents
//! (`/api/openapi.json`, `/api/docs`), pages and static files pass untouched.

use super::client_addr::client_ip;
use super::error::ApiError;
use super::extract::{resolve_parts, Resolution};
use super::rate_limit::{ApiRateLimits, Bucket};
use crate::service::{AuthError, QuotaService};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::time::Duration;

/// What [`guard`] needs.
#[derive(Clone)]
pub struct Guard {
    service: QuotaService,
    limits: ApiRateLimits,
}

impl Guard {
    /// Limits from the service's config (`QUOTA_API_RATE_PER_KEY`,
    /// `QUOTA_API_RATE_PER_IP`).
    pub fn new(service: QuotaService) -> Self {
        let config = service.config();
        let limits = ApiRateLimits::new(config.api_rate_per_key, config.api_rate_per_ip);
        Self { service, limits }
    }
}

/// Whether [`guard`] applies to `path`.
pub fn guarded(path: &str) -> bool {
    let api = path.starts_with("/api/") && !matches!(path, "/api/openapi.json" | "/api/docs");
    api || path == "/v1" || path.starts_with("/v1/")
}

pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if !guarded(request.uri().path()) {
        return next.run(request).await;
    }
    let shape = Shape::of(request.uri().path());
    let (mut parts, body) = request.into_parts();
    let resolution = resolve_parts(&guard.service, &parts).await;

    let bucket = match &resolution {
        Ok(resolved) => Some(Bucket::Caller(resolved.caller.clone())),
        // Without the peer (a router served without connect info) there is
        // no address to limit; the binary and the tests always have it.
        Err(_) => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                let trusted = &guard.service.config().trusted_proxies;
                Bucket::Address(client_ip(peer.ip(), &parts.headers, trusted))
            }),
    };
    if let Some(bucket) = bucket {
        if let Err(wait) = guard.limits.check(&bucket) {
            return shape.too_many(wait, bucket.describe(), parts.uri.path());
        }
    }

    // A session that no longer resolves was still sent by the cookie.
    let cookie_credential = match &resolution {
        Ok(resolved) => resolved.credential.from_cookie(),
        Err(error) => *error == AuthError::SessionExpired,
    };
    if super::csrf::applies(&parts, cookie_credential) {
        let allowed = &guard.service.config().allowed_origins;
        if let Err(message) = super::csrf::check(&parts, allowed) {
            return shape.error(
                StatusCode::FORBIDDEN,
                "cross_site_request",
                &message,
                parts.uri.path(),
            );
        }
    }

    parts.extensions.insert(Resolution(resolution));
    next.run(Request::from_parts(parts, body)).await
}

/// The error shape of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `{"error": {"code", "message"}}`.
    Api,
    /// `{"error": {"message", "type", "param", "code"}}` (`/v1/*`).
    OpenAi,
    /// Leptos's server-function error encoding (`/api/fn/*`), which the
    /// browser's server-function client decodes into a `ServerFnError`.
    ServerFn,
}

impl Shape {
    pub fn of(path: &str) -> Self {
        if path == "/v1" || path.starts_with("/v1/") {
            Shape::OpenAi
        } else if path.starts_with("/api/fn/") {
            Shape::ServerFn
        } else {
            Shape::Api
        }
    }

    /// An error in this shape; `code` leads the message of a server-function
    /// error, which has no field of its own for it.
    pub fn error(
        self,
        status: StatusCode,
        code: &'static str,
        message: &str,
        path: &str,
    ) -> Response {
        match self {
            Shape::Api => ApiError::new(status, code, message).into_response(),
            Shape::OpenAi => {
                let kind = if status == StatusCode::TOO_MANY_REQUESTS {
                    "requests"
                } else {
                    "invalid_request_error"
                };
                super::proxy::openai_error(status, kind, code, message)
            }
            Shape::ServerFn => {
                use leptos::server_fn::error::{FromServerFnError, SERVER_FN_ERROR_HEADER};
                let error: leptos::prelude::ServerFnError =
                    leptos::prelude::ServerFnError::MiddlewareError(format!("{code}: {message}"));
                let mut response = (status, error.ser()).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                if let Ok(path) = HeaderValue::from_str(path) {
                    headers.insert(SERVER_FN_ERROR_HEADER, path);
                }
                response
            }
        }
    }

    /// 429 with `retry-after` (and OpenAI's `retry-after-ms` on `/v1/*`).
    pub fn too_many(self, wait: Duration, whom: &str, path: &str) -> Response {
        let seconds = wait.as_secs_f64().max(0.001);
        let code = match self {
            // What OpenAI's SDKs expect, so their back-off works unchanged.
            Shape::OpenAi => "rate_limit_exceeded",
            Shape::Api | Shape::ServerFn => "too_many_requests",
        };
        let message = format!("Too many requests from {whom}; retry in {seconds:.2}s.");
        let mut response = self.error(StatusCode::TOO_MANY_REQUESTS, code, &message, path);
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&(seconds.ceil() as u64).max(1).to_string()) {
            headers.insert(header::RETRY_AFTER, v);
        }
        if self == Shape::OpenAi {
            if let Ok(v) = HeaderValue::from_str(&((seconds * 1000.0).ceil() as u64).to_string()) {
                headers.insert("retry-after-ms", v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_documents_and_pages_are_not_guarded() {
        for path in [
            "/api/quota/status",
            "/api/fn/send_message",
            "/api/session",
            "/v1/models",
            "/v1",
            "/api/nope",
        ] {
            assert!(guarded(path), "{path}");
        }
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/openapi.json",
            "/api/docs",
            "/",
            "/dashboard",
            "/pkg/app.wasm",
            "/v1x",
        ] {
            assert!(!guarded(path), "{path}");
        }
        assert_eq!(Shape::of("/v1/chat/completions"), Shape::OpenAi);
        assert_eq!(Shape::of("/api/fn/whoami"), Shape::ServerFn);
        assert_eq!(Shape::of("/api/quota/check"), Shape::Api);
    }
}
