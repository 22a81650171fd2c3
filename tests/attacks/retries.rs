//! Attacks: retries and partial failures. A retried record (same
//! `Idempotency-Key`) is counted once — in memory, in SQLite across a
//! restart, and across Redis instances, concurrent duplicates included; a
//! batch the store cannot keep counts nothing; a rotation the store cannot
//! keep leaves the old key working and says so.

use crate::common::eventually;
use crate::common::process::{free_port, temp_dir};
use crate::common::redis::{big_limits, instance, shared_workspace, start_redis};
use crate::common::{serve, start_with, test_config, Server, ADMIN};
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use quota_alert::store::SqliteStore;
use quota_alert::wire::LimitOverrides;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

const BIG: [(&str, &str); 2] = [
    ("OPENAI_RATE_LIMIT_PER_MINUTE", "100000"),
    ("OPENAI_RATE_LIMIT_PER_DAY", "1000000"),
];

async fn post_with_key(
    server: &Server,
    path: &str,
    key: &str,
    idempotency: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut req = server
        .http
        .post(server.url(path))
        .bearer_auth(key)
        .json(&body);
    if let Some(idem) = idempotency {
        req = req.header("idempotency-key", idem);
    }
    let res = req.send().await.expect("send");
    let status = res.status();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, replayed, res.json().await.unwrap_or(Value::Null))
}

async fn requests_counted(server: &Server, key: &str) -> Value {
    server.get("/api/quota/status", Some(key)).await.1["requests_per_minute"]["current"].clone()
}

fn one() -> Value {
    json!({"success": true, "tokens_used": 5})
}

