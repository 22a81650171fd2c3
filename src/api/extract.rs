//! Extractors that turn bad input into clear 4xx answers instead of axum's
//! plain-text rejections.

use super::error::ApiError;
use crate::service::{AuthError, QuotaService, Resolved};
use crate::wire::Caller;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A JSON body whose errors name the offending field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Two steps: any JSON first (syntax, content type, size), then the shape,
        // so that a non-object body gets a plain answer and field errors carry
        // the field's path.
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "invalid_body",
                "The body must be a JSON object.",
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = if path == "." {
                    format!("The JSON body does not have the expected shape: {inner}")
                } else {
                    format!("The JSON body does not have the expected shape: {path}: {inner}")
                };
                ApiError::bad_request("invalid_body", message)
            })
    }
}

/// Parsing into `serde_json::Value` first means a data error cannot happen
/// here; shape errors are answered by `ApiJson` with the field's path.
fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "invalid_json",
            format!(
                "The body is not valid JSON: {}",
                e.body_text()
                    .trim_start_matches("Failed to parse the request body as JSON: ")
            ),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`.",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is larger than this endpoint accepts.",
            )
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// Query parameters whose errors name the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "The query string is not valid: {}",
                        e.body_text()
                            .trim_start_matches("Failed to deserialize query string: ")
                    ),
                )
            })
    }
}

/// The one path that takes its key as `?token=`: browsers cannot set headers
/// on a WebSocket.
pub const WS_PATH: &str = "/api/quota/ws";

/// A request's resolved credential, cached in its extensions by
/// [`super::guard`] so every later reader gets the same answer without
/// resolving again.
#[derive(Clone, Debug)]
pub struct Resolution(pub Result<Resolved, AuthError>);

/// The caller of a request: the cached [`Resolution`], else resolved now
/// (the headers, plus `?token=` on [`WS_PATH`]). REST, the WebSocket,
/// server functions and the guard's rate limits and CSRF check all read it
/// through here.
pub async fn resolve_parts(service: &QuotaService, parts: &Parts) -> Result<Resolved, AuthError> {
    if let Some(Resolution(cached)) = parts.extensions.get::<Resolution>() {
        return cached.clone();
    }
    let token = if parts.uri.path() == WS_PATH {
        #[derive(Deserialize)]
        struct TokenQuery {
            token: Option<String>,
        }
        // Fails only on a repeated `token`: two credentials.
        Query::<TokenQuery>::try_from_uri(&parts.uri)
            .map_err(|_| AuthError::Ambiguous)?
            .0
            .token
    } else {
        None
    };
    service
        .resolve_credential(&parts.headers, token.as_deref())
        .await
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::unauthorized(error.to_string())
    }
}

/// The request's credential, resolved, or why not (never rejects: the
/// caller decides what a missing or stale credential means).
pub struct Credentials(pub Result<Resolved, AuthError>);

impl<S> FromRequestParts<S> for Credentials
where
    QuotaService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let service = QuotaService::from_ref(state);
        Ok(Credentials(resolve_parts(&service, parts).await))
    }
}

/// The caller of an API route: bearer key, or session cookie; 401 otherwise.
pub struct Auth(pub Caller);

impl<S> FromRequestParts<S> for Auth
where
    QuotaService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(Credentials(resolved)) = Credentials::from_request_parts(parts, state).await;
        Ok(Auth(resolved?.caller))
    }
}

/// The admin, or 403 for a workspace key.
pub struct AdminAuth;

impl<S> FromRequestParts<S> for AdminAuth
where
    QuotaService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(Credentials(resolved)) = Credentials::from_request_parts(parts, state).await;
        AdminAuth::check(resolved)
    }
}

impl AdminAuth {
    /// The admin, from a resolved credential: 401 without a usable one, 403
    /// for a workspace. REST (this extractor) and the admin page's server
    /// functions decide it here, the same way.
    pub fn check(resolved: Result<Resolved, AuthError>) -> Result<Self, ApiError> {
        match resolved?.caller {
            Caller::Admin => Ok(AdminAuth),
            Caller::Workspace(_) => Err(ApiError::forbidden(
                "This endpoint needs the admin key; a workspace key cannot use it.",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceQuery {
    pub workspace_id: Option<String>,
    /// Accepted (and ignored here) so the WebSocket can take its key as `?token=`.
    #[serde(default)]
    pub token: Option<String>,
    /// Minutes of history for `/api/quota/usage`.
    #[serde(default)]
    pub minutes: Option<u64>,
}

/// Which workspace a request is about: a workspace key's own, or the one an
/// admin names with `?workspace_id=`.
pub fn target_workspace(
    service: &QuotaService,
    caller: &Caller,
    requested: Option<&str>,
) -> Result<String, ApiError> {
    if let Some(id) = requested {
        validate_workspace_id(id)?;
    }
    match (caller, requested) {
        (Caller::Workspace(own), None) => Ok(own.clone()),
        (Caller::Workspace(own), Some(id)) if id == own => Ok(own.clone()),
        (Caller::Workspace(_), Some(_)) => Err(ApiError::forbidden(
            "A workspace key can only see its own workspace.",
        )),
        (Caller::Admin, None) => Err(ApiError::bad_request(
            "missing_workspace_id",
            "The admin key must name a workspace with `?workspace_id=`.",
        )),
        (Caller::Admin, Some(id)) if service.engine().contains(id) => Ok(id.to_string()),
        (Caller::Admin, Some(id)) => Err(ApiError::not_found(format!(
            "workspace `{id}` does not exist"
        ))),
    }
}

/// Workspace ids are 1–64 characters of `[a-z0-9_-]`.
pub fn validate_workspace_id(id: &str) -> Result<(), ApiError> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_workspace_id",
            "A workspace id is 1 to 64 characters of lowercase letters, digits, `_` and `-`.",
        ))
    }
}
