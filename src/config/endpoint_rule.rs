//! One `METHOD /v1/a/b/{id}` endpoint rule, as `QUOTA_PROXY_EXTRA_ENDPOINTS`
//! writes it: the plain data and its parser. It lives here, not in
//! `upstream::policy`, because the config must parse it at start and the
//! config sits below the edges (dependencies point config ← upstream); what a
//! rule lets through (matching a request, building the upstream path) is
//! `upstream::policy::endpoints`, which re-exports this type.

use axum::http::Method;

/// One segment of a rule's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleSegment {
    Literal(String),
    /// `{name}`: exactly one path segment of safe characters.
    Placeholder,
}

/// One allowed `METHOD /v1/path`, e.g. `GET /v1/models/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRule {
    method: Method,
    /// After `/v1/`.
    segments: Vec<RuleSegment>,
    text: String,
}

/// How a rule may be written, for error messages (config and tests).
pub const RULE_SYNTAX: &str = "`METHOD /v1/path` (GET, POST, PUT, PATCH or DELETE; path segments \
     of a-z, 0-9, `_`, `-` and `.`, or a `{name}` placeholder for one segment), comma-separated";

impl EndpointRule {
    /// Parses `GET /v1/files` or `POST /v1/files/{id}/content`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (method, path) = text
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{text:?} is not {RULE_SYNTAX}"))?;
        let method = match method.to_ascii_uppercase().as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            _ => {
                return Err(format!(
                    "{text:?}: the method must be GET, POST, PUT, PATCH or DELETE"
                ))
            }
        };
        let path = path.trim();
        let rest = path
            .strip_prefix("/v1/")
            .ok_or_else(|| format!("{text:?}: the path must start with /v1/"))?;
        let segments = rest
            .split('/')
            .map(|segment| {
                let placeholder = segment
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .is_some_and(|name| {
                        !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    });
                if placeholder {
                    Ok(RuleSegment::Placeholder)
                } else if is_rule_literal(segment) {
                    Ok(RuleSegment::Literal(segment.to_string()))
                } else {
                    Err(format!("{text:?}: {segment:?} is not a valid path segment"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: format!("{method} {path}"),
            method,
            segments,
        })
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path's segments after `/v1/`.
    pub fn segments(&self) -> &[RuleSegment] {
        &self.segments
    }
}

impl std::fmt::Display for EndpointRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A literal rule segment: lower-case letters, digits, `_`, `-`, `.`, and not
/// only dots.
fn is_rule_literal(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.bytes().all(|b| b == b'.')
        && segment.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
}

/// Parses a comma-separated list of rules (`QUOTA_PROXY_EXTRA_ENDPOINTS`).
pub fn parse_rules(text: &str) -> Result<Vec<EndpointRule>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(EndpointRule::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_or_say_why_not() {
        let extra = parse_rules(
            " GET /v1/files , post /v1/audio/transcriptions,GET /v1/files/{file_id}/content",
        )
        .unwrap();
        assert_eq!(extra.len(), 3);
        assert_eq!(extra[0].to_string(), "GET /v1/files");
        for bad in [
            "GET",
            "FETCH /v1/files",
            "GET /files",
            "GET /v1/",
            "GET /v1//files",
            "GET /v1/../admin",
            "GET /v1/files/{}",
            "GET /v1/Files",
            "GET /v1/files?x=1",
            "GET /v1/a%2fb",
            "GET https://evil.example/v1/files",
        ] {
            assert!(parse_rules(bad).is_err(), "{bad}");
        }
        assert!(parse_rules("").unwrap().is_empty());
    }
}