#[tokio::test]
async fn a_retried_record_is_counted_once_and_a_reused_key_is_refused() {
    let s = start_with(&BIG).await;
    let key = s.workspace("acme").await;
    let other = s.workspace("other").await;

    let (status, replayed, first) =
        post_with_key(&s, "/api/quota/record", &key, Some("retry-1"), one()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(replayed, None);
    let (status, replayed, again) =
        post_with_key(&s, "/api/quota/record", &key, Some("retry-1"), one()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(
        again["workspace_id"], "acme",
        "same shape as the first answer"
    );
    assert_eq!(requests_counted(&s, &key).await, 1, "counted once");

    // The same key for a different request.
    let (status, _, body) = post_with_key(
        &s,
        "/api/quota/record",
        &key,
        Some("retry-1"),
        json!({"success": true, "tokens_used": 6}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    // ...or for a batch of the same record.
    let (status, _, body) = post_with_key(
        &s,
        "/api/quota/record/batch",
        &key,
        Some("retry-1"),
        json!({"records": [one()]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(requests_counted(&s, &key).await, 1);

    // Keys are per workspace: another tenant's "retry-1" is its own.
    let (status, replayed, body) =
        post_with_key(&s, "/api/quota/record", &other, Some("retry-1"), one()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(replayed, None);
    assert_eq!(requests_counted(&s, &other).await, 1);

    // A batch retried is counted once too.
    let batch = json!({"records": [one(), one(), one()]});
    for expected in [None, Some("true")] {
        let (status, replayed, body) = post_with_key(
            &s,
            "/api/quota/record/batch",
            &key,
            Some("b-1"),
            batch.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(replayed.as_deref(), expected);
        assert_eq!(body["recorded"], 3);
    }
    assert_eq!(requests_counted(&s, &key).await, 4);
}

#[tokio::test]
async fn a_bad_idempotency_key_is_refused_naming_the_header() {
    let s = start_with(&BIG).await;
    let key = s.workspace("acme").await;
    let long = "k".repeat(256);
    for bad in ["", "has space", long.as_str(), "tab\there"] {
        let (status, _, body) =
            post_with_key(&s, "/api/quota/record", &key, Some(bad), one()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_idempotency_key");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{body}"
        );
    }
    // Non-ASCII bytes, and the header twice.
    let res = s
        .http
        .post(s.url("/api/quota/record"))
        .bearer_auth(&key)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .json(&one())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = s
        .http
        .post(s.url("/api/quota/record"))
        .bearer_auth(&key)
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&one())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_idempotency_key");
    // 255 visible characters are fine.
    let fine = "k".repeat(255);
    let (status, _, body) = post_with_key(&s, "/api/quota/record", &key, Some(&fine), one()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        requests_counted(&s, &key).await,
        1,
        "no refused one counted"
    );
}

async fn sqlite_server(name: &str) -> (Server, QuotaService, SqliteStore, std::path::PathBuf) {
    let path = temp_dir(name).join("state.db");
    let store = SqliteStore::open(&path).expect("open store");
    let service = QuotaService::with_store(test_config(&BIG), Arc::new(SystemClock), store.clone())
        .await
        .expect("restore");
    let server = serve(service.clone()).await;
    (server, service, store, path)
}

#[tokio::test]
async fn concurrent_duplicates_count_once_and_a_restart_still_knows_the_key() {
    let (s, service, store, path) = sqlite_server("idem-sqlite").await;
    let (key, _) = service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (base, key) = (s.base.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/api/quota/record"))
                .bearer_auth(key)
                .header("idempotency-key", "same-call")
                .json(&one())
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        requests_counted(&s, &key).await,
        1,
        "twenty tries, one count"
    );
    drop(s);
    drop(service);
    store.close().await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    let service = QuotaService::with_store(test_config(&BIG), Arc::new(SystemClock), store)
        .await
        .expect("restore");
    let s = serve(service).await;
    let (status, replayed, body) =
        post_with_key(&s, "/api/quota/record", &key, Some("same-call"), one()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(replayed.as_deref(), Some("true"), "kept across the restart");
    assert_eq!(requests_counted(&s, &key).await, 1);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_retry_on_another_instance_is_counted_once() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    let key = shared_workspace(&a, &b, "twice", big_limits()).await;
    let (status, _, body) = post_with_key(&a, "/api/quota/record", &key, Some("r-1"), one()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The client timed out and retries elsewhere, twice at once.
    let (first, second) = tokio::join!(
        post_with_key(&b, "/api/quota/record", &key, Some("r-1"), one()),
        post_with_key(&a, "/api/quota/record", &key, Some("r-1"), one()),
    );
    for (status, replayed, body) in [first, second] {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(replayed.as_deref(), Some("true"));
    }
    let (status, _, body) = post_with_key(
        &b,
        "/api/quota/record",
        &key,
        Some("r-1"),
        json!({"success": true, "tokens_used": 99}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    // A different key counts: the others could have counted too.
    let (status, _, _) = post_with_key(&b, "/api/quota/record", &key, Some("r-2"), one()).await;
    assert_eq!(status, StatusCode::OK);
    for server in [&a, &b] {
        eventually(server, &key, |s| s["requests_per_minute"]["current"] == 2).await;
    }
}

#[tokio::test]
async fn a_batch_the_store_cannot_keep_counts_nothing() {
    let (s, service, store, path) = sqlite_server("batch-store-down").await;
    let (key, _) = service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .unwrap();
    s.record(&key, one()).await;
    // Every later write fails, as on a dead disk.
    store.close().await.unwrap();
    let (status, _, body) = post_with_key(
        &s,
        "/api/quota/record/batch",
        &key,
        Some("batch-1"),
        json!({"records": [one(), one(), one()]}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    let (status, _, body) = post_with_key(&s, "/api/quota/record", &key, None, one()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let snapshot = s.get("/api/quota/status", Some(&key)).await.1;
    assert_eq!(snapshot["requests_per_minute"]["current"], 1, "{snapshot}");
    assert_eq!(snapshot["tokens_per_minute"]["current"], 5, "{snapshot}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_rotation_the_store_cannot_keep_leaves_the_old_key_working() {
    let (s, service, store, path) = sqlite_server("rotate-store-down").await;
    let (key, _) = service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .unwrap();
    store.close().await.unwrap();
    for action in ["rotate-key", "revoke"] {
        let (status, body) = s
            .post(
                &format!("/api/admin/workspaces/acme/{action}"),
                Some(ADMIN),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{action}: {body}");
        assert_eq!(body["error"]["code"], "store_unavailable");
        let (status, body) = s.get("/api/quota/status", Some(&key)).await;
        assert_eq!(status, StatusCode::OK, "the old key still works: {body}");
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_rotation_redis_cannot_keep_leaves_the_old_key_working() {
    let port = free_port();
    let redis = start_redis(port).await;
    let (_, a) = instance(port).await;
    let key = a.workspace("away").await;
    drop(redis);
    let (status, body) = a
        .post(
            "/api/admin/workspaces/away/rotate-key",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    let (status, body) = a.get("/api/quota/status", Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn concurrent_rotations_leave_one_key_and_the_store_agrees() {
    // An operator whose click timed out clicks again (or two admins rotate at
    // once): however the rotations interleave, exactly one of the keys they
    // hand out works, and it is the one the store keeps (the one that works
    // after a restart).
    let (s, service, _store, path) = sqlite_server("rotate-race").await;
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .unwrap();
    let stored_digest = || -> Vec<u8> {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT key_digest FROM workspaces WHERE id = 'acme'",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    for round in 0..8 {
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let base = s.base.clone();
            tasks.push(tokio::spawn(async move {
                let res = reqwest::Client::new()
                    .post(format!("{base}/api/admin/workspaces/acme/rotate-key"))
                    .bearer_auth(ADMIN)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                let body: Value = res.json().await.unwrap();
                body["api_key"].as_str().unwrap().to_string()
            }));
        }
        let mut keys = Vec::new();
        for t in tasks {
            keys.push(t.await.unwrap());
        }
        let mut working = Vec::new();
        for key in keys {
            if s.get("/api/quota/status", Some(&key)).await.0 == StatusCode::OK {
                working.push(key);
            }
        }
        assert_eq!(
            working.len(),
            1,
            "round {round}: {} keys work",
            working.len()
        );
        assert_eq!(
            quota_alert::auth::key_digest(&working[0]).to_vec(),
            stored_digest(),
            "round {round}: the key that works is not the one the store keeps \
             (a restart would swap it for another)"
        );
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
