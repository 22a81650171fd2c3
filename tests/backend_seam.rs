//! The storage seam under attack: what `QuotaService::shutdown` promises
//! (writes behind landed, the database closed, the service's own tasks
//! stopped, nothing left listening), for SQLite and Redis, and what happens
//! to a write that comes too late.

mod common;

use common::process::{free_port, temp_dir};
use common::redis::start_redis;
use common::{test_config, wait_for};
use quota_alert::engine::{CallOutcome, SystemClock};
use quota_alert::service::QuotaService;
use quota_alert::store::SqliteStore;
use quota_alert::wire::{LimitOverrides, QuotaStatus};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMITS: [(&str, &str); 2] = [
    ("OPENAI_RATE_LIMIT_PER_MINUTE", "100000"),
    ("OPENAI_RATE_LIMIT_PER_DAY", "1000000"),
];

async fn sqlite_service(path: &Path) -> QuotaService {
    let store = SqliteStore::open(path).expect("open store");
    QuotaService::with_store(test_config(&LIMITS), Arc::new(SystemClock), store)
        .await
        .expect("restore")
}

async fn redis_service(port: u16) -> QuotaService {
    let instance = quota_alert::auth::generate_secret("i_");
    common::redis::redis_service(port, test_config(&LIMITS), Arc::new(SystemClock), &instance).await
}

/// Proxied calls: admitted, then completed with `tokens` each; all of it
/// written behind.
async fn proxy_calls(service: &QuotaService, id: &str, calls: u64, tokens: u64) {
    for _ in 0..calls {
        let admission = service.try_admit(id).await.expect("admit");
        assert!(admission.check.allowed);
        service
            .complete(id, &CallOutcome::success(tokens))
            .expect("complete");
    }
}

