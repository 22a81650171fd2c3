//! The OpenAPI document of the REST API, served at `GET /api/openapi.json` and
//! rendered for people at `GET /api/docs` (see `docs_page.rs`).
//!
//! The paths are the `#[utoipa::path]` annotations on the handlers themselves,
//! and the schemas are derived from the wire types, so the document cannot
//! drift from the code far: a handler that changes its body type changes its
//! schema. `tests/openapi.rs` checks that every route of [`super::router`] is
//! here.

use super::error::ApiError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

const DESCRIPTION: &str = "Tracks OpenAI API usage per workspace and tells people, live, before and when they hit a limit.

JSON everywhere. Every error of this API is `{\"error\": {\"code\", \"message\"}}` (the `ApiError` schema) with a 4xx or 5xx status; the `/v1` proxy answers its own errors in OpenAI's shape instead (`OpenAiError`), so OpenAI SDKs read them unchanged.

Authenticate with `Authorization: Bearer <key>`. A workspace key sees only its own workspace; the admin key (`QUOTA_ADMIN_RESET_KEY`) names one with `?workspace_id=`. A browser signed in through `POST /api/session` may send its `qa_session` cookie instead of the header. Send one credential: a key wins over the cookie, and two keys or two session cookies are refused.

Requests that change something with the cookie (any method but GET, HEAD and OPTIONS), and every sign-in and sign-out, must come from this server's own pages: one sent by another site gets 403 `cross_site_request`. Requests with neither `Sec-Fetch-Site` nor `Origin` (curl, SDKs) and requests with a bearer key are not affected.";

#[derive(OpenApi)]
#[openapi(
    info(title = "quota-alert", version = env!("CARGO_PKG_VERSION"), description = DESCRIPTION),
    paths(
        super::quota::status,
        super::quota::check,
        super::quota::notifications,
        super::quota::usage,
        super::export::usage_csv,
        super::reserve::reserve,
        super::settings::workspace_settings,
        super::settings::prices,
        super::settings::update_workspace_settings,
        super::record::record,
        super::record::record_batch,
        super::quota::reset,
        super::ws::quota_ws,
        super::admin_reads::list_workspaces,
        super::admin::create_workspace,
        super::admin::rotate_key,
        super::admin::revoke_keys,
        super::admin::list_sessions,
        super::admin::end_session,
        super::admin::end_workspace_sessions,
        super::admin_reads::audit_trail,
        super::sign_in::sign_in,
        super::sign_in::sign_out,
        super::proxy::proxy,
        super::healthz,
        super::readyz,
        super::metrics,
        openapi_json,
        super::docs_page::docs_page,
    ),
    // Reached through the WebSocket's 101 and the error answers anyway; named
    // here so the schema list does not depend on which operation mentions them.
    components(schemas(crate::wire::ErrorBody, crate::wire::WsMessage, super::proxy::OpenAiError)),
    modifiers(&SecuritySchemes, &UniqueOperationIds),
    tags(
        (name = "quota", description = "A workspace's quota: read it, ask before a call, record the outcome after, follow it live."),
        (name = "admin", description = "Workspace and browser session management. Admin key only."),
        (name = "session", description = "Browser sessions: a cookie in place of the bearer key."),
        (name = "proxy", description = "An OpenAI-compatible proxy that enforces the quota before calls reach OpenAI and records them after."),
        (name = "operations", description = "Liveness, readiness and metrics, for load balancers and monitoring. No key."),
        (name = "docs", description = "This document, as JSON and as a page."),
    ),
)]
pub struct ApiDoc;

/// The three ways to authenticate, named by the operations' `security`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "workspace_key",
            bearer("A workspace key (`qa_…`), as `Authorization: Bearer <key>`. Created by `POST /api/admin/workspaces`, replaced by rotate-key; sees only its own workspace."),
        );
        components.add_security_scheme(
            "admin_key",
            bearer("The admin key (`QUOTA_ADMIN_RESET_KEY`), as `Authorization: Bearer <key>`. Manages workspaces and names the workspace to act on with `?workspace_id=`."),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::browser_session::SESSION_COOKIE,
                "The HttpOnly cookie set by `POST /api/session`; acts as the key it was opened with.",
            ))),
        );
    }
}

/// utoipa gives every method of a multi-method path (`/v1/{path}`) the
/// handler's name as `operationId`, but OpenAPI wants them unique: suffix the
/// method where a name repeats.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for item in openapi.paths.paths.values() {
            for (_, operation) in operations(item) {
                if let Some(id) = &operation.operation_id {
                    *seen.entry(id.clone()).or_default() += 1;
                }
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for (method, operation) in operations_mut(item) {
                if let Some(id) = &mut operation.operation_id {
                    if seen.get(id.as_str()).is_some_and(|&count| count > 1) {
                        *id = format!("{id}_{method}");
                    }
                }
            }
        }
    }
}

/// The operations of a path item with their lowercase method, in a fixed order.
pub fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("post", &item.post),
        ("put", &item.put),
        ("patch", &item.patch),
        ("delete", &item.delete),
        ("head", &item.head),
        ("options", &item.options),
        ("trace", &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|op| (method, op)))
    .collect()
}

fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("post", &mut item.post),
        ("put", &mut item.put),
        ("patch", &mut item.patch),
        ("delete", &mut item.delete),
        ("head", &mut item.head),
        ("options", &mut item.options),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|op| (method, op)))
    .collect()
}

/// The document. It is fixed at compile time, so it is built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// The document as served: pretty JSON, built once.
fn document_json() -> Result<&'static str, String> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().map_err(|e| e.to_string()))
        .as_deref()
        .map_err(Clone::clone)
}

/// This document.
///
/// OpenAPI 3.1, generated from the handlers' annotations and the wire types.
/// The same document, rendered for people, is at `/api/docs`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "docs",
    responses(
        (status = 200, description = "The OpenAPI document.", content((serde_json::Value = "application/json"))),
    ),
)]
pub async fn openapi_json() -> Response {
    match document_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        // Serialising a document made of strings and maps does not fail; if it
        // ever did, say so rather than serve half a document.
        Err(error) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("The OpenAPI document could not be serialised: {error}"),
        )
        .into_response(),
    }
}
