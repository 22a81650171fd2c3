//! Nothing lost: a restart keeps counts, statuses, keys and history; a
//! `kill -9` under concurrent load loses no acknowledged record.

mod common;

use common::process::{temp_dir, ServerProcess};
use common::ADMIN;
use quota_alert::config::Config;
use quota_alert::engine::{CallOutcome, SystemClock};
use quota_alert::model::{LimitOverrides, QuotaStatus, UpstreamErrorReport};
use quota_alert::service::{Caller, QuotaService};
use quota_alert::store::SqliteStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn temp_db(name: &str) -> PathBuf {
    temp_dir(name).join("state.db")
}

fn config() -> Config {
    Config::from_sources(None, Path::new("none"), |name| match name {
        "QUOTA_ADMIN_RESET_KEY" => Some(ADMIN.into()),
        "OPENAI_RATE_LIMIT_PER_MINUTE" => Some("100".into()),
        _ => None,
    })
    .unwrap()
}

async fn service_on(path: &Path) -> QuotaService {
    let store = SqliteStore::open(path).expect("open store");
    QuotaService::with_store(config(), Arc::new(SystemClock), store)
        .await
        .expect("restore")
}

#[tokio::test]
async fn a_restart_keeps_workspaces_keys_counts_statuses_and_history() {
    let path = temp_db("restart");
    let (key, quota_key) = {
        let service = service_on(&path).await;
        let (key, _) = service
            .create_workspace("acme", &LimitOverrides::default())
            .await
            .unwrap();
        let (quota_key, _) = service
            .create_workspace("broke", &LimitOverrides::default())
            .await
            .unwrap();
        for _ in 0..5 {
            service
                .record("acme", &CallOutcome::success(40))
                .await
                .unwrap();
        }
        let insufficient = UpstreamErrorReport {
            http_status: Some(429),
            error_type: Some("insufficient_quota".into()),
            code: Some("insufficient_quota".into()),
            message: None,
        };
        service
            .record("broke", &CallOutcome::failure(insufficient, None))
            .await
            .unwrap();
        assert_eq!(
            service.snapshot("broke").unwrap().status,
            QuotaStatus::QuotaExceeded
        );
        // Background writes (transitions, upstream state) are group-committed
        // within milliseconds.
        tokio::time::sleep(Duration::from_millis(300)).await;
        (key, quota_key)
    };

    let restarted = service_on(&path).await;
    assert_eq!(
        restarted.authenticate(&key),
        Some(Caller::Workspace("acme".into())),
        "keys survive (as digests)"
    );
    assert_eq!(
        restarted.authenticate(&quota_key),
        Some(Caller::Workspace("broke".into()))
    );
    let acme = restarted.snapshot("acme").unwrap();
    assert_eq!(acme.requests_per_minute.current, 5);
    assert_eq!(acme.tokens_per_day.current, 200);
    let broke = restarted.snapshot("broke").unwrap();
    assert_eq!(
        broke.status,
        QuotaStatus::QuotaExceeded,
        "an upstream block is as before"
    );
    let history = restarted.engine().history("broke").unwrap();
    assert_eq!(
        history.last().map(|t| t.to),
        Some(QuotaStatus::QuotaExceeded)
    );

    // A rotated key survives a restart; the old one stays dead.
    let rotated = restarted.rotate_key("acme").await.unwrap();
    drop(restarted);
    let restarted = service_on(&path).await;
    assert_eq!(restarted.authenticate(&key), None);
    assert_eq!(
        restarted.authenticate(&rotated),
        Some(Caller::Workspace("acme".into()))
    );

    // A reset survives a restart too: old usage does not come back.
    restarted.reset("acme").await.unwrap();
    drop(restarted);
    let again = service_on(&path).await;
    assert_eq!(again.snapshot("acme").unwrap().requests_per_day.current, 0);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn an_unwritable_or_corrupt_database_stops_with_the_file_named() {
    let dir = temp_db("bad").parent().unwrap().to_path_buf();
    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, vec![0x42u8; 8192]).unwrap();
    let Err(err) = SqliteStore::open(&garbage) else {
        panic!("a garbage file was accepted");
    };
    assert!(err.to_string().contains(garbage.to_str().unwrap()), "{err}");

    // The binary exits with the message, it does not panic or start.
    let output = Command::new(env!("CARGO_BIN_EXE_quota-alert"))
        .env(
            "QUOTA_DATABASE_URL",
            format!("sqlite://{}", garbage.display()),
        )
        .env("QUOTA_ADMIN_RESET_KEY", ADMIN)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("LEPTOS_OUTPUT_NAME", "quota-alert")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("garbage.db"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

async fn spawn_server(db: &Path) -> ServerProcess {
    ServerProcess::spawn(db, &[], None).await
}

#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_record() {
    let db = temp_db("crash");
    let mut server = spawn_server(&db).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/admin/workspaces", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "load", "limits": {"requests_per_minute": 1000000000, "requests_per_day": 1000000000}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();

    let acked = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, key, base) = (http.clone(), key.clone(), server.base.clone());
            let (acked, sent) = (acked.clone(), sent.clone());
            tokio::spawn(async move {
                loop {
                    sent.fetch_add(1, Ordering::SeqCst);
                    let res = http
                        .post(format!("{base}/api/quota/record"))
                        .bearer_auth(&key)
                        .json(&json!({"success": true, "tokens_used": 3}))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().is_success() => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().expect("SIGKILL"); // SIGKILL on Unix: no shutdown code runs.
    let _ = server.child.wait();
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.load(Ordering::SeqCst);
    let sent = sent.load(Ordering::SeqCst);
    assert!(acked > 50, "the load actually ran ({acked} acknowledged)");

    let restarted = spawn_server(&db).await;
    let status: Value = http
        .get(format!("{}/api/quota/status", restarted.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counted = status["requests_per_day"]["current"].as_u64().unwrap();
    assert!(counted >= acked, "{counted} counted < {acked} acknowledged");
    assert!(counted <= sent, "{counted} counted > {sent} sent");
    assert_eq!(
        status["tokens_per_day"]["current"].as_u64().unwrap(),
        counted * 3
    );
    drop(restarted);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[tokio::test]
async fn sigterm_drains_and_closes_websockets_with_going_away() {
    use futures_util::StreamExt;
    let db = temp_db("shutdown");
    let mut server = spawn_server(&db).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/admin/workspaces", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "bye"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap();
    let url = format!(
        "{}/api/quota/ws?token={key}",
        server.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.next().await.unwrap().unwrap(); // quota_initial

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(code, Some(1001), "going away");
    let exit = tokio::task::spawn_blocking(move || server.child.wait().map(|s| s.code()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit, Some(0), "a clean exit");
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}
