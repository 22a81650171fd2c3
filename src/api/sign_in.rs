//! `POST /api/session` signs a browser in with a workspace or admin key (JSON
//! `{"api_key"}` or the sign-in form); `DELETE /api/session` signs it out.

use super::doc_text as text;
use super::error::ApiError;
use crate::browser_session::{clear_cookie, session_cookie, session_id_from_headers};
use crate::service::{OpenedSession, QuotaService};
use crate::wire::Caller;
use crate::wire::ErrorBody;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where browsers sign in and out. Sign-in and sign-out pass the CSRF check
/// (`api::csrf`) whatever credential they carry.
pub const SESSION_PATH: &str = "/api/session";

/// Body of `POST /api/session`, as JSON or as the sign-in form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A workspace key or the admin key.
    pub api_key: String,
}

/// The JSON answer to a successful sign-in (the form gets a redirect instead).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedIn {
    pub signed_in: bool,
    /// Signed in with the admin key.
    pub admin: bool,
    /// The workspace of a workspace key; null for the admin.
    pub workspace_id: Option<String>,
}

/// Sign a browser in.
///
/// Sets an HttpOnly `qa_session` cookie that REST, the WebSocket and server
/// functions accept instead of the bearer key. The session is stored (as the
/// digest of its id) before the answer, so it survives a restart and works on
/// every instance. JSON callers get `SignedIn`; the sign-in form
/// (`application/x-www-form-urlencoded`) is redirected to its landing page, or
/// back to `/signin?error=invalid_key` (or `?error=store_unavailable`).
/// A sign-in sent by another site's page is refused with 403
/// `cross_site_request` (login CSRF would sign the browser into the
/// attacker's workspace); scripts that send neither `Sec-Fetch-Site` nor
/// `Origin` are not affected.
#[utoipa::path(
    post,
    path = "/api/session",
    tag = "session",
    request_body(
        description = "The key, as JSON or as the sign-in form.",
        content(
            (SignIn = "application/json"),
            (SignIn = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 200, description = "Signed in (JSON).", body = SignedIn,
            headers(("set-cookie" = String, description = "`qa_session=<id>; Path=/; HttpOnly; SameSite=Lax; Max-Age=…` (plus `Secure` over TLS)."))),
        (status = 303, description = "Form sign-in: to `/` (workspace), `/dashboard` (admin), or back to `/signin?error=invalid_key` (or `?error=store_unavailable`).",
            headers(
                ("location" = String, description = "Where to go next."),
                ("set-cookie" = String, description = "`qa_session=<id>; Path=/; HttpOnly; SameSite=Lax; Max-Age=…` (plus `Secure` over TLS)."),
            )),
        (status = 400, description = text::BAD_BODY, body = ErrorBody),
        (status = 401, description = "`unauthorized`: the key is not valid (JSON sign-in).", body = ErrorBody),
        (status = 403, description = text::CROSS_SITE, body = ErrorBody),
        (status = 408, description = text::BODY_TIMEOUT, body = ErrorBody),
        (status = 413, description = text::PAYLOAD_TOO_LARGE, body = ErrorBody),
        (status = 415, description = text::UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = "`store_unavailable`: the session could not be stored, so no cookie was set (JSON sign-in); retry.", body = ErrorBody),
    ),
)]
pub async fn sign_in(
    State(service): State<QuotaService>,
    request: Request,
) -> Result<Response, ApiError> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (key, from_form) = if is_form {
        let Form(body) = Form::<SignIn>::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
        (body.api_key, true)
    } else {
        let super::extract::ApiJson(body) =
            super::extract::ApiJson::<SignIn>::from_request(request, &()).await?;
        (body.api_key, false)
    };
    let key = key.trim();
    let opened = if key.is_empty() {
        Ok(None)
    } else {
        service.open_session(key).await
    };
    let OpenedSession { id, caller } = match opened {
        Ok(Some(opened)) => opened,
        Ok(None) if from_form => {
            // Back to the form, which shows the error.
            return Ok(Redirect::to("/signin?error=invalid_key").into_response());
        }
        Ok(None) => return Err(ApiError::unauthorized("The key is not valid.")),
        // No cookie for a session the store did not keep: it would not
        // survive a restart, nor reach the other instances.
        Err(_) if from_form => {
            return Ok(Redirect::to("/signin?error=store_unavailable").into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let cookie = session_cookie(&id, service.config().cookie_secure);
    let (workspace_id, landing) = match &caller {
        Caller::Admin => (None, "/dashboard"),
        Caller::Workspace(id) => (Some(id.clone()), "/"),
    };
    let mut response = if from_form {
        Redirect::to(landing).into_response()
    } else {
        Json(SignedIn {
            signed_in: true,
            admin: caller == Caller::Admin,
            workspace_id,
        })
        .into_response()
    };
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Sign a browser out.
///
/// Ends the session named by the cookie, if any (on every instance, and for
/// good: it is deleted from the store), and clears the cookie. Without a
/// cookie there is nothing to end and it succeeds all the same.
#[utoipa::path(
    delete,
    path = "/api/session",
    tag = "session",
    responses(
        (status = 204, description = "Signed out.",
            headers(("set-cookie" = String, description = "Clears `qa_session`."))),
        (status = 403, description = text::CROSS_SITE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = "`store_unavailable`: the session could not be deleted from the store. It no longer works on this instance; the cookie is kept so that signing out can be retried.", body = ErrorBody),
    ),
    security((), ("session_cookie" = [])),
)]
pub async fn sign_out(
    State(service): State<QuotaService>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session_id_from_headers(&headers) {
        // On a store failure the cookie is kept, so that signing out again
        // can still name the session to delete.
        service.close_session(&id).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = clear_cookie().parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
