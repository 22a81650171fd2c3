//! Webhooks: a receiver on 127.0.0.1:0 sees exactly one alert per transition,
//! deduplicated within the cooldown, retried when it fails.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::{start_with, ADMIN};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Receiver {
    alerts: Mutex<Vec<Value>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
}

async fn receive(State(r): State<Arc<Receiver>>, Json(body): Json<Value>) -> StatusCode {
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.alerts.lock().unwrap().push(body);
    StatusCode::OK
}

async fn receiver(fail_first: usize) -> (String, Arc<Receiver>) {
    let state = Arc::new(Receiver::default());
    state.fail_first.store(fail_first, Ordering::SeqCst);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), state)
}

fn transitions(r: &Receiver) -> Vec<(String, String)> {
    r.alerts
        .lock()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["from"].as_str().unwrap_or("").to_string(),
                a["to"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn one_alert_per_transition_with_slack_text_and_recovery() {
    let (url, r) = receiver(0).await;
    let s = start_with(&[("QUOTA_WEBHOOK_URL", url.as_str())]).await;
    let key = s.workspace("acme").await;
    for _ in 0..8 {
        s.record(&key, json!({"success": true})).await; // 8/10: WARNING
    }
    for _ in 0..2 {
        s.record(&key, json!({"success": true})).await; // 10/10: RATE_LIMITED
    }
    s.post(
        "/api/quota/reset",
        Some(ADMIN),
        json!({"workspace_id": "acme"}),
    )
    .await; // NORMAL
    settle().await;
    assert_eq!(
        transitions(&r),
        vec![
            ("NORMAL".into(), "WARNING".into()),
            ("WARNING".into(), "RATE_LIMITED".into()),
            ("RATE_LIMITED".into(), "NORMAL".into()),
        ]
    );
    let alerts = r.alerts.lock().unwrap().clone();
    assert_eq!(alerts[0]["workspace_id"], "acme");
    assert_eq!(alerts[0]["event"], "quota.status_changed");
    assert!(
        alerts[0]["text"].as_str().unwrap().contains("acme"),
        "Slack-compatible text"
    );
    assert!(alerts[2]["text"].as_str().unwrap().contains("recovered"));
}

#[tokio::test]
async fn a_flapping_status_alerts_once_per_cooldown() {
    let (url, r) = receiver(0).await;
    let s = start_with(&[("QUOTA_WEBHOOK_URL", url.as_str())]).await;
    let key = s.workspace("flappy").await;
    for _ in 0..3 {
        for _ in 0..8 {
            s.record(&key, json!({"success": true})).await;
        }
        s.post(
            "/api/quota/reset",
            Some(ADMIN),
            json!({"workspace_id": "flappy"}),
        )
        .await;
    }
    settle().await;
    assert_eq!(
        transitions(&r),
        vec![
            ("NORMAL".into(), "WARNING".into()),
            ("WARNING".into(), "NORMAL".into())
        ],
        "three flaps within the cooldown: one alert each way"
    );
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_and_requests_never_wait() {
    let (url, r) = receiver(1).await;
    let s = start_with(&[("QUOTA_WEBHOOK_URL", url.as_str())]).await;
    let key = s.workspace("acme").await;
    let started = std::time::Instant::now();
    s.record(
        &key,
        json!({"success": false, "error": {"http_status": 429, "code": "insufficient_quota"}}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the record did not wait for the webhook"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        transitions(&r),
        vec![("NORMAL".into(), "QUOTA_EXCEEDED".into())],
        "delivered once, on the retry"
    );
}

#[tokio::test]
async fn invalid_webhook_urls_stop_the_server_at_start() {
    let err =
        quota_alert::config::Config::from_sources(None, std::path::Path::new("none"), |name| {
            (name == "QUOTA_WEBHOOK_URL").then(|| "ftp://example.com/hook".to_string())
        })
        .unwrap_err();
    assert!(err.to_string().contains("QUOTA_WEBHOOK_URL"), "{err}");
}
