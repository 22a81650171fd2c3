//! One way to read a credential. REST extractors, the WebSocket, the `/v1`
//! proxy, server functions, the rate limiter and the CSRF check all resolve a
//! request through [`QuotaService::resolve_credential`], so they cannot
//! disagree about who is calling (they once did: three parsers, and the rate
//! limiter hashed the raw header, so `bearer KEY` and `Bearer  KEY` each got a
//! bucket of their own).
//!
//! The rules, in order:
//! - at most one `Authorization` header, and not together with `?token=`
//!   (only the WebSocket passes a token: browsers cannot set its headers);
//! - `Authorization` is `Bearer <key>`: the scheme in any case, any run of
//!   spaces or tabs around the key, exactly one key (`Bearer a b` is refused);
//! - without either, the session cookie, of which there must be exactly one: a
//!   second `qa_session` can only have been planted by a sibling site (cookie
//!   tossing), and taking either would sign the browser into a session it did
//!   not choose;
//! - a bearer key wins over a cookie: browsers attach cookies to everything,
//!   while a key is always sent on purpose (and never by a cross-site page).

use super::{Caller, QuotaService};
use crate::browser_session::SESSION_COOKIE;
use axum::http::{header, HeaderMap, HeaderValue};

/// What a request presented, as presented. The key or session id is secret:
/// `Debug` shows only where it came from.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <key>`.
    Bearer(String),
    /// `?token=<key>` on the WebSocket.
    Token(String),
    /// The session cookie's id.
    Cookie(String),
}

impl Credential {
    /// Sent by the browser on its own: such a request may have been made by
    /// another site, so a state-changing one must pass the CSRF check.
    pub fn from_cookie(&self) -> bool {
        matches!(self, Credential::Cookie(_))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Bearer(_) => "Bearer([redacted])",
            Credential::Token(_) => "Token([redacted])",
            Credential::Cookie(_) => "Cookie([redacted])",
        })
    }
}

/// A credential that resolved: who is calling, and with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub caller: Caller,
    pub credential: Credential,
}

/// Why a request has no caller. Each path answers it in its own shape (401
/// on the API, OpenAI's `invalid_api_key` on `/v1`, "signed out" or
/// "expired" in server functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing key: send `Authorization: Bearer <workspace or admin key>`, or sign in.")]
    Missing,
    #[error("The Authorization header must be `Bearer <key>`: one header, one key.")]
    Malformed,
    #[error(
        "Send one credential: one `Authorization` header or one `?token=`, and one session cookie."
    )]
    Ambiguous,
    #[error("The key is not valid.")]
    InvalidKey,
    #[error("The session has expired or was signed out; sign in again.")]
    SessionExpired,
}

/// The credential a request presents, without looking it up: `Ok(None)` when
/// there is none. `token` is the WebSocket's `?token=`, if any.
pub fn presented(
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Option<Credential>, AuthError> {
    let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
    let first = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::Ambiguous);
    }
    match (first, token) {
        (Some(_), Some(_)) => Err(AuthError::Ambiguous),
        (Some(value), None) => bearer_key(value).map(|key| Some(Credential::Bearer(key))),
        (None, Some(token)) => single_word(token)
            .map(|key| Some(Credential::Token(key.to_string())))
            .ok_or(AuthError::Malformed),
        (None, None) => {
            let mut ids = session_cookies(headers);
            match (ids.next(), ids.next()) {
                (None, _) => Ok(None),
                (Some(id), None) => Ok(Some(Credential::Cookie(id.to_string()))),
                (Some(_), Some(_)) => Err(AuthError::Ambiguous),
            }
        }
    }
}

/// The key of `Authorization: Bearer <key>`, whatever the scheme's case and
/// the whitespace around the key, so every spelling names the same key.
fn bearer_key(value: &HeaderValue) -> Result<String, AuthError> {
    let text = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, rest) = text
        .trim_start()
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    single_word(rest)
        .map(str::to_string)
        .ok_or(AuthError::Malformed)
}

/// `text` trimmed, if it is one non-empty word.
fn single_word(text: &str) -> Option<&str> {
    let word = text.trim_matches(|c: char| c.is_ascii_whitespace());
    (!word.is_empty() && !word.contains(|c: char| c.is_ascii_whitespace())).then_some(word)
}

