//! The OpenAI-compatible proxy and the record API's raw forms, against a fake
//! OpenAI on 127.0.0.1:0: each upstream behaviour reaches the client as OpenAI
//! sent it and moves the status as the rules say; local blocks never reach it.
//!
//! Over 400 lines: one test per upstream behaviour, over the fake upstream
//! and request helpers they share.

mod common;

use common::fake_openai::{self, FakeOpenAi, USAGE_TOKENS};
use common::{start_with, Server, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

const UPSTREAM_KEY: &str = "sk-upstream-secret";

async fn setup(extra: &[(&str, &str)]) -> (Server, FakeOpenAi) {
    let fake = fake_openai::start().await;
    let mut env = vec![
        ("OPENAI_BASE_URL", fake.base_url.as_str()),
        ("OPENAI_API_KEY", UPSTREAM_KEY),
        ("OPENAI_TIMEOUT_S", "1"),
    ];
    env.extend_from_slice(extra);
    (start_with(&env).await, fake)
}

async fn chat(s: &Server, key: &str, body: Value) -> reqwest::Response {
    s.http
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("send")
}

async fn status_of(s: &Server, key: &str) -> Value {
    s.get("/api/quota/status", Some(key)).await.1
}

#[tokio::test]
async fn a_success_passes_through_and_counts_its_tokens() {
    let (s, fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = chat(
        &s,
        &key,
        json!({"model": "ok", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The rate-limit headers are the workspace's own budget here (10 a
    // minute, 10 000 tokens a minute, this call's 30 counted), never the
    // upstream's (59 left of the organisation's 60), which every tenant shares.
    let header = |name: &str| res.headers()[name].to_str().unwrap().to_string();
    assert_eq!(header("x-ratelimit-limit-requests"), "10");
    assert_eq!(header("x-ratelimit-remaining-requests"), "9");
    assert_eq!(header("x-ratelimit-limit-tokens"), "10000");
    assert_eq!(header("x-ratelimit-remaining-tokens"), "9970");
    assert!(header("x-ratelimit-reset-requests").ends_with('s'));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hi there");

    assert_eq!(
        fake.last_authorization().as_deref(),
        Some("Bearer sk-upstream-secret"),
        "upstream sees the server's key, never the workspace key"
    );
    assert_eq!(
        fake.last_body()["messages"][0]["content"],
        "hi",
        "body intact"
    );
    let snap = status_of(&s, &key).await;
    assert_eq!(snap["requests_per_minute"]["current"], 1);
    assert_eq!(snap["tokens_per_minute"]["current"], USAGE_TOKENS);
    assert_eq!(snap["upstream_limits"]["requests_limit"], 60);
    assert_eq!(snap["upstream_limits"]["requests_remaining"], 59);

    let res = s
        .http
        .get(s.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the model list is forwarded");
}

#[tokio::test]
async fn upstream_rate_limit_passes_through_then_blocks_locally() {
    let (s, fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = chat(&s, &key, json!({"model": "rate-limit", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        body["error"]["message"], "Rate limit reached for requests",
        "upstream body unchanged"
    );
    assert_eq!(status_of(&s, &key).await["status"], "RATE_LIMITED");

    let res = chat(&s, &key, json!({"model": "ok", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.headers().contains_key("retry-after-ms"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["param"].is_null());
    assert_eq!(
        fake.count(),
        1,
        "the blocked request never reached the upstream"
    );

    // Allowed again once retry-after-ms has passed: the status says so
    // first (no request is spent finding out), then a request goes through.
    common::eventually(&s, &key, |snap| snap["status"] != "RATE_LIMITED").await;
    let res = chat(&s, &key, json!({"model": "ok", "messages": []})).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "allowed again after retry-after-ms"
    );
}

#[tokio::test]
async fn insufficient_quota_is_quota_exceeded_and_blocks_with_openais_shape() {
    let (s, fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = chat(&s, &key, json!({"model": "quota", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "insufficient_quota"
    );
    assert_eq!(status_of(&s, &key).await["status"], "QUOTA_EXCEEDED");

    let res = chat(&s, &key, json!({"model": "ok", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "insufficient_quota");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn a_request_too_large_does_not_rate_limit_the_workspace() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = chat(
        &s,
        &key,
        json!({"model": "too-large", "messages": [{"role": "user", "content": "x".repeat(400)}]}),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "passed through as OpenAI sent it"
    );
    let snap = status_of(&s, &key).await;
    assert_eq!(snap["status"], "NORMAL");
    assert_eq!(snap["last_error"]["class"], "client_error");
}

#[tokio::test]
async fn server_errors_pass_through_and_degrade() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    for _ in 0..3 {
        let res = chat(&s, &key, json!({"model": "server-error", "messages": []})).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"]["type"],
            "server_error"
        );
    }
    assert_eq!(status_of(&s, &key).await["status"], "DEGRADED");
    let res = chat(&s, &key, json!({"model": "ok", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::OK, "DEGRADED does not block");
    assert_eq!(
        status_of(&s, &key).await["status"],
        "NORMAL",
        "a success restores health"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_and_a_dead_one_a_502() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = chat(&s, &key, json!({"model": "slow", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "upstream_timeout"
    );
    let snap = status_of(&s, &key).await;
    assert_eq!(snap["last_error"]["code"], "timeout");
    assert_eq!(
        snap["requests_per_minute"]["current"], 1,
        "failed requests count"
    );

    let dead = start_with(&[("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")]).await;
    let key = dead.workspace("acme").await;
    let res = chat(&dead, &key, json!({"model": "ok", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "upstream_unreachable"
    );
}

#[tokio::test]
async fn local_limits_block_before_the_upstream() {
    let (s, fake) = setup(&[]).await;
    let key = s
        .workspace_with_limits("tiny", json!({"requests_per_minute": 2}))
        .await;
    for _ in 0..2 {
        assert_eq!(
            chat(&s, &key, json!({"model": "ok", "messages": []}))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let res = chat(&s, &key, json!({"model": "ok", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: f64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 50.0 && retry <= 60.0, "{retry}");
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn learned_exhaustion_from_headers_rate_limits_until_reset() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = chat(&s, &key, json!({"model": "exhausted", "messages": []})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let snap = status_of(&s, &key).await;
    assert_eq!(
        snap["status"], "RATE_LIMITED",
        "remaining-requests 0 means wait for reset"
    );
    assert!(snap["retry_after_s"].as_f64().unwrap() <= 2.0);
}

async fn read_stream(res: reqwest::Response) -> (String, bool) {
    let mut text = String::new();
    let mut stream = res.bytes_stream();
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Err(_) => return (text, false),
        }
    }
    (text, true)
}

#[tokio::test]
async fn streams_relay_and_count_usage_exactly() {
    let (s, fake) = setup(&[]).await;
    let key = s.workspace("acme").await;

    // Client asked for usage: it sees the usage chunk.
    let res = chat(&s, &key, json!({"model": "ok", "stream": true, "stream_options": {"include_usage": true}, "messages": []})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (text, complete) = read_stream(res).await;
    assert!(complete);
    assert_eq!(
        text,
        format!(
            "{}{}{}data: [DONE]\n\n",
            fake_openai::chunk("Hel"),
            fake_openai::chunk("lo"),
            fake_openai::usage_chunk()
        )
    );
    assert_eq!(
        status_of(&s, &key).await["tokens_per_minute"]["current"],
        USAGE_TOKENS
    );

    // Client did not: the proxy asks upstream and hides the extra chunk.
    let res = chat(
        &s,
        &key,
        json!({"model": "ok", "stream": true, "messages": []}),
    )
    .await;
    let (text, _) = read_stream(res).await;
    assert_eq!(
        fake.last_body()["stream_options"]["include_usage"],
        true,
        "asked upstream for usage"
    );
    assert_eq!(
        text,
        format!(
            "{}{}data: [DONE]\n\n",
            fake_openai::chunk("Hel"),
            fake_openai::chunk("lo")
        )
    );
    assert_eq!(
        status_of(&s, &key).await["tokens_per_minute"]["current"],
        2 * USAGE_TOKENS
    );
}

#[tokio::test]
async fn a_broken_stream_still_counts_with_estimated_tokens() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = chat(&s, &key, json!({"model": "stream-cut", "stream": true, "messages": [{"role": "user", "content": format!("hello{}", " hello".repeat(99))}]})).await;
    let (text, complete) = read_stream(res).await;
    assert!(!complete, "the client sees the break");
    assert!(text.contains("Hel"));
    // The break is settled when the relay ends, just after the client saw it.
    let snap = common::eventually(&s, &key, |snap| snap["tokens_per_minute"]["current"] != 0).await;
    assert_eq!(snap["requests_per_minute"]["current"], 1);
    let tokens = snap["tokens_per_minute"]["current"].as_u64().unwrap();
    // 100 prompt tokens + 7 of chat framing (the real tokenizer's count),
    // plus the relayed text; the 4 096-token hold is not usage.
    assert!(
        (108..200).contains(&tokens),
        "counted from the prompt and the text relayed: {tokens}"
    );
    assert_eq!(
        snap["tokens_per_minute"]["reserved"], 0,
        "the hold was released"
    );
}

#[tokio::test]
async fn a_call_the_client_abandons_still_counts_what_the_upstream_answered() {
    // A hostile tenant's way to spend the shared organisation's tokens for
    // nothing: send, then hang up before the answer. The upstream answers
    // (and bills) the call anyway, so its usage must still count here.
    let (s, fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let request = s
        .http
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "hold", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}))
        .send();
    let abandoned = tokio::spawn(request);
    fake.wait_held(1).await;
    abandoned.abort();
    let _ = abandoned.await;
    // The client is gone; the upstream now answers.
    fake.release();
    let snap = common::eventually(&s, &key, |snap| {
        snap["tokens_per_minute"]["current"] == USAGE_TOKENS
    })
    .await;
    assert_eq!(
        snap["tokens_per_minute"]["reserved"], 0,
        "settled, not held"
    );
    assert_eq!(snap["requests_per_minute"]["current"], 1);
}

#[tokio::test]
async fn proxy_auth_errors_use_openais_shape() {
    let (s, fake) = setup(&[]).await;
    let res = s
        .http
        .post(s.url("/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_api_key"
    );
    let res = chat(&s, "qa_wrong", json!({})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = chat(&s, ADMIN, json!({})).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(fake.count(), 0);
}

#[tokio::test]
async fn record_accepts_raw_headers_and_raw_error_bodies() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let snap = s
        .record(&key, json!({"success": true, "tokens_used": 5, "headers": {"X-RateLimit-Remaining-Requests": "0", "x-ratelimit-reset-requests": "1m0s", "x-ratelimit-limit-requests": "60"}}))
        .await;
    assert_eq!(snap["status"], "RATE_LIMITED");
    assert_eq!(snap["upstream_limits"]["requests_limit"], 60);
    // Taken a moment after the record: 60 s minus that moment.
    let retry = snap["retry_after_s"].as_f64().unwrap();
    assert!(retry > 59.0 && retry <= 60.0, "{retry}");

    let key2 = s.workspace("beta").await;
    let snap = s
        .record(&key2, json!({"success": false, "http_status": 429, "error_body": {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}}))
        .await;
    assert_eq!(snap["status"], "QUOTA_EXCEEDED");
    assert_eq!(snap["last_error"]["code"], "insufficient_quota");

    let (status, body) = s
        .post(
            "/api/quota/record",
            Some(&key2),
            json!({"success": false, "error": {"code": "x"}, "error_body": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("error_body"));
}

#[tokio::test]
async fn batch_records_all_or_nothing() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let records = json!({"records": [
        {"success": true, "tokens_used": 10},
        {"success": true, "tokens_used": 20},
        {"success": false, "error": {"http_status": 400, "type": "invalid_request_error"}}
    ]});
    let (status, body) = s.post("/api/quota/record/batch", Some(&key), records).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recorded"], 3);
    assert_eq!(body["snapshot"]["requests_per_minute"]["current"], 3);
    assert_eq!(body["snapshot"]["tokens_per_minute"]["current"], 30);

    let bad = json!({"records": [{"success": true, "tokens_used": 1}, {"success": true, "tokens_used": 999999999999u64}]});
    let (status, body) = s.post("/api/quota/record/batch", Some(&key), bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("records[1].tokens_used"),
        "{body}"
    );
    let (status, _) = s
        .post(
            "/api/quota/record/batch",
            Some(&key),
            json!({"records": []}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        status_of(&s, &key).await["requests_per_minute"]["current"],
        3,
        "nothing from the bad batches counted"
    );
}

#[tokio::test]
async fn send_message_server_fn_goes_through_the_tracked_client() {
    let (s, fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let send = |text: &str, key: &str| {
        s.http
            .post(s.url("/api/fn/send_message"))
            .bearer_auth(key)
            .form(&[
                ("workspace", "acme"),
                ("conversation", "main"),
                ("text", text),
            ])
            .send()
    };
    let res = send("hello", &key).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(outcome["outcome"], "replied", "{outcome}");
    assert_eq!(outcome["reply"]["content"], "Hi there");
    assert_eq!(fake.last_body()["messages"][0]["content"], "hello");
    let snap = status_of(&s, &key).await;
    assert_eq!(
        snap["tokens_per_minute"]["current"], USAGE_TOKENS,
        "same accounting as everything else"
    );

    // The transcript is the context of the next message.
    send("again", &key).await.unwrap();
    assert_eq!(fake.last_body()["messages"].as_array().unwrap().len(), 3);
    let res = s
        .http
        .post(s.url("/api/fn/conversation"))
        .bearer_auth(&key)
        .form(&[("workspace", "acme"), ("conversation", "main")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap().as_array().unwrap().len(),
        4
    );

    // Over quota: blocked before OpenAI, said plainly.
    s.record(&key, json!({"success": false, "error": {"http_status": 429, "code": "rate_limit_exceeded"}, "retry_after_s": 30}))
        .await;
    let before = fake.count();
    let outcome: Value = send("blocked?", &key).await.unwrap().json().await.unwrap();
    assert_eq!(outcome["outcome"], "blocked");
    assert_eq!(outcome["status"], "RATE_LIMITED");
    assert_eq!(fake.count(), before);

    // Someone else's workspace, or nobody: refused.
    let other = s.workspace("other").await;
    let res = send("hi", &other).await.unwrap();
    assert!(res.status().is_server_error() || res.status().is_client_error());
    let res = s
        .http
        .post(s.url("/api/fn/send_message"))
        .form(&[
            ("workspace", "acme"),
            ("conversation", "main"),
            ("text", "hi"),
        ])
        .send()
        .await
        .unwrap();
    assert!(!res.status().is_success());
}

#[tokio::test]
async fn a_browser_session_cookie_stands_in_for_the_key() {
    let (s, _fake) = setup(&[]).await;
    let key = s.workspace("acme").await;
    let res = s
        .http
        .post(s.url("/api/session"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    assert!(!session.contains(&key), "the cookie is not the key");

    let res = s
        .http
        .get(s.url("/api/quota/status"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["workspace_id"], "acme");

    let res = s
        .http
        .delete(s.url("/api/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let res = s
        .http
        .get(s.url("/api/quota/status"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = s
        .http
        .post(s.url("/api/session"))
        .json(&json!({"api_key": "qa_wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = s
        .http
        .post(s.url("/api/session"))
        .form(&[("api_key", "qa_wrong")])
        .send()
        .await
        .unwrap();
    assert!(
        res.url().as_str().contains("/signin?error=invalid_key") || res.status().is_redirection()
    );
}
