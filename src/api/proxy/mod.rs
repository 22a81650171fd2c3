//! `/v1/*`: an OpenAI-compatible proxy. Point any OpenAI SDK's base URL at
//! `http://<quota-alert>/v1` and use a workspace key as its API key.
//!
//! Every workspace shares the server's one upstream key, so the proxy is a
//! door into one OpenAI organisation for all of them. A request goes through,
//! in this order, each step answering in OpenAI's error shape when it refuses:
//!
//! 1. the path is checked (`upstream::policy::path`): 400 `invalid_path`;
//! 2. the endpoint must be on the allowlist (`upstream::policy::endpoints`):
//!    404 / 405 `endpoint_not_available`;
//! 3. the caller must hold a workspace key ([`proxy_caller`]): 401 / 403;
//! 4. the workspace and the instance must be under their in-flight caps
//!    ([`inflight`]): 429 `too_many_concurrent_requests` / 503;
//! 5. only now is the body read (32 MiB, one deadline): 413 / 408;
//! 6. bodies that would store or reference stored objects are refused
//!    (`upstream::policy::stored`): 400 `unsupported_parameter`;
//! 7. the workspace's quota admits it, or 429 with `retry-after`
//!    (`TrackedClient::forward`), and it is forwarded with an allowlist of
//!    headers to a URL built from the matched rule.
//!
//! Nothing refused before step 7 is counted or reaches OpenAI. Upstream
//! answers (errors included) pass through as they came.

pub mod errors;
pub mod inflight;

pub use errors::{openai_error, OpenAiError, OpenAiErrorBody};

