//! Nothing answered is lost: the real binary proxying to a fake OpenAI under
//! 16 concurrent clients, stopped mid-load. After `kill -9` the restarted
//! counts hold every call answered more than a second before the kill
//! (proxied usage is group-committed at least every second); after SIGTERM
//! they hold every call the upstream answered, exactly.

mod common;

use common::fake_openai::{self, FakeOpenAi, USAGE_TOKENS};
use common::process::{temp_dir, ServerProcess};
use common::{create_workspace, wait_for};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls answered before the stop: enough for several flushes of the
/// write-behind to have happened.
const ANSWERED_BEFORE_THE_STOP: usize = 300;

struct Load {
    /// When each answered call's answer reached its client.
    answered: Arc<Mutex<Vec<Instant>>>,
    sent: Arc<AtomicU64>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(base: &str, key: &str) -> Load {
    let answered = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::new();
    let workers = (0..16)
        .map(|i| {
            let (http, key, base) = (http.clone(), key.to_string(), base.to_string());
            let (answered, sent) = (answered.clone(), sent.clone());
            tokio::spawn(async move {
                loop {
                    sent.fetch_add(1, Ordering::SeqCst);
                    let res = http
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(&key)
                        .json(&json!({
                            "model": "ok",
                            "max_tokens": 50,
                            "messages": [{"role": "user", "content": format!("call from {i}")}],
                        }))
                        .send()
                        .await;
                    let Ok(res) = res else { break };
                    if !res.status().is_success() {
                        break;
                    }
                    if res.bytes().await.is_err() {
                        break;
                    }
                    answered.lock().unwrap().push(Instant::now());
                }
            })
        })
        .collect();
    Load {
        answered,
        sent,
        workers,
    }
}

fn env(fake: &FakeOpenAi) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_BASE_URL", fake.base_url.clone()),
        ("OPENAI_API_KEY", "sk-upstream".into()),
    ]
}

async fn spawn(db: &Path, env: &[(&'static str, String)]) -> ServerProcess {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let log = db.with_extension(format!(
        "{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    ServerProcess::spawn(db, &pairs, Some(&log)).await
}

fn db_path(name: &str) -> PathBuf {
    temp_dir(name).join("quota.db")
}

/// `(requests, tokens)` of the day window after a restart.
async fn day_counts(base: &str, key: &str) -> (u64, u64) {
    let status: Value = reqwest::Client::new()
        .get(format!("{base}/api/quota/status"))
        .bearer_auth(key)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    (
        status["requests_per_day"]["current"].as_u64().unwrap(),
        status["tokens_per_day"]["current"].as_u64().unwrap(),
    )
}

async fn workspace(server: &ServerProcess) -> String {
    create_workspace(
        &reqwest::Client::new(),
        &server.base,
        "load",
        Some(json!({
            "requests_per_minute": 1000000000u64,
            "requests_per_day": 1000000000u64,
            "tokens_per_minute": 1000000000000u64,
            "tokens_per_day": 1000000000000u64,
        })),
    )
    .await
}

/// Waits for the server's exit without blocking the runtime the fake
/// upstream answers on.
async fn reap(mut server: ServerProcess) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || server.child.wait().expect("wait"))
        .await
        .expect("reaper")
}

async fn until_answered(load: &Load, n: usize) {
    wait_for(&format!("{n} proxied calls answered"), || {
        std::future::ready(load.answered.lock().unwrap().len() >= n)
    })
    .await;
}

// Multi-threaded, and the child reaped off the runtime: the fake upstream
// runs in this process and must keep answering while the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_proxy_load_loses_at_most_the_last_second() {
    let fake = fake_openai::start().await;
    let env = env(&fake);
    let db = db_path("proxy-crash");
    let mut server = spawn(&db, &env).await;
    let key = workspace(&server).await;
    let load = start_load(&server.base, &key);
    until_answered(&load, ANSWERED_BEFORE_THE_STOP).await;
    // Let the load run past several flush intervals — until its first
    // answer is over 1.5 s old, so some answers are older than the second
    // the kill may lose — then kill: no shutdown code runs.
    wait_for("the load to run for 1.5 s", || {
        std::future::ready(
            load.answered
                .lock()
                .unwrap()
                .first()
                .is_some_and(|first| first.elapsed() > Duration::from_millis(1500)),
        )
    })
    .await;
    server.child.kill().expect("SIGKILL");
    let killed_at = Instant::now();
    let _ = reap(server).await;
    for w in load.workers {
        let _ = w.await;
    }
    let answered = load.answered.lock().unwrap().clone();
    let older_than_a_second = answered
        .iter()
        .filter(|at| killed_at.duration_since(**at) > Duration::from_secs(1))
        .count() as u64;
    let upstream_answered = fake.count() as u64;
    assert!(
        older_than_a_second > 0,
        "the load ran for over a second before the kill ({} answered)",
        answered.len()
    );

    let restarted = spawn(&db, &env).await;
    let (requests, tokens) = day_counts(&restarted.base, &key).await;
    assert!(
        requests >= older_than_a_second,
        "{requests} counted: every call answered more than a second before the kill \
         ({older_than_a_second}) must be"
    );
    assert!(
        requests <= load.sent.load(Ordering::SeqCst),
        "{requests} counted, more than were sent"
    );
    assert!(
        tokens >= older_than_a_second * USAGE_TOKENS && tokens <= upstream_answered * USAGE_TOKENS,
        "{tokens} tokens counted for {older_than_a_second}..{upstream_answered} answered calls"
    );
    drop(restarted);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_proxy_load_keeps_every_answered_call() {
    let fake = fake_openai::start().await;
    let env = env(&fake);
    let db = db_path("proxy-term");
    let server = spawn(&db, &env).await;
    let key = workspace(&server).await;
    let load = start_load(&server.base, &key);
    until_answered(&load, ANSWERED_BEFORE_THE_STOP).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = reap(server).await;
    assert!(exit.success(), "a clean exit: {exit:?}");
    for w in load.workers {
        let _ = w.await;
    }
    let upstream_answered = fake.count() as u64;

    let restarted = spawn(&db, &env).await;
    let (requests, tokens) = day_counts(&restarted.base, &key).await;
    assert_eq!(
        tokens,
        upstream_answered * USAGE_TOKENS,
        "every call the upstream answered is counted with its tokens"
    );
    assert_eq!(requests, upstream_answered, "and as a request");
    drop(restarted);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_reservation_survives_kill_9() {
    let fake = fake_openai::start().await;
    let env = env(&fake);
    let db = db_path("reserve-crash");
    let mut server = spawn(&db, &env).await;
    let key = workspace(&server).await;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let res = http
            .post(format!("{}/api/quota/reserve", server.base))
            .bearer_auth(&key)
            .json(&json!({"tokens": 100}))
            .send()
            .await
            .expect("reserve");
        assert_eq!(res.status(), reqwest::StatusCode::OK);
    }
    // At once: well inside the write-behind interval, so only a write made
    // before answering is on disk.
    server.child.kill().expect("SIGKILL");
    let _ = reap(server).await;
    let restarted = spawn(&db, &env).await;
    let (requests, _) = day_counts(&restarted.base, &key).await;
    assert_eq!(
        requests, 5,
        "every acknowledged reservation's request is kept"
    );
    drop(restarted);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}
