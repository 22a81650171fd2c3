//! Webhooks: a receiver on 127.0.0.1:0 sees exactly one alert per transition,
//! deduplicated within the cooldown, retried when it fails.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::{start_with, Server, ADMIN};
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

/// Waits (10 s at most) until the alerts received satisfy `done`; returns them.
async fn wait_until(r: &Receiver, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let received = || r.alerts.lock().unwrap().clone();
    let held = common::holds_within(common::WAIT, || std::future::ready(done(&received()))).await;
    let alerts = received();
    assert!(held, "waited 10 s; received {alerts:?}");
    alerts
}

/// Every alert the test's traffic caused so far, proven complete: another
/// workspace (`marker`) is pushed into WARNING after that traffic, and a
/// receiver gets alerts in the order they happened, so once the marker's
/// alert is in, anything before it is in too. Markers' alerts are left out.
async fn all_alerts_so_far(s: &Server, r: &Receiver, marker: &str) -> Vec<Value> {
    let key = s
        .workspace_with_limits(marker, json!({"requests_per_minute": 10}))
        .await;
    for _ in 0..8 {
        s.record(&key, json!({"success": true})).await; // 8/10: WARNING
    }
    wait_until(r, |alerts| {
        alerts.iter().any(|a| a["workspace_id"] == marker)
    })
    .await
    .into_iter()
    .filter(|a| {
        !a["workspace_id"]
            .as_str()
            .unwrap_or("")
            .starts_with("marker")
    })
    .collect()
}

fn from_to(alerts: &[Value]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["from"].as_str().unwrap_or("").to_string(),
                a["to"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
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
    let alerts = all_alerts_so_far(&s, &r, "marker").await;
    assert_eq!(
        from_to(&alerts),
        vec![
            ("NORMAL".into(), "WARNING".into()),
            ("WARNING".into(), "RATE_LIMITED".into()),
            ("RATE_LIMITED".into(), "NORMAL".into()),
        ]
    );
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
    let alerts = all_alerts_so_far(&s, &r, "marker").await;
    assert_eq!(
        from_to(&alerts),
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
    let alerts = all_alerts_so_far(&s, &r, "marker").await;
    assert_eq!(
        from_to(&alerts),
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

/// A jump far above the workspace's recent norm: one `quota.unusual_traffic`
/// alert, the flag in the status message and in the history, and no second
/// alert while the cooldown lasts. The clock is manual (the norm needs a
/// quarter of an hour of traffic); everything else is the real server.
#[tokio::test]
async fn unusual_traffic_is_flagged_in_the_status_the_history_and_one_alert() {
    use quota_alert::engine::ManualClock;
    use quota_alert::service::QuotaService;

    let (url, r) = receiver(0).await;
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let config = common::test_config(&[
        ("QUOTA_WEBHOOK_URL", url.as_str()),
        ("QUOTA_API_RATE_PER_KEY", "0"),
        ("QUOTA_API_RATE_PER_IP", "0"),
    ]);
    let service = QuotaService::new(config, clock.clone());
    let s = common::serve(service.clone()).await;
    let key = s
        .workspace_with_limits(
            "spiky",
            json!({"requests_per_minute": 10000, "requests_per_day": 1000000}),
        )
        .await;

    // A steady 8 requests a minute for 16 minutes: the norm.
    for _ in 0..16 {
        for _ in 0..8 {
            s.record(&key, json!({"success": true})).await;
        }
        clock.advance_s(60);
    }
    assert!(
        all_alerts_so_far(&s, &r, "marker-1").await.is_empty(),
        "steady traffic is not unusual"
    );

    // Then 80 in one minute: ten times the norm.
    for _ in 0..80 {
        s.record(&key, json!({"success": true})).await;
        clock.advance_ms(500);
    }
    // And more of the same within the cooldown: still one alert.
    for _ in 0..40 {
        s.record(&key, json!({"success": true})).await;
    }
    let alerts = all_alerts_so_far(&s, &r, "marker-2").await;
    assert_eq!(alerts.len(), 1, "exactly one alert: {alerts:?}");
    assert_eq!(alerts[0]["event"], "quota.unusual_traffic", "{}", alerts[0]);
    assert_eq!(alerts[0]["workspace_id"], "spiky");
    assert!(
        alerts[0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("unusual traffic"),
        "{}",
        alerts[0]
    );

    let (_, snapshot) = s.get("/api/quota/status", Some(&key)).await;
    assert!(
        snapshot["message"]
            .as_str()
            .unwrap_or("")
            .contains("Unusual traffic"),
        "{snapshot}"
    );
    // The history the dashboard shows keeps the flag.
    let history = service.engine().history("spiky").expect("history");
    assert!(
        history
            .iter()
            .any(|t| t.from == t.to && t.reason.contains("Unusual traffic")),
        "{history:?}"
    );
}
