//! Exact to the token: 50 calls at once against a small tokens-per-minute
//! limit, through the proxy, the tracked client (`send_message`) and
//! reserve/record, on one instance and on two sharing Redis. The calls the
//! fake upstream admits are held there until every other one has been
//! answered, so the test sees the most that was ever admitted at once: the
//! tokens admitted (used + reserved) never exceed the limit, every refusal
//! is a 429 in the caller's error shape that never reached the upstream, and
//! once the held calls are released the counts equal the upstream's usage
//! exactly, with nothing left reserved.

mod common;

use common::fake_openai::{self, FakeOpenAi, USAGE_TOKENS};
use common::process::free_port;
use common::redis::{instance_with, shared_workspace, start_redis};
use common::{eventually, start_with, wait_for, Server};
use quota_alert::engine::SystemClock;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

const BURST: usize = 50;
const TOKENS_PER_MINUTE: u64 = 1000;
/// Each proxied call asks for this much output: with its short prompt a
/// call needs ~250 tokens, so about four fit in the limit at once.
const MAX_TOKENS: u64 = 240;

fn limits() -> Value {
    json!({
        "requests_per_minute": 100000,
        "requests_per_day": 1000000,
        "tokens_per_minute": TOKENS_PER_MINUTE,
        "tokens_per_day": 1000000,
    })
}

fn env(fake: &FakeOpenAi) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_BASE_URL", fake.base_url.clone()),
        ("OPENAI_API_KEY", "sk-upstream".into()),
        // The tracked client's model: held by the fake like the proxy's.
        ("OPENAI_MODEL", "hold".into()),
        // The tracked client sends no max_tokens: this is its reserve.
        ("QUOTA_DEFAULT_MAX_OUTPUT_TOKENS", MAX_TOKENS.to_string()),
    ]
}

fn as_pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// What one call of a burst got back.
#[derive(Debug)]
enum Outcome {
    /// Reached the upstream and answered.
    Answered,
    /// Refused before the upstream, with the body it got.
    Refused(Value),
}

/// The ways a burst is sent; each call goes to `servers[i % len]`.
#[derive(Clone, Copy, Debug)]
enum Path {
    Proxy,
    SendMessage,
}

async fn call(path: Path, server: String, key: String, i: usize) -> Outcome {
    let http = reqwest::Client::new();
    match path {
        Path::Proxy => {
            let res = http
                .post(format!("{server}/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&json!({
                    "model": "hold",
                    "max_tokens": MAX_TOKENS,
                    "messages": [{"role": "user", "content": format!("hi {i}")}],
                }))
                .send()
                .await
                .expect("send");
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            match status {
                StatusCode::OK => Outcome::Answered,
                StatusCode::TOO_MANY_REQUESTS => Outcome::Refused(body),
                other => panic!("call {i}: unexpected {other}: {body}"),
            }
        }
        Path::SendMessage => {
            let res = http
                .post(format!("{server}/api/fn/send_message"))
                .bearer_auth(&key)
                .form(&[
                    ("workspace", "acme"),
                    ("conversation", format!("c{i}").as_str()),
                    ("text", "hi"),
                ])
                .send()
                .await
                .expect("send");
            assert_eq!(res.status(), StatusCode::OK, "call {i}");
            let body: Value = res.json().await.expect("json");
            match body["outcome"].as_str() {
                Some("replied") => Outcome::Answered,
                Some("blocked") => Outcome::Refused(body),
                _ => panic!("call {i}: unexpected outcome {body}"),
            }
        }
    }
}

