//! Under Redis, a key created or rotated on another instance a moment ago
//! must work here at once, before its event arrives: this layer looks an
//! unknown bearer key (or `?token=`) up in Redis before the request is
//! authenticated (`QuotaService::learn_key`: bounded by a negative cache and
//! a lookup budget). Without Redis, or for a key known here, it costs one
//! hash-map read. It only ever adds a key Redis holds; refusing is left to
//! the extractors.

use super::extract::bearer_key;
use crate::service::QuotaService;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

pub async fn learn_unknown_keys(
    State(service): State<QuotaService>,
    request: Request,
    next: Next,
) -> Response {
    if service.is_shared() {
        // A malformed header is refused later by the extractor, with its
        // own message; nothing to look up here.
        let key = bearer_key(request.headers())
            .ok()
            .flatten()
            .or_else(|| token_query(request.uri()));
        if let Some(key) = key {
            service.learn_key(&key).await;
        }
    }
    next.run(request).await
}

/// `token=` of the query string (the WebSocket's key), decoded the way the
/// handler's own query extractor decodes it.
fn token_query(uri: &axum::http::Uri) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Token {
        token: Option<String>,
    }
    axum::extract::Query::<Token>::try_from_uri(uri)
        .ok()
        .and_then(|q| q.0.token)
}
