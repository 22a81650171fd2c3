//! Cross-site request forgery: a page on another site can make the browser
//! send a form or a `fetch` to this server, with its cookie attached (and
//! with a key of the attacker's, for sign-in: login CSRF signs the victim
//! into the attacker's workspace, whose transcript the attacker then reads).
//!
//! So sign-in, sign-out and every state-changing request whose credential is
//! the session cookie must come from this server's own pages:
//!
//! 1. `Sec-Fetch-Site` (every current browser sends it): `same-origin` and
//!    `none` (the user's own navigation) pass; `same-site` (a sibling
//!    subdomain) and `cross-site` do not;
//! 2. without it, `Origin` (browsers send it on every cross-origin POST):
//!    this server's own origin passes;
//! 3. with neither, the request is not from a browser (curl, an SDK), which
//!    no other site can drive: it passes.
//!
//! An origin in `QUOTA_ALLOWED_ORIGINS` passes either way: the operator
//! trusts it with the API, as with CORS and the WebSocket.
//!
//! Requests with a bearer key need no check: no other site can make a
//! browser send one (setting `Authorization` needs a CORS preflight, which
//! only the allowed origins pass).

use super::sign_in::SESSION_PATH;
use axum::http::{header, request::Parts, HeaderMap, Method};

/// Whether a request must pass [`check`]: state-changing and either to the
/// session endpoint (sign-in carries its key in the body) or carried by the
/// session cookie.
pub fn applies(parts: &Parts, cookie_credential: bool) -> bool {
    let state_changing = !matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    state_changing && (cookie_credential || parts.uri.path() == SESSION_PATH)
}

/// `Ok` when the request comes from this server's own pages (or from no
/// browser at all); otherwise what gave it away.
pub fn check(parts: &Parts, allowed_origins: &[String]) -> Result<(), String> {
    let headers = &parts.headers;
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let listed = origin.is_some_and(|o| is_listed(o, allowed_origins));
    match headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some(site)
            if site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none") =>
        {
            Ok(())
        }
        Some(_) if listed => Ok(()),
        Some(site) => Err(format!(
            "This request was sent by another site (Sec-Fetch-Site: {site}); \
             use this server's own pages, or a bearer key."
        )),
        None => match origin {
            None => Ok(()),
            Some(origin) if listed || is_same_origin(origin, request_host(parts)) => Ok(()),
            Some(origin) => Err(format!(
                "This request was sent by another site (Origin: {origin}); \
                 use this server's own pages, or a bearer key."
            )),
        },
    }
}

/// `origin` is this server's own (its host as the request names it) or one
/// the operator listed. Shared with the WebSocket's `Origin` check.
pub fn origin_allowed(origin: &str, host: Option<&str>, allowed_origins: &[String]) -> bool {
    is_listed(origin, allowed_origins) || is_same_origin(origin, host)
}

fn is_listed(origin: &str, allowed_origins: &[String]) -> bool {
    let origin = origin.trim_end_matches('/');
    allowed_origins.iter().any(|o| o == origin)
}

/// Same host and port. Either scheme: behind a TLS-terminating proxy the
/// request arrives over plain HTTP while the page's origin is `https://`.
fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// The host the request was sent to: HTTP/2's `:authority` (in the URI),
/// else HTTP/1.1's `Host`.
pub fn request_host(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| host_header(&parts.headers))
}

pub fn host_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(method: Method, path: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    const ALLOWED: &[&str] = &["https://app.example.com"];

    fn check_of(headers: &[(&str, &str)]) -> Result<(), String> {
        let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
        check(&parts(Method::POST, "/api/session", headers), &allowed)
    }

    #[test]
    fn sec_fetch_site_decides_when_present() {
        assert!(check_of(&[("sec-fetch-site", "same-origin")]).is_ok());
        assert!(check_of(&[("sec-fetch-site", "none")]).is_ok());
        for site in ["cross-site", "same-site", "junk", ""] {
            let refused = check_of(&[("sec-fetch-site", site), ("host", "qa.example.com")]);
            assert!(refused.is_err(), "{site:?}");
        }
        // The operator's own other origin.
        assert!(check_of(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com")
        ])
        .is_ok());
    }

    #[test]
    fn origin_decides_without_sec_fetch_site() {
        let host = ("host", "qa.example.com");
        assert!(check_of(&[host, ("origin", "https://qa.example.com")]).is_ok());
        assert!(check_of(&[host, ("origin", "http://qa.example.com")]).is_ok());
        assert!(check_of(&[host, ("origin", "https://app.example.com")]).is_ok());
        for origin in [
            "https://evil.example",
            "https://qa.example.com.evil.example",
            "https://qa.example.com:8443",
            "null",
        ] {
            assert!(check_of(&[host, ("origin", origin)]).is_err(), "{origin}");
        }
        // No Host to compare with: only listed origins.
        assert!(check_of(&[("origin", "https://qa.example.com")]).is_err());
    }

    #[test]
    fn neither_header_is_no_browser() {
        assert!(check_of(&[]).is_ok());
        assert!(check_of(&[("host", "qa.example.com")]).is_ok());
    }

    #[test]
    fn only_state_changing_cookie_or_session_requests_are_checked() {
        let post = parts(Method::POST, "/api/fn/send_message", &[]);
        assert!(applies(&post, true));
        assert!(!applies(&post, false), "a bearer key needs no check");
        assert!(applies(&parts(Method::POST, "/api/session", &[]), false));
        assert!(applies(&parts(Method::DELETE, "/api/session", &[]), false));
        assert!(applies(&parts(Method::PUT, "/api/x", &[]), true));
        assert!(applies(&parts(Method::PATCH, "/api/x", &[]), true));
        assert!(!applies(
            &parts(Method::GET, "/api/quota/status", &[]),
            true
        ));
        assert!(!applies(&parts(Method::HEAD, "/api/session", &[]), true));
    }
}
