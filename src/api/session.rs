//! `POST /api/session` signs a browser in with a workspace or admin key (JSON
//! `{"api_key"}` or the sign-in form); `DELETE /api/session` signs it out.

use super::error::ApiError;
use crate::service::{Caller, QuotaService};
use crate::session::{clear_cookie, session_cookie, session_id_from_headers};
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub api_key: String,
}

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
    let Some(caller) = (!key.is_empty())
        .then(|| service.authenticate(key))
        .flatten()
    else {
        if from_form {
            // Back to the form, which shows the error.
            return Ok(Redirect::to("/signin?error=invalid_key").into_response());
        }
        return Err(ApiError::unauthorized("The key is not valid."));
    };
    let session = service.sessions().open(caller.clone());
    let cookie = session_cookie(&session, false);
    let (workspace_id, landing) = match &caller {
        Caller::Admin => (None, "/dashboard"),
        Caller::Workspace(id) => (Some(id.clone()), "/"),
    };
    let mut response = if from_form {
        Redirect::to(landing).into_response()
    } else {
        Json(json!({"signed_in": true, "admin": caller == Caller::Admin, "workspace_id": workspace_id}))
            .into_response()
    };
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

pub async fn sign_out(State(service): State<QuotaService>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id_from_headers(&headers) {
        service.sessions().close(&id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = clear_cookie().parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