/// `(requests, tokens)` the SQLite file at `path` holds for `id`, read
/// through a connection of its own.
fn stored_usage(path: &Path, id: &str) -> (i64, i64) {
    let db = rusqlite::Connection::open(path).expect("open the database to read");
    db.query_row(
        "SELECT coalesce(sum(requests), 0), coalesce(sum(tokens), 0) FROM usage WHERE workspace_id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .expect("usage")
}

/// Connections subscribed to a channel on the Redis at `port`.
async fn pubsub_clients(redis: &common::redis::RedisServer) -> usize {
    match redis.command(&["CLIENT", "LIST", "TYPE", "pubsub"]).await {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .count(),
        redis::Value::VerbatimString { text, .. } => {
            text.lines().filter(|line| !line.trim().is_empty()).count()
        }
        other => panic!("CLIENT LIST answered {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_lands_the_usage_written_behind_and_closes_the_database() {
    let dir = temp_dir("seam-drain");
    let path = dir.join("state.db");
    let service = sqlite_service(&path).await;
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    service.spawn_ticker();
    proxy_calls(&service, "acme", 200, 3).await;

    let started = Instant::now();
    assert!(
        service.shutdown(Duration::from_secs(10)).await,
        "drained in time"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Every proxied call is in the file, without waiting any longer.
    assert_eq!(stored_usage(&path, "acme"), (200, 600));
    // Closed: the WAL was folded back into the main file.
    let wal = dir.join("state.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the WAL is checkpointed at close");
    assert!(
        service.engine().store_healthy(),
        "a clean shutdown is not a store failure"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A write that arrives after shutdown closed the database (a proxied
/// stream that outlived the HTTP drain) is lost either way; it must not be
/// reported as a store failure: that would turn every workspace DEGRADED
/// (and send a DEGRADED alert for each) on every clean restart.
#[tokio::test]
async fn a_write_after_shutdown_does_not_degrade_every_workspace() {
    let dir = temp_dir("seam-late");
    let path = dir.join("state.db");
    let service = sqlite_service(&path).await;
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    proxy_calls(&service, "acme", 1, 3).await;
    assert!(service.shutdown(Duration::from_secs(10)).await);

    service
        .complete("acme", &CallOutcome::success(5))
        .expect("complete");
    // A second shutdown waits for that late write behind to finish.
    service.shutdown(Duration::from_secs(10)).await;
    assert!(
        service.engine().store_healthy(),
        "a write after a clean shutdown marked the store unhealthy"
    );
    assert_ne!(
        service.snapshot("acme").expect("snapshot").status,
        QuotaStatus::Degraded
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Before the shutdown, a closed database is a dead disk, and says so.
#[tokio::test]
async fn a_database_closed_under_a_running_service_still_degrades() {
    let dir = temp_dir("seam-dead-disk");
    let path = dir.join("state.db");
    let store = SqliteStore::open(&path).expect("open store");
    let service =
        QuotaService::with_store(test_config(&LIMITS), Arc::new(SystemClock), store.clone())
            .await
            .expect("restore");
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    store.close().await.expect("close");
    service
        .complete("acme", &CallOutcome::success(5))
        .expect("complete");
    wait_for(
        "the failed write behind to mark the store unhealthy",
        || std::future::ready(!service.engine().store_healthy()),
    )
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn redis_shutdown_lands_the_tokens_and_stops_listening() {
    let redis = start_redis(free_port()).await;
    let service = redis_service(redis.port).await;
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    service.spawn_ticker();
    wait_for("the subscription", || async {
        pubsub_clients(&redis).await == 1
    })
    .await;
    proxy_calls(&service, "acme", 50, 7).await;

    let started = Instant::now();
    assert!(service.shutdown(Duration::from_secs(10)).await);
    assert!(started.elapsed() < Duration::from_secs(10));
    // A new instance loads the day from Redis: everything counted is there.
    let fresh = redis_service(redis.port).await;
    let snapshot = fresh.snapshot("acme").expect("snapshot");
    assert_eq!(snapshot.requests_per_day.current, 50);
    assert_eq!(snapshot.tokens_per_day.current, 350);
    // Only the fresh instance still listens.
    wait_for("the old subscription to end", || async {
        pubsub_clients(&redis).await == 1
    })
    .await;
    assert!(fresh.shutdown(Duration::from_secs(10)).await);
    wait_for("no subscription left", || async {
        pubsub_clients(&redis).await == 0
    })
    .await;
}

#[tokio::test]
async fn redis_shutdown_does_not_hang_while_redis_is_gone() {
    let redis = start_redis(free_port()).await;
    let service = redis_service(redis.port).await;
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    service.spawn_ticker();
    drop(redis);
    proxy_calls(&service, "acme", 5, 7).await;
    let started = Instant::now();
    service.shutdown(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// Tests build many services: one dropped without a shutdown must let its
/// tasks go (the ticker and the Redis subscription hold it weakly).
#[tokio::test]
async fn a_dropped_redis_service_stops_listening() {
    let redis = start_redis(free_port()).await;
    let service = redis_service(redis.port).await;
    service.spawn_ticker();
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    proxy_calls(&service, "acme", 3, 7).await;
    wait_for("the subscription", || async {
        pubsub_clients(&redis).await == 1
    })
    .await;
    drop(service);
    wait_for("the dropped service's subscription to end", || async {
        pubsub_clients(&redis).await == 0
    })
    .await;
}

/// A dropped SQLite service releases its database: the writer thread ends
/// and folds the WAL back (nothing keeps the service alive).
#[tokio::test]
async fn a_dropped_sqlite_service_releases_its_database() {
    let dir = temp_dir("seam-drop");
    let path = dir.join("state.db");
    let service = sqlite_service(&path).await;
    service.spawn_ticker();
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    proxy_calls(&service, "acme", 3, 7).await;
    wait_for("the usage written behind", || {
        std::future::ready(stored_usage(&path, "acme") == (3, 21))
    })
    .await;
    drop(service);
    let wal = dir.join("state.db-wal");
    wait_for(
        "the WAL to be folded back once nothing holds the store",
        || std::future::ready(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0),
    )
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A webhook receiver on 127.0.0.1:0 that takes `delay` to answer (a real
/// one over the internet does); the alerts it has accepted.
async fn slow_webhook(delay: Duration) -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    use axum::routing::post;
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let kept = kept.clone();
            async move {
                tokio::time::sleep(delay).await;
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

/// The issue's "background tasks (persistence, alerts, ticker) drained on
/// SIGTERM": an alert already handed over when shutdown begins reaches
/// its receiver before shutdown returns (the process exits right after).
#[tokio::test]
async fn shutdown_delivers_the_alerts_already_queued() {
    let (url, received) = slow_webhook(Duration::from_millis(300)).await;
    let config = test_config(&[
        ("QUOTA_WEBHOOK_URL", url.as_str()),
        ("OPENAI_RATE_LIMIT_PER_MINUTE", "10"),
        ("OPENAI_RATE_LIMIT_PER_DAY", "1000"),
    ]);
    let service = QuotaService::new(config, Arc::new(SystemClock));
    service.start_alerts();
    service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .expect("create");
    for _ in 0..8 {
        service
            .record("acme", &CallOutcome::success(1))
            .await
            .expect("record"); // 8/10: WARNING
    }
    assert_eq!(
        service.snapshot("acme").expect("snapshot").status,
        QuotaStatus::Warning
    );
    assert!(service.shutdown(Duration::from_secs(10)).await);
    let alerts = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(
        alerts.len(),
        1,
        "delivered before shutdown returned: {alerts:?}"
    );
    assert_eq!(alerts[0]["to"], "WARNING", "{alerts:?}");
}
