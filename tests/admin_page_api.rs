//! What the admin's workspaces page stands on, through real HTTP: the
//! workspace list (`GET /api/admin/workspaces`), the audit trail
//! (`GET /api/admin/audit`), and the page's server functions
//! (`/api/fn/admin_*`), which must refuse and accept exactly as REST does.

mod common;

use common::process::temp_dir;
use common::{serve, sign_in, start, test_config, Server, ADMIN};
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use quota_alert::store::SqliteStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// A server over a fresh SQLite file (only SQLite keeps the audit trail).
async fn start_sqlite() -> (Server, std::path::PathBuf) {
    let dir = temp_dir("admin-page");
    let store = SqliteStore::open(&dir.join("state.db")).expect("open the store");
    let service = QuotaService::with_store(test_config(&[]), Arc::new(SystemClock), store)
        .await
        .expect("service");
    (serve(service).await, dir)
}

async fn patch(s: &Server, id: &str, body: Value) {
    let res = s
        .http
        .patch(s.url(&format!("/api/admin/workspaces/{id}")))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
}

/// A server function called as the page calls it (JSON in, JSON out), with
/// a session cookie or none.
async fn call_fn(s: &Server, name: &str, cookie: Option<&str>, args: Value) -> Value {
    let mut req = s.http.post(s.url(&format!("/api/fn/{name}"))).json(&args);
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let res = req.send().await.expect("send");
    assert_eq!(res.status(), StatusCode::OK, "a refusal is an answer");
    res.json().await.expect("JSON")
}

