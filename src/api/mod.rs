//! The HTTP API: JSON everywhere, errors as `{"error": {"code", "message"}}`.

pub mod admin;
pub mod error;
pub mod extract;
pub mod quota;
pub mod ws;

use crate::service::QuotaService;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use error::ApiError;
use serde_json::json;

/// Largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(service: QuotaService) -> Router {
    Router::new()
        .route("/api/admin/workspaces", post(admin::create_workspace))
        .route("/api/quota/status", get(quota::status))
        .route("/api/quota/check", get(quota::check))
        .route("/api/quota/notifications", get(quota::notifications))
        .route("/api/quota/usage", get(quota::usage))
        .route("/api/quota/record", post(quota::record))
        .route("/api/quota/reset", post(quota::reset))
        .route("/api/quota/ws", get(ws::quota_ws))
        .route("/api/{*rest}", any(unknown_endpoint))
        .route("/healthz", get(healthz))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

async fn healthz(State(service): State<QuotaService>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "workspaces": service.engine().workspace_count(),
        "store": if service.engine().store_healthy() { "ok" } else { "unreachable" },
    }))
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