/// Sends the burst, waits until every call is either refused or held at
/// the upstream, checks the windows at that moment, releases the held ones
/// and checks the settled counts.
async fn burst(path: Path, servers: &[&Server], key: &str, fake: &FakeOpenAi) {
    let mut calls = Vec::new();
    for i in 0..BURST {
        let server = servers[i % servers.len()].base.clone();
        calls.push(tokio::spawn(call(path, server, key.to_string(), i)));
    }
    // Refusals answer at once; admitted calls wait at the upstream. The
    // state to check is when all 50 are one or the other.
    wait_for("every call refused or held at the upstream", || async {
        let finished = calls.iter().filter(|c| c.is_finished()).count();
        finished + fake.held() == BURST
    })
    .await;
    let admitted = fake.held();
    for server in servers {
        let snap = status(server, key).await;
        let tpm = &snap["tokens_per_minute"];
        let (used, reserved) = (
            tpm["current"].as_u64().unwrap(),
            tpm["reserved"].as_u64().unwrap(),
        );
        assert!(
            used + reserved <= TOKENS_PER_MINUTE,
            "{path:?}: admitted {used} used + {reserved} reserved over the limit {TOKENS_PER_MINUTE}"
        );
        assert_eq!(used, 0, "nothing answered yet");
        assert!(
            reserved >= admitted as u64 * MAX_TOKENS,
            "{path:?}: each of the {admitted} held calls holds its output cap at least, {reserved} held"
        );
    }
    assert!(
        admitted >= 3,
        "{path:?}: the limit has room for three calls at least, {admitted} admitted"
    );
    assert!(
        admitted < BURST,
        "{path:?}: some calls must have been refused"
    );

    fake.release();
    let mut answered = 0;
    for call in calls {
        match call.await.expect("call task") {
            Outcome::Answered => answered += 1,
            Outcome::Refused(body) => match path {
                Path::Proxy => {
                    assert_eq!(body["error"]["type"], "tokens", "OpenAI's shape: {body}");
                    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
                }
                Path::SendMessage => {
                    assert!(
                        body["message"].as_str().is_some_and(|m| !m.is_empty()),
                        "the refusal says why: {body}"
                    );
                }
            },
        }
    }
    assert_eq!(answered, admitted, "every admitted call was answered");
    assert_eq!(
        fake.count(),
        admitted,
        "no refused call reached the upstream"
    );
    let expected = admitted as u64 * USAGE_TOKENS;
    for server in servers {
        let snap = eventually(server, key, |s| {
            s["tokens_per_minute"]["reserved"] == 0 && s["tokens_per_minute"]["current"] == expected
        })
        .await;
        assert_eq!(
            snap["requests_per_minute"]["current"], admitted,
            "refused calls are not counted as requests"
        );
    }
}

async fn status(server: &Server, key: &str) -> Value {
    let (code, snap) = server.get("/api/quota/status", Some(key)).await;
    assert_eq!(code, StatusCode::OK, "{snap}");
    snap
}

async fn one_instance(fake: &FakeOpenAi) -> (Server, String) {
    let env = env(fake);
    let server = start_with(&as_pairs(&env)).await;
    let key = server.workspace_with_limits("acme", limits()).await;
    (server, key)
}

#[tokio::test]
async fn a_proxy_burst_never_admits_more_tokens_than_the_limit() {
    let fake = fake_openai::start().await;
    let (server, key) = one_instance(&fake).await;
    burst(Path::Proxy, &[&server], &key, &fake).await;
}

#[tokio::test]
async fn a_send_message_burst_never_admits_more_tokens_than_the_limit() {
    let fake = fake_openai::start().await;
    let (server, key) = one_instance(&fake).await;
    burst(Path::SendMessage, &[&server], &key, &fake).await;
}

/// Two instances on one Redis, with the fake upstream and the workspace
/// both know; `service` is instance `a`'s.
struct Shared {
    redis: common::redis::RedisServer,
    fake: FakeOpenAi,
    service: quota_alert::service::QuotaService,
    a: Server,
    b: Server,
    key: String,
}

async fn two_instances() -> Shared {
    let redis = start_redis(free_port()).await;
    let fake = fake_openai::start().await;
    let env = env(&fake);
    let (service, a) = instance_with(redis.port, Arc::new(SystemClock), &as_pairs(&env)).await;
    let (_, b) = instance_with(redis.port, Arc::new(SystemClock), &as_pairs(&env)).await;
    let key = shared_workspace(&a, &b, "acme", limits()).await;
    Shared {
        redis,
        fake,
        service,
        a,
        b,
        key,
    }
}

#[tokio::test]
async fn a_proxy_burst_over_two_instances_sharing_redis_stays_within_the_limit() {
    let Shared {
        redis: _redis,
        fake,
        service,
        a,
        b,
        key,
    } = two_instances().await;
    burst(Path::Proxy, &[&a, &b], &key, &fake).await;
    assert_reconciled(&service).await;
}

#[tokio::test]
async fn a_send_message_burst_over_two_instances_sharing_redis_stays_within_the_limit() {
    // Bound, not `..`: the Redis server lives as long as its binding.
    let Shared {
        redis: _redis,
        service: _service,
        fake,
        a,
        b,
        key,
    } = two_instances().await;
    burst(Path::SendMessage, &[&a, &b], &key, &fake).await;
}

