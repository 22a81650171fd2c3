//! `GET /api/quota/usage.csv` and the breakdown's persistence, through real
//! HTTP on a SQLite-backed server: per-day rows in total and by model and
//! by user (names a spreadsheet would run defused), per-minute rows, each
//! bad parameter a 400 naming it, another tenant's export refused; and the
//! day's breakdown by model and user (and a user's daily budget spent)
//! survives a restart.

mod common;

use common::process::temp_dir;
use common::{serve, test_config, Server, ADMIN};
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use quota_alert::store::SqliteStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

async fn sqlite_service(path: &std::path::Path) -> QuotaService {
    let store = SqliteStore::open(path).expect("open the store");
    QuotaService::with_store(test_config(&[]), Arc::new(SystemClock), store)
        .await
        .expect("restore")
}

async fn csv(
    server: &Server,
    key: &str,
    query: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = server
        .http
        .get(server.url(&format!("/api/quota/usage.csv{query}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("send");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap_or_default())
}

fn today() -> String {
    use quota_alert::engine::Clock;
    quota_alert::engine::rfc3339(SystemClock.now_ms())[..10].to_string()
}

async fn record_three(server: &Server, key: &str) {
    for (model, user, cost) in [
        ("gpt-4o", "alice", 0.25),
        ("gpt-4o", "=HYPERLINK(\"x\")", 0.5),
        ("gpt-4o-mini", "alice", 0.125),
    ] {
        server
            .record(
                key,
                json!({"success": true, "model": model, "user": user, "cost_usd": cost, "tokens_used": 100}),
            )
            .await;
    }
}

#[tokio::test]
async fn an_export_gives_per_day_rows_in_total_by_model_and_by_user() {
    let path = temp_dir("export").join("state.db");
    let service = sqlite_service(&path).await;
    let s = serve(service.clone()).await;
    let key = s.workspace("acme").await;
    record_three(&s, &key).await;
    let day = today();

    let (code, headers, body) = csv(&s, &key, "").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"quota-acme-days-"),
        "{disposition}"
    );
    assert_eq!(
        body,
        format!("day,requests,tokens,cost_usd\n{day},3,300,0.875000000\n")
    );

    let (_, _, by_model) = csv(&s, &key, "?by=model").await;
    assert_eq!(
        by_model,
        format!("day,model,requests,tokens,cost_usd\n{day},gpt-4o,2,200,0.750000000\n{day},gpt-4o-mini,1,100,0.125000000\n")
    );
    let (_, _, by_user) = csv(&s, &key, "?by=user").await;
    let lines: Vec<&str> = by_user.lines().collect();
    assert_eq!(lines[0], "day,user,requests,tokens,cost_usd");
    assert_eq!(
        lines[1],
        format!("{day},\"'=HYPERLINK(\"\"x\"\")\",1,100,0.500000000"),
        "defused and quoted: {by_user}"
    );
    assert_eq!(lines[2], format!("{day},alice,2,200,0.375000000"));

    let (code, _, minutes) = csv(&s, &key, "?granularity=minute&minutes=5").await;
    assert_eq!(code, StatusCode::OK);
    let lines: Vec<&str> = minutes.lines().collect();
    assert_eq!(lines[0], "minute,requests,tokens");
    assert_eq!(lines.len(), 6, "{minutes}");
    // The period's spelling works for minutes too, parsed back as RFC 4180.
    let (code, _, today_minutes) = csv(
        &s,
        &key,
        &format!("?granularity=minute&from={day}&to={day}"),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let mut reader = ::csv::Reader::from_reader(today_minutes.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["minute", "requests", "tokens"]
    );
    let parsed: Vec<(String, u64, u64)> = reader.deserialize().map(|r| r.unwrap()).collect();
    assert!(
        parsed.iter().all(|(m, _, _)| m.starts_with(&day)),
        "only today's minutes"
    );
    assert_eq!(parsed.iter().map(|(_, r, _)| r).sum::<u64>(), 3);
    let requests: u64 = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(requests, 3, "the calls are in the last minutes: {minutes}");

    // The admin exports any workspace; a tenant only its own.
    let (code, _, _) = csv(&s, ADMIN, "?workspace_id=acme").await;
    assert_eq!(code, StatusCode::OK);
    s.workspace("other").await;
    let (code, _, body) = csv(&s, &key, "?workspace_id=other").await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn each_bad_export_parameter_is_refused_naming_it() {
    let path = temp_dir("export-bad").join("state.db");
    let s = serve(sqlite_service(&path).await).await;
    let key = s.workspace("acme").await;
    for (query, says) in [
        ("?granularity=hour", "granularity must be"),
        ("?by=team", "by must be"),
        ("?from=2026-13-01", "from must be a date"),
        ("?to=yesterday", "to must be a date"),
        (
            "?from=2026-02-01&to=2026-01-01",
            "from must not be after to",
        ),
        ("?from=2024-01-01&to=2026-01-01", "at most 400 days"),
        (
            "?granularity=minute&minutes=0",
            "minutes must be from 1 to 1440",
        ),
        ("?granularity=minute&by=model", "by is for per-day rows"),
        ("?granularity=minute&from=2026-02-31", "from must be a date"),
        ("?minutes=5", "minutes is for per-minute rows"),
        ("?format=xlsx", "format"),
    ] {
        let (code, _, body) = csv(&s, &key, query).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_query", "{query}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn the_days_breakdown_and_a_users_budget_survive_a_restart() {
    let path = temp_dir("breakdown-restart").join("state.db");
    let first = sqlite_service(&path).await;
    let s = serve(first.clone()).await;
    let key = s.workspace("acme").await;
    let res = s
        .http
        .patch(s.url("/api/admin/workspaces/acme"))
        .bearer_auth(ADMIN)
        .json(&json!({"user_limits": {"default": {"budget_usd": 0.5}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    record_three(&s, &key).await;
    let before = s.get("/api/quota/status", Some(&key)).await.1;
    assert!(first.shutdown(std::time::Duration::from_secs(5)).await);

    let second = sqlite_service(&path).await;
    let restarted = serve(second).await;
    let after = restarted.get("/api/quota/status", Some(&key)).await.1;
    assert_eq!(after["by_model"], before["by_model"]);
    assert_eq!(after["by_user"], before["by_user"]);
    // alice spent $0.375 of her $0.50 a day: a call that may cost $0.30
    // (5 000 tokens at o1's $60 per 1M) is refused after the restart.
    let (code, body) = restarted
        .post(
            "/api/quota/reserve",
            Some(&key),
            json!({"tokens": 5000, "model": "o1", "user": "alice"}),
        )
        .await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
