//! Scale-out: two server instances sharing one real `redis-server` (Debian's,
//! started here on a free loopback port) enforce one limit exactly, add up
//! every record, see each other's changes live, and survive Redis going away.

mod common;

use common::process::free_port;
use common::redis::{instance, instance_with_clock, shared_workspace, start_redis};
use common::{eventually, wait_for};
use common::{Server, ADMIN};
use futures_util::StreamExt;
use quota_alert::auth::key_digest;
use quota_alert::engine::{Clock, ManualClock, SystemClock};
use quota_alert::store::RedisShared;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const BIG: &str = r#"{"requests_per_minute": 100000, "requests_per_day": 1000000}"#;

#[tokio::test]
async fn records_on_both_instances_add_up_exactly() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    let key = shared_workspace(&a, &b, "acme", serde_json::from_str(BIG).unwrap()).await;

    let mut tasks = Vec::new();
    for i in 0..200 {
        let server = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(format!("{server}/api/quota/record"))
                .bearer_auth(key)
                .json(&json!({"success": true, "tokens_used": 2}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for server in [&a, &b] {
        let snap = eventually(server, &key, |s| s["requests_per_minute"]["current"] == 200).await;
        assert_eq!(snap["tokens_per_day"]["current"], 400);
    }
}

#[tokio::test]
async fn admission_across_instances_never_overshoots() {
    let redis = start_redis(free_port()).await;
    let (sa, a) = instance(redis.port).await;
    let (sb, b) = instance(redis.port).await;
    shared_workspace(&a, &b, "tight", json!({"requests_per_minute": 50})).await;

    let mut tasks = Vec::new();
    for i in 0..200 {
        let service = if i % 2 == 0 { sa.clone() } else { sb.clone() };
        tasks.push(tokio::spawn(async move {
            service.try_admit("tight").await.unwrap().check.allowed
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 50, "two instances, one limit");
}

#[tokio::test]
async fn a_websocket_on_one_instance_sees_records_made_on_the_other() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    let key = shared_workspace(&a, &b, "live", serde_json::from_str(BIG).unwrap()).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(b.ws_url(&format!("?token={key}")))
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("quota_initial"));

    a.record(&key, json!({"success": true, "tokens_used": 9}))
        .await;
    let update = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            let value: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if value["type"] == "quota_update" {
                return value;
            }
        }
    })
    .await
    .expect("an update within 2s");
    assert_eq!(update["data"]["tokens_per_minute"]["current"], 9);
}

