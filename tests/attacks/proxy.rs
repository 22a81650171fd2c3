//! Attacks on the `/v1` proxy, which holds the one upstream key every
//! workspace shares: reading or changing the shared organisation's objects,
//! path tricks, choosing another account by header, reading another
//! workspace's stored objects, and exhausting the proxy. Each is refused with
//! its status and error code, and the fake upstream is shown to have received
//! nothing from it (after a request that does reach it, so that it could have).
//!
//! Over ~400 lines: one attack area with its shared raw-HTTP helpers; split
//! by attack it would repeat them.

use crate::common::fake_openai::{self, FakeOpenAi};
use crate::common::{start_with, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UPSTREAM_KEY: &str = "sk-upstream-secret";

async fn setup(extra: &[(&str, &str)]) -> (Server, FakeOpenAi, String) {
    let fake = fake_openai::start().await;
    let mut env = vec![
        ("OPENAI_BASE_URL", fake.base_url.as_str()),
        ("OPENAI_API_KEY", UPSTREAM_KEY),
        ("OPENAI_RATE_LIMIT_PER_MINUTE", "1000"),
    ];
    env.extend_from_slice(extra);
    let server = start_with(&env).await;
    let key = server.workspace("acme").await;
    (server, fake, key)
}

async fn send(
    s: &Server,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = s.http.request(method, s.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn requests_counted(s: &Server, key: &str) -> u64 {
    let (_, snapshot) = s.get("/api/quota/status", Some(key)).await;
    snapshot["requests_per_minute"]["current"]
        .as_u64()
        .expect("a count")
}

/// An answer read off a raw connection: status, head, JSON body (or null).
struct Raw {
    status: u16,
    head: String,
    body: Value,
}

/// Sends `head` (and `body`) on a fresh connection exactly as written, for
/// requests an HTTP client would normalise first, and reads the answer
/// until the server closes (`Connection: close`).
async fn raw(s: &Server, head: &str, body: &[u8]) -> Raw {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let (mut read, mut write) = stream.split();
    let writing = async {
        // The server may answer and close before taking the whole body.
        let _ = write.write_all(head.as_bytes()).await;
        for chunk in body.chunks(64 * 1024) {
            if write.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let mut answer = Vec::new();
    let reading = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut answer));
    let (_, read_result) = tokio::join!(writing, reading);
    assert!(read_result.is_ok(), "no answer within 20 s to {head:?}");
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head_text, body_text) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head_text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP status line: {answer:?}"));
    Raw {
        status,
        head: head_text.to_ascii_lowercase(),
        body: serde_json::from_str(body_text).unwrap_or(Value::Null),
    }
}

fn get_head(target: &str, key: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn the_shared_organisations_objects_are_out_of_reach() {
    let (s, fake, key) = setup(&[]).await;
    // What a hostile tenant would try with the shared key: list, read, delete
    // or start work on the organisation's files, batches, stored completions
    // and responses, vector stores, fine-tunes, assistants, admin endpoints.
    let attempts: &[(Method, &str, StatusCode)] = &[
        (Method::GET, "/v1/files", StatusCode::NOT_FOUND),
        (Method::POST, "/v1/files", StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/v1/files/file-abc/content",
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/v1/batches", StatusCode::NOT_FOUND),
        (Method::POST, "/v1/batches", StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/v1/chat/completions",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/v1/chat/completions?store=true",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/v1/chat/completions/chatcmpl-1",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/v1/chat/completions/chatcmpl-1",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/v1/chat/completions",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/v1/responses/resp_1", StatusCode::NOT_FOUND),
        (
            Method::DELETE,
            "/v1/responses/resp_1",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/v1/responses/resp_1/input_items",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/v1/conversations/conv_1",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/v1/models/x",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::POST, "/v1/models", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/v1/vector_stores", StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/v1/vector_stores/vs_1/search",
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/v1/fine_tuning/jobs", StatusCode::NOT_FOUND),
        (Method::POST, "/v1/fine_tuning/jobs", StatusCode::NOT_FOUND),
        (Method::GET, "/v1/assistants", StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/v1/organization/projects",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/audio/transcriptions",
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, expected) in attempts {
        let (status, headers, body) =
            send(&s, method.clone(), path, &key, Some(json!({"model": "ok"}))).await;
        assert_eq!(status, *expected, "{method} {path}: {body}");
        assert_eq!(
            body["error"]["code"], "endpoint_not_available",
            "{method} {path}: {body}"
        );
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let shown = path.split('?').next().unwrap_or(path);
        assert!(
            message.contains(&format!("{method} {shown}")) && message.contains("quota-alert"),
            "the message names the endpoint: {message}"
        );
        if *expected == StatusCode::METHOD_NOT_ALLOWED {
            assert!(headers.contains_key("allow"), "{method} {path}");
        }
    }
    assert_eq!(fake.total(), 0, "nothing reached the upstream");
    assert_eq!(requests_counted(&s, &key).await, 0, "nothing was counted");

    // The same workspace reaches what is allowed: the refusals above could
    // have arrived.
    let (status, _, _) = send(&s, Method::GET, "/v1/models", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&s, Method::GET, "/v1/models/gpt-4o", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    let targets: Vec<String> = fake.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/v1/models", "/v1/models/gpt-4o"]);
}

#[tokio::test]
async fn an_operator_can_widen_the_allowlist_and_only_by_what_it_names() {
    let (s, fake, key) = setup(&[(
        "QUOTA_PROXY_EXTRA_ENDPOINTS",
        "GET /v1/files, GET /v1/files/{id}",
    )])
    .await;
    let (status, _, _) = send(&s, Method::GET, "/v1/files", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&s, Method::GET, "/v1/files/file-1", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(&s, Method::DELETE, "/v1/files/file-1", &key, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "endpoint_not_available");
    let (status, _, _) = send(&s, Method::GET, "/v1/files/file-1/content", &key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let answer = raw(&s, &get_head("/v1/files/%2e%2e", &key), b"").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "invalid_path");
    let targets: Vec<String> = fake.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/v1/files", "/v1/files/file-1"]);
}

#[tokio::test]
async fn path_tricks_are_refused_and_never_reach_the_upstream() {
    let (s, fake, key) = setup(&[]).await;
    let tricks = [
        "/v1/../v1/files",
        "/v1/models/../files",
        "/v1/models/..",
        "/v1/./models",
        "/v1/%2e%2e/files",
        "/v1/%2E%2e/files",
        "/v1/models/%2e%2e%2ffiles",
        "/v1/models/%2E",
        "/v1//files",
        "/v1/models//x",
        "/v1/models/",
        "/v1/models%2f..%2ffiles",
        "/v1/models%2F..%2Ffiles",
        "/v1/models%5c..%5cfiles",
        "/v1/models%5C..%5Cfiles",
        "/v1/models\\..\\files",
        "/v1/models/x@evil.example",
        "/v1/models/%40evil.example",
        "/v1/models/%00",
        "/v1/models/a%0d%0aHost:evil.example",
        "/v1/models/%252e%252e",
        "/v1/models/%zz",
        "/v1/models/a;b",
        "http://evil.example/v1/models",
        "https://evil.example/v1/models/x",
    ];
    for trick in tricks {
        let answer = raw(&s, &get_head(trick, &key), b"").await;
        assert_eq!(answer.status, 400, "{trick}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["code"], "invalid_path",
            "{trick}: {}",
            answer.body
        );
        assert_eq!(answer.body["error"]["type"], "invalid_request_error");
    }
    // The same for a POST, and without a key: the path is judged first.
    let post = "POST /v1/chat/completions/../../files HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n";
    let answer = raw(&s, post, b"{}").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "invalid_path");
    assert_eq!(fake.total(), 0, "no trick reached the upstream");
    assert_eq!(requests_counted(&s, &key).await, 0);

    // Plain and plainly encoded paths go through, to the URL the rule builds.
    let answer = raw(&s, &get_head("/v1/models/gpt-4o", &key), b"").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = raw(
        &s,
        &get_head("/v1/models/ft%3Agpt-4o%3Aacme?x=1", &key),
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let targets: Vec<String> = fake.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        ["/v1/models/gpt-4o", "/v1/models/ft:gpt-4o:acme?x=1"]
    );
}

#[tokio::test]
async fn no_header_selects_another_account_or_reaches_the_upstream_unasked() {
    let (s, fake, key) = setup(&[]).await;
    let response = s
        .http
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("OpenAI-Organization", "org-someone-else")
        .header("OpenAI-Project", "proj_someone_else")
        .header("openai-beta", "assistants=v2")
        .header("x-stainless-lang", "python")
        .header("x-forwarded-host", "evil.example")
        .header("cookie", "qa_session=whatever")
        .header("idempotency-key", "retry-1")
        .header("user-agent", "OpenAI/Python 1.55")
        .json(&json!({"model": "ok", "messages": []}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    for name in ["openai-organization", "set-cookie"] {
        assert!(
            !response.headers().contains_key(name),
            "the shared account's {name} is not passed back"
        );
    }
    let seen = fake.requests();
    assert_eq!(seen.len(), 1, "the request itself arrived");
    let headers = &seen[0].headers;
    assert_eq!(headers["authorization"], format!("Bearer {UPSTREAM_KEY}"));
    for name in [
        "openai-organization",
        "openai-project",
        "x-stainless-lang",
        "x-forwarded-host",
        "cookie",
    ] {
        assert!(
            !headers.contains_key(name),
            "{name} reached the upstream: {headers:?}"
        );
    }
    assert_eq!(headers["openai-beta"], "assistants=v2");
    assert_eq!(headers["user-agent"], "OpenAI/Python 1.55");
    let idempotency = headers["idempotency-key"].to_str().unwrap();
    assert!(
        idempotency.starts_with("qa-") && !idempotency.contains("retry-1"),
        "namespaced by workspace: {idempotency}"
    );
    let mut names: Vec<&str> = headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "authorization",
            "content-length",
            "content-type",
            "host",
            "idempotency-key",
            "openai-beta",
            "user-agent"
        ],
        "only allowlisted headers (and the transport's own)"
    );
}

#[tokio::test]
async fn one_workspace_cannot_store_or_read_an_object_for_another() {
    let (s, fake, first) = setup(&[]).await;
    let second = s.workspace("other").await;
    // The first workspace tries to leave objects in the shared organisation...
    let stores: &[(&str, Value, &str)] = &[
        (
            "/v1/responses",
            json!({"model": "ok", "input": "secret", "store": true}),
            "store",
        ),
        (
            "/v1/responses",
            json!({"model": "ok", "input": "secret", "background": true}),
            "background",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "ok", "messages": [{"role": "user", "content": "secret"}], "store": true}),
            "store",
        ),
    ];
    for (path, body, param) in stores {
        let (status, _, answer) = send(&s, Method::POST, path, &first, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["code"], "unsupported_parameter", "{answer}");
        assert_eq!(answer["error"]["param"], *param, "{answer}");
    }
    // ...and the second to read or continue one.
    let reads: &[(Method, &str, Option<Value>, StatusCode, &str)] = &[
        (
            Method::POST,
            "/v1/responses",
            Some(json!({"model": "ok", "input": "go on", "previous_response_id": "resp_first"})),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
        ),
        (
            Method::POST,
            "/v1/responses",
            Some(json!({"model": "ok", "input": "go on", "conversation": "conv_first"})),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
        ),
        (
            Method::POST,
            "/v1/responses",
            Some(json!({"model": "ok", "input": [{"type": "item_reference", "id": "msg_first"}]})),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
        ),
        (
            Method::POST,
            "/v1/responses",
            Some(
                json!({"model": "ok", "input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["vs_first"]}]}),
            ),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
        ),
        (
            Method::GET,
            "/v1/responses/resp_first",
            None,
            StatusCode::NOT_FOUND,
            "endpoint_not_available",
        ),
        (
            Method::GET,
            "/v1/chat/completions",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "endpoint_not_available",
        ),
        (
            Method::GET,
            "/v1/chat/completions/chatcmpl-first/messages",
            None,
            StatusCode::NOT_FOUND,
            "endpoint_not_available",
        ),
    ];
    for (method, path, body, expected, code) in reads {
        let (status, _, answer) = send(&s, method.clone(), path, &second, body.clone()).await;
        assert_eq!(status, *expected, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], *code, "{method} {path}: {answer}");
    }
    // Not sneaked past the check as "not JSON" either.
    let (status, answer) = s
        .post_raw(
            "/v1/responses",
            &first,
            Some("text/plain"),
            r#"{"model":"ok","store":true}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["param"], "store");
    let (status, answer) = s
        .post_raw("/v1/responses", &first, None, "store=true")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "invalid_body");
    assert_eq!(fake.total(), 0, "no store or read reached the upstream");
    assert_eq!(requests_counted(&s, &first).await, 0);
    assert_eq!(requests_counted(&s, &second).await, 0);

    // A response that says nothing about storing reaches it, with store off.
    let (status, _, _) = send(
        &s,
        Method::POST,
        "/v1/responses",
        &first,
        Some(json!({"model": "ok", "input": "hi"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/v1/responses");
    assert_eq!(
        seen[0].json()["store"],
        false,
        "the Responses API would store by default"
    );
    assert_eq!(seen[0].json()["input"], "hi");
}

/// Sends a chat request that the fake holds open until released.
fn hold(s: &Server, key: &str, model: &str) -> tokio::task::JoinHandle<StatusCode> {
    let request = s
        .http
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": []}));
    tokio::spawn(async move { request.send().await.expect("send").status() })
}

#[tokio::test]
async fn concurrent_requests_are_capped_per_workspace_and_overall_at_once() {
    let (s, fake, key) = setup(&[
        ("QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE", "2"),
        ("QUOTA_PROXY_MAX_INFLIGHT", "3"),
    ])
    .await;
    let other = s.workspace("other").await;
    let held = vec![hold(&s, &key, "hold"), hold(&s, &key, "hold")];
    fake.wait_held(2).await;

    let started = Instant::now();
    let (status, headers, body) = send(
        &s,
        Method::POST,
        "/v1/chat/completions",
        &key,
        Some(json!({"model": "ok", "messages": []})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_concurrent_requests");
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once, not queued"
    );

    // Another workspace still gets in, up to the instance's cap...
    let mut held = held;
    held.push(hold(&s, &other, "hold"));
    fake.wait_held(3).await;
    let started = Instant::now();
    let (status, headers, body) = send(
        &s,
        Method::POST,
        "/v1/chat/completions",
        &other,
        Some(json!({"model": "ok", "messages": []})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "proxy_overloaded");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once, not queued"
    );
    assert_eq!(
        fake.total(),
        3,
        "the refused requests never reached the upstream"
    );

    fake.release();
    for request in held {
        assert_eq!(request.await.expect("join"), StatusCode::OK);
    }
    // Permits come back: both workspaces are served again.
    let (status, _, _) = send(
        &s,
        Method::POST,
        "/v1/chat/completions",
        &key,
        Some(json!({"model": "ok", "messages": []})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        &s,
        Method::POST,
        "/v1/chat/completions",
        &other,
        Some(json!({"model": "ok", "messages": []})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        requests_counted(&s, &key).await,
        3,
        "the refused request was not counted"
    );
}

#[tokio::test]
async fn a_stream_holds_its_permit_until_it_ends() {
    let (s, fake, key) = setup(&[("QUOTA_PROXY_MAX_INFLIGHT_PER_WORKSPACE", "1")]).await;
    let chat = |model: &str, stream: bool| {
        s.http
            .post(s.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "stream": stream, "messages": []}))
            .send()
    };
    let mut stream = chat("stream-hold", true).await.expect("send");
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.expect("chunk").expect("a first chunk");
    assert!(String::from_utf8_lossy(&first).contains("Hel"));

    // The handler has long returned; the stream still counts.
    let refused = chat("ok", false).await.expect("send");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_concurrent_requests");

    fake.release();
    while stream.chunk().await.expect("chunk").is_some() {}
    // Released once the server drops the finished stream: poll briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = chat("ok", false).await.expect("send").status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            Instant::now() < deadline,
            "the stream's permit was never returned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_and_never_forwarded() {
    let (s, fake, key) = setup(&[]).await;
    let cap = 32 * 1024 * 1024;
    let head = |length: usize| {
        format!(
            "POST /v1/embeddings HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    let big = vec![b' '; cap + 1];
    let answer = raw(&s, &head(big.len()), &big).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "payload_too_large");
    assert_eq!(answer.body["error"]["type"], "invalid_request_error");
    assert_eq!(fake.total(), 0);
    assert_eq!(requests_counted(&s, &key).await, 0);

    // A body at the cap goes through.
    let mut at_cap = br#"{"model":"ok","input":"x"}"#.to_vec();
    at_cap.resize(cap, b' ');
    let answer = raw(&s, &head(at_cap.len()), &at_cap).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(fake.total(), 1);
    assert_eq!(fake.requests()[0].body.len(), cap);
}

#[tokio::test]
async fn a_request_without_a_valid_key_is_refused_before_its_body_is_read() {
    let (s, fake, key) = setup(&[("QUOTA_HTTP_BODY_TIMEOUT_S", "3")]).await;
    // Headers promising a megabyte that never comes.
    let head = |auth: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n"
        )
    };
    for (auth, status, code) in [
        ("", 401, "invalid_api_key"),
        (
            "Authorization: Bearer qa_not_a_key\r\n",
            401,
            "invalid_api_key",
        ),
        ("Authorization: Basic abc\r\n", 401, "invalid_api_key"),
        (
            &format!("Authorization: Bearer {}\r\n", crate::common::ADMIN),
            403,
            "workspace_key_required",
        ),
    ] {
        let started = Instant::now();
        let answer = raw(&s, &head(auth), b"").await;
        assert_eq!(answer.status, status, "{auth}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], code);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered without waiting for the body: {:?}",
            started.elapsed()
        );
    }
    // With a valid key the body is waited for (here: until the deadline).
    let answer = raw(&s, &head(&format!("Authorization: Bearer {key}\r\n")), b"").await;
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "request_timeout");
    assert!(answer.head.contains("content-type: application/json"));
    assert_eq!(fake.total(), 0);
}

#[tokio::test]
async fn org_objects_referenced_from_deep_inside_a_body_are_refused() {
    // The review found each of these forwarded: the organisation's reusable
    // prompts, files handed in through a function call's output, a
    // screenshot or an image mask, and a stored image called up by its id.
    let (s, fake, key) = setup(&[]).await;
    let attempts: &[(&str, Value, &str)] = &[
        (
            "/v1/responses",
            json!({"model": "ok", "input": "hi", "prompt": {"id": "pmpt_other", "version": "1"}}),
            "prompt",
        ),
        (
            "/v1/responses",
            json!({"model": "ok", "input": [{"type": "function_call_output", "call_id": "c1",
                "output": [{"type": "input_file", "file_id": "file-other"}]}]}),
            "input[0].output[0].file_id",
        ),
        (
            "/v1/responses",
            json!({"model": "ok", "input": [{"type": "computer_call_output", "call_id": "c1",
                "output": {"type": "computer_screenshot", "file_id": "file-other"}}]}),
            "input[0].output.file_id",
        ),
        (
            "/v1/responses",
            json!({"model": "ok", "input": "edit it", "tools": [{"type": "image_generation",
                "input_image_mask": {"file_id": "file-other"}}]}),
            "tools[0].input_image_mask.file_id",
        ),
        (
            "/v1/responses",
            json!({"model": "ok", "input": [{"type": "image_generation_call", "id": "ig_other"}]}),
            "input[0].id",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "ok", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x"}},
                {"type": "file", "file": {"file_id": "file-other"}}]}]}),
            "messages[0].content[1].file.file_id",
        ),
    ];
    for (path, body, param) in attempts {
        let (status, _, answer) = send(&s, Method::POST, path, &key, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["code"], "unsupported_parameter", "{answer}");
        assert_eq!(answer["error"]["param"], *param, "{answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    }
    assert_eq!(fake.total(), 0, "no reference reached the upstream");
    assert_eq!(requests_counted(&s, &key).await, 0);

    // A tool whose schema merely names a `file_id` property goes through.
    let (status, _, answer) = send(
        &s,
        Method::POST,
        "/v1/responses",
        &key,
        Some(
            json!({"model": "ok", "input": "hi", "tools": [{"type": "function", "name": "open",
            "parameters": {"type": "object", "properties": {"file_id": {"type": "string"}}}}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(fake.total(), 1);
}

async fn tokens_counted(s: &Server, key: &str) -> u64 {
    let (_, snapshot) = s.get("/api/quota/status", Some(key)).await;
    snapshot["tokens_per_minute"]["current"]
        .as_u64()
        .expect("a count")
}

#[tokio::test]
async fn a_stream_cannot_opt_out_of_reporting_its_usage() {
    // A stream without usage is counted by estimate only, which never sees
    // reasoning tokens: the proxy asks for usage itself. The review found two
    // ways past that: `stream_options: null`, and a content type that is not
    // spelled `application/json` on an endpoint whose body is not rewritten.
    let (s, fake, key) = setup(&[]).await;
    let response = s
        .http
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(
            &json!({"model": "ok", "messages": [{"role": "user", "content": "hi"}],
            "stream": true, "stream_options": null}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("stream");
    assert!(text.contains("[DONE]"), "{text}");
    assert!(
        !text.contains("total_tokens"),
        "the usage event the client did not ask for is removed: {text}"
    );
    let seen = fake.requests();
    assert_eq!(
        seen[0].json()["stream_options"]["include_usage"],
        true,
        "{}",
        seen[0].json()
    );
    assert_eq!(
        tokens_counted(&s, &key).await,
        fake_openai::USAGE_TOKENS,
        "counted from the upstream's usage, not estimated"
    );

    let (status, _) = s
        .post_raw(
            "/v1/completions",
            &key,
            Some("Application/JSON"),
            r#"{"model":"ok","prompt":"hi","stream":true,"stream_options":{"include_usage":false}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].target, "/v1/completions");
    assert_eq!(
        seen[1].json()["stream_options"]["include_usage"],
        true,
        "{:?}",
        seen[1].body
    );
}

#[tokio::test]
async fn the_bare_base_url_is_answered_in_openais_shape() {
    // `/v1` and `/v1/` fell through to the pages (an HTML 404), which an SDK
    // cannot read; every `/v1` answer is OpenAI's shape.
    let (s, fake, key) = setup(&[]).await;
    for (method, path) in [
        (Method::GET, "/v1"),
        (Method::GET, "/v1/"),
        (Method::POST, "/v1"),
        (Method::POST, "/v1/"),
    ] {
        let (status, headers, answer) =
            send(&s, method.clone(), path, &key, Some(json!({"model": "ok"}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_path", "{answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{headers:?}"
        );
    }
    assert_eq!(fake.total(), 0);
}
