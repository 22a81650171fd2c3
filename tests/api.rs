//! The API over real HTTP and WebSocket on 127.0.0.1:0: every endpoint, every
//! auth failure, every malformed body, and live updates.
//!
//! Over 400 lines: one test per endpoint behaviour, over the WebSocket
//! helpers they share; split up, each part would carry its own copy.

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::{start, Server, ADMIN};

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn assert_error(
    status: StatusCode,
    body: &Value,
    expected_status: StatusCode,
    expected_code: &str,
) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(error_code(body), expected_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let s = start().await;
    let (status, body) = s.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    // Ready: the store answers (redis_shared.rs shows a 503 while it does not).
    let (status, body) = s.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn admin_creates_workspaces_with_validated_ids_and_limits() {
    let s = start().await;
    let (status, body) = s
        .post(
            "/api/admin/workspaces",
            Some(ADMIN),
            json!({"id": "acme", "limits": {"requests_per_minute": 3}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], "acme");
    assert!(body["api_key"].as_str().unwrap().starts_with("qa_"));
    assert_eq!(body["limits"]["requests_per_minute"], 3);
    assert_eq!(body["limits"]["requests_per_day"], 1000);

    let (status, body) = s
        .post("/api/admin/workspaces", Some(ADMIN), json!({"id": "acme"}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "already_exists");

    for bad in ["", "Acme", "a b", "ünï", &"x".repeat(65), "../etc"] {
        let (status, body) = s
            .post("/api/admin/workspaces", Some(ADMIN), json!({"id": bad}))
            .await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_workspace_id",
        );
    }
    let (status, body) = s
        .post(
            "/api/admin/workspaces",
            Some(ADMIN),
            json!({"id": &"x".repeat(64)}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "64 characters is allowed: {body}"
    );

    let (status, body) = s
        .post(
            "/api/admin/workspaces",
            Some(ADMIN),
            json!({"id": "zero", "limits": {"tokens_per_day": 0}}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limits.tokens_per_day"));

    let (status, body) = s
        .post(
            "/api/admin/workspaces",
            Some(ADMIN),
            json!({"id": "typo", "limits": {"request_per_minute": 5}}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request_per_minute"),
        "{body}"
    );

    let (status, body) = s
        .post("/api/admin/workspaces", Some(ADMIN), json!({"name": "x"}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
}

#[tokio::test]
async fn every_auth_failure_gets_its_own_answer() {
    let s = start().await;
    let acme = s.workspace("acme").await;
    s.workspace("beta").await;

    let (status, body) = s.get("/api/quota/status", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = s.get("/api/quota/status", Some("qa_not_a_real_key")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let res = s
        .http
        .get(s.url("/api/quota/status"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");

    let (status, body) = s
        .get("/api/quota/status?workspace_id=beta", Some(&acme))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = s
        .get("/api/quota/status?workspace_id=acme", Some(&acme))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "naming your own workspace is fine: {body}"
    );

    let (status, body) = s.get("/api/quota/status", Some(ADMIN)).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "missing_workspace_id",
    );
    let (status, body) = s
        .get("/api/quota/status?workspace_id=nobody", Some(ADMIN))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s
        .get("/api/quota/status?workspace_id=beta", Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["workspace_id"], "beta");

    let (status, body) = s
        .post("/api/admin/workspaces", Some(&acme), json!({"id": "evil"}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = s
        .post(
            "/api/admin/workspaces",
            Some("wrong-admin-key-123456"),
            json!({"id": "evil"}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = s.post("/api/quota/reset", Some(&acme), json!({})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn status_check_and_notifications_follow_recorded_usage() {
    let s = start().await;
    let key = s.workspace("acme").await;

    let (status, snap) = s.get("/api/quota/status", Some(&key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(snap["status"], "NORMAL");
    for window in [
        "requests_per_minute",
        "requests_per_day",
        "tokens_per_minute",
        "tokens_per_day",
    ] {
        for field in ["current", "limit", "percentage", "resets_in_s"] {
            assert!(
                snap[window][field].is_number(),
                "{window}.{field} in {snap}"
            );
        }
    }
    assert!(snap["retry_after_s"].is_null());
    assert!(snap["last_error"].is_null());
    assert!(snap["updated_at"].as_str().unwrap().ends_with('Z'));
    let (_, note) = s.get("/api/quota/notifications", Some(&key)).await;
    assert_eq!(note["show"], false);

    for _ in 0..8 {
        s.record(&key, json!({"success": true, "tokens_used": 120}))
            .await;
    }
    let (_, snap) = s.get("/api/quota/status", Some(&key)).await;
    assert_eq!(snap["status"], "WARNING");
    assert_eq!(snap["requests_per_minute"]["current"], 8);
    assert_eq!(snap["tokens_per_day"]["current"], 960);
    let (_, note) = s.get("/api/quota/notifications", Some(&key)).await;
    assert_eq!(note["show"], true);
    assert_eq!(note["level"], "warning");
    assert_eq!(note["status"], "WARNING");
    assert!(note["title"].as_str().is_some() && note["message"].as_str().is_some());
    let (_, check) = s.get("/api/quota/check", Some(&key)).await;
    assert_eq!(
        check,
        json!({"allowed": true, "status": "WARNING", "retry_after_s": null})
    );

    s.record(&key, json!({"success": true})).await;
    let last = s.record(&key, json!({"success": true})).await;
    assert_eq!(
        last["status"], "RATE_LIMITED",
        "record answers with the new snapshot"
    );
    let (_, check) = s.get("/api/quota/check", Some(&key)).await;
    assert_eq!(check["allowed"], false);
    assert_eq!(check["status"], "RATE_LIMITED");
    assert!(check["retry_after_s"].as_f64().unwrap() > 50.0);
    let (_, note) = s.get("/api/quota/notifications", Some(&key)).await;
    assert_eq!(note["level"], "error");
}

#[tokio::test]
async fn recorded_upstream_errors_move_the_status_by_their_code() {
    let s = start().await;
    let key = s.workspace("acme").await;
    let snap = s
        .record(&key, json!({"success": false, "error": {"http_status": 429, "type": "insufficient_quota", "code": "insufficient_quota", "message": "You exceeded your current quota"}}))
        .await;
    assert_eq!(snap["status"], "QUOTA_EXCEEDED");
    assert_eq!(snap["last_error"]["class"], "quota_exhausted");
    assert_eq!(snap["last_error"]["code"], "insufficient_quota");

    let (status, reset) = s
        .post(
            "/api/quota/reset",
            Some(ADMIN),
            json!({"workspace_id": "acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reset["reset"], json!(["acme"]));

    let snap = s
        .record(&key, json!({"success": false, "error": {"http_status": 429, "code": "rate_limit_exceeded"}, "retry_after_s": 30}))
        .await;
    assert_eq!(snap["status"], "RATE_LIMITED");
    // The snapshot is taken a moment after the record: 30 s minus that moment.
    let retry = snap["retry_after_s"].as_f64().unwrap();
    assert!(retry > 29.0 && retry <= 30.0, "{retry}");
}

#[tokio::test]
async fn malformed_record_bodies_get_400s_naming_the_problem() {
    let s = start().await;
    let key = s.workspace("acme").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"success": true, "tokens_used": "lots"}),
            "tokens_used",
        ),
        (json!({"success": true, "tokens_used": -1}), "tokens_used"),
        (json!({"success": true, "tokens_used": 1e30}), "tokens_used"),
        (
            json!({"success": true, "tokens_used": 100000001}),
            "tokens_used",
        ),
        (json!({"tokens_used": 5}), "success"),
        (json!({"success": "yes"}), "success"),
        (json!({"success": false}), "error"),
        (json!({"success": false, "error": {}}), "error"),
        (
            json!({"success": true, "error": {"http_status": 500}}),
            "error",
        ),
        (
            json!({"success": false, "error": {"http_status": 700}}),
            "error.http_status",
        ),
        (
            json!({"success": false, "error": {"http_status": 429}, "retry_after_s": -1}),
            "retry_after_s",
        ),
        (
            json!({"success": false, "error": {"http_status": 429}, "retry_after_s": 1e9}),
            "retry_after_s",
        ),
        (
            json!({"success": false, "error": {"code": "x".repeat(3000)}}),
            "error.code",
        ),
        (json!({"success": true, "tokens": 5}), "tokens"),
        (json!([1, 2]), "JSON object"),
    ];
    for (body, names) in cases {
        let (status, answer) = s.post("/api/quota/record", Some(&key), body.clone()).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_body");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(names),
            "{body} → {message} should name {names}"
        );
    }

    let (status, answer) = s
        .post_raw(
            "/api/quota/record",
            &key,
            Some("application/json"),
            "{\"success\": tru",
        )
        .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_json");
    let (status, answer) = s
        .post_raw("/api/quota/record", &key, None, "{\"success\": true}")
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = format!(
        "{{\"success\": true, \"pad\": \"{}\"}}",
        "x".repeat(100_000)
    );
    let (status, answer) = s
        .post_raw("/api/quota/record", &key, Some("application/json"), &huge)
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    // Nothing above was counted, and the server is still healthy.
    let (_, snap) = s.get("/api/quota/status", Some(&key)).await;
    assert_eq!(snap["requests_per_day"]["current"], 0);
    assert_eq!(s.get("/healthz", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn usage_has_a_per_minute_history() {
    let s = start().await;
    let key = s.workspace("acme").await;
    s.record(&key, json!({"success": true, "tokens_used": 42}))
        .await;
    let (status, usage) = s.get("/api/quota/usage", Some(&key)).await;
    assert_eq!(status, StatusCode::OK);
    let history = usage["history"].as_array().unwrap();
    assert_eq!(history.len(), 60);
    assert_eq!(history[59]["requests"], 1);
    assert_eq!(history[59]["tokens"], 42);
    assert_eq!(usage["tokens_per_minute"]["current"], 42);

    let (status, usage) = s.get("/api/quota/usage?minutes=120", Some(&key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(usage["history"].as_array().unwrap().len(), 120);
    let (status, body) = s.get("/api/quota/usage?minutes=0", Some(&key)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
    let (status, body) = s.get("/api/quota/usage?minutes=abc", Some(&key)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
    let (status, body) = s.get("/api/quota/status?colour=blue", Some(&key)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn admin_reset_of_all_and_of_unknown_workspaces() {
    let s = start().await;
    let a = s.workspace("a").await;
    let b = s.workspace("b").await;
    for key in [&a, &b] {
        s.record(key, json!({"success": true, "tokens_used": 10}))
            .await;
    }
    let (status, body) = s.post("/api/quota/reset", Some(ADMIN), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["reset"], json!(["a", "b"]));
    let (_, snap) = s.get("/api/quota/status", Some(&b)).await;
    assert_eq!(snap["requests_per_day"]["current"], 0);

    let (status, body) = s
        .post(
            "/api/quota/reset",
            Some(ADMIN),
            json!({"workspace_id": "zzz"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s
        .post(
            "/api/quota/reset",
            Some(ADMIN),
            json!({"workspace_id": "BAD ID"}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_workspace_id",
    );
}

#[tokio::test]
async fn unknown_endpoints_and_methods_answer_in_json() {
    let s = start().await;
    let (status, body) = s.get("/api/nope", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.post("/api/quota/status", None, json!({})).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn the_home_page_is_server_rendered() {
    let s = start().await;
    let res = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the workspace page (or where it sends a stranger)"
    );
    // The sign-in page is rendered on the server with its form.
    let res = s.http.get(s.url("/signin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("<title>"), "{html}");
    assert!(html.contains("name=\"api_key\""));
    assert!(
        html.contains("/pkg/quota-alert.js"),
        "hydration script is linked"
    );
    let res = s.http.get(s.url("/no/such/page")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

// --- WebSocket -----------------------------------------------------------

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &Server, key: &str) -> Ws {
    let mut request = s.ws_url("").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("ws connect");
    ws
}

/// Next JSON message that is not a heartbeat, or None after `wait`.
async fn next_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("server sends JSON");
            if value["type"] != "ping" {
                return Some(value);
            }
        }
    }
}

#[tokio::test]
async fn websocket_sends_the_snapshot_then_every_status_change_at_once() {
    let s = start().await;
    let key = s.workspace("acme").await;
    let mut ws = connect(&s, &key).await;
    let first = next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("initial");
    assert_eq!(first["type"], "quota_initial");
    assert_eq!(first["data"]["status"], "NORMAL");
    assert_eq!(first["data"]["workspace_id"], "acme");

    s.record(
        &key,
        json!({"success": false, "error": {"http_status": 429, "code": "insufficient_quota"}}),
    )
    .await;
    let update = next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("update");
    assert_eq!(update["type"], "quota_update");
    assert_eq!(update["data"]["status"], "QUOTA_EXCEEDED");
    assert_eq!(update["previous_status"], "NORMAL");

    // A second status change right after the first is not held back.
    let started = std::time::Instant::now();
    s.post(
        "/api/quota/reset",
        Some(ADMIN),
        json!({"workspace_id": "acme"}),
    )
    .await;
    let update = next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("update");
    assert_eq!(update["data"]["status"], "NORMAL");
    assert_eq!(update["previous_status"], "QUOTA_EXCEEDED");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "status changes are pushed at once"
    );
}

#[tokio::test]
async fn websocket_coalesces_pure_usage_changes() {
    let s = start().await;
    let key = s.workspace("acme").await;
    // High limits so that only usage (not status) changes.
    let big = s
        .workspace_with_limits(
            "big",
            json!({"requests_per_minute": 100000, "requests_per_day": 1000000}),
        )
        .await;
    drop(key);
    let mut ws = connect(&s, &big).await;
    next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("initial");

    for _ in 0..40 {
        s.record(&big, json!({"success": true, "tokens_used": 1}))
            .await;
    }
    // Updates up to the one that shows all 40: the newest snapshot wins,
    // the ones in between were coalesced away.
    let mut updates = 0;
    loop {
        let update = next_json(&mut ws, Duration::from_secs(5))
            .await
            .expect("an update showing all 40 records");
        updates += 1;
        if update["data"]["requests_per_minute"]["current"] == 40 {
            break;
        }
    }
    assert!(updates < 20, "40 records gave {updates} updates");
}

#[tokio::test]
async fn websocket_pushes_recovery_without_any_new_record() {
    let s = start().await;
    let key = s.workspace("acme").await;
    let mut ws = connect(&s, &key).await;
    next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("initial");
    s.record(&key, json!({"success": false, "error": {"http_status": 429, "code": "rate_limit_exceeded"}, "retry_after_s": 0.5}))
        .await;
    let limited = next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("rate limited");
    assert_eq!(limited["data"]["status"], "RATE_LIMITED");
    let recovered = loop {
        let update = next_json(&mut ws, Duration::from_secs(3))
            .await
            .expect("recovery");
        if update["data"]["status"] != "RATE_LIMITED" {
            break update;
        }
    };
    assert_eq!(recovered["data"]["status"], "NORMAL");
    assert_eq!(recovered["previous_status"], "RATE_LIMITED");
}

#[tokio::test]
async fn websocket_answers_pings_and_closes_on_junk() {
    let s = start().await;
    let key = s.workspace("acme").await;
    let mut ws = connect(&s, &key).await;
    next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("initial");
    ws.send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    let pong = next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("pong");
    assert_eq!(pong["type"], "pong");

    ws.send(Message::Text("not json".into())).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(closed, Some(1003));
}

#[tokio::test]
async fn websocket_authenticates_by_header_or_token_and_isolates_workspaces() {
    let s = start().await;
    let a = s.workspace("a").await;
    let b = s.workspace("b").await;

    let err = tokio_tungstenite::connect_async(s.ws_url(""))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let err = tokio_tungstenite::connect_async(s.ws_url("?token=qa_wrong"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let err = tokio_tungstenite::connect_async(s.ws_url(&format!("?token={a}&workspace_id=b")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");

    let (mut ws_a, _) = tokio_tungstenite::connect_async(s.ws_url(&format!("?token={a}")))
        .await
        .unwrap();
    let (mut ws_admin_b, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("?token={ADMIN}&workspace_id=b")))
            .await
            .unwrap();
    assert_eq!(
        next_json(&mut ws_a, Duration::from_secs(2)).await.unwrap()["data"]["workspace_id"],
        "a"
    );
    assert_eq!(
        next_json(&mut ws_admin_b, Duration::from_secs(2))
            .await
            .unwrap()["data"]["workspace_id"],
        "b"
    );

    s.record(&b, json!({"success": true, "tokens_used": 7}))
        .await;
    let seen = next_json(&mut ws_admin_b, Duration::from_secs(2))
        .await
        .expect("b's update");
    assert_eq!(seen["data"]["tokens_per_minute"]["current"], 7);
    // a never sees b: b's update is out (the admin's socket has it) before
    // a records anything, so had a's socket been sent it, it would come
    // before a's own update. The first thing a's socket gets is a's.
    s.record(&a, json!({"success": true, "tokens_used": 1}))
        .await;
    let own = next_json(&mut ws_a, Duration::from_secs(2))
        .await
        .expect("a's own update");
    assert_eq!(own["data"]["workspace_id"], "a", "a never sees b: {own}");
    assert_eq!(own["data"]["tokens_per_minute"]["current"], 1, "{own}");

    let res = s
        .http
        .get(s.ws_url("").replace("ws://", "http://"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "plain HTTP to the WebSocket endpoint"
    );
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format() {
    let s = start().await;
    let key = s.workspace("acme").await;
    for _ in 0..8 {
        s.record(&key, json!({"success": true})).await;
    }
    let res = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    assert!(
        text.contains("quota_records_total{result=\"ok\"} 8"),
        "{text}"
    );
    assert!(
        text.contains("quota_workspaces{status=\"WARNING\"} 1"),
        "{text}"
    );
    assert!(text.contains("quota_websocket_connections 0"), "{text}");
}

#[tokio::test]
async fn rotating_and_revoking_keys_takes_effect_at_once_websockets_included() {
    let s = start().await;
    let old = s.workspace("acme").await;
    let mut ws = connect(&s, &old).await;
    next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("initial");
    let res = s
        .http
        .post(s.url("/api/session"))
        .json(&json!({"api_key": old}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let (status, body) = s
        .post(
            "/api/admin/workspaces/acme/rotate-key",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["api_key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(
        s.get("/api/quota/status", Some(&old)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/api/quota/status", Some(&new)).await.0,
        StatusCode::OK
    );
    let res = s
        .http
        .get(s.url("/api/quota/status"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "sessions of the old key end too"
    );

    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the old key's WebSocket is closed");
    assert_eq!(closed, Some(1008));

    let mut ws_new = connect(&s, &new).await;
    next_json(&mut ws_new, Duration::from_secs(2))
        .await
        .expect("initial");
    let res = s
        .http
        .post(s.url("/api/admin/workspaces/acme/revoke"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/quota/status", Some(&new)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = s
        .get("/api/quota/status?workspace_id=acme", Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::OK, "the admin still sees it: {body}");

    let (status, body) = s
        .post(
            "/api/admin/workspaces/nobody/rotate-key",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s
        .post(
            "/api/admin/workspaces/acme/rotate-key",
            Some(&new),
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn pages_and_api_carry_security_headers() {
    let s = start().await;
    for path in ["/", "/healthz", "/api/quota/status"] {
        let res = s.http.get(s.url(path)).send().await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            h["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
}

/// A page's CSP lets its own scripts run (a fresh nonce per page, on every
/// inline script Leptos writes) and WASM compile, and nothing else.
#[tokio::test]
async fn pages_allow_only_their_own_scripts() {
    let s = start().await;
    let mut nonces = Vec::new();
    for path in ["/", "/signin", "/no-such-page"] {
        let res = s.http.get(s.url(path)).send().await.unwrap();
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let html = res.text().await.unwrap();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: a nonce in {csp}"))
            .to_string();
        assert!(nonce.len() >= 16, "{path}: {nonce}");
        assert!(
            csp.contains("script-src 'self' 'nonce-") && csp.contains("'wasm-unsafe-eval'"),
            "{path}: {csp}"
        );
        assert!(csp.contains("connect-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains(" 'unsafe-eval'"),
            "{csp}"
        );
        // Every script on the page carries the nonce; no inline style anywhere.
        let scripts = html.matches("<script").count();
        assert!(scripts > 0, "{path}: the hydration script is there");
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "{path}: every <script> carries this page's nonce"
        );
        assert!(
            !html.contains(" style=\""),
            "{path}: inline styles are refused by the CSP"
        );
        nonces.push(nonce);
    }
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a fresh nonce per page: {nonces:?}");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let s = common::start_with(&[("QUOTA_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/api/quota/status"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let evil = preflight("https://evil.example.com").await.unwrap();
    assert!(!evil.headers().contains_key("access-control-allow-origin"));

    let default = start().await;
    let res = default
        .http
        .get(default.url("/api/quota/status"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        !res.headers().contains_key("access-control-allow-origin"),
        "nothing allowed by default"
    );
}

#[tokio::test]
async fn websocket_checks_origin_against_the_same_list() {
    let s = common::start_with(&[("QUOTA_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let key = s.workspace("acme").await;
    let open = |origin: String| {
        let mut request = s
            .ws_url(&format!("?token={key}"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    let err = open("https://evil.example.com".into()).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert!(open("https://app.example.com".into()).await.is_ok());
    let same = s.base.clone();
    assert!(open(same).await.is_ok(), "the app's own pages");
}

#[tokio::test]
async fn the_api_rate_limits_each_key_and_each_address() {
    let s = common::start_with(&[
        ("QUOTA_API_RATE_PER_KEY", "5"),
        ("QUOTA_API_RATE_PER_IP", "0"),
    ])
    .await;
    let a = s.workspace("a").await;
    let b = s.workspace("b").await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(s.get("/api/quota/check", Some(&a)).await);
    }
    let limited = statuses
        .iter()
        .find(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS);
    let (status, body) = limited.expect("burst of 10 then limited");
    assert_error(
        *status,
        body,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
    );
    let res = s
        .http
        .get(s.url("/api/quota/check"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        s.get("/api/quota/check", Some(&b)).await.0,
        StatusCode::OK,
        "other keys are not affected"
    );

    let by_ip = common::start_with(&[
        ("QUOTA_API_RATE_PER_KEY", "0"),
        ("QUOTA_API_RATE_PER_IP", "3"),
    ])
    .await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(by_ip.get("/api/quota/status", Some("qa_any")).await.0);
    }
    assert!(codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
    assert_eq!(
        by_ip.get("/healthz", None).await.0,
        StatusCode::OK,
        "health is never limited"
    );
}