use crate::config::ProxyConfig;
use crate::service::{AuthError, QuotaService};
use crate::upstream::policy::{self, Allowlist, Decision};
use crate::upstream::{ForwardRequest, ForwardedBody, TrackedClient};
use crate::wire::Caller;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use errors::{forward_error, openai_error_param, retry_later};
use futures_util::StreamExt;
use inflight::{InflightLimits, OverCap};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body forwarded (OpenAI's own upload limit for audio is 25 MB).
pub const MAX_PROXY_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What the proxy decides with, built once from the config.
#[derive(Clone)]
pub struct ProxyState {
    allowlist: Arc<Allowlist>,
    pub inflight: InflightLimits,
}

impl ProxyState {
    pub fn new(config: &ProxyConfig) -> Self {
        Self {
            allowlist: Arc::new(Allowlist::new(&config.extra_endpoints)),
            inflight: InflightLimits::new(config.max_inflight, config.max_inflight_per_workspace),
        }
    }
}

/// OpenAI API calls whose usage quota-alert meters, accounted to the
/// workspace whose key they carry.
///
/// Point an OpenAI SDK's base URL at `/v1` and use a workspace key as its API
/// key. Only these endpoints are forwarded: `POST /v1/chat/completions`,
/// `POST /v1/completions`, `POST /v1/embeddings`, `POST /v1/responses`,
/// `POST /v1/moderations`, `GET /v1/models`, `GET /v1/models/{id}` (plus any
/// the operator adds with `QUOTA_PROXY_EXTRA_ENDPOINTS`); any other path is a
/// 404 and another method on one of them a 405, `endpoint_not_available`,
/// never forwarded nor counted. Stored objects are not available: every
/// workspace shares one OpenAI organisation, so `store: true`,
/// `previous_response_id`, `conversation`, `background: true`, reusable
/// `prompt`s, input items that are only an id, and file, vector-store or
/// container ids (anywhere in the body) are refused with a 400
/// `unsupported_parameter` naming the field, and `POST /v1/responses` is sent
/// with `store: false` unless the client said so itself. Only `content-type`,
/// `accept`, `user-agent`, `openai-beta` and (namespaced by workspace)
/// `idempotency-key` are passed on; `openai-organization`, `openai-project`
/// and every other header stay here (a per-workspace upstream project is not
/// supported yet). The request is admitted against the workspace's quota
/// first; a refused one gets a local 429 in OpenAI's own error shape, with
/// `retry-after` and `retry-after-ms`, so SDK back-off works unchanged.
/// Admitted requests are forwarded with the server's OpenAI key, and the
/// answer (errors and `stream: true` event streams included) comes back as
/// OpenAI sent it, then is recorded. Errors raised here use OpenAI's shape
/// (`OpenAiError`), not the API's.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/v1/{path}",
    tag = "proxy",
    params(("path" = String, Path, description = "The OpenAI API path after `/v1/`, e.g. `chat/completions`: one of the allowed endpoints. Segments are letters, digits, `.`, `_`, `~`, `:` and `-`. The query string is forwarded as it is.")),
    request_body(
        content = inline(Option<serde_json::Value>),
        description = "What the OpenAI endpoint takes (JSON; at most 32 MiB, read only after the key is checked). Chat completions and responses must be JSON objects, and are forwarded as the JSON checked. None for a GET.",
    ),
    responses(
        (status = 200, description = "OpenAI's answer, passed through with its status and headers (less `openai-organization`, `openai-project` and `set-cookie`; `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` are the workspace's own per-minute budget in quota-alert, not the shared organisation's): JSON, or `text/event-stream` for `stream: true`. OpenAI's own errors (its 4xx and 5xx, its own 429s included) pass through unchanged too.",
            content(
                (serde_json::Value = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "`invalid_path`: the path has `..`, `.`, `//`, a trailing `/`, `\\`, `@`, control characters, an encoded `/`, `\\` or `.`, or other characters outside a path segment's; or the request is in absolute form. `unsupported_parameter` (`param` names the field): the body would store or use a stored object (`store`, `previous_response_id`, `conversation`, `background`, `prompt`, an input item that is only an id, file or vector-store ids anywhere in the body, container ids). `invalid_body`: a chat completion or response whose body is not a JSON object. `invalid_model` (`param` `model`): a `model` of more than 200 characters or with control characters. `invalid_user` (`param` `X-Quota-User` or `user`): an end-user label that is not 1 to 200 characters without control characters.", body = OpenAiError),
        (status = 401, description = "`invalid_api_key`: no key, a malformed `Authorization` header, a key that is not valid, or a workspace that no longer exists.", body = OpenAiError),
        (status = 403, description = "`workspace_key_required`: the admin key has no workspace to account usage to.", body = OpenAiError),
        (status = 404, description = "`endpoint_not_available`: the path is not one quota-alert forwards.", body = OpenAiError),
        (status = 405, description = "`endpoint_not_available`: the path is forwarded, but not with this method (`allow` lists the methods that are).", body = OpenAiError),
        (status = 408, description = "`request_timeout`: the whole body did not arrive within `QUOTA_HTTP_BODY_TIMEOUT_S` (default 30 s).", body = OpenAiError),
        (status = 413, description = "`payload_too_large`: the request body is over 32 MiB.", body = OpenAiError),
        (status = 429, description = "Refused here, before reaching OpenAI: the workspace already has `QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE` requests in flight (`type` `requests`, `code` `too_many_concurrent_requests`), is `RATE_LIMITED` (`type` `requests`, `code` `rate_limit_exceeded`) or `QUOTA_EXCEEDED` (`type` and `code` `insufficient_quota`). The message says when to retry.",
            body = OpenAiError,
            headers(
                ("retry-after" = u64, description = "Whole seconds until a request may be admitted (rounded up, never early)."),
                ("retry-after-ms" = u64, description = "The same in milliseconds, which OpenAI's SDKs prefer (not for `too_many_concurrent_requests`)."),
            )),
        (status = 502, description = "`upstream_unreachable`: OpenAI could not be reached.", body = OpenAiError),
        (status = 503, description = "`quota_store_unavailable`: the shared quota store (Redis) is unreachable and the failure policy is closed. `proxy_overloaded`: this instance already has `QUOTA_PROXY_MAX_INFLIGHT` proxied requests in flight.", body = OpenAiError,
            headers(("retry-after" = u64, description = "Seconds to wait (5 for the store, 1 when overloaded)."))),
        (status = 504, description = "`upstream_timeout`: OpenAI did not answer in time.", body = OpenAiError),
    ),
    security(("workspace_key" = [])),
)]
pub async fn proxy(
    State(service): State<QuotaService>,
    State(client): State<TrackedClient>,
    State(state): State<ProxyState>,
    request: Request,
) -> Response {
    // The body stays unread until the caller is known and within its caps.
    let (parts, body) = request.into_parts();

    // An absolute-form request target (`POST http://host/v1/... HTTP/1.1`) is
    // for forward proxies; this is not one. (HTTP/2 always carries scheme and
    // authority, so only HTTP/1 is judged by them.)
    if parts.version < Version::HTTP_2 && parts.uri.authority().is_some() {
        return invalid_path("The request target must be a path (`/v1/...`), not an absolute URL.");
    }
    let segments = match policy::request_segments(parts.uri.path()) {
        Ok(segments) => segments,
        Err(e) => return invalid_path(&e.0),
    };
    let endpoint = match state.allowlist.decide(&parts.method, &segments) {
        Decision::Forward(matched) => matched,
        Decision::WrongMethod(allowed) => {
            let mut response = not_available(
                StatusCode::METHOD_NOT_ALLOWED,
                &parts.method,
                parts.uri.path(),
            );
            let allow = allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
        Decision::Unknown => {
            return not_available(StatusCode::NOT_FOUND, &parts.method, parts.uri.path())
        }
    };

    let workspace = match proxy_caller(&service, &parts.headers).await {
        Ok(workspace) => workspace,
        Err(refused) => return refused.into_response(),
    };
    let permit = match state.inflight.try_acquire(&workspace) {
        Ok(permit) => permit,
        Err(OverCap::Workspace) => {
            return retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "too_many_concurrent_requests",
                "This workspace has too many requests in flight through quota-alert at once; \
                 wait for one to finish. Please try again in 1s.",
                1,
            )
        }
        Err(OverCap::Overall) => {
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "proxy_overloaded",
                "quota-alert has too many requests in flight; please try again in 1s.",
                1,
            )
        }
    };

    let deadline = Duration::from_millis(service.config().http.body_read_ms);
    let body =
        match crate::server::slow_clients::read_body(body, MAX_PROXY_BODY_BYTES, deadline).await {
            Ok(body) => body,
            Err((status, code, message)) => {
                return openai_error(status, "invalid_request_error", code, &message)
            }
        };
    let mut headers = parts.headers;
    let body = match policy::check_body(endpoint.body_policy, &body) {
        Ok(None) => body,
        Ok(Some(checked)) => {
            // What was checked is a JSON object, and is what is sent.
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            checked
        }
        Err(refusal) => {
            return openai_error_param(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                refusal.code,
                refusal.param,
                &refusal.message,
            )
        }
    };

    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{}?{query}", endpoint.upstream_path),
        None => endpoint.upstream_path,
    };
    let request = ForwardRequest {
        method: parts.method,
        path_and_query,
        headers,
        body,
    };
    match client.forward(&workspace, request).await {
        Ok(forwarded) => {
            let mut response = match forwarded.body {
                ForwardedBody::Full(bytes) => Response::new(Body::from(bytes)),
                // The stream holds the in-flight permit until it ends or is
                // dropped (the client went away).
                ForwardedBody::Stream(stream) => {
                    Response::new(Body::from_stream(stream.map(move |item| {
                        let _held = &permit;
                        item
                    })))
                }
            };
            *response.status_mut() = forwarded.status;
            *response.headers_mut() = forwarded.headers;
            if let Ok(snapshot) = service.snapshot(&workspace) {
                own_rate_limit_headers(response.headers_mut(), &snapshot);
            }
            response
        }
        Err(error) => forward_error(error),
    }
}

