//! Outbound alerts: a webhook POST on every status transition (into WARNING,
//! RATE_LIMITED, QUOTA_EXCEEDED, DEGRADED, and back to NORMAL), deduplicated
//! within a cooldown, retried with backoff, and never on the request path: the
//! engine's callers hand transitions to a bounded queue and move on.
//!
//! The body is JSON for machines plus a Slack-compatible `text` field, so the
//! same URL can be a Slack incoming webhook.

use crate::engine::{rfc3339, Transition};
use crate::wire::QuotaStatus;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Transitions waiting for delivery; beyond this, new ones are dropped (and
/// counted) rather than ever blocking a request.
const QUEUE: usize = 1_024;
/// Delays before the 2nd, 3rd and 4th attempt.
const BACKOFF_MS: [u64; 3] = [500, 2_000, 8_000];

#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    /// `QUOTA_WEBHOOK_URL`: one or more URLs, comma-separated.
    pub urls: Vec<String>,
    /// `QUOTA_WEBHOOK_COOLDOWN_S` (default 300): the same transition of the
    /// same workspace is sent at most once per cooldown.
    pub cooldown_ms: u64,
}

/// Delivery counters, read by `/metrics`.
#[derive(Debug, Default)]
pub struct AlertStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub deduplicated: AtomicU64,
    pub dropped: AtomicU64,
}

/// Decides whether a transition may be sent now; with several instances the
/// shared store answers (so one alert goes out, not one per instance).
pub type ClaimFn = Arc<
    dyn Fn(String, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone)]
pub struct Alerts {
    queue: Option<mpsc::Sender<Transition>>,
    pub stats: Arc<AlertStats>,
    /// Cancelled by [`drain`](Self::drain): the dispatcher hands on what is
    /// queued, then stops.
    closing: CancellationToken,
    /// The dispatcher and the per-URL workers, so shutdown can wait for them.
    tasks: TaskTracker,
}

impl Alerts {
    /// A dispatcher (started on the current runtime), or an inert one when no
    /// URL is configured.
    pub fn start(config: AlertConfig, claim: Option<ClaimFn>) -> Self {
        let stats = Arc::new(AlertStats::default());
        let closing = CancellationToken::new();
        let tasks = TaskTracker::new();
        if config.urls.is_empty() {
            return Self {
                queue: None,
                stats,
                closing,
                tasks,
            };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let worker_stats = stats.clone();
        tasks.spawn(deliver_loop(
            config,
            claim,
            rx,
            worker_stats,
            closing.clone(),
            tasks.clone(),
        ));
        Self {
            queue: Some(tx),
            stats,
            closing,
            tasks,
        }
    }

    /// At shutdown: delivers every alert already handed over (with its
    /// retries), at most `limit`; later ones are dropped (and counted).
    /// `false` if deliveries were still running after `limit`.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.closing.cancel();
        self.tasks.close();
        tokio::time::timeout(limit, self.tasks.wait()).await.is_ok()
    }

    /// Hands a transition over; never waits.
    pub fn notify(&self, transition: &Transition) {
        let Some(queue) = &self.queue else { return };
        if queue.try_send(transition.clone()).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(workspace_id = %transition.workspace_id, "alert queue full; alert dropped");
        }
    }
}

async fn deliver_loop(
    config: AlertConfig,
    claim: Option<ClaimFn>,
    mut rx: mpsc::Receiver<Transition>,
    stats: Arc<AlertStats>,
    closing: CancellationToken,
    tasks: TaskTracker,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    // One worker per URL, each with its own queue: a receiver sees alerts in
    // the order they happened (never "recovered" before "rate limited"), and a
    // slow or failing receiver delays no other.
    let receivers: Vec<mpsc::Sender<serde_json::Value>> = config
        .urls
        .iter()
        .map(|url| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tasks.spawn(deliver_in_order(
                http.clone(),
                url.clone(),
                rx,
                stats.clone(),
            ));
            tx
        })
        .collect();
    let mut last_sent: HashMap<(String, QuotaStatus, QuotaStatus), u64> = HashMap::new();
    loop {
        let t = tokio::select! {
            // Queued alerts first: once closed, `recv` hands out what is
            // left, then `None`.
            biased;
            t = rx.recv() => match t {
                Some(t) => t,
                None => break,
            },
            () = closing.cancelled() => {
                rx.close();
                continue;
            }
        };
        let key = (t.workspace_id.clone(), t.from, t.to);
        let recent = last_sent
            .get(&key)
            .is_some_and(|&at| t.at_ms < at + config.cooldown_ms);
        let claimed = match (&claim, recent) {
            (_, true) => false,
            (Some(claim), false) => {
                claim(
                    format!("{}:{}:{}", t.workspace_id, t.from, t.to),
                    config.cooldown_ms,
                )
                .await
            }
            (None, false) => true,
        };
        if !claimed {
            stats.deduplicated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        last_sent.insert(key, t.at_ms);
        let body = alert_body(&t);
        for receiver in &receivers {
            if receiver.try_send(body.clone()).is_err() {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(workspace_id = %t.workspace_id, "webhook receiver is far behind; alert dropped");
            }
        }
    }
}

/// Delivers `url`'s alerts one after another, each with its retries.
async fn deliver_in_order(
    http: reqwest::Client,
    url: String,
    mut queue: mpsc::Receiver<serde_json::Value>,
    stats: Arc<AlertStats>,
) {
    while let Some(body) = queue.recv().await {
        deliver(&http, &url, &body, &stats).await;
    }
}

async fn deliver(http: &reqwest::Client, url: &str, body: &serde_json::Value, stats: &AlertStats) {
    for attempt in 0..=BACKOFF_MS.len() {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(BACKOFF_MS[attempt - 1])).await;
        }
        match http.post(url).json(body).send().await {
            Ok(res) if res.status().is_success() => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(res) => {
                tracing::warn!(status = %res.status(), attempt, "webhook answered with an error")
            }
            Err(e) => tracing::warn!(error = %e, attempt, "webhook delivery failed"),
        }
    }
    stats.failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        "webhook delivery gave up after {} attempts",
        BACKOFF_MS.len() + 1
    );
}

pub fn alert_body(t: &Transition) -> serde_json::Value {
    let icon = if t.from == t.to {
        ":rotating_light:"
    } else {
        match t.to {
            QuotaStatus::Normal => ":white_check_mark:",
            QuotaStatus::Warning => ":warning:",
            QuotaStatus::Degraded => ":zap:",
            QuotaStatus::RateLimited => ":stopwatch:",
            QuotaStatus::QuotaExceeded => ":no_entry:",
        }
    };
    let headline = if t.from == t.to {
        format!("shows unusual traffic (status {})", t.to)
    } else if t.to == QuotaStatus::Normal {
        format!("recovered ({} → NORMAL)", t.from)
    } else {
        format!("{} → {}", t.from, t.to)
    };
    json!({
        "event": if t.from == t.to { "quota.unusual_traffic" } else { "quota.status_changed" },
        "workspace_id": t.workspace_id,
        "from": t.from,
        "to": t.to,
        "reason": t.reason,
        "at": rfc3339(t.at_ms),
        "text": format!("{icon} quota-alert: workspace *{}* {headline}. {}", t.workspace_id, t.reason),
    })
}