fn message(answer: &Value) -> String {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_list_shows_every_workspace_with_its_status_key_and_settings() {
    let s = start().await;
    let key = s.workspace("beta").await;
    s.workspace("acme").await;
    patch(
        &s,
        "acme",
        json!({"time_zone": "Asia/Tokyo", "budgets": [{"period": "day", "amount_usd": 5, "kind": "hard"}],
               "model_limits": {"gpt-4o": {"tokens_per_minute": 1000}}}),
    )
    .await;
    let (code, _) = s
        .post("/api/admin/workspaces/beta/revoke", Some(ADMIN), json!({}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);

    let (code, list) = s.get("/api/admin/workspaces", Some(ADMIN)).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 2);
    let acme = &list["workspaces"][0];
    assert_eq!(acme["id"], "acme", "by id: {list}");
    assert_eq!(acme["status"], "NORMAL");
    assert_eq!(acme["has_key"], true);
    assert_eq!(acme["time_zone"], "Asia/Tokyo");
    assert_eq!(
        (acme["budgets"].as_u64(), acme["model_limits"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(acme["limits"]["requests_per_minute"], 10);
    let beta = &list["workspaces"][1];
    assert_eq!(
        (beta["id"].as_str(), beta["has_key"].as_bool()),
        (Some("beta"), Some(false))
    );

    // Not for a workspace key (even a revoked one's neighbour), nor for nobody.
    let other = s.workspace("other").await;
    let (code, answer) = s.get("/api/admin/workspaces", Some(&other)).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{answer}");
    let (code, _) = s.get("/api/admin/workspaces", Some(&key)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a revoked key is no key");
    let (code, _) = s.get("/api/admin/workspaces", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_audit_trail_reads_newest_first_of_all_or_one_workspace() {
    let (s, dir) = start_sqlite().await;
    s.workspace("acme").await;
    let beta = s.workspace("beta").await;
    patch(&s, "acme", json!({"time_zone": "Europe/Berlin"})).await;
    let (code, _) = s
        .post(
            "/api/admin/workspaces/acme/rotate-key",
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = s
        .post("/api/admin/workspaces/beta/revoke", Some(ADMIN), json!({}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);

    let (code, trail) = s.get("/api/admin/audit", Some(ADMIN)).await;
    assert_eq!(code, StatusCode::OK, "{trail}");
    assert_eq!(trail["kept"], true);
    let seen: Vec<(String, String)> = trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["workspace_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("revoke_keys", "beta"),
        ("rotate_key", "acme"),
        ("update_settings", "acme"),
        ("create_workspace", "beta"),
        ("create_workspace", "acme"),
    ]
    .map(|(a, w)| (a.to_string(), w.to_string()));
    assert_eq!(seen, expected, "newest first");
    let settings = &trail["entries"][2];
    assert!(
        settings["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Europe/Berlin"),
        "the change itself: {settings}"
    );
    assert!(settings["at"].as_str().unwrap_or_default().ends_with('Z'));
    assert!(settings["at_ms"].as_u64().unwrap_or(0) > 0);

    let (_, acme) = s
        .get("/api/admin/audit?workspace_id=acme&limit=2", Some(ADMIN))
        .await;
    let actions: Vec<&str> = acme["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["rotate_key", "update_settings"], "{acme}");

    // Each bad input, and what it gets.
    for (query, status, code, names) in [
        ("?limit=0", 400, "invalid_query", "limit"),
        ("?limit=1001", 400, "invalid_query", "limit"),
        ("?limit=many", 400, "invalid_query", "limit"),
        (
            "?workspace_id=Bad%20Id",
            400,
            "invalid_workspace_id",
            "workspace id",
        ),
        ("?workspace_id=ghost", 404, "not_found", "ghost"),
        ("?workspace=acme", 400, "invalid_query", "workspace"),
    ] {
        let (got, answer) = s
            .get(&format!("/api/admin/audit{query}"), Some(ADMIN))
            .await;
        assert_eq!(got.as_u16(), status, "{query}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{query}: {answer}");
        assert!(
            message(&answer).contains(names),
            "{query} names {names}: {answer}"
        );
    }
    let other = s.workspace("other").await;
    let (code, answer) = s.get("/api/admin/audit", Some(&other)).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{answer}");
    assert!(message(&answer).contains("admin key"), "{answer}");
    let (code, _) = s.get("/api/admin/audit", Some(&beta)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a revoked key");
    let (code, _) = s.get("/api/admin/audit", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_sqlite_the_audit_trail_says_it_is_not_kept() {
    let s = start().await;
    s.workspace("acme").await;
    let (code, trail) = s.get("/api/admin/audit", Some(ADMIN)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(trail, json!({"entries": [], "kept": false}));
}

#[tokio::test]
async fn the_page_functions_refuse_and_accept_exactly_as_rest_does() {
    let (s, dir) = start_sqlite().await;
    let acme = s.workspace("acme").await;
    let admin = sign_in(&s.http, &s.base, ADMIN).await;
    let workspace = sign_in(&s.http, &s.base, &acme).await;
    let (_, before) = s.get("/api/admin/workspaces/acme", Some(ADMIN)).await;

    // Nobody, and a workspace's session: refused with REST's statuses,
    // nothing changed.
    let tz = json!({"id": "acme", "patch": {"time_zone": "UTC"}});
    let none = call_fn(&s, "admin_update_settings", None, tz.clone()).await;
    assert_eq!(none["Err"]["status"], 401, "{none}");
    let refused = call_fn(&s, "admin_update_settings", Some(&workspace), tz.clone()).await;
    assert_eq!(refused["Err"]["status"], 403, "{refused}");
    assert_eq!(refused["Err"]["code"], "forbidden");
    for (name, args) in [
        ("admin_workspaces", json!({})),
        ("admin_rotate_key", json!({"id": "acme"})),
        ("admin_revoke_keys", json!({"id": "acme"})),
        ("admin_settings", json!({"id": "acme"})),
        ("admin_audit", json!({"workspace": null})),
        (
            "admin_create_workspace",
            json!({"id": "sneaky", "limits": {}}),
        ),
    ] {
        let answer = call_fn(&s, name, Some(&workspace), args).await;
        assert_eq!(answer["Err"]["status"], 403, "{name}: {answer}");
    }
    let (code, _) = s.get("/api/quota/status", Some(&acme)).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "the workspace key was not rotated or revoked"
    );
    let (_, after) = s.get("/api/admin/workspaces/acme", Some(ADMIN)).await;
    assert_eq!(after, before);

    // The admin: a bad field is refused naming it, apart from the message.
    let bad = json!({"id": "acme", "patch": {"time_zone": "Mars/Olympus"}});
    let answer = call_fn(&s, "admin_update_settings", Some(&admin), bad).await;
    assert_eq!(answer["Err"]["status"], 400, "{answer}");
    assert_eq!(answer["Err"]["code"], "invalid_field");
    assert_eq!(answer["Err"]["field"], "time_zone");
    let bad = json!({"id": "acme", "patch": {"budgets": [{"period": "custom", "amount_usd": 1, "kind": "hard", "length_days": 7}]}});
    let answer = call_fn(&s, "admin_update_settings", Some(&admin), bad).await;
    assert_eq!(answer["Err"]["field"], "budgets[0].anchor", "{answer}");
    let bad = json!({"id": "acme", "patch": {"limits": {"tokens_per_day": 0}}});
    let answer = call_fn(&s, "admin_update_settings", Some(&admin), bad).await;
    assert_eq!(answer["Err"]["field"], "limits.tokens_per_day", "{answer}");
    for (args, status, field) in [
        (json!({"id": "Not Valid", "limits": {}}), 400, "id"),
        (json!({"id": "acme", "limits": {}}), 409, "id"),
        (
            json!({"id": "fresh", "limits": {"requests_per_minute": 0}}),
            400,
            "limits.requests_per_minute",
        ),
    ] {
        let answer = call_fn(&s, "admin_create_workspace", Some(&admin), args.clone()).await;
        assert_eq!(answer["Err"]["status"], status, "{args}: {answer}");
        assert_eq!(answer["Err"]["field"], field, "{args}: {answer}");
    }

    // And what it may do, it does as REST would.
    let good = json!({"id": "acme", "patch": {"time_zone": "Asia/Tokyo",
        "budgets": [{"period": "day", "amount_usd": 5, "kind": "hard"}]}});
    let answer = call_fn(&s, "admin_update_settings", Some(&admin), good).await;
    assert_eq!(
        answer["Ok"]["settings"]["time_zone"], "Asia/Tokyo",
        "{answer}"
    );
    let (_, read) = s.get("/api/admin/workspaces/acme", Some(ADMIN)).await;
    assert_eq!(read, answer["Ok"], "REST reads what the page saved");
    let created = call_fn(
        &s,
        "admin_create_workspace",
        Some(&admin),
        json!({"id": "fresh", "limits": {"requests_per_minute": 3}}),
    )
    .await;
    let fresh_key = created["Ok"]["api_key"]
        .as_str()
        .expect("a key")
        .to_string();
    let (_, status) = s.get("/api/quota/status", Some(&fresh_key)).await;
    assert_eq!(status["requests_per_minute"]["limit"], 3);
    let rotated = call_fn(&s, "admin_rotate_key", Some(&admin), json!({"id": "acme"})).await;
    let new_key = rotated["Ok"]["api_key"]
        .as_str()
        .expect("a key")
        .to_string();
    let (code, _) = s.get("/api/quota/status", Some(&acme)).await;
    assert_eq!(
        code,
        StatusCode::UNAUTHORIZED,
        "the old key stopped working"
    );
    let (code, _) = s.get("/api/quota/status", Some(&new_key)).await;
    assert_eq!(code, StatusCode::OK);
    let trail = call_fn(
        &s,
        "admin_audit",
        Some(&admin),
        json!({"workspace": "acme"}),
    )
    .await;
    assert_eq!(trail["Ok"]["entries"][0]["action"], "rotate_key", "{trail}");
    assert_eq!(
        trail["Ok"]["entries"][1]["action"], "update_settings",
        "{trail}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
