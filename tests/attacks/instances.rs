//! Attacks: several instances sharing one Redis. A key made or rotated on
//! one instance works on the other at once; a key revoked or rotated on one
//! is refused by the other even when that one missed the event (its
//! subscription was dropped while the change was published).

use crate::common::fake_openai;
use crate::common::process::free_port;
use crate::common::redis::{
    big_limits, instance, instance_with, instance_with_id, shared_workspace, start_redis,
};
use crate::common::{eventually, Server, ADMIN};
use quota_alert::engine::SystemClock;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

async fn rotate(server: &Server, id: &str) -> String {
    let (status, body) = server
        .post(
            &format!("/api/admin/workspaces/{id}/rotate-key"),
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["api_key"].as_str().expect("api_key").to_string()
}

async fn record(server: &Server, key: &str) -> (StatusCode, Value) {
    server
        .post(
            "/api/quota/record",
            Some(key),
            json!({"success": true, "tokens_used": 1}),
        )
        .await
}

/// Waits (up to 3 s) until `server` answers `key`'s status with `expected`.
async fn eventually_status(server: &Server, key: &str, expected: StatusCode) -> Value {
    let last = std::cell::RefCell::new((StatusCode::OK, Value::Null));
    let held = crate::common::holds_within(Duration::from_secs(3), || async {
        let answer = server.get("/api/quota/status", Some(key)).await;
        let held = answer.0 == expected;
        *last.borrow_mut() = answer;
        held
    })
    .await;
    let last = last.into_inner();
    assert!(held, "status never answered {expected}; last {last:?}");
    last.1
}

#[tokio::test]
async fn a_key_made_on_one_instance_works_on_the_other_before_any_event() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    let old = shared_workspace(&a, &b, "fresh", big_limits()).await;

    // B is not subscribed for the next half second: nothing published now
    // reaches it, so only a lookup in Redis can make these keys work there.
    redis.kill_subscriptions().await;
    let created = a.workspace("brand-new").await;
    let (status, body) = b.get("/api/quota/status", Some(&created)).await;
    assert_eq!(status, StatusCode::OK, "created on A, at once on B: {body}");
    assert_eq!(body["workspace_id"], "brand-new");

    let rotated = rotate(&a, "fresh").await;
    let (status, body) = b.get("/api/quota/status", Some(&rotated)).await;
    assert_eq!(status, StatusCode::OK, "rotated on A, at once on B: {body}");
    // Learning the new key told B the old one is gone.
    let (status, body) = b.get("/api/quota/status", Some(&old)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    // A key nobody issued is still refused (after its lookup), every time.
    for _ in 0..20 {
        let (status, body) = b
            .get("/api/quota/status", Some("qa_made-up-key-0000000000000000"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn a_key_revoked_while_the_other_instance_was_not_subscribed_is_refused_there() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    let key = shared_workspace(&a, &b, "victim", big_limits()).await;
    // The attack works before the revocation: B accepts the key.
    let (status, body) = record(&b, &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(&a, &key, |s| s["requests_per_minute"]["current"] == 1).await;

    redis.kill_subscriptions().await;
    let (status, body) = a
        .post(
            "/api/admin/workspaces/victim/revoke",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // B missed the event; Redis refuses the stale key in the record script.
    let (status, body) = record(&b, &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    // ...and B has now forgotten the key for every other use too.
    let (status, body) = b.get("/api/quota/status", Some(&key)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Nothing was counted by the refused record.
    let (status, body) = a
        .get("/api/quota/status?workspace_id=victim", Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["requests_per_minute"]["current"], 1, "{body}");
}

#[tokio::test]
async fn reads_with_a_revoked_key_stop_within_the_reload_after_a_missed_event() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    let key = shared_workspace(&a, &b, "reader", big_limits()).await;
    redis.kill_subscriptions().await;
    let (status, _) = a
        .post(
            "/api/admin/workspaces/reader/revoke",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // No record or proxied call on B: only its reload on resubscribe (or the
    // key epoch poll) can end the key there. Bound: about a second.
    let started = std::time::Instant::now();
    let body = eventually_status(&b, &key, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_proxied_call_with_a_key_rotated_during_a_missed_event_is_refused_before_openai() {
    let fake = fake_openai::start().await;
    let redis = start_redis(free_port()).await;
    let env = [
        ("OPENAI_BASE_URL", fake.base_url.as_str()),
        ("OPENAI_API_KEY", "sk-upstream-secret"),
    ];
    let (_, a) = instance_with(redis.port, Arc::new(SystemClock), &env).await;
    let (_, b) = instance_with(redis.port, Arc::new(SystemClock), &env).await;
    let old = shared_workspace(&a, &b, "proxied", big_limits()).await;
    let chat = |key: String| {
        let b = &b;
        async move {
            b.http
                .post(b.url("/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .expect("send")
        }
    };
    // Works before the rotation.
    assert_eq!(chat(old.clone()).await.status(), StatusCode::OK);
    let upstream_calls = fake.count();

    redis.kill_subscriptions().await;
    let new = rotate(&a, "proxied").await;
    let res = chat(old.clone()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    assert_eq!(fake.count(), upstream_calls, "never reached OpenAI");
    // The new key works on B at once.
    assert_eq!(chat(new).await.status(), StatusCode::OK);
}

/// `GET /api/quota/status` on `server` with a session cookie.
async fn status_with_cookie(server: &Server, cookie: &str) -> (StatusCode, Value) {
    let res = server
        .http
        .get(server.url("/api/quota/status"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Waits (up to 3 s) until `server` refuses `cookie` as a session that ended;
/// until then it must be served.
async fn refused_within_3s(server: &Server, cookie: &str, what: &str) {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = status_with_cookie(server, cookie).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            return;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{what}: the session still works on the other instance"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_session_ended_elsewhere_is_refused_even_when_its_event_never_arrived() {
    let redis = start_redis(free_port()).await;
    // A and B share one instance id, so each takes the other's events for its
    // own and drops them: B's subscription is up and healthy, yet delivers
    // nothing of A's (what a subscription that silently stopped delivering,
    // or a publish lost after its write, does).
    let (_, a) = instance_with_id(redis.port, "i_same").await;
    let key = a.workspace("stolen").await;
    let signed_out = crate::common::sign_in(&a.http, &a.base, &key).await;
    let ended_by_admin = crate::common::sign_in(&a.http, &a.base, &key).await;
    let (_, b) = instance_with_id(redis.port, "i_same").await;
    // The attack works before: B (loaded from Redis) accepts the cookies.
    for cookie in [&signed_out, &ended_by_admin] {
        let (status, body) = status_with_cookie(&b, cookie).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let res = a
        .http
        .delete(a.url("/api/session"))
        .header("cookie", &signed_out)
        .send()
        .await
        .expect("sign out");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    refused_within_3s(&b, &signed_out, "signed out on A").await;

    let res = a
        .http
        .delete(a.url("/api/admin/sessions?workspace_id=stolen"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("end sessions");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["ended"], 1, "{body}");
    refused_within_3s(&b, &ended_by_admin, "ended by the admin on A").await;
    // The key itself was never revoked: B still serves it.
    let (status, body) = b.get("/api/quota/status", Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
