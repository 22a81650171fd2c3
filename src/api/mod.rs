//! The HTTP API: JSON everywhere, errors as `{"error": {"code", "message"}}`.

pub mod admin;
pub mod admin_reads;
pub mod client_addr;
pub mod csrf;
pub mod doc_text;
pub mod docs_page;
pub mod error;
pub mod export;
pub mod extract;
pub mod guard;
pub mod openapi;
pub mod proxy;
pub mod quota;
pub mod rate_limit;
pub mod record;
pub mod reserve;
pub mod settings;
pub mod sign_in;
pub mod ws;

use crate::chat::ConversationStore;
use crate::service::QuotaService;
use crate::upstream::TrackedClient;
use axum::extract::FromRef;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use error::ApiError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    pub service: QuotaService,
    pub upstream: TrackedClient,
    pub chat: Arc<ConversationStore>,
    /// The proxy's allowlist and in-flight caps.
    pub proxy: proxy::ProxyState,
}

impl AppState {
    /// The state for `service`, with an upstream client built from its config.
    pub fn new(service: QuotaService) -> Result<Self, reqwest::Error> {
        let upstream = TrackedClient::new(service.config().upstream.clone(), service.clone())?;
        Ok(Self {
            proxy: proxy::ProxyState::new(&service.config().proxy),
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

impl FromRef<AppState> for proxy::ProxyState {
    fn from_ref(state: &AppState) -> Self {
        state.proxy.clone()
    }
}

pub fn router(state: AppState) -> Router {
    // One route for all of `/v1`: the proxy checks the path and method itself
    // against its allowlist (which the operator can extend), so that anything
    // refused gets OpenAI's error shape. It reads its own body, after
    // authenticating, with its own size cap (`proxy::MAX_PROXY_BODY_BYTES`).
    // `/v1` and `/v1/` too, which the wildcard does not match: an SDK pointed
    // at the bare base URL gets OpenAI's shape (`invalid_path`), not a page.
    let proxy = Router::<AppState>::new()
        .route("/v1", any(proxy::proxy))
        .route("/v1/", any(proxy::proxy))
        .route("/v1/{*path}", any(proxy::proxy));
    Router::<AppState>::new()
        .route(
            "/api/admin/workspaces",
            get(admin_reads::list_workspaces).post(admin::create_workspace),
        )
        .route("/api/admin/audit", get(admin_reads::audit_trail))
        .route(
            "/api/admin/workspaces/{id}",
            get(settings::workspace_settings).patch(settings::update_workspace_settings),
        )
        .route("/api/admin/prices", get(settings::prices))
        .route(
            "/api/admin/workspaces/{id}/rotate-key",
            post(admin::rotate_key),
        )
        .route(
            "/api/admin/workspaces/{id}/revoke",
            post(admin::revoke_keys),
        )
        .route(
            "/api/admin/sessions",
            get(admin::list_sessions).delete(admin::end_workspace_sessions),
        )
        .route("/api/admin/sessions/{handle}", delete(admin::end_session))
        .route("/api/quota/status", get(quota::status))
        .route("/api/quota/check", get(quota::check))
        .route("/api/quota/notifications", get(quota::notifications))
        .route("/api/quota/usage", get(quota::usage))
        .route("/api/quota/usage.csv", get(export::usage_csv))
        .route("/api/quota/reserve", post(reserve::reserve))
        .route("/api/quota/record", post(record::record))
        .route("/api/quota/record/batch", post(record::record_batch))
        .route("/api/quota/reset", post(quota::reset))
        .route("/api/quota/ws", get(ws::quota_ws))
        .route(
            sign_in::SESSION_PATH,
            post(sign_in::sign_in).delete(sign_in::sign_out),
        )
        .route("/api/{*rest}", any(unknown_endpoint))
        // Rate limits and the CSRF check are `guard::guard`, layered by
        // `server::app` over these routes, the server functions and the proxy
        // alike (the probes and the fixed documents below are exempt).
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/docs", get(docs_page::docs_page))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(proxy)
        .with_state(state)
}

/// Answer of `GET /healthz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: String,
    /// Workspaces this instance knows.
    pub workspaces: usize,
    /// `ok`, or `unreachable` when the last write to the store failed (the
    /// workspaces then show DEGRADED).
    pub store: String,
}

/// Answer of `GET /readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// `unreachable` when not ready; absent when ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive, with the workspace count and the store's health.", body = Health)),
)]
async fn healthz(State(service): State<QuotaService>) -> Json<Health> {
    let store = if service.engine().store_healthy() {
        "ok"
    } else {
        "unreachable"
    };
    Json(Health {
        status: "ok".to_string(),
        workspaces: service.engine().workspace_count(),
        store: store.to_string(),
    })
}

/// Prometheus metrics.
///
/// Records, admissions, workspaces per status, WebSocket connections,
/// upstream and store latency, webhook deliveries. No key: keep it internal.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
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

/// Readiness: the store answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve.", body = Readiness),
        (status = 503, description = "Not ready: the store does not answer.", body = Readiness),
    ),
)]
async fn readyz(State(service): State<QuotaService>) -> (StatusCode, Json<Readiness>) {
    if service.store_ready().await {
        let ready = Readiness {
            status: "ready".to_string(),
            store: None,
        };
        (StatusCode::OK, Json(ready))
    } else {
        let not_ready = Readiness {
            status: "not_ready".to_string(),
            store: Some("unreachable".to_string()),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(not_ready))
    }
}

async fn unknown_endpoint() -> ApiError {
    ApiError::not_found("No such API endpoint; see /api/docs for the list.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not accept that HTTP method.",
    )
}
