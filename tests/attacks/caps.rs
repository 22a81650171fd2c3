//! Attacks: growth past every cap a tenant's input could push. Conversations
//! per workspace (client-chosen ids), the failure queue per workspace, and
//! background write tasks each stay within their documented bound.

use crate::common::fake_openai;
use crate::common::process::temp_dir;
use crate::common::{serve, start_with, test_config, Server};
use quota_alert::chat::{MAX_CONVERSATIONS, MAX_TRANSCRIPT};
use quota_alert::engine::{CallOutcome, SystemClock, MAX_RECENT_FAILURES};
use quota_alert::service::{background_stats, QuotaService, MAX_BACKGROUND_TASKS};
use quota_alert::store::SqliteStore;
use quota_alert::wire::LimitOverrides;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const BIG: [(&str, &str); 4] = [
    ("OPENAI_RATE_LIMIT_PER_MINUTE", "100000"),
    ("OPENAI_RATE_LIMIT_PER_DAY", "1000000"),
    ("OPENAI_TOKEN_LIMIT_PER_MINUTE", "100000000"),
    ("OPENAI_TOKEN_LIMIT_PER_DAY", "1000000000"),
];

async fn send(s: &Server, key: &str, conversation: &str, text: &str) -> Value {
    let res = s
        .http
        .post(s.url("/api/fn/send_message"))
        .bearer_auth(key)
        .form(&[
            ("workspace", "acme"),
            ("conversation", conversation),
            ("text", text),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("outcome")
}

async fn transcript(s: &Server, key: &str, conversation: &str) -> Vec<Value> {
    let res = s
        .http
        .post(s.url("/api/fn/conversation"))
        .bearer_auth(key)
        .form(&[("workspace", "acme"), ("conversation", conversation)])
        .send()
        .await
        .expect("load");
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Vec<Value>>().await.expect("transcript")
}

#[tokio::test]
async fn conversations_per_workspace_and_messages_per_conversation_are_capped() {
    let fake = fake_openai::start().await;
    let mut env = BIG.to_vec();
    env.push(("OPENAI_BASE_URL", fake.base_url.as_str()));
    env.push(("OPENAI_API_KEY", "sk-upstream-secret"));
    let s = start_with(&env).await;
    let key = s.workspace("acme").await;

    // Past the cap of conversations, by client-chosen ids.
    for i in 0..MAX_CONVERSATIONS + 5 {
        let outcome = send(&s, &key, &format!("c{i}"), "hello").await;
        assert_eq!(outcome["outcome"], "replied", "{outcome}");
    }
    // The least recently used ones were forgotten; the newest are kept.
    for i in 0..5 {
        assert!(
            transcript(&s, &key, &format!("c{i}")).await.is_empty(),
            "c{i} evicted"
        );
    }
    for i in 5..MAX_CONVERSATIONS + 5 {
        assert_eq!(
            transcript(&s, &key, &format!("c{i}")).await.len(),
            2,
            "c{i} kept"
        );
    }

    // Past the cap of messages in one conversation: the oldest go first.
    for i in 0..MAX_TRANSCRIPT / 2 + 3 {
        send(&s, &key, "long", &format!("m{i}")).await;
    }
    let kept = transcript(&s, &key, "long").await;
    assert_eq!(kept.len(), MAX_TRANSCRIPT);
    assert_eq!(kept[0]["content"], "m3", "the three oldest exchanges went");
}

#[tokio::test]
async fn the_failure_queue_of_a_workspace_is_capped() {
    let s = start_with(&BIG).await;
    let key = s.workspace("acme").await;
    let failure = json!({"success": false, "error": {"http_status": 500}});
    let batch = json!({"records": vec![failure.clone(); 1000]});
    let message_after = |batches: usize| {
        let s = &s;
        let key = key.clone();
        let batch = batch.clone();
        async move {
            for _ in 0..batches {
                let (status, body) = s
                    .post("/api/quota/record/batch", Some(&key), batch.clone())
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            s.get("/api/quota/status", Some(&key)).await.1
        }
    };
    // Below the cap the message counts every failure...
    let (status, _) = s
        .post(
            "/api/quota/record/batch",
            Some(&key),
            json!({"records": vec![failure.clone(); 500]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let snap = s.get("/api/quota/status", Some(&key)).await.1;
    assert_eq!(snap["status"], "DEGRADED");
    assert!(
        snap["message"].as_str().unwrap().contains("500 errors"),
        "{snap}"
    );
    // ...past it, the queue holds the cap and no more.
    let snap = message_after(2).await;
    let expected = format!("{MAX_RECENT_FAILURES} errors");
    assert!(
        snap["message"].as_str().unwrap().contains(&expected),
        "{snap}"
    );
}

#[tokio::test]
async fn background_writes_past_the_task_cap_are_merged_not_lost() {
    let path = temp_dir("background-cap").join("state.db");
    let store = SqliteStore::open(&path).expect("open store");
    let service = QuotaService::with_store(test_config(&BIG), Arc::new(SystemClock), store.clone())
        .await
        .expect("restore");
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .unwrap();
    let s = serve(service.clone()).await;
    let merged_before = background_stats().merged.load(Ordering::Relaxed);

    // Several times the task cap of proxied calls with no pause in between
    // (admission is in memory here, so nothing yields): one task each would
    // be 2 × 5 000 tasks.
    let calls = 5 * MAX_BACKGROUND_TASKS as u64;
    for _ in 0..calls {
        assert!(service.try_admit("acme").await.unwrap().check.allowed);
        service.complete("acme", &CallOutcome::success(2)).unwrap();
    }
    assert!(
        quota_alert::service::background_tasks_in_flight() <= MAX_BACKGROUND_TASKS,
        "never more than the cap"
    );
    assert!(
        background_stats().merged.load(Ordering::Relaxed) - merged_before >= calls,
        "merged into pending writes"
    );
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("quota_background_tasks_total{result=\"merged\"}"),
        "{text}"
    );

    // Nothing acknowledged is lost: every request and token reaches the store.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = store.load_usage(0).await.unwrap();
        let requests: u64 = rows.iter().map(|r| r.requests).sum();
        let tokens: u64 = rows.iter().map(|r| r.tokens).sum();
        if requests == calls && tokens == 2 * calls {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stored {requests} requests and {tokens} tokens of {calls}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
