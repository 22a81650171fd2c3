//! The endpoint allowlist: `METHOD /v1/a/b/{id}` rules, the built-in ones plus
//! `QUOTA_PROXY_EXTRA_ENDPOINTS`.

use super::path::is_safe_segment;
use crate::config::endpoint_rule::RuleSegment as Segment;
use axum::http::Method;

// The rule is plain data the config parses at start, so it lives in `config`
// (dependencies point config ← upstream); re-exported so it is named here too.
pub use crate::config::endpoint_rule::{parse_rules, EndpointRule, RULE_SYNTAX};

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

// What a rule lets through; the rule itself (and its parser) is in
// `config::endpoint_rule`, since the config parses rules at start.
impl EndpointRule {
    fn matches_path(&self, request: &[String]) -> bool {
        self.segments().len() == request.len()
            && self
                .segments()
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
        for (rule, got) in self.segments().iter().zip(request) {
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
        if *self.method() != Method::POST {
            BodyPolicy::None
        } else if self.segments() == [literal("chat"), literal("completions")] {
            BodyPolicy::ChatCompletions
        } else if self.segments() == [literal("responses")] {
            BodyPolicy::Responses
        } else {
            BodyPolicy::None
        }
    }
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
            if rule.method() == method {
                return Decision::Forward(Matched {
                    upstream_path: rule.upstream_path(segments),
                    body_policy: rule.body_policy(),
                });
            }
            if !other_methods.contains(rule.method()) {
                other_methods.push(rule.method().clone());
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
    fn extra_rules_are_forwarded_by_their_rule() {
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
    }
}
