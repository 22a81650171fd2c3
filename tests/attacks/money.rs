//! Attacks on money, models and people: a tenant names a model so long that
//! its breakdown would hold gigabytes; calls a model the price table does
//! not price, or leaves out its output cap, to spend past a hard budget;
//! labels its users with the breakdown's own row names; and sends a burst
//! at one instance under Redis, where admission awaits the shared store
//! between the local budget check and the hold.

use crate::common::fake_openai::{self, FakeOpenAi};
use crate::common::process::free_port;
use crate::common::redis::{instance_with, start_redis};
use crate::common::{hold_price_file, roomy_limits, start_with, wait_for, Server};
use quota_alert::engine::SystemClock;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

fn settings(fake: &FakeOpenAi, prices: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_BASE_URL", fake.base_url.clone()),
        ("OPENAI_API_KEY", "sk-upstream".into()),
        ("QUOTA_PRICES_FILE", prices.to_string_lossy().into_owned()),
        ("QUOTA_API_RATE_PER_KEY", "100000".into()),
    ]
}

async fn server(fake: &FakeOpenAi) -> Server {
    let prices = hold_price_file("money-prices", 100.0);
    let env = settings(fake, &prices);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start_with(&env).await
}

async fn post_v1(
    server: &Server,
    key: &str,
    path: &str,
    body: &Value,
    user: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = server
        .http
        .post(server.url(path))
        .bearer_auth(key)
        .json(body);
    if let Some(user) = user {
        req = req.header("X-Quota-User", user);
    }
    let res = req.send().await.expect("send");
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, res.json().await.unwrap_or(Value::Null))
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_model_name_too_long_to_keep_is_refused_before_openai() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    // A megabyte of name per call, 1 000 names a day: a gigabyte in the
    // day's breakdown, its rows in SQLite and every snapshot sent.
    let (code, _, body) = post_v1(
        &s,
        &key,
        "/v1/chat/completions",
        &chat(&"m".repeat(1 << 20)),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "model", "{body}");
    assert_eq!(fake.total(), 0, "nothing reached OpenAI");
    let (_, snapshot) = s.get("/api/quota/status", Some(&key)).await;
    assert_eq!(snapshot["by_model"], json!([]), "{snapshot}");
    // A real (long) fine-tuned name still passes.
    let tuned = "ft:gpt-4o-mini-2024-07-18:some-organisation-name:a-suffix:AbCdEf12";
    let (code, _, body) = post_v1(&s, &key, "/v1/chat/completions", &chat(tuned), None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_model_without_a_price_cannot_spend_past_a_hard_budget() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    s.patch_settings(
        "acme",
        json!({"budgets": [{"period": "day", "amount_usd": 1, "kind": "hard"}]}),
    )
    .await;
    // The table prices no `free-ride` (nor a model released after it was
    // taken): its calls would hold nothing and settle for nothing, so the
    // hard budget would never see them.
    for model in ["free-ride", "GPT-4O", "gpt-9-preview"] {
        let (code, retry, body) =
            post_v1(&s, &key, "/v1/chat/completions", &chat(model), None).await;
        assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{model}: {body}");
        assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("no price") && message.contains(model),
            "{body}"
        );
        assert_eq!(retry, None, "waiting does not price it: {body}");
    }
    assert_eq!(fake.total(), 0, "no unpriced call reached OpenAI");
    let (code, _, body) = post_v1(&s, &key, "/v1/chat/completions", &chat("gpt-4o"), None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    // A free model is priced (at nothing) and passes.
    let moderation = json!({"model": "omni-moderation-latest", "input": "hi"});
    let (code, _, body) = post_v1(&s, &key, "/v1/moderations", &moderation, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // A user's daily budget is a money limit too.
    let other = s.workspace_with_limits("other", roomy_limits()).await;
    s.patch_settings(
        "other",
        json!({"user_limits": {"default": {"budget_usd": 1}}}),
    )
    .await;
    let (code, _, body) = post_v1(
        &s,
        &other,
        "/v1/chat/completions",
        &chat("free-ride"),
        Some("alice"),
    )
    .await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (code, _, body) =
        post_v1(&s, &other, "/v1/chat/completions", &chat("free-ride"), None).await;
    assert_eq!(code, StatusCode::OK, "no money limit covers it: {body}");
}

#[tokio::test]
async fn a_call_without_an_output_cap_is_capped_at_what_a_budget_held() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    let uncapped = json!({"model": "hold-not", "messages": [{"role": "user", "content": "hi"}]});
    // No budget: the request goes as it came.
    let (code, _, body) = post_v1(&s, &key, "/v1/chat/completions", &uncapped, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(fake.last_body().get("max_completion_tokens"), None);

    // Under a hard budget the hold is the prompt plus the default cap
    // (4 096 tokens); an answer of 100 000 reasoning tokens would cost 25
    // times that. The cap held is the cap sent.
    s.patch_settings(
        "acme",
        json!({"budgets": [{"period": "day", "amount_usd": 100, "kind": "hard"}]}),
    )
    .await;
    let mut priced = uncapped.clone();
    priced["model"] = json!("gpt-4o");
    let (code, _, body) = post_v1(&s, &key, "/v1/chat/completions", &priced, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(fake.last_body()["max_completion_tokens"], 4096);
    // The Responses API's cap, likewise.
    let response = json!({"model": "gpt-4o", "input": "hi"});
    let (code, _, body) = post_v1(&s, &key, "/v1/responses", &response, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let sent = fake.requests();
    let sent: Value = serde_json::from_slice(&sent.last().unwrap().body).unwrap();
    assert_eq!(sent["max_output_tokens"], 4096, "{sent}");
    // A cap the caller set is left alone.
    let (code, _, body) = post_v1(&s, &key, "/v1/chat/completions", &chat("gpt-4o"), None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(fake.last_body()["max_tokens"], 50);
    assert_eq!(fake.last_body().get("max_completion_tokens"), None);
}

#[tokio::test]
async fn the_breakdowns_own_row_names_are_not_user_labels() {
    let fake = fake_openai::start().await;
    let s = server(&fake).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    for label in ["(none)", "(other)", "(other users)"] {
        let (code, _, body) =
            post_v1(&s, &key, "/v1/chat/completions", &chat("ok"), Some(label)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{label}: {body}");
        assert_eq!(body["error"]["param"], "X-Quota-User", "{body}");
    }
    assert_eq!(fake.total(), 0);
}

#[tokio::test]
async fn one_instance_under_redis_never_overshoots_a_hard_budget() {
    const BURST: usize = 40;
    let redis = start_redis(free_port()).await;
    let fake = fake_openai::start().await;
    let prices = hold_price_file("money-prices", 100.0);
    let env = settings(&fake, &prices);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_service, s) = instance_with(redis.port, Arc::new(SystemClock), &env).await;
    let key = s.workspace_with_limits("acme", roomy_limits()).await;
    // A call of `hold` with max_tokens 240 may cost ~$0.025: $0.10 holds
    // three of them, however many arrive at once.
    s.patch_settings(
        "acme",
        json!({"budgets": [{"period": "day", "amount_usd": 0.10, "kind": "hard"}]}),
    )
    .await;
    let calls: Vec<_> = (0..BURST)
        .map(|i| {
            let (http, url, key) = (s.http.clone(), s.url("/v1/chat/completions"), key.clone());
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(key)
                    .json(&json!({"model": "hold", "max_tokens": 240,
                        "messages": [{"role": "user", "content": format!("call {i}")}]}))
                    .send()
                    .await
                    .expect("send")
                    .status()
            })
        })
        .collect();
    wait_for("every call admitted (held upstream) or refused", || async {
        let refused = calls.iter().filter(|c| c.is_finished()).count();
        fake.held() > 0 && fake.held() + refused >= BURST
    })
    .await;
    let admitted = fake.held();
    fake.release();
    for call in calls {
        let status = call.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    assert!(
        (1..=4).contains(&admitted),
        "{admitted} calls admitted against a budget that holds three"
    );
    // The refused calls' holds were given back, the admitted ones settled.
    let settled = crate::common::eventually(&s, &key, |s| s["budgets"][0]["held_usd"] == 0.0).await;
    let spent = settled["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!((spent - 0.003 * admitted as f64).abs() < 1e-9, "{settled}");
}
