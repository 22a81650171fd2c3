//! The HTTP API: JSON everywhere, errors as `{"error": {"code", "message"}}`.

pub mod admin;
pub mod error;
pub mod extract;
pub mod proxy;
pub mod quota;
pub mod rate_limit;
pub mod session;
pub mod ws;

use crate::chat::ConversationStore;
use crate::service::QuotaService;
use crate::upstream::TrackedClient;
use axum::extract::FromRef;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use error::ApiError;
use serde_json::json;
use std::sync::Arc;

/// Largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    pub service: QuotaService,
    pub upstream: TrackedClient,
    pub chat: Arc<ConversationStore>,
}

impl AppState {
    /// The state for `service`, with an upstream client built from its config.
    pub fn new(service: QuotaService) -> Result<Self, reqwest::Error> {
        let upstream = TrackedClient::new(service.config().upstream.clone(), service.clone())?;
        Ok(Self {
            service,
            upstream,
            chat: Arc::default(),
        })
    }
}

impl FromRef<AppState> for QuotaService {
    fn from_ref(state: &AppState) -> Self {
        state.service.clone()
    }
}

impl FromRef<AppState> for TrackedClient {
    fn from_ref(state: &AppState) -> Self {
        state.upstream.clone()
    }
}

pub fn router(state: AppState) -> Router {
    let proxy = Router::<AppState>::new()
        .route("/v1/{*path}", any(proxy::proxy))
        .layer(DefaultBodyLimit::max(proxy::MAX_PROXY_BODY_BYTES));
    Router::<AppState>::new()
        .route("/api/admin/workspaces", post(admin::create_workspace))
        .route(
            "/api/admin/workspaces/{id}/rotate-key",
            post(admin::rotate_key),
        )
        .route(
            "/api/admin/workspaces/{id}/revoke",
            post(admin::revoke_keys),
        )
        .route("/api/quota/status", get(quota::status))
        .route("/api/quota/check", get(quota::check))
        .route("/api/quota/notifications", get(quota::notifications))
        .route("/api/quota/usage", get(quota::usage))
        .route("/api/quota/record", post(quota::record))
        .route("/api/quota/record/batch", post(quota::record_batch))
        .route("/api/quota/reset", post(quota::reset))
        .route("/api/quota/ws", get(ws::quota_ws))
        .route(
            "/api/session",
            post(session::sign_in).delete(session::sign_out),
        )
        .route("/api/{*rest}", any(unknown_endpoint))
        .route_layer(axum::middleware::from_fn_with_state(
            rate_limit::ApiRateLimits::new(
                state.service.config().api_rate_per_key,
                state.service.config().api_rate_per_ip,
            ),
            rate_limit::enforce,
        ))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(proxy)
        .with_state(state)
}

async fn healthz(State(service): State<QuotaService>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "workspaces": service.engine().workspace_count(),
        "store": if service.engine().store_healthy() { "ok" } else { "unreachable" },
    }))
}

/// Prometheus text format.
async fn metrics(
    State(service): State<QuotaService>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        service.render_metrics(),
    )
}

/// Ready to serve: the store answers.
async fn readyz(State(service): State<QuotaService>) -> (StatusCode, Json<serde_json::Value>) {
    if service.store_ready().await {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "store": "unreachable"})),
        )
    }
}

async fn unknown_endpoint() -> ApiError {
    ApiError::not_found("No such API endpoint; see the README for the list.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not accept that HTTP method.",
    )
}
