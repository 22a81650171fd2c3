//! Money, models and people through real HTTP: proxied calls are priced
//! from the upstream's usage and broken down by model and user; a hard
//! budget refuses, before OpenAI, the calls whose worst-case cost would
//! take it over — also when 40 arrive at once; per-model limits block one
//! family and not another; per-user limits block one user and not the
//! next; the record API prices a model's usage; and each bad label or
//! usage gets a 400 naming it.

mod common;

use common::fake_openai::{self, FakeOpenAi};
use common::{eventually, hold_price_file, roomy_limits, start_with, wait_for, Server, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

const HOLD_PRICE_PER_MILLION: f64 = 100.0;
/// The fake answers every call with 20 prompt and 10 completion tokens.
const USAGE_PROMPT: u64 = 20;
const USAGE_COMPLETION: u64 = 10;

async fn server(fake: &FakeOpenAi) -> Server {
    let prices = hold_price_file("spend-prices", HOLD_PRICE_PER_MILLION);
    start_with(&[
        ("OPENAI_BASE_URL", &fake.base_url),
        ("OPENAI_API_KEY", "sk-upstream"),
        ("QUOTA_PRICES_FILE", prices.to_str().unwrap()),
        ("QUOTA_API_RATE_PER_KEY", "100000"),
    ])
    .await
}

/// One chat completion through the proxy; status, headers and body.
async fn chat(
    server: &Server,
    key: &str,
    body: Value,
    user_header: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = server
        .http
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body);
    if let Some(user) = user_header {
        req = req.header("X-Quota-User", user);
    }
    let res = req.send().await.expect("send");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

fn message(model: &str) -> Value {
    json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn proxied_calls_are_priced_from_their_usage_and_broken_down() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    s.patch_settings(
        "acme",
        json!({"budgets": [{"period": "month", "amount_usd": 100, "kind": "soft"}]}),
    )
    .await;
    let (code, _, body) = chat(&s, &key, message("gpt-4o"), Some("alice")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let mut with_user = message("gpt-4o-mini");
    with_user["user"] = json!("bob");
    let (code, _, body) = chat(&s, &key, with_user, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        fake.requests()[0].headers.get("x-quota-user"),
        None,
        "the label is ours, not sent upstream"
    );

    // gpt-4o: 20 × $2.50 + 10 × $10 per 1M = $0.00015;
    // gpt-4o-mini: 20 × $0.15 + 10 × $0.60 per 1M = $0.000009.
    let snapshot = eventually(&s, &key, |s| {
        s["by_model"].as_array().is_some_and(|r| r.len() == 2)
    })
    .await;
    let gpt4o = row(&snapshot["by_model"], "gpt-4o");
    assert_eq!(gpt4o["requests"], 1);
    assert_eq!(gpt4o["tokens"], USAGE_PROMPT + USAGE_COMPLETION);
    assert!(
        (gpt4o["spent_usd"].as_f64().unwrap() - 0.00015).abs() < 1e-12,
        "{gpt4o}"
    );
    let mini = row(&snapshot["by_model"], "gpt-4o-mini");
    assert!(
        (mini["spent_usd"].as_f64().unwrap() - 0.000009).abs() < 1e-12,
        "{mini}"
    );
    assert_eq!(row(&snapshot["by_user"], "alice")["requests"], 1);
    assert_eq!(row(&snapshot["by_user"], "bob")["requests"], 1);
    assert_eq!(
        snapshot["by_model"][0]["name"], "gpt-4o",
        "the dearest first"
    );
    let spent = snapshot["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!((spent - 0.000159).abs() < 1e-12, "{snapshot}");
}

#[tokio::test]
async fn a_hard_budget_is_never_overshot_by_calls_sent_at_once() {
    const BURST: usize = 40;
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    // A call of `hold` with max_tokens 240 may cost ~250 tokens × $0.0001
    // = ~$0.025; $0.10 holds three such calls (their prompts push the
    // fourth over), whatever arrives at once.
    let budget = 0.10;
    s.patch_settings(
        "acme",
        json!({"budgets": [{"period": "day", "amount_usd": budget, "kind": "hard"}]}),
    )
    .await;
    let calls = (0..BURST).map(|i| {
        let (http, url, key) = (s.http.clone(), s.url("/v1/chat/completions"), key.clone());
        tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "hold", "max_tokens": 240,
                    "messages": [{"role": "user", "content": format!("call {i}")}]}))
                .send()
                .await
                .expect("send");
            let status = res.status();
            let retry = res.headers().get("retry-after").is_some();
            (
                status,
                retry,
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    });
    let calls: Vec<_> = calls.collect();
    // The admitted calls wait at the upstream; every other one is refused
    // while they hold the budget.
    wait_for("every call admitted (held upstream) or refused", || async {
        let refused = calls.iter().filter(|c| c.is_finished()).count();
        fake.held() > 0 && fake.held() + refused >= BURST
    })
    .await;
    let admitted = fake.held();
    let snapshot = s.get("/api/quota/status", Some(&key)).await.1;
    let held = snapshot["budgets"][0]["held_usd"].as_f64().unwrap();
    assert!(held <= budget + 1e-12, "held {held} of {budget}");
    assert!((1..=4).contains(&admitted), "{admitted} admitted");
    fake.release();
    let mut refusals = 0;
    for call in calls {
        let (status, retry, body) = call.await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            refusals += 1;
            assert_eq!(body["error"]["type"], "insufficient_quota", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Daily budget of $0.10"),
                "{body}"
            );
            assert!(retry, "a refusal says when to retry");
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    assert_eq!(refusals, BURST - admitted);
    assert_eq!(fake.total(), admitted, "no refused call reached OpenAI");
    // Settled at the real usage: 30 tokens × $0.0001 = $0.003 a call.
    let settled = eventually(&s, &key, |s| s["budgets"][0]["held_usd"] == 0.0).await;
    let spent = settled["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!((spent - 0.003 * admitted as f64).abs() < 1e-9, "{settled}");
}

#[tokio::test]
async fn a_model_limit_blocks_its_family_and_not_another() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    s.patch_settings(
        "acme",
        json!({"model_limits": {"gpt-4o": {"requests_per_minute": 2}}}),
    )
    .await;
    for model in ["gpt-4o", "gpt-4o-2024-08-06"] {
        let (code, _, body) = chat(&s, &key, message(model), None).await;
        assert_eq!(code, StatusCode::OK, "{model}: {body}");
    }
    let (code, headers, body) = chat(&s, &key, message("gpt-4o"), None).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let text = body["error"]["message"].as_str().unwrap();
    assert!(
        text.contains("Model gpt-4o requests per minute limit: 2 of 2"),
        "{text}"
    );
    assert!(headers.get("retry-after").is_some());
    let (code, _, body) = chat(&s, &key, message("gpt-4o-mini"), None).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "another family is not blocked: {body}"
    );
    assert_eq!(fake.total(), 3, "the refused call never reached OpenAI");
    let snapshot = s.get("/api/quota/status", Some(&key)).await.1;
    assert_eq!(
        row(&snapshot["by_model"], "gpt-4o")["limit_percentage"],
        100.0
    );
    assert_eq!(
        row(&snapshot["by_model"], "gpt-4o-mini")["limit_percentage"],
        Value::Null
    );
}

#[tokio::test]
async fn a_user_limit_blocks_one_user_not_the_next_and_bad_labels_are_refused() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    s.patch_settings(
        "acme",
        json!({"user_limits": {"default": {"requests_per_minute": 1},
                               "overrides": {"lead": {"requests_per_minute": 3}}}}),
    )
    .await;
    let (code, _, _) = chat(&s, &key, message("gpt-4o"), Some("alice")).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _, body) = chat(&s, &key, message("gpt-4o"), Some("alice")).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("User alice requests per minute"),
        "{body}"
    );
    // The body's `user` names a user as the header does.
    let mut as_alice = message("gpt-4o");
    as_alice["user"] = json!("alice");
    let (code, _, _) = chat(&s, &key, as_alice, None).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    let (code, _, _) = chat(&s, &key, message("gpt-4o"), Some("bob")).await;
    assert_eq!(code, StatusCode::OK, "bob has a minute of his own");
    for _ in 0..3 {
        let (code, _, _) = chat(&s, &key, message("gpt-4o"), Some("lead")).await;
        assert_eq!(code, StatusCode::OK, "an override replaces the default");
    }
    let (code, _, _) = chat(&s, &key, message("gpt-4o"), None).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "a call naming no user has no user limit"
    );
    let forwarded = fake.total();

    let long = "x".repeat(201);
    let mut long_body = message("gpt-4o");
    long_body["user"] = json!(long);
    for (body, header, param) in [
        (message("gpt-4o"), Some(long.as_str()), "X-Quota-User"),
        (long_body, None, "user"),
    ] {
        let (code, _, answer) = chat(&s, &key, body, header).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_user");
        assert_eq!(answer["error"]["param"], param);
    }
    assert_eq!(
        fake.total(),
        forwarded,
        "refused labels never reached OpenAI"
    );
}