/// Reserve/record: 50 reservations of 100 tokens at once against 1 000
/// fit exactly ten (nothing settles meanwhile); recording each with its
/// real usage (30) settles the counts to exactly that.
async fn reserve_burst(servers: &[&Server], key: &str) {
    const HOLD: u64 = 100;
    let mut calls = Vec::new();
    for i in 0..BURST {
        let server = servers[i % servers.len()].base.clone();
        let key = key.to_string();
        calls.push(tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(format!("{server}/api/quota/reserve"))
                .bearer_auth(&key)
                .json(&json!({"tokens": HOLD, "model": "gpt-4o"}))
                .send()
                .await
                .expect("send");
            (
                server,
                res.status(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }));
    }
    let mut held = Vec::new();
    for call in calls {
        let (server, code, body) = call.await.expect("task");
        match code {
            StatusCode::OK => {
                held.push((server, body["reservation_id"].as_str().unwrap().to_string()))
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(
                    body["error"]["code"], "insufficient_tokens",
                    "the record API's shape: {body}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        held.len() as u64,
        TOKENS_PER_MINUTE / HOLD,
        "exactly as many reservations as fit"
    );
    for server in servers {
        let snap = status(server, key).await;
        assert_eq!(snap["tokens_per_minute"]["reserved"], TOKENS_PER_MINUTE);
        assert_eq!(snap["tokens_per_minute"]["current"], 0);
    }
    // Settle each (on the instance that did not reserve it, where there are two).
    let mut settles = Vec::new();
    for (i, (_, id)) in held.iter().enumerate() {
        let server = servers[(i + 1) % servers.len()].base.clone();
        let (key, id) = (key.to_string(), id.clone());
        settles.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{server}/api/quota/record"))
                .bearer_auth(&key)
                .json(&json!({"success": true, "tokens_used": USAGE_TOKENS, "reservation_id": id}))
                .send()
                .await
                .expect("send")
                .status()
        }));
    }
    for settle in settles {
        assert_eq!(settle.await.expect("task"), StatusCode::OK);
    }
    let expected = held.len() as u64 * USAGE_TOKENS;
    for server in servers {
        let snap = eventually(server, key, |s| {
            s["tokens_per_minute"]["reserved"] == 0 && s["tokens_per_minute"]["current"] == expected
        })
        .await;
        assert_eq!(snap["requests_per_minute"]["current"], held.len());
    }
}

#[tokio::test]
async fn a_reserve_burst_holds_exactly_what_fits_and_settles_to_the_recorded_usage() {
    let fake = fake_openai::start().await;
    let (server, key) = one_instance(&fake).await;
    reserve_burst(&[&server], &key).await;
}

#[tokio::test]
async fn a_reserve_burst_over_two_instances_sharing_redis_holds_exactly_what_fits() {
    let Shared {
        redis,
        fake: _fake,
        service,
        a,
        b,
        key,
    } = two_instances().await;
    reserve_burst(&[&a, &b], &key).await;
    assert_reconciled(&service).await;

    // A total knocked off its buckets (as a bug or a hand edit would) is
    // found, shown on /metrics and repaired, so admission is exact again.
    redis
        .command(&["HINCRBY", "qa:{acme}:tot", "mt", "7"])
        .await;
    let found = service.reconcile_now().await.expect("redis");
    assert_eq!(found.tokens, 7, "{found:?}");
    let (_, metrics) = text(&a, "/metrics").await;
    assert!(
        metrics.contains("quota_reconciliation_difference{counter=\"tokens\"} 7"),
        "{metrics}"
    );
    assert_reconciled(&service).await;

    // A hold this instance keeps that Redis does not have (settled on the
    // other instance, the event that said so missed) is released by the
    // pass, so this instance stops refusing for it.
    let ghost = quota_alert::engine::Hold {
        reservation_id: "rsv_ghost".into(),
        tokens: 400,
        expires_at_ms: service.engine().now_ms() + 600_000,
        cost_nano: 0,
        unpriced: false,
        scope: Default::default(),
    };
    service
        .engine()
        .count_admitted("acme", Some(&ghost))
        .unwrap();
    assert_eq!(status(&a, &key).await["tokens_per_minute"]["reserved"], 400);
    let found = service.reconcile_now().await.expect("redis");
    assert_eq!(found.ghost_holds, 1, "{found:?}");
    assert_eq!(status(&a, &key).await["tokens_per_minute"]["reserved"], 0);
}

/// A reconciliation pass over the shared counters finds nothing to repair.
async fn assert_reconciled(service: &quota_alert::service::QuotaService) {
    let report = service.reconcile_now().await.expect("a Redis service");
    assert!(report.workspaces >= 1, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(
        (
            report.requests,
            report.tokens,
            report.reserved_tokens,
            report.orphan_holds
        ),
        (0, 0, 0, 0),
        "the shared totals equal their buckets and holds: {report:?}"
    );
}

async fn text(server: &Server, path: &str) -> (StatusCode, String) {
    let res = server
        .http
        .get(server.url(path))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("send");
    (res.status(), res.text().await.unwrap_or_default())
}
