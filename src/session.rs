//! Browser sessions: signing in with a key sets an HttpOnly cookie holding a
//! random session id; the server keeps only the id's digest and who it is.
//! The WebSocket and server functions accept the cookie in place of a bearer key.

use crate::auth::{generate_secret, key_digest};
use crate::service::Caller;
use dashmap::DashMap;
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "qa_session";
/// How long a session lives without being used.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

struct Session {
    caller: Caller,
    expires: Instant,
}

#[derive(Default)]
pub struct SessionStore {
    sessions: DashMap<[u8; 32], Session>,
}

impl SessionStore {
    /// Opens a session for `caller`; returns the cookie value.
    pub fn open(&self, caller: Caller) -> String {
        // Opportunistic sweep keeps abandoned sessions from piling up.
        if self.sessions.len().is_multiple_of(64) {
            let now = Instant::now();
            self.sessions.retain(|_, s| s.expires > now);
        }
        let id = generate_secret("");
        self.sessions.insert(
            key_digest(&id),
            Session {
                caller,
                expires: Instant::now() + SESSION_TTL,
            },
        );
        id
    }

    pub fn caller(&self, id: &str) -> Option<Caller> {
        let digest = key_digest(id);
        let mut entry = self.sessions.get_mut(&digest)?;
        if entry.expires <= Instant::now() {
            drop(entry);
            self.sessions.remove(&digest);
            return None;
        }
        entry.expires = Instant::now() + SESSION_TTL;
        Some(entry.caller.clone())
    }

    pub fn close(&self, id: &str) {
        self.sessions.remove(&key_digest(id));
    }

    /// Ends every session of a workspace (key revoked, workspace removed).
    pub fn close_workspace(&self, workspace: &str) {
        self.sessions
            .retain(|_, s| s.caller != Caller::Workspace(workspace.to_string()));
    }
}

/// The session id from a `Cookie` header, if present.
pub fn session_id_from_headers(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Set-Cookie` value for a new session. `secure` when served over TLS.
pub fn session_cookie(id: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_resolve_until_closed() {
        let store = SessionStore::default();
        let id = store.open(Caller::Workspace("acme".into()));
        assert_eq!(store.caller(&id), Some(Caller::Workspace("acme".into())));
        assert_eq!(store.caller("nope"), None);
        store.close(&id);
        assert_eq!(store.caller(&id), None);
    }

    #[test]
    fn cookie_is_read_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("cookie", "a=1; qa_session=abc; b=2".parse().unwrap());
        assert_eq!(session_id_from_headers(&headers).as_deref(), Some("abc"));
    }
}