/// OpenAI's `x-ratelimit-*` headers, filled with the workspace's own
/// per-minute budget in quota-alert (after this request was counted), in
/// place of the upstream's, which describe the organisation every tenant
/// shares. SDKs and apps that pace themselves on them pace on what this
/// workspace may still send. Resets are Go-style durations, as OpenAI's.
pub fn own_rate_limit_headers(headers: &mut HeaderMap, snapshot: &crate::wire::QuotaSnapshot) {
    // Names built once, numbers written without a format string: these run
    // on every proxied answer.
    const NAMES: [[&str; 3]; 2] = [
        [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ],
        [
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ],
    ];
    let windows = [&snapshot.requests_per_minute, &snapshot.tokens_per_minute];
    for (names, window) in NAMES.iter().zip(windows) {
        // What the next call can still have: tokens held for calls in
        // flight are spoken for.
        let remaining = window
            .limit
            .saturating_sub(window.current.saturating_add(window.reserved));
        headers.insert(
            header::HeaderName::from_static(names[0]),
            HeaderValue::from(window.limit),
        );
        headers.insert(
            header::HeaderName::from_static(names[1]),
            HeaderValue::from(remaining),
        );
        if let Ok(reset) = HeaderValue::from_str(&format!("{:.3}s", window.resets_in_s.max(0.0))) {
            headers.insert(header::HeaderName::from_static(names[2]), reset);
        }
    }
}