#[tokio::test]
async fn redis_going_away_degrades_and_its_return_recovers() {
    let port = free_port();
    let redis = start_redis(port).await;
    let (_, a) = instance(port).await;
    let (_, b) = instance(port).await;
    let key = shared_workspace(&a, &b, "fragile", serde_json::from_str(BIG).unwrap()).await;
    a.record(&key, json!({"success": true})).await;

    drop(redis);
    let (status, body) = a
        .post("/api/quota/record", Some(&key), json!({"success": true}))
        .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not acknowledged: {body}"
    );
    assert_eq!(body["error"]["code"], "store_unavailable");
    eventually(&a, &key, |s| s["status"] == "DEGRADED").await;
    eventually(&b, &key, |s| s["status"] == "DEGRADED").await;
    let (status, _) = a.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let _redis = start_redis(port).await;
    for server in [&a, &b] {
        let snap = eventually(server, &key, |s| s["status"] == "NORMAL").await;
        assert_eq!(snap["status"], "NORMAL");
    }
    let (status, _) = a
        .post("/api/quota/record", Some(&key), json!({"success": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "reconnected on its own");
}

/// Signs in on `server`; the `qa_session=<id>` pair to send as `Cookie`.
async fn sign_in(server: &Server, key: &str) -> String {
    common::sign_in(&server.http, &server.base, key).await
}

async fn status_with_cookie(server: &Server, cookie: &str) -> StatusCode {
    server
        .http
        .get(server.url("/api/quota/status"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request")
        .status()
}

/// Waits (up to 3 s) until `server` answers the cookie with `expected`.
async fn eventually_session(server: &Server, cookie: &str, expected: StatusCode) {
    let last = std::cell::Cell::new(StatusCode::OK);
    let held = common::holds_within(Duration::from_secs(3), || async {
        last.set(status_with_cookie(server, cookie).await);
        last.get() == expected
    })
    .await;
    assert!(
        held,
        "the session never answered {expected} on {}; last {}",
        server.base,
        last.get()
    );
}

#[tokio::test]
async fn a_session_opened_on_one_instance_works_on_the_other_until_signed_out() {
    let port = free_port();
    let redis = start_redis(port).await;
    let (_, a) = instance(port).await;
    let (_, b) = instance(port).await;
    let key = shared_workspace(&a, &b, "browser", serde_json::from_str(BIG).unwrap()).await;

    let cookie = sign_in(&a, &key).await;
    assert_eq!(status_with_cookie(&a, &cookie).await, StatusCode::OK);
    eventually_session(&b, &cookie, StatusCode::OK).await;

    let res = b
        .http
        .delete(b.url("/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status_with_cookie(&b, &cookie).await,
        StatusCode::UNAUTHORIZED
    );
    eventually_session(&a, &cookie, StatusCode::UNAUTHORIZED).await;

    // A third instance started now loads the live sessions from Redis (and
    // not the signed-out one); revoking on it ends them on the others too.
    let kept = sign_in(&b, &key).await;
    let (_, c) = instance(port).await;
    assert_eq!(status_with_cookie(&c, &kept).await, StatusCode::OK);
    assert_eq!(
        status_with_cookie(&c, &cookie).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = c
        .post(
            "/api/admin/workspaces/browser/revoke",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        status_with_cookie(&c, &kept).await,
        StatusCode::UNAUTHORIZED
    );
    eventually_session(&a, &kept, StatusCode::UNAUTHORIZED).await;
    eventually_session(&b, &kept, StatusCode::UNAUTHORIZED).await;
    let (_, d) = instance(port).await;
    assert_eq!(
        status_with_cookie(&d, &kept).await,
        StatusCode::UNAUTHORIZED,
        "revoked sessions are gone from Redis too"
    );
    drop(redis);
}

#[tokio::test]
async fn a_sign_in_while_redis_is_away_is_refused_not_half_kept() {
    let port = free_port();
    let redis = start_redis(port).await;
    let (_, a) = instance(port).await;
    let key = a.workspace("away").await;

    drop(redis);
    let res = a
        .http
        .post(a.url("/api/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("set-cookie").is_none(), "no cookie");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable");
}

#[tokio::test]
async fn a_session_kept_alive_on_one_instance_stays_alive_on_the_other() {
    const DAY_MS: u64 = 86_400_000;
    let port = free_port();
    let redis_server = start_redis(port).await;
    let signed_in_at = SystemClock.now_ms();
    let clock = Arc::new(ManualClock::new(signed_in_at));
    let (service_a, a) = instance_with_clock(port, clock.clone()).await;
    let (service_b, b) = instance_with_clock(port, clock.clone()).await;
    let key = shared_workspace(&a, &b, "daily", serde_json::from_str(BIG).unwrap()).await;
    let cookie = sign_in(&a, &key).await;
    eventually_session(&b, &cookie, StatusCode::OK).await;
    let digest = key_digest(cookie.trim_start_matches("qa_session="));

    // Used on A two days later: its expiry moves from day 7 to day 9, in
    // Redis and on B (both written in the background: waited for).
    clock.advance_ms(2 * DAY_MS);
    assert_eq!(status_with_cookie(&a, &cookie).await, StatusCode::OK);
    let day_9 = signed_in_at + 9 * DAY_MS;
    assert_eq!(service_a.session_ends_at(&digest), Some(day_9));
    let redis = RedisShared::connect(&redis_server.url())
        .await
        .expect("connect to redis");
    wait_for("the later expiry in Redis", || {
        let (redis, now) = (&redis, clock.now_ms());
        async move {
            let stored = redis.load_sessions(now).await.expect("load sessions");
            stored
                .iter()
                .any(|(hex, session)| *hex == hex::encode(digest) && session.expires_at_ms == day_9)
        }
    })
    .await;
    wait_for("B learning the later expiry", || {
        std::future::ready(service_b.session_ends_at(&digest) == Some(day_9))
    })
    .await;
    // Day 8, past the first expiry. C starts now and loads from Redis before
    // anyone uses the session again (a use would refresh it once more).
    clock.advance_ms(6 * DAY_MS);
    let (_, c) = instance_with_clock(port, clock.clone()).await;
    assert_eq!(
        status_with_cookie(&b, &cookie).await,
        StatusCode::OK,
        "B learned the later expiry from A's event"
    );
    assert_eq!(
        status_with_cookie(&c, &cookie).await,
        StatusCode::OK,
        "Redis holds the later expiry (an extension from elsewhere never revives)"
    );
}

#[tokio::test]
async fn a_settle_that_fails_to_reach_redis_is_retried_not_left_holding() {
    // An unlucky second: the write that settles a proxied call fails (here
    // scripts are refused for a moment). Dropped, the hold would stay in
    // Redis until it expires (10 min), filling the workspace's shared
    // windows for every instance, and the call's tokens would never count.
    let redis = start_redis(free_port()).await;
    let (service, a) = instance(redis.port).await;
    a.workspace_with_limits("acme", serde_json::from_str(BIG).unwrap())
        .await;
    let hold = service.new_hold(500);
    let id = hold.reservation_id.clone();
    assert!(
        service
            .admit("acme", Some(hold))
            .await
            .unwrap()
            .check
            .allowed
    );
    let rsv = || async {
        match redis.command(&["HLEN", "qa:{acme}:rsv"]).await {
            redis::Value::Int(n) => n,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(rsv().await, 1);

    redis
        .command(&["ACL", "SETUSER", "default", "-eval", "-evalsha"])
        .await;
    service
        .complete(
            "acme",
            &quota_alert::engine::CallOutcome::success(120).settling(Some(id)),
        )
        .unwrap();
    // The settle's first write has failed once the store is reported down.
    wait_for("the settle's write to fail", || {
        std::future::ready(!service.engine().store_healthy())
    })
    .await;
    assert_eq!(
        rsv().await,
        1,
        "the hold is still in Redis after the failure"
    );
    redis.command(&["ACL", "SETUSER", "default", "+@all"]).await;

    let settled = common::holds_within(common::WAIT, || async { rsv().await == 0 }).await;
    assert!(settled, "the hold was never released in Redis");
    let tokens = redis.command(&["HGET", "qa:{acme}:tot", "mt"]).await;
    assert_eq!(tokens, redis::Value::BulkString(b"120".to_vec()));
}
