//! The tracked upstream client. Every request: admitted by the engine first (so
//! nothing over quota reaches OpenAI), sent with the server's key, and its
//! outcome — tokens, classified error, rate-limit headers — recorded after.
//!
//! Over ~400 lines: the one path from admission to settlement (body
//! preparation, header allowlists, the streaming relay and its settlement)
//! reads best in one place; the proxy's policy is apart, in `policy/`.

use super::error_body::parse_error_body;
use super::headers::RateLimitHeaders;
use super::sse::{usage_total, SseUsageTap};
use crate::config::UpstreamConfig;
use crate::engine::{CallOutcome, CallScope, TokenRoom};
use crate::service::QuotaService;
use crate::tokens::{self, Encoding, TokenNeed};
use crate::wire::{QuotaStatus, UpstreamErrorReport};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Request headers passed on to the upstream; every other one stays here.
///
/// Only what describes the body and the client: `content-type`, `accept`,
/// `user-agent`, and `openai-beta` (opts into API versions such as
/// `assistants=v2`; it selects no account). Never the client's
/// `Authorization`, and never `openai-organization`, `openai-project` or
/// anything else that would pick another organisation or project of the
/// shared key: which account is used is the operator's choice alone. The
/// SDKs' `x-stainless-*` telemetry is dropped too: a prefix would let any
/// header name through. `idempotency-key` is passed on namespaced by
/// workspace (see [`namespaced_idempotency_key`]).
const FORWARDED_REQUEST_HEADERS: &[&str] = &["content-type", "accept", "user-agent", "openai-beta"];

/// Response headers not passed back: hop-by-hop, recomputed for our body, or
/// about the shared account rather than the caller (`openai-organization`,
/// `openai-project`, and cookies the upstream sets for its own domain).
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "upgrade",
    "proxy-connection",
    "te",
    "trailer",
    "openai-organization",
    "openai-project",
    "set-cookie",
];

#[derive(Clone)]
pub struct TrackedClient {
    http: reqwest::Client,
    config: Arc<UpstreamConfig>,
    service: QuotaService,
}

/// A request to pass upstream. `path_and_query` is relative to the base URL
/// (`/chat/completions?x=y`).
pub struct ForwardRequest {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub enum ForwardedBody {
    Full(Bytes),
    Stream(BoxStream<'static, Result<Bytes, std::io::Error>>),
}

pub struct Forwarded {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ForwardedBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ForwardError {
    /// Refused locally: the request never reached the upstream. `tokens`
    /// is set when its tokens are what did not fit.
    Denied {
        status: QuotaStatus,
        retry_after_s: Option<f64>,
        tokens: Option<TokenRoom>,
    },
    UnknownWorkspace,
    /// The workspace key was rotated or revoked (Redis said so at admission,
    /// on an instance that had missed the change).
    KeyRevoked,
    /// No answer within the configured time.
    Timeout,
    /// The upstream could not be reached at all.
    Unreachable(String),
    /// The end-user label (`param`: `X-Quota-User` or the body's `user`) is
    /// not one: refused before anything is counted.
    BadUser {
        param: &'static str,
        problem: String,
    },
    /// The body's `model` is not a name that can be kept (see
    /// `engine::scopes::check_model_name`): refused before anything is
    /// counted.
    BadModel {
        problem: String,
    },
}

/// The header that names a call's end user (a label for per-user limits
/// and the breakdown, never a credential; not sent upstream).
pub const QUOTA_USER_HEADER: &str = "x-quota-user";

impl TrackedClient {
    pub fn new(config: UpstreamConfig, service: QuotaService) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .read_timeout(Duration::from_millis(config.timeout_ms))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            // Said, not assumed: small writes to the upstream must not wait
            // on Nagle's algorithm either.
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            config: Arc::new(config),
            service,
        })
    }

    pub fn service(&self) -> &QuotaService {
        &self.service
    }

