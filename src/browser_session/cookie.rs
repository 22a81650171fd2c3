//! The session cookie: its name, how it is set and cleared, and how the
//! session id is read back from a request's `Cookie` header.

use std::time::Duration;

pub const SESSION_COOKIE: &str = "qa_session";

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

/// How long the browser keeps the cookie: 400 days, the most browsers allow.
/// The server decides when a session ends (unused for its idle TTL, signed
/// out, key revoked); a cookie that expired after a fixed 7 days would sign
/// out a person who uses the app every day, since the cookie is set only once.
pub const SESSION_COOKIE_MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

/// `Set-Cookie` value for a new session. `secure` when served over TLS.
pub fn session_cookie(id: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_COOKIE_MAX_AGE.as_secs(),
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
    use crate::browser_session::WORKSPACE_SESSIONS;

    #[test]
    fn the_cookie_outlives_the_sliding_expiry_so_the_server_decides() {
        let cookie = session_cookie("abc", false);
        let max_age: u64 = cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|v| v.parse().ok())
            .expect("Max-Age");
        assert!(max_age > 52 * 7 * 24 * 3600, "{cookie}");
        assert!(max_age > WORKSPACE_SESSIONS.max_lifetime.as_secs());
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        assert!(session_cookie("abc", true).ends_with("; Secure"));
    }

    #[test]
    fn cookie_is_read_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("cookie", "a=1; qa_session=abc; b=2".parse().unwrap());
        assert_eq!(session_id_from_headers(&headers).as_deref(), Some("abc"));
    }
}