/// The workspace a proxied request is accounted to, or why it is refused.
///
/// A bearer key only: without an `Authorization` header the browser session
/// cookie is not consulted, so a page on another site cannot spend a signed-in
/// person's quota through their browser. Kept to this one function so that
/// credential parsing can change in one place.
pub async fn proxy_caller(
    service: &QuotaService,
    headers: &HeaderMap,
) -> Result<String, ProxyAuthError> {
    match service.resolve_credential(headers, None).await {
        Ok(resolved) if resolved.credential.from_cookie() => Err(ProxyAuthError::Missing),
        Ok(resolved) => match resolved.caller {
            Caller::Workspace(id) => Ok(id),
            Caller::Admin => Err(ProxyAuthError::AdminKey),
        },
        Err(AuthError::InvalidKey) => Err(ProxyAuthError::InvalidKey),
        Err(AuthError::Missing | AuthError::SessionExpired) => Err(ProxyAuthError::Missing),
        Err(AuthError::Malformed | AuthError::Ambiguous) => Err(ProxyAuthError::Malformed),
    }
}

/// Why [`proxy_caller`] refused; answered in OpenAI's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAuthError {
    Missing,
    Malformed,
    InvalidKey,
    AdminKey,
}

impl IntoResponse for ProxyAuthError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Missing API key: use your quota-alert workspace key as the bearer token.",
            ),
            Self::Malformed => (
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Malformed API key: send `Authorization: Bearer <quota-alert workspace key>`.",
            ),
            Self::InvalidKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Incorrect API key provided: use your quota-alert workspace key.",
            ),
            Self::AdminKey => (
                StatusCode::FORBIDDEN,
                "workspace_key_required",
                "The admin key has no workspace to account usage to: use a workspace key.",
            ),
        };
        openai_error(status, "invalid_request_error", code, message)
    }
}

fn invalid_path(message: &str) -> Response {
    openai_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_path",
        message,
    )
}

fn not_available(status: StatusCode, method: &axum::http::Method, path: &str) -> Response {
    openai_error(
        status,
        "invalid_request_error",
        "endpoint_not_available",
        &format!(
            "`{method} {path}` is not available through quota-alert: every workspace here shares \
             one OpenAI organisation, so only the endpoints whose usage quota-alert meters are \
             forwarded (chat completions, completions, embeddings, responses, moderations and \
             models, plus any the operator added)."
        ),
    )
}