#[tokio::test]
async fn the_record_api_prices_a_models_usage_and_refuses_bad_details() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    s.patch_settings(
        "acme",
        json!({"budgets": [{"period": "week", "amount_usd": 10, "kind": "hard"}]}),
    )
    .await;
    // gpt-4o-mini: 600 × $0.15 + 400 cached × $0.075 + 500 × $0.60 per 1M
    // = $0.00042.
    let snapshot = s
        .record(
            &key,
            json!({"success": true, "model": "gpt-4o-mini", "user": "carol",
                   "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                             "prompt_tokens_details": {"cached_tokens": 400}}}),
        )
        .await;
    let spent = snapshot["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!((spent - 0.00042).abs() < 1e-12, "{snapshot}");
    assert_eq!(
        snapshot["tokens_per_minute"]["current"], 1500,
        "tokens from the usage"
    );
    assert_eq!(row(&snapshot["by_user"], "carol")["tokens"], 1500);
    // The flat spelling: o3 (from 2025-06-10: $2 in, $0.50 cached, $8 out
    // and reasoning): 100 cached × $0.50 + 100 × $8 per 1M = $0.00085.
    let snapshot = s
        .record(
            &key,
            json!({"success": true, "model": "o3",
                   "usage": {"prompt_tokens": 100, "completion_tokens": 100,
                             "cached_tokens": 100, "reasoning_tokens": 60}}),
        )
        .await;
    let spent = snapshot["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!((spent - 0.00127).abs() < 1e-12, "{snapshot}");
    // An explicit cost wins over the price table.
    let snapshot = s
        .record(
            &key,
            json!({"success": true, "model": "gpt-4o", "cost_usd": 1.5, "tokens_used": 1}),
        )
        .await;
    let spent = snapshot["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!((spent - 1.50127).abs() < 1e-9, "{snapshot}");

    for (body, says) in [
        (
            json!({"success": true, "usage": "lots"}),
            "usage must be an object",
        ),
        (
            json!({"success": true, "usage": {"prompt_tokens": 200_000_000u64}}),
            "usage counts",
        ),
        (
            json!({"success": true, "user": ""}),
            "user must be 1 to 200",
        ),
        (
            json!({"success": true, "user": "a\u{7}b"}),
            "user must not contain control",
        ),
        (
            json!({"success": true, "model": "m".repeat(201)}),
            "model must be 1 to 200",
        ),
    ] {
        let (code, answer) = s.post("/api/quota/record", Some(&key), body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}: {answer}"
        );
    }
}

#[tokio::test]
async fn the_admin_reads_the_price_table_in_force_and_tenants_cannot() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace("acme").await;
    let (code, table) = s.get("/api/admin/prices", Some(ADMIN)).await;
    assert_eq!(code, StatusCode::OK, "{table}");
    assert_eq!(
        table["models"]["hold"][0]["input"], HOLD_PRICE_PER_MILLION,
        "the operator's file"
    );
    assert_eq!(
        table["models"]["gpt-4o"][1]["cached_input"], 1.25,
        "the shipped table"
    );
    assert!(!table["taken"].as_str().unwrap().is_empty());
    let (code, _) = s.get("/api/admin/prices", Some(&key)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}