    /// Sends one request for `workspace`, accounted for from admission to the
    /// end of its body (streams are accounted when they end or break).
    pub async fn forward(
        &self,
        workspace: &str,
        request: ForwardRequest,
    ) -> Result<Forwarded, ForwardError> {
        let endpoint = request
            .path_and_query
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let default_cap = self.service.engine().config().default_output_reserve;
        let ForwardRequest {
            method,
            path_and_query,
            headers,
            body,
        } = request;
        let mut prepared = prepare_body(body, &endpoint, default_cap);
        if let Some(model) = &prepared.scope.model {
            crate::engine::scopes::check_model_name(model)
                .map_err(|problem| ForwardError::BadModel { problem })?;
        }
        prepared.scope.user = call_user(&headers, prepared.scope.user.take())?;
        if prepared.need.default_cap_used
            && default_cap > 0
            && self
                .service
                .engine()
                .money_limited(workspace, &prepared.scope)
        {
            // Held at the default cap, an answer without one could run to
            // the model's own (100 000 reasoning tokens is 25 times 4 096)
            // and a budget would pay the difference: the cap held is sent.
            if let Some(body) = with_output_cap(&prepared.body, &endpoint, default_cap) {
                prepared.body = body;
            }
        }
        // Reserve the worst case (prompt + output cap, and its cost at the
        // model's price) at admission, so concurrent calls cannot overshoot
        // a token window or a hard budget; settled below to the real usage.
        // Calls that use no tokens (models, moderations) and name no model
        // or user hold nothing.
        let need = prepared.need.total();
        let scoped = prepared.scope != CallScope::default();
        let hold = (need > 0 || scoped).then(|| {
            self.service.hold_for_call(
                prepared.need.prompt,
                prepared.need.max_output,
                prepared.scope.clone(),
            )
        });
        let reservation_id = hold.as_ref().map(|h| h.reservation_id.clone());
        let admission = self
            .service
            .admit(workspace, hold)
            .await
            .map_err(|e| match e {
                crate::service::ServiceError::Engine(_) => ForwardError::UnknownWorkspace,
                crate::service::ServiceError::KeyChanged => ForwardError::KeyRevoked,
                crate::service::ServiceError::Store(_)
                | crate::service::ServiceError::IdempotencyKeyReused => ForwardError::Denied {
                    status: QuotaStatus::Degraded,
                    retry_after_s: Some(5.0),
                    tokens: None,
                },
            })?;
        if !admission.check.allowed {
            return Err(ForwardError::Denied {
                status: admission.check.status,
                retry_after_s: admission.check.retry_after_s,
                tokens: admission.token_refusal,
            });
        }
        // Released if the call is dropped before it settles.
        let hold = HoldGuard {
            service: self.service.clone(),
            workspace: workspace.to_string(),
            reservation_id,
            scope: prepared.scope.clone(),
            settled: false,
        };
        // Finished even if the client goes away (its handler's future
        // dropped): once sent, the upstream answers and bills the call
        // anyway, and hanging up before the answer would otherwise spend
        // the shared organisation's tokens for nothing counted. The call
        // runs in place; only if it is dropped unfinished is the rest moved
        // to a task of its own (`FinishOnDrop`), which reads the
        // answer's usage and settles to it, bounded by the upstream
        // timeout. A stream nobody reads is dropped with the result, which
        // settles it as a stream cut off.
        let client = self.clone();
        let workspace = workspace.to_string();
        super::finish_on_drop::FinishOnDrop::new(async move {
            client
                .send(
                    &workspace,
                    (method, path_and_query, headers),
                    prepared,
                    hold,
                )
                .await
        })
        .await
    }

    /// Sends an admitted call and settles `hold` to its outcome.
    async fn send(
        &self,
        workspace: &str,
        (method, path_and_query, headers): (Method, String, HeaderMap),
        prepared: PreparedBody,
        mut hold: HoldGuard,
    ) -> Result<Forwarded, ForwardError> {
        let url = format!("{}{}", self.config.base_url, path_and_query);
        let mut builder = self
            .http
            .request(method, url)
            .headers(forwardable_request_headers(&headers, workspace))
            .body(prepared.body);
        if let Some(key) = &self.config.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let started = tokio::time::Instant::now();

        let latency = self.service.metrics().upstream_latency.start_timer();
        let sent = tokio::time::timeout(timeout, builder.send()).await;
        latency.observe_duration();
        let response = match sent {
            Err(_) => return Err(self.fail(&mut hold, "timeout", ForwardError::Timeout)),
            Ok(Err(e)) if e.is_timeout() => {
                return Err(self.fail(&mut hold, "timeout", ForwardError::Timeout))
            }
            Ok(Err(e)) => {
                let detail = if e.is_connect() {
                    "connection refused or unreachable"
                } else {
                    "connection failed"
                };
                return Err(self.fail(
                    &mut hold,
                    "connection_error",
                    ForwardError::Unreachable(detail.into()),
                ));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let limits = RateLimitHeaders::from_header_map(response.headers());
        let headers = returnable_response_headers(response.headers());

        if status.is_success() && is_event_stream(response.headers()) {
            let relay = Relay {
                upstream: response.bytes_stream().boxed(),
                tap: SseUsageTap::new(prepared.strip_usage_event),
                settlement: Some(Settlement {
                    hold,
                    limits,
                    prompt_tokens: prepared.need.prompt,
                    encoding: prepared.encoding,
                }),
                finished: false,
            };
            return Ok(Forwarded {
                status,
                headers,
                body: ForwardedBody::Stream(relay.into_stream()),
            });
        }

        let remaining = timeout.saturating_sub(started.elapsed());
        let body = match tokio::time::timeout(remaining, response.bytes()).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) | Err(_) => {
                return Err(self.fail(&mut hold, "timeout", ForwardError::Timeout))
            }
        };
        let outcome = if status.is_success() {
            let json = serde_json::from_slice::<Value>(&body).ok();
            let tokens = json.as_ref().and_then(usage_total).unwrap_or(0);
            let usage = json.as_ref().and_then(crate::pricing::usage_from_response);
            CallOutcome {
                cost_nano: usage.and_then(|usage| {
                    self.service
                        .price_call(prepared.scope.model.as_deref(), &usage)
                }),
                ..CallOutcome::success(tokens)
            }
        } else {
            let mut error = parse_error_body(Some(status.as_u16()), &body);
            if status == StatusCode::TOO_MANY_REQUESTS
                && limits
                    .limit_tokens
                    .is_some_and(|limit| prepared.need.total() > limit)
            {
                // The request alone needs more tokens than the organisation's
                // whole per-minute limit: retrying can never succeed, so this is
                // not a rate limit. Decided from numbers, not the message text.
                error.code = Some("request_too_large".into());
            }
            CallOutcome::failure(error, None)
        };
        hold.settle(outcome.with_headers(limits));
        Ok(Forwarded {
            status,
            headers,
            body: ForwardedBody::Full(body),
        })
    }

