//! Who the browser is signed in as.

use crate::wire::Caller;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The sign-in state of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "viewer", rename_all = "snake_case")]
pub enum Session {
    /// No session cookie (and no bearer key).
    SignedOut,
    /// A cookie (or key) that no longer resolves: signed out elsewhere, or the
    /// server forgot it.
    Expired,
    SignedIn(Caller),
}

impl Session {
    pub fn viewer(&self) -> Option<&Caller> {
        match self {
            Session::SignedIn(viewer) => Some(viewer),
            _ => None,
        }
    }

    /// Where to send a browser that is not signed in.
    pub fn signin_path(&self) -> &'static str {
        match self {
            Session::Expired => "/signin?expired=1",
            _ => "/signin",
        }
    }
}

/// The caller of this request. Never an error for a missing or stale session:
/// that is an answer (`SignedOut`/`Expired`), so the browser logs nothing.
#[server(prefix = "/api/fn", endpoint = "whoami")]
pub async fn whoami() -> Result<Session, ServerFnError> {
    Ok(server::session().await?.1)
}

#[cfg(feature = "ssr")]
pub(crate) mod server {
    use super::Session;
    use crate::api::extract::Credentials;
    use crate::api::AppState;
    use crate::service::{AuthError, Resolved};
    use leptos::prelude::*;

    /// The app state and the request's credential, resolved by the same
    /// function as REST's (`api::extract::resolve_parts`; cached by the
    /// guard for `/api/fn/*` calls, resolved here while a page renders).
    pub async fn caller() -> Result<(AppState, Result<Resolved, AuthError>), ServerFnError> {
        let state =
            use_context::<AppState>().ok_or_else(|| ServerFnError::new("server state missing"))?;
        let Credentials(resolved) = leptos_axum::extract_with_state(&state).await?;
        Ok((state, resolved))
    }

    /// The app state and the caller's session.
    pub async fn session() -> Result<(AppState, Session), ServerFnError> {
        let (state, resolved) = caller().await?;
        let session = match resolved.map(|r| r.caller) {
            Ok(caller) => Session::SignedIn(caller),
            Err(AuthError::Missing) => Session::SignedOut,
            Err(_) => Session::Expired,
        };
        Ok((state, session))
    }
}
