//! `GET`/`PATCH /api/admin/workspaces/{id}` through real HTTP: a workspace's
//! limits, time zone, budgets and per-model and per-user limits are changed
//! by the admin only, checked field by field (each refusal names its
//! field and changes nothing), kept across a restart, and seen by a second
//! instance sharing Redis.

mod common;

use common::process::{free_port, temp_dir};
use common::redis::{instance, shared_workspace, start_redis};
use common::{serve, start, test_config, wait_for, Server, ADMIN};
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use quota_alert::store::SqliteStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

async fn patch(server: &Server, id: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let res = server
        .http
        .patch(server.url(&format!("/api/admin/workspaces/{id}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn full_settings() -> Value {
    json!({
        "limits": {"requests_per_minute": 7},
        "time_zone": "Europe/Berlin",
        "budgets": [
            {"period": "month", "amount_usd": 250.0, "kind": "hard"},
            {"period": "custom", "amount_usd": 10.5, "kind": "soft", "anchor": "2026-01-05", "length_days": 14}
        ],
        "model_limits": {"gpt-4o": {"tokens_per_minute": 1000, "budget_usd": 5.0}},
        "user_limits": {"default": {"requests_per_minute": 3}, "overrides": {"alice": {"requests_per_minute": 30}}}
    })
}

#[tokio::test]
async fn the_admin_changes_a_workspaces_settings_and_reads_them_back() {
    let s = start().await;
    let key = s.workspace("acme").await;
    let (code, view) = patch(&s, "acme", ADMIN, full_settings()).await;
    assert_eq!(code, StatusCode::OK, "{view}");
    assert_eq!(view["limits"]["requests_per_minute"], 7);
    assert_eq!(view["settings"]["time_zone"], "Europe/Berlin");
    assert_eq!(view["settings"]["budgets"][1]["anchor"], "2026-01-05");
    assert_eq!(
        view["settings"]["model_limits"]["gpt-4o"]["budget_usd"],
        5.0
    );
    assert_eq!(
        view["settings"]["user_limits"]["overrides"]["alice"]["requests_per_minute"],
        30
    );
    let (code, read) = s.get("/api/admin/workspaces/acme", Some(ADMIN)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(read, view, "GET answers what PATCH did");

    // The new limit is in force at once.
    let (_, status) = s.get("/api/quota/status", Some(&key)).await;
    assert_eq!(status["requests_per_minute"]["limit"], 7);

    // What a patch leaves out stays; a list given replaces the old one.
    let (code, view) = patch(&s, "acme", ADMIN, json!({"budgets": []})).await;
    assert_eq!(code, StatusCode::OK, "{view}");
    assert_eq!(view["settings"]["budgets"], json!([]));
    assert_eq!(view["settings"]["time_zone"], "Europe/Berlin");
    assert_eq!(view["limits"]["requests_per_minute"], 7);
}

#[tokio::test]
async fn each_bad_setting_is_a_400_naming_its_field_and_changes_nothing() {
    let s = start().await;
    s.workspace("acme").await;
    let (_, before) = s.get("/api/admin/workspaces/acme", Some(ADMIN)).await;
    for (body, code, names) in [
        (
            json!({"time_zone": "Mars/Olympus"}),
            "invalid_field",
            "time_zone",
        ),
        (
            json!({"budgets": [{"period": "month", "amount_usd": -1, "kind": "hard"}]}),
            "invalid_field",
            "budgets[0].amount_usd",
        ),
        (
            json!({"budgets": [{"period": "custom", "amount_usd": 1, "kind": "hard", "length_days": 3}]}),
            "invalid_field",
            "budgets[0].anchor",
        ),
        (
            json!({"model_limits": {"gpt 4o": {}}}),
            "invalid_field",
            "model_limits.gpt 4o",
        ),
        (
            json!({"limits": {"tokens_per_day": 0}}),
            "invalid_field",
            "limits.tokens_per_day",
        ),
        // A good time zone beside a bad budget: neither is applied.
        (
            json!({"time_zone": "Asia/Tokyo", "budgets": [{"period": "week", "amount_usd": 1e13, "kind": "soft"}]}),
            "invalid_field",
            "budgets[0].amount_usd",
        ),
        (
            json!({"budgets": [{"period": "year", "amount_usd": 1, "kind": "hard"}]}),
            "invalid_body",
            "budgets",
        ),
        (json!({"timezone": "UTC"}), "invalid_body", "timezone"),
    ] {
        let (status, answer) = patch(&s, "acme", ADMIN, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(names),
            "{body}: the message names {names}: {message}"
        );
    }
    let (_, after) = s.get("/api/admin/workspaces/acme", Some(ADMIN)).await;
    assert_eq!(after, before, "nothing changed");

    // Not the admin, no such workspace, a bad id.
    let key = s.workspace("other").await;
    let (status, _) = patch(&s, "acme", &key, json!({"time_zone": "UTC"})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a workspace key cannot change settings"
    );
    let (status, _) = s.get("/api/admin/workspaces/acme", Some(&key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor read them");
    let (status, answer) = patch(&s, "ghost", ADMIN, json!({"time_zone": "UTC"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = patch(&s, "Bad%20Id", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

/// A service on the SQLite file at `path`, restored from it.
async fn sqlite_service(path: &std::path::Path) -> QuotaService {
    let store = SqliteStore::open(path).expect("open the store");
    QuotaService::with_store(test_config(&[]), Arc::new(SystemClock), store)
        .await
        .expect("restore")
}

#[tokio::test]
async fn settings_survive_a_restart() {
    let path = temp_dir("settings").join("state.db");
    let first = sqlite_service(&path).await;
    let server = serve(first.clone()).await;
    server.workspace("acme").await;
    let (code, view) = patch(&server, "acme", ADMIN, full_settings()).await;
    assert_eq!(code, StatusCode::OK, "{view}");
    assert!(first.shutdown(std::time::Duration::from_secs(5)).await);

    let second = sqlite_service(&path).await;
    let restarted = serve(second).await;
    let (code, read) = restarted
        .get("/api/admin/workspaces/acme", Some(ADMIN))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(read, view, "the same settings after the restart");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_change_on_one_instance_reaches_the_other_through_redis() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    let key = shared_workspace(&a, &b, "acme", json!({})).await;
    let (code, view) = patch(&a, "acme", ADMIN, full_settings()).await;
    assert_eq!(code, StatusCode::OK, "{view}");
    wait_for("instance b applies the new settings", || async {
        b.get("/api/admin/workspaces/acme", Some(ADMIN)).await.1 == view
    })
    .await;
    let (_, status) = b.get("/api/quota/status", Some(&key)).await;
    assert_eq!(status["requests_per_minute"]["limit"], 7);

    // A key rotated afterwards keeps the settings in Redis (a third instance
    // loads them from there).
    let (code, _) = a
        .post(
            "/api/admin/workspaces/acme/rotate-key",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let (_, c) = instance(redis.port).await;
    let (_, read) = c.get("/api/admin/workspaces/acme", Some(ADMIN)).await;
    assert_eq!(read, view, "loaded from Redis with the rotated key");
}

#[tokio::test]
async fn recorded_cost_counts_against_a_hard_budget_shown_in_the_snapshot() {
    let s = start().await;
    let key = s.workspace("acme").await;
    let (code, _) = patch(
        &s,
        "acme",
        ADMIN,
        json!({"time_zone": "Asia/Tokyo", "budgets": [{"period": "day", "amount_usd": 1, "kind": "hard"}]}),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let snap = s
        .record(
            &key,
            json!({"success": true, "tokens_used": 10, "cost_usd": 0.6}),
        )
        .await;
    assert_eq!(snap["budgets"][0]["spent_usd"], 0.6);
    assert_eq!(snap["budgets"][0]["period"], "day");
    assert_eq!(snap["budgets"][0]["kind"], "hard");
    assert_eq!(snap["status"], "NORMAL", "60% is below the warning share");
    let snap = s
        .record(
            &key,
            json!({"success": true, "tokens_used": 10, "cost_usd": 0.4}),
        )
        .await;
    assert_eq!(snap["status"], "QUOTA_EXCEEDED", "{snap}");
    let message = snap["message"].as_str().unwrap();
    assert!(message.contains("Daily budget of $1.00 spent"), "{message}");
    assert!(
        message.contains("JST"),
        "resets at Tokyo's midnight: {message}"
    );
    let (_, check) = s.get("/api/quota/check", Some(&key)).await;
    assert_eq!(check["allowed"], false, "refused until it resets");

    for bad in [json!(-1), json!(2_000_000), json!("1.0")] {
        let (code, answer) = s
            .post(
                "/api/quota/record",
                Some(&key),
                json!({"success": true, "tokens_used": 1, "cost_usd": bad}),
            )
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("cost_usd"),
            "{bad}: {answer}"
        );
    }
}

#[tokio::test]
async fn spend_survives_a_restart_and_a_spent_budget_stays_spent() {
    let path = temp_dir("spend").join("state.db");
    let first = sqlite_service(&path).await;
    let server = serve(first.clone()).await;
    let key = server.workspace("acme").await;
    let budgets = json!({"budgets": [{"period": "month", "amount_usd": 2, "kind": "hard"}]});
    assert_eq!(
        patch(&server, "acme", ADMIN, budgets).await.0,
        StatusCode::OK
    );
    for _ in 0..2 {
        server
            .record(
                &key,
                json!({"success": true, "tokens_used": 5, "cost_usd": 1.25}),
            )
            .await;
    }
    let (_, before) = server.get("/api/quota/status", Some(&key)).await;
    assert_eq!(before["status"], "QUOTA_EXCEEDED", "{before}");
    // A clean stop writes what is behind.
    assert!(first.shutdown(std::time::Duration::from_secs(5)).await);

    let second = sqlite_service(&path).await;
    let restarted = serve(second).await;
    let (_, after) = restarted.get("/api/quota/status", Some(&key)).await;
    assert_eq!(after["budgets"][0]["spent_usd"], 2.5, "{after}");
    assert_eq!(
        after["status"], "QUOTA_EXCEEDED",
        "still spent after the restart"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_key_rotation_racing_a_settings_change_never_writes_the_old_settings_back() {
    let redis = start_redis(free_port()).await;
    let (_, a) = instance(redis.port).await;
    let (_, b) = instance(redis.port).await;
    shared_workspace(&a, &b, "acme", json!({})).await;
    // Each round changes the settings on one instance while the key is
    // rotated on the other; the rotation reads the workspace, then writes
    // it with the new key: unless that write is a compare-and-set, a change
    // landing in between is overwritten with the settings it read.
    for round in 1..=20u32 {
        let budget = json!({"budgets": [{"period": "day", "amount_usd": round, "kind": "soft"}]});
        let (patched, rotated) = tokio::join!(
            patch(&a, "acme", ADMIN, budget),
            b.post(
                "/api/admin/workspaces/acme/rotate-key",
                Some(ADMIN),
                json!({})
            )
        );
        assert_eq!(patched.0, StatusCode::OK, "{}", patched.1);
        assert_eq!(rotated.0, StatusCode::OK, "{}", rotated.1);
        // A third instance loads the workspace from Redis as it is kept.
        let (_, c) = instance(redis.port).await;
        let (_, kept) = c.get("/api/admin/workspaces/acme", Some(ADMIN)).await;
        assert_eq!(
            kept["settings"]["budgets"][0]["amount_usd"],
            f64::from(round),
            "round {round}: {kept}"
        );
    }
}