    /// `POST /chat/completions` for the server's own calls; the parsed reply, or
    /// the upstream's error as OpenAI sent it.
    pub async fn chat_completion(
        &self,
        workspace: &str,
        request: &Value,
    ) -> Result<Value, ChatError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = serde_json::to_vec(request).map_err(|e| ChatError::Invalid(e.to_string()))?;
        let forwarded = self
            .forward(
                workspace,
                ForwardRequest {
                    method: Method::POST,
                    path_and_query: "/chat/completions".into(),
                    headers,
                    body: body.into(),
                },
            )
            .await
            .map_err(ChatError::Forward)?;
        let ForwardedBody::Full(body) = forwarded.body else {
            return Err(ChatError::Invalid("unexpected stream".into()));
        };
        if forwarded.status.is_success() {
            serde_json::from_slice(&body).map_err(|e| ChatError::Invalid(e.to_string()))
        } else {
            Err(ChatError::Upstream(parse_error_body(
                Some(forwarded.status.as_u16()),
                &body,
            )))
        }
    }

    /// Settles a call that got no answer: its hold is released (nothing
    /// the upstream reported to count) and the failure recorded.
    fn fail(&self, hold: &mut HoldGuard, code: &str, error: ForwardError) -> ForwardError {
        let report = UpstreamErrorReport {
            http_status: None,
            error_type: None,
            code: Some(code.to_string()),
            message: None,
        };
        hold.settle(CallOutcome::failure(report, None));
        error
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatError {
    Forward(ForwardError),
    Upstream(UpstreamErrorReport),
    Invalid(String),
}

struct PreparedBody {
    body: Bytes,
    strip_usage_event: bool,
    /// What the call may take from the token windows: its prompt counted by
    /// the model's tokenizer plus its output cap.
    need: TokenNeed,
    /// The model's encoding, to count streamed text with.
    encoding: Encoding,
    /// The body's `model` and `user`.
    scope: CallScope,
}

/// For a streamed JSON request that did not ask for usage, asks for it (and
/// remembers to remove the extra event from what the client sees).
///
/// Whatever the content type says: the upstream may parse a body as JSON
/// whether it was sent as `application/json`, `Application/JSON` or nothing,
/// and a stream it runs without usage is counted by estimate only (which
/// misses reasoning tokens altogether). `stream_options: null` (or any other
/// non-object) is replaced for the same reason, and a streamed body is always
/// forwarded as the JSON value read here, so a duplicate key cannot mean
/// "usage" to this check and "no usage" to the upstream.
fn prepare_body(body: Bytes, endpoint: &str, default_output_cap: u64) -> PreparedBody {
    let mut prepared = PreparedBody {
        body,
        strip_usage_event: false,
        need: TokenNeed::default(),
        encoding: Encoding::O200k,
        scope: CallScope::default(),
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&prepared.body) else {
        // Not JSON (an audio upload, a GET): a token count cannot be read
        // from it, so it holds nothing and is counted when it settles.
        return prepared;
    };
    if let Some(model) = value.get("model").and_then(Value::as_str) {
        prepared.encoding = tokens::encoding_for_model(model);
        prepared.scope.model = Some(model.to_string());
    }
    prepared.scope.user = value
        .get("user")
        .and_then(Value::as_str)
        .filter(|user| !user.is_empty())
        .map(str::to_string);
    prepared.need = tokens::request_need(endpoint, &value, default_output_cap);
    let Value::Object(json) = &mut value else {
        return prepared;
    };
    let streaming = json.get("stream").and_then(Value::as_bool) == Some(true);
    // Only Chat Completions and Completions take stream_options; the Responses
    // API always ends its stream with usage (and refuses `prompt` here).
    let takes_stream_options = json.contains_key("messages") || json.contains_key("prompt");
    if !(streaming && takes_stream_options) {
        return prepared;
    }
    let asked = json
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    let options = json.entry("stream_options").or_insert(Value::Null);
    if !options.is_object() {
        *options = Value::Object(Default::default());
    }
    if let Value::Object(options) = options {
        options.insert("include_usage".into(), Value::Bool(true));
    }
    if let Ok(body) = serde_json::to_vec(&json) {
        prepared.body = body.into();
        prepared.strip_usage_event = !asked;
    }
    prepared
}

/// `body` with `cap` as its output cap (`max_completion_tokens` for a chat
/// completion, `max_output_tokens` for a response: the fields
/// `tokens::request_need` reads), for a request that set none; `None` for
/// other endpoints and bodies that are not JSON objects.
fn with_output_cap(body: &Bytes, endpoint: &str, cap: u64) -> Option<Bytes> {
    let field = match endpoint.trim_end_matches('/') {
        "/chat/completions" => "max_completion_tokens",
        "/responses" => "max_output_tokens",
        _ => return None,
    };
    let Ok(Value::Object(mut json)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    json.insert(field.into(), Value::from(cap));
    serde_json::to_vec(&json).ok().map(Bytes::from)
}

/// The call's end user: `X-Quota-User` if sent, else the body's `user`;
/// refused if it is not a label (see `engine::scopes::check_user_label`).
fn call_user(
    headers: &HeaderMap,
    body_user: Option<String>,
) -> Result<Option<String>, ForwardError> {
    let mut values = headers.get_all(QUOTA_USER_HEADER).iter();
    if let Some(value) = values.next() {
        let bad = |problem: String| ForwardError::BadUser {
            param: "X-Quota-User",
            problem,
        };
        if values.next().is_some() {
            return Err(bad("must be sent once".into()));
        }
        let label = value
            .to_str()
            .map_err(|_| bad("must be visible ASCII text".into()))?;
        crate::engine::scopes::check_user_label(label).map_err(bad)?;
        return Ok(Some(label.to_string()));
    }
    match body_user {
        Some(user) => {
            crate::engine::scopes::check_user_label(&user).map_err(|problem| {
                ForwardError::BadUser {
                    param: "user",
                    problem,
                }
            })?;
            Ok(Some(user))
        }
        None => Ok(None),
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

fn forwardable_request_headers(headers: &HeaderMap, workspace: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if FORWARDED_REQUEST_HEADERS.contains(&name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    if let Some(key) = headers.get("idempotency-key") {
        if let Ok(value) =
            HeaderValue::from_str(&namespaced_idempotency_key(workspace, key.as_bytes()))
        {
            out.insert(HeaderName::from_static("idempotency-key"), value);
        }
    }
    out
}

/// An idempotency key is remembered per organisation upstream, and every
/// workspace shares the organisation: passed on as it came, one workspace
/// sending another's key could be answered with the other's stored response.
/// Hashed with the workspace id, each workspace's retries still match each
/// other and never another workspace's.
fn namespaced_idempotency_key(workspace: &str, key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(workspace.as_bytes());
    hash.update([0]);
    hash.update(key);
    format!("qa-{}", hex::encode(hash.finalize()))
}

fn returnable_response_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        // `x-ratelimit-*` describe the shared organisation, i.e. every
        // tenant's traffic together: read here (`RateLimitHeaders`), never
        // passed on. The proxy answers with the workspace's own instead.
        if !DROPPED_RESPONSE_HEADERS.contains(&name.as_str())
            && !name.as_str().starts_with("x-ratelimit-")
        {
            out.append(HeaderName::clone(name), value.clone());
        }
    }
    out
}

/// A call's hold until it settles: settled once with the call's outcome,
/// or released when dropped unsettled (the call never got an answer, so
/// nothing the upstream reported is there to count; a client going away
/// does not drop it, see [`TrackedClient::forward`]).
struct HoldGuard {
    service: QuotaService,
    workspace: String,
    /// `None` for a call that holds nothing (still settled: its outcome
    /// counts), and once settled.
    reservation_id: Option<String>,
    /// The call's model and user, named in its outcome.
    scope: CallScope,
    settled: bool,
}

impl HoldGuard {
    fn settle(&mut self, outcome: CallOutcome) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let mut outcome = outcome.settling(self.reservation_id.take());
        outcome.scope = std::mem::take(&mut self.scope);
        let _ = self.service.complete(&self.workspace, &outcome);
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        if let Some(reservation_id) = self.reservation_id.take() {
            if !self.settled {
                self.service.release(&self.workspace, &reservation_id);
            }
        }
    }
}

/// Records a stream's outcome exactly once: when it ends, breaks, or the client
/// goes away (drop).
struct Settlement {
    hold: HoldGuard,
    limits: RateLimitHeaders,
    prompt_tokens: u64,
    encoding: Encoding,
}

impl Settlement {
    fn settle(mut self, tap: &SseUsageTap) {
        let model = self.hold.scope.model.clone();
        let price = |usage: crate::pricing::TokenUsage| {
            self.hold.service.price_call(model.as_deref(), &usage)
        };
        let outcome = match tap.usage_tokens {
            Some(tokens) => CallOutcome {
                cost_nano: tap.usage.and_then(price),
                ..CallOutcome::success(tokens)
            },
            None => {
                // No usage event (the stream broke, or the upstream sent
                // none): count what was streamed, tokenized, rather than
                // zero; text past the kept cap at 4 bytes a token.
                let streamed = tokens::count(self.encoding, &tap.content)
                    .saturating_add((tap.uncounted_bytes() / 4) as u64);
                let counted = self.prompt_tokens.saturating_add(streamed);
                tracing::warn!(
                    workspace_id = %self.hold.workspace,
                    counted_tokens = counted,
                    "stream ended without usage; its prompt and streamed text counted"
                );
                CallOutcome {
                    tokens_estimated: true,
                    cost_nano: price(crate::pricing::TokenUsage {
                        prompt: self.prompt_tokens,
                        completion: streamed,
                        ..Default::default()
                    }),
                    ..CallOutcome::success(counted)
                }
            }
        };
        self.hold.settle(outcome.with_headers(self.limits));
    }
}

struct Relay {
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    tap: SseUsageTap,
    settlement: Option<Settlement>,
    finished: bool,
}

impl Relay {
    fn settle(&mut self) {
        if let Some(settlement) = self.settlement.take() {
            settlement.settle(&self.tap);
        }
    }

    fn into_stream(self) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
        futures_util::stream::unfold(self, |mut relay| async move {
            if relay.finished {
                return None;
            }
            loop {
                match relay.upstream.next().await {
                    Some(Ok(chunk)) => {
                        let out = relay.tap.push(&chunk);
                        if !out.is_empty() {
                            return Some((Ok(out), relay));
                        }
                    }
                    Some(Err(e)) => {
                        // Upstream broke mid-stream: count what we have, and cut the
                        // client's stream too so it sees the failure.
                        relay.settle();
                        relay.finished = true;
                        return Some((Err(std::io::Error::other(e)), relay));
                    }
                    None => {
                        let rest = relay.tap.finish();
                        relay.settle();
                        relay.finished = true;
                        return (!rest.is_empty()).then_some((Ok(rest), relay));
                    }
                }
            }
        })
        .boxed()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_headers_go_upstream_and_none_picks_an_account() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("accept", "text/event-stream"),
            ("user-agent", "OpenAI/Python 1.0"),
            ("openai-beta", "assistants=v2"),
            ("authorization", "Bearer qa_workspace_key"),
            ("openai-organization", "org-other"),
            ("openai-project", "proj_other"),
            ("x-stainless-lang", "python"),
            ("cookie", "qa_session=x"),
            ("x-forwarded-for", "10.0.0.1"),
            ("host", "evil.example"),
            ("idempotency-key", "retry-1"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let out = forwardable_request_headers(&headers, "acme");
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accept",
                "content-type",
                "idempotency-key",
                "openai-beta",
                "user-agent"
            ]
        );
        let acme = out["idempotency-key"].to_str().unwrap().to_string();
        let other = forwardable_request_headers(&headers, "other");
        assert_ne!(
            acme, other["idempotency-key"],
            "one workspace's key is not another's"
        );
        assert_eq!(
            acme,
            forwardable_request_headers(&headers, "acme")["idempotency-key"],
            "a workspace's retries still match"
        );
    }
}
