//! The endpoint allowlist: `METHOD /v1/a/b/{id}` rules, the built-in ones plus
//! `QUOTA_PROXY_EXTRA_ENDPOINTS`.

use super::path::is_safe_segment;
use axum::http::Method;

/// The endpoints whose usage the proxy meters (tokens from the answer's
/// `usage`, or a request with no tokens for the model list). Nothing else
/// reaches the shared organisation unless the operator adds it.
pub const BUILT_IN: &[&str] = &[
    "POST /v1/chat/completions",
    "POST /v1/completions",
    "POST /v1/embeddings",
    "POST /v1/responses",
    "POST /v1/moderations",
    "GET /v1/models",
    "GET /v1/models/{id}",
];

/// What [`super::stored`] checks in a request body before it is forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPolicy {
    /// `POST /v1/chat/completions`: no `store: true`, no stored files or audio.
    ChatCompletions,
    /// `POST /v1/responses`: `store: false` forced, no references to stored
    /// responses, conversations, files, vector stores or containers.
    Responses,
    /// Forwarded as it came.
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: exactly one path segment of safe characters.
    Placeholder,
}

/// One allowed `METHOD /v1/path`, e.g. `GET /v1/models/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRule {
    method: Method,
    /// After `/v1/`.
    segments: Vec<Segment>,
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
                    Ok(Segment::Placeholder)
                } else if is_rule_literal(segment) {
                    Ok(Segment::Literal(segment.to_string()))
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

    fn matches_path(&self, request: &[String]) -> bool {
        self.segments.len() == request.len()
            && self
                .segments
                .iter()
                .zip(request)
                .all(|(rule, got)| match rule {
                    Segment::Literal(literal) => literal == got,
                    // Already checked by `request_segments`; checked again so a
                    // rule can never put anything else into the upstream URL.
                    Segment::Placeholder => is_safe_segment(got),
                })
    }

    /// The upstream path (relative to the base URL, which ends in `/v1`):
    /// literals from the rule, placeholders from the checked request segment.
    fn upstream_path(&self, request: &[String]) -> String {
        let mut path = String::new();
        for (rule, got) in self.segments.iter().zip(request) {
            path.push('/');
            match rule {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::Placeholder => path.push_str(got),
            }
        }
        path
    }

    fn body_policy(&self) -> BodyPolicy {
        let literal = |s: &str| Segment::Literal(s.to_string());
        if self.method != Method::POST {
            BodyPolicy::None
        } else if self.segments == [literal("chat"), literal("completions")] {
            BodyPolicy::ChatCompletions
        } else if self.segments == [literal("responses")] {
            BodyPolicy::Responses
        } else {
            BodyPolicy::None
        }
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

/// The endpoints the proxy forwards.
#[derive(Clone, Debug)]
pub struct Allowlist {
    rules: Vec<EndpointRule>,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Forward(Matched),
    /// The path is allowed with other methods (for `allow` and a 405).
    WrongMethod(Vec<Method>),
    /// No rule has this path.
    Unknown,
}

/// A request that matched a rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    /// Built from the rule (see [`EndpointRule::upstream_path`]).
    pub upstream_path: String,
    pub body_policy: BodyPolicy,
}

impl Allowlist {
    /// The built-in rules plus `extra`.
    pub fn new(extra: &[EndpointRule]) -> Self {
        let mut rules: Vec<EndpointRule> = BUILT_IN
            .iter()
            .filter_map(|text| EndpointRule::parse(text).ok())
            .collect();
        for rule in extra {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
        Self { rules }
    }

    /// `segments` are the checked segments after `/v1/` ([`super::request_segments`]).
    pub fn decide(&self, method: &Method, segments: &[String]) -> Decision {
        let mut other_methods = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches_path(segments)) {
            if rule.method == *method {
                return Decision::Forward(Matched {
                    upstream_path: rule.upstream_path(segments),
                    body_policy: rule.body_policy(),
                });
            }
            if !other_methods.contains(&rule.method) {
                other_methods.push(rule.method.clone());
            }
        }
        if other_methods.is_empty() {
            Decision::Unknown
        } else {
            Decision::WrongMethod(other_methods)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/').map(str::to_string).collect()
    }

    #[test]
    fn only_the_metered_endpoints_are_built_in() {
        let list = Allowlist::new(&[]);
        let forward = |m: Method, p: &str| match list.decide(&m, &segs(p)) {
            Decision::Forward(matched) => Some(matched),
            _ => None,
        };
        let chat = forward(Method::POST, "chat/completions").unwrap();
        assert_eq!(chat.upstream_path, "/chat/completions");
        assert_eq!(chat.body_policy, BodyPolicy::ChatCompletions);
        assert_eq!(
            forward(Method::POST, "responses").unwrap().body_policy,
            BodyPolicy::Responses
        );
        assert_eq!(
            forward(Method::GET, "models/gpt-4o").unwrap().upstream_path,
            "/models/gpt-4o"
        );
        assert!(forward(Method::GET, "models").is_some());
        assert_eq!(list.decide(&Method::GET, &segs("files")), Decision::Unknown);
        assert_eq!(
            list.decide(&Method::GET, &segs("responses/resp_1")),
            Decision::Unknown
        );
        assert_eq!(
            list.decide(&Method::GET, &segs("chat/completions")),
            Decision::WrongMethod(vec![Method::POST])
        );
        assert_eq!(
            list.decide(&Method::DELETE, &segs("models/x")),
            Decision::WrongMethod(vec![Method::GET])
        );
        assert_eq!(
            list.decide(&Method::GET, &segs("models/a/b")),
            Decision::Unknown
        );
    }

    #[test]
    fn extra_rules_parse_or_say_why_not() {
        let extra = parse_rules(
            " GET /v1/files , post /v1/audio/transcriptions,GET /v1/files/{file_id}/content",
        )
        .unwrap();
        let list = Allowlist::new(&extra);
        assert!(matches!(
            list.decide(&Method::GET, &segs("files")),
            Decision::Forward(_)
        ));
        assert!(matches!(
            list.decide(&Method::POST, &segs("audio/transcriptions")),
            Decision::Forward(_)
        ));
        match list.decide(&Method::GET, &segs("files/file-1/content")) {
            Decision::Forward(m) => assert_eq!(m.upstream_path, "/files/file-1/content"),
            other => panic!("{other:?}"),
        }
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
