//! A fake OpenAI on 127.0.0.1:0. The request's `model` picks the behaviour:
//! `ok`, `exhausted`, `rate-limit`, `quota`, `server-error`, `slow`, `too-large`;
//! with `"stream": true`: a normal stream (usage only when asked for, as OpenAI
//! does) or `stream-cut`, which breaks off mid-stream. It counts requests and
//! keeps the last one it saw.
//!
//! Every request on any path is also kept whole ([`FakeOpenAi::requests`]),
//! so a test can assert that nothing (or nothing of a kind) reached it. The
//! models `hold` and, streamed, `stream-hold` (one chunk, then wait) keep
//! their request open until [`FakeOpenAi::release`], for concurrency tests.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Seen {
    pub count: AtomicUsize,
    pub last_body: Mutex<Option<Value>>,
    pub last_authorization: Mutex<Option<String>>,
    /// Every request, any path, in arrival order.
    pub requests: Mutex<Vec<SeenRequest>>,
    /// Requests of the `hold` models waiting for release right now.
    pub held: AtomicUsize,
    pub release: Gate,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query, as sent (`/v1/chat/completions?x=1`).
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SeenRequest {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Opened once by [`FakeOpenAi::release`]; `hold` requests wait for it.
pub struct Gate(tokio::sync::watch::Sender<bool>);

impl Default for Gate {
    fn default() -> Self {
        Self(tokio::sync::watch::channel(false).0)
    }
}

impl Gate {
    async fn wait(&self) {
        let mut open = self.0.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }
}

pub struct FakeOpenAi {
    pub base_url: String,
    pub seen: Arc<Seen>,
}

impl FakeOpenAi {
    pub fn count(&self) -> usize {
        self.seen.count.load(Ordering::SeqCst)
    }

    pub fn last_body(&self) -> Value {
        self.seen
            .last_body
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Value::Null)
    }

    pub fn last_authorization(&self) -> Option<String> {
        self.seen.last_authorization.lock().unwrap().clone()
    }

    /// Every request received so far, on any path.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// How many requests (any path) were received.
    pub fn total(&self) -> usize {
        self.seen.requests.lock().unwrap().len()
    }

    /// `hold` / `stream-hold` requests waiting right now.
    pub fn held(&self) -> usize {
        self.seen.held.load(Ordering::SeqCst)
    }

    /// Waits (up to 10 s) until `n` requests are held.
    pub async fn wait_held(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.held() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} requests held, expected {n}",
                self.held()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Lets every held request (and every later one) finish.
    pub fn release(&self) {
        self.seen.release.0.send_replace(true);
    }
}

/// Keeps every request whole in `seen.requests` before it is answered.
async fn keep_request(
    axum::extract::State(seen): axum::extract::State<Arc<Seen>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    seen.requests.lock().unwrap().push(SeenRequest {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    next.run(axum::extract::Request::from_parts(parts, Body::from(body)))
        .await
}

pub async fn start() -> FakeOpenAi {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route(
            "/v1/{*rest}",
            any(|| async {
                (
                    StatusCode::OK,
                    axum::Json(json!({"object": "list", "data": []})),
                )
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            seen.clone(),
            keep_request,
        ))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeOpenAi {
        base_url: format!("http://{addr}/v1"),
        seen,
    }
}

pub const USAGE_TOKENS: u64 = 30;

fn limit_headers(remaining_requests: u64) -> [(&'static str, String); 6] {
    [
        ("x-ratelimit-limit-requests", "60".into()),
        (
            "x-ratelimit-remaining-requests",
            remaining_requests.to_string(),
        ),
        ("x-ratelimit-reset-requests", "2s".into()),
        ("x-ratelimit-limit-tokens", "150000".into()),
        ("x-ratelimit-remaining-tokens", "149970".into()),
        ("x-ratelimit-reset-tokens", "6ms".into()),
    ]
}

fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (name, value) in headers {
        response.headers_mut().insert(*name, value.parse().unwrap());
    }
    response
}

fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        ),
    )
        .into_response()
}