/// Every `qa_session` value in the request's cookies (usually none or one).
fn session_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == SESSION_COOKIE)
        // An empty or oversized value is no session (the same bounds as
        // `browser_session::session_id_from_headers`, which sign-out reads).
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty() && value.len() <= 128)
}

impl QuotaService {
    /// Resolves a request's credential to its caller: the one function every
    /// path uses (see the module's documentation for the rules).
    ///
    /// Async so that a key this instance does not know yet can be looked up
    /// in the shared store without changing a single caller.
    pub async fn resolve_credential(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<Resolved, AuthError> {
        let credential = presented(headers, token)?.ok_or(AuthError::Missing)?;
        let caller = match &credential {
            Credential::Bearer(key) | Credential::Token(key) => match self.authenticate(key) {
                Some(caller) => caller,
                // Under Redis a key made or rotated on another instance a
                // moment ago is looked up before it is refused (bounded by a
                // negative cache and a lookup budget: `learn_key`).
                None if self.is_shared() => {
                    self.learn_key(key).await;
                    self.authenticate(key).ok_or(AuthError::InvalidKey)?
                }
                None => return Err(AuthError::InvalidKey),
            },
            Credential::Cookie(id) => self.session_caller(id).ok_or(AuthError::SessionExpired)?,
        };
        Ok(Resolved { caller, credential })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn bearer(value: &str) -> Result<Option<Credential>, AuthError> {
        presented(&headers(&[("authorization", value)]), None)
    }

    #[test]
    fn every_spelling_of_a_bearer_header_names_the_same_key() {
        for spelling in [
            "Bearer qa_k",
            "bearer qa_k",
            "BEARER qa_k",
            "Bearer  qa_k",
            "Bearer\tqa_k",
            " Bearer qa_k ",
            "Bearer qa_k\t",
        ] {
            assert_eq!(
                bearer(spelling),
                Ok(Some(Credential::Bearer("qa_k".into()))),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn anything_but_one_bearer_key_is_malformed() {
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic qa_k",
            "Bearerqa_k",
            "Bearer qa_k qa_other",
            "Token qa_k",
        ] {
            assert_eq!(bearer(bad), Err(AuthError::Malformed), "{bad:?}");
        }
        let non_text = HeaderValue::from_bytes(b"Bearer k\xe9y").unwrap();
        let mut map = HeaderMap::new();
        map.insert(header::AUTHORIZATION, non_text);
        assert_eq!(presented(&map, None), Err(AuthError::Malformed));
    }

    #[test]
    fn exactly_one_credential() {
        let two_headers = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(presented(&two_headers, None), Err(AuthError::Ambiguous));
        let header_and_token = headers(&[("authorization", "Bearer a")]);
        assert_eq!(
            presented(&header_and_token, Some("b")),
            Err(AuthError::Ambiguous)
        );
        let two_cookies = headers(&[("cookie", "qa_session=a; other=1; qa_session=b")]);
        assert_eq!(presented(&two_cookies, None), Err(AuthError::Ambiguous));
        let two_cookie_headers = headers(&[("cookie", "qa_session=a"), ("cookie", "qa_session=b")]);
        assert_eq!(
            presented(&two_cookie_headers, None),
            Err(AuthError::Ambiguous)
        );
        assert_eq!(
            presented(&headers(&[]), Some(" ")),
            Err(AuthError::Malformed)
        );
        assert_eq!(presented(&headers(&[]), None), Ok(None));
    }

    #[test]
    fn a_key_wins_over_the_cookie_and_the_cookie_counts_alone() {
        let both = headers(&[("authorization", "Bearer k"), ("cookie", "qa_session=s")]);
        assert_eq!(
            presented(&both, None),
            Ok(Some(Credential::Bearer("k".into())))
        );
        let cookie = headers(&[("cookie", "theme=dark; qa_session=s")]);
        let credential = presented(&cookie, None).unwrap().unwrap();
        assert_eq!(credential, Credential::Cookie("s".into()));
        assert!(credential.from_cookie());
        assert_eq!(
            presented(&headers(&[]), Some("k")),
            Ok(Some(Credential::Token("k".into())))
        );
        assert_eq!(format!("{credential:?}"), "Cookie([redacted])");
    }
}