async fn chat(
    axum::extract::State(seen): axum::extract::State<Arc<Seen>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    seen.count.fetch_add(1, Ordering::SeqCst);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    *seen.last_body.lock().unwrap() = Some(body.clone());
    *seen.last_authorization.lock().unwrap() = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let model = body["model"].as_str().unwrap_or("ok").to_string();
    if body["stream"] == true {
        if model == "stream-hold" {
            return held_stream(seen);
        }
        return stream(&model, body["stream_options"]["include_usage"] == true);
    }
    match model.as_str() {
        "rate-limit" => with_headers(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "rate_limit_exceeded",
                "Rate limit reached for requests",
            ),
            &[
                ("retry-after", "1".into()),
                ("retry-after-ms", "800".into()),
            ],
        ),
        "quota" => error(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        ),
        "too-large" => with_headers(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "tokens",
                "rate_limit_exceeded",
                "Request too large",
            ),
            &[
                ("x-ratelimit-limit-tokens", "10".into()),
                ("x-ratelimit-remaining-tokens", "10".into()),
            ],
        ),
        "server-error" => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "",
            "The server had an error",
        ),
        "slow" => {
            // The slowness is the behaviour under test: longer than the
            // upstream timeout the proxy tests configure, so they see a 504.
            tokio::time::sleep(Duration::from_secs(3)).await;
            completion(&limit_headers(59))
        }
        "exhausted" => completion(&limit_headers(0)),
        "hold" => {
            seen.held.fetch_add(1, Ordering::SeqCst);
            seen.release.wait().await;
            seen.held.fetch_sub(1, Ordering::SeqCst);
            completion(&limit_headers(59))
        }
        _ => completion(&limit_headers(59)),
    }
}

fn completion(headers: &[(&'static str, String)]) -> Response {
    let body = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": USAGE_TOKENS}
    });
    let response = with_headers((StatusCode::OK, axum::Json(body)).into_response(), headers);
    // What OpenAI adds about the shared account, which tenants need not see.
    with_headers(
        response,
        &[
            ("openai-organization", "org-shared".into()),
            (
                "set-cookie",
                "__cf_bm=upstream; Domain=api.openai.com".into(),
            ),
        ],
    )
}

pub fn chunk(content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}}], "usage": null})
    )
}

pub fn usage_chunk() -> String {
    format!(
        "data: {}\n\n",
        json!({"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": USAGE_TOKENS}})
    )
}

fn stream(model: &str, include_usage: bool) -> Response {
    let cut = model == "stream-cut";
    let events = async_events(cut, include_usage);
    let mut response = Response::new(Body::from_stream(events));
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    response
}

/// One chunk at once, then the rest only after release.
fn held_stream(seen: Arc<Seen>) -> Response {
    seen.held.fetch_add(1, Ordering::SeqCst);
    let events = futures_util::stream::unfold(0u32, move |step| {
        let seen = seen.clone();
        async move {
            let item = match step {
                0 => chunk("Hel"),
                1 => {
                    seen.release.wait().await;
                    seen.held.fetch_sub(1, Ordering::SeqCst);
                    chunk("lo")
                }
                2 => usage_chunk(),
                3 => "data: [DONE]\n\n".to_string(),
                _ => return None,
            };
            Some((Ok::<_, std::io::Error>(Bytes::from(item)), step + 1))
        }
    });
    let mut response = Response::new(Body::from_stream(events));
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    response
}

fn async_events(
    cut: bool,
    include_usage: bool,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(0u32, move |step| async move {
        // Small pauses so the relay is exercised chunk by chunk.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let item = match step {
            0 => Ok(chunk("Hel")),
            1 => Ok(chunk("lo")),
            2 if cut => Err(std::io::Error::other("connection reset by fake")),
            2 if include_usage => Ok(usage_chunk()),
            2 | 3 => Ok("data: [DONE]\n\n".to_string()),
            _ => return None,
        };
        let next = if step == 2 && !include_usage && !cut {
            4
        } else {
            step + 1
        };
        let next = if step == 3 { 4 } else { next };
        Some((item.map(Bytes::from), next))
    })
}
