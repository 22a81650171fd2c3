//! Nothing lost: a restart keeps counts, statuses, keys, history and browser
//! sessions; a `kill -9` under concurrent load loses no acknowledged record.
//!
//! Over 400 lines: each durability claim is tried end to end, against a real
//! SQLite file or the real binary, with the helpers that wait for the
//! background writes (read back from the file) kept here, beside their users.

mod common;

use common::process::{contains, database_bytes, temp_dir, ServerProcess};
use common::ADMIN;
use common::{create_workspace, sign_in, wait_for};
use quota_alert::config::Config;
use quota_alert::engine::{CallOutcome, SystemClock};
use quota_alert::service::QuotaService;
use quota_alert::store::SqliteStore;
use quota_alert::wire::Caller;
use quota_alert::wire::{LimitOverrides, QuotaStatus, UpstreamErrorReport};
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

/// Polls the SQLite file at `path` through a connection of its own until
/// `done` holds: how a test waits for a background write to be committed,
/// rather than sleeping for as long as one usually takes.
async fn wait_for_store(path: &Path, what: &str, done: impl Fn(&rusqlite::Connection) -> bool) {
    let db = rusqlite::Connection::open(path).expect("open the database to read");
    wait_for(what, || std::future::ready(done(&db))).await;
}

/// The single integer `sql` selects.
fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |row| row.get(0)).expect(sql)
}

/// The stored sliding expiry of the session whose cookie value is `id`.
fn stored_expiry(db: &rusqlite::Connection, id: &str) -> Option<u64> {
    db.query_row(
        "SELECT expires_at_ms FROM sessions WHERE digest = ?1",
        [&quota_alert::auth::key_digest(id)[..]],
        |row| row.get::<_, i64>(0),
    )
    .ok()
    .and_then(|ms| u64::try_from(ms).ok())
}

/// Waits until the session whose cookie value is `id` has `expires_at_ms`
/// in the store (its refresh is written in the background).
async fn expiry_stored(path: &Path, id: &str, expires_at_ms: u64) {
    wait_for_store(path, &format!("the stored expiry {expires_at_ms}"), |db| {
        stored_expiry(db, id) == Some(expires_at_ms)
    })
    .await;
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
        // The transition and the upstream block are written in the
        // background: wait until both are in the file before restarting.
        wait_for_store(
            &path,
            "broke's transition and upstream block stored",
            |db| {
                count(
                    db,
                    "SELECT count(*) FROM transitions WHERE workspace_id = 'broke'",
                ) >= 1
                    && count(
                        db,
                        "SELECT count(*) FROM upstream_state WHERE workspace_id = 'broke'",
                    ) >= 1
            },
        )
        .await;
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

/// Records acknowledged before the kill: enough for many group commits to
/// have happened (under half a second of this load on a debug build).
const ACKED_BEFORE_THE_KILL: u64 = 200;

#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_record() {
    let db = temp_db("crash");
    let mut server = spawn_server(&db).await;
    let http = reqwest::Client::new();
    let key = create_workspace(
        &http,
        &server.base,
        "load",
        Some(json!({"requests_per_minute": 1000000000, "requests_per_day": 1000000000})),
    )
    .await;

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
    // Killed mid-load: once enough records were acknowledged that the
    // writer has group-committed many batches, with 16 more in flight.
    wait_for(
        &format!("{ACKED_BEFORE_THE_KILL} records acknowledged"),
        || std::future::ready(acked.load(Ordering::SeqCst) >= ACKED_BEFORE_THE_KILL),
    )
    .await;
    server.child.kill().expect("SIGKILL"); // SIGKILL on Unix: no shutdown code runs.
    let _ = server.child.wait();
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.load(Ordering::SeqCst);
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        acked >= ACKED_BEFORE_THE_KILL,
        "the load actually ran ({acked} acknowledged)"
    );

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
    let key = create_workspace(&http, &server.base, "bye", None).await;
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

/// Shutdown is the wait: usage written behind (the proxy's admissions and
/// completions, a transition) is in the file the moment `shutdown` returns,
/// with no polling, and the store is closed after it.
#[tokio::test]
async fn shutdown_lands_every_write_behind_then_closes_the_store() {
    let path = temp_db("drain");
    // Each call in a second of its own: 60 separate rows for the one flush
    // task to write, one after the other, after this test stops yielding.
    let clock = Arc::new(quota_alert::engine::ManualClock::new(1_700_000_000_000));
    let store = SqliteStore::open(&path).expect("open store");
    let service = QuotaService::with_store(config(), clock.clone(), store)
        .await
        .expect("restore");
    service
        .create_workspace("busy", &LimitOverrides::default())
        .await
        .unwrap();
    let calls = 60u64;
    for _ in 0..calls {
        let admission = service.try_admit("busy").await.unwrap();
        assert!(admission.check.allowed);
        service.complete("busy", &CallOutcome::success(7)).unwrap();
        clock.advance_s(1);
    }
    assert!(
        service.shutdown(Duration::from_secs(10)).await,
        "everything drained within the limit"
    );
    assert!(!service.store_ready().await, "the store is closed");
    let db = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT coalesce(sum(requests), 0) FROM usage WHERE workspace_id = 'busy'"
        ),
        calls as i64,
        "every admitted request is in the file"
    );
    assert_eq!(
        count(
            &db,
            "SELECT coalesce(sum(tokens), 0) FROM usage WHERE workspace_id = 'busy'"
        ),
        (calls * 7) as i64,
        "every completed call's tokens are in the file"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The status `GET {path}` answers with only the session cookie.
async fn status_with_cookie(http: &reqwest::Client, base: &str, path: &str, cookie: &str) -> u16 {
    http.get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn browser_sessions_survive_a_restart_until_signed_out_or_revoked() {
    let db = temp_db("sessions");
    let server = spawn_server(&db).await;
    let http = reqwest::Client::new();
    let key = create_workspace(&http, &server.base, "web", None).await;
    let kept = sign_in(&http, &server.base, &key).await;
    let signed_out = sign_in(&http, &server.base, &key).await;
    let admin = sign_in(&http, &server.base, ADMIN).await;
    let status = "/api/quota/status";
    let admin_status = "/api/quota/status?workspace_id=web";
    assert_eq!(
        status_with_cookie(&http, &server.base, status, &kept).await,
        200
    );
    let res = http
        .delete(format!("{}/api/session", server.base))
        .header("cookie", &signed_out)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);

    // SIGKILL: a sign-in answered is a session stored, with no shutdown help.
    drop(server);
    let server = spawn_server(&db).await;
    assert_eq!(
        status_with_cookie(&http, &server.base, status, &kept).await,
        200,
        "the session survived the restart"
    );
    assert_eq!(
        status_with_cookie(&http, &server.base, admin_status, &admin).await,
        200,
        "admin sessions too"
    );
    assert_eq!(
        status_with_cookie(&http, &server.base, status, &signed_out).await,
        401,
        "signing out is for good"
    );

    // Only digests are stored: no session id is in any database file.
    let bytes = database_bytes(&db);
    for cookie in [&kept, &signed_out, &admin] {
        let id = cookie.trim_start_matches("qa_session=");
        assert_eq!(id.len(), 64, "{cookie}");
        assert!(!contains(&bytes, id.as_bytes()), "a session id is on disk");
    }
    let kept_id = kept.trim_start_matches("qa_session=");
    assert!(
        contains(&bytes, &quota_alert::auth::key_digest(kept_id)),
        "its digest is, so the search looked in the right files"
    );

    // Revoking the workspace's keys ends its sessions at once, and for good.
    let res = http
        .post(format!("{}/api/admin/workspaces/web/revoke", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    assert_eq!(
        status_with_cookie(&http, &server.base, status, &kept).await,
        401
    );
    drop(server);
    let server = spawn_server(&db).await;
    assert_eq!(
        status_with_cookie(&http, &server.base, status, &kept).await,
        401,
        "a revoked workspace's session stays ended after a restart"
    );
    assert_eq!(
        status_with_cookie(&http, &server.base, admin_status, &admin).await,
        200,
        "revoking a workspace leaves the admin's session alone"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[tokio::test]
async fn a_sign_in_the_store_cannot_keep_is_refused_without_a_cookie() {
    let path = temp_db("session-store-down");
    let store = SqliteStore::open(&path).expect("open store");
    let service = QuotaService::with_store(config(), Arc::new(SystemClock), store.clone())
        .await
        .expect("restore");
    let (key, _) = service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .unwrap();
    let server = common::serve(service).await;
    let signed_in = sign_in(&server.http, &server.base, &key).await;

    // Every later write fails, as on a dead disk.
    store.close().await.unwrap();
    let res = server
        .http
        .post(server.url("/api/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("set-cookie").is_none(), "no cookie");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable");

    // Signing out cannot be made durable either: it says so and keeps the
    // cookie for a retry, but the session already stopped working here.
    let res = server
        .http
        .delete(server.url("/api/session"))
        .header("cookie", &signed_in)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("set-cookie").is_none());
    assert_eq!(
        status_with_cookie(&server.http, &server.base, "/api/quota/status", &signed_in).await,
        401
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_used_session_has_its_stored_expiry_pushed_forward() {
    use quota_alert::engine::ManualClock;
    const DAY_MS: u64 = 86_400_000;
    const T0: u64 = 1_800_000_000_000;
    let path = temp_db("session-refresh");
    let clock = Arc::new(ManualClock::new(T0));
    let open = |clock: Arc<ManualClock>| {
        let path = path.clone();
        async move {
            let store = SqliteStore::open(&path).expect("open store");
            QuotaService::with_store(config(), clock, store)
                .await
                .expect("restore")
        }
    };
    let service = open(clock.clone()).await;
    let (key, _) = service
        .create_workspace("acme", &LimitOverrides::default())
        .await
        .unwrap();
    let session = service
        .open_session(&key)
        .await
        .unwrap()
        .expect("signed in");
    let acme = Some(Caller::Workspace("acme".into()));

    // Used on day 5: the expiry moves from day 7 to day 12, written in the
    // background.
    clock.set_ms(T0 + 5 * DAY_MS);
    assert_eq!(service.session_caller(&session.id), acme);
    expiry_stored(&path, &session.id, T0 + 12 * DAY_MS).await;
    drop(service);

    // Restarted on day 10, past the first expiry: still signed in. This use
    // is five days after the last refresh, so it moves the expiry to day 17.
    clock.set_ms(T0 + 10 * DAY_MS);
    let service = open(clock.clone()).await;
    assert_eq!(service.session_caller(&session.id), acme);
    expiry_stored(&path, &session.id, T0 + 17 * DAY_MS).await;
    drop(service);

    // Restarted on day 16: the day-10 refresh was stored (day 12 would be over).
    clock.set_ms(T0 + 16 * DAY_MS);
    let service = open(clock.clone()).await;
    assert_eq!(service.session_caller(&session.id), acme);
    expiry_stored(&path, &session.id, T0 + 23 * DAY_MS).await;
    drop(service);

    // Unused for longer than its lifetime (a week past day 16): gone, and
    // not restored.
    clock.set_ms(T0 + 24 * DAY_MS);
    let service = open(clock.clone()).await;
    assert_eq!(service.session_caller(&session.id), None, "expired");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The schema of the previous release (version 2: migrations 1 and 2 as they
/// shipped), so an upgrade is tried on the file that release left behind.
const PREVIOUS_RELEASE_SCHEMA: &str = r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
    CREATE TABLE workspaces (
        id                  TEXT PRIMARY KEY NOT NULL,
        key_digest          BLOB NOT NULL CHECK (length(key_digest) = 32),
        requests_per_minute INTEGER NOT NULL CHECK (requests_per_minute >= 0),
        requests_per_day    INTEGER NOT NULL CHECK (requests_per_day >= 0),
        tokens_per_minute   INTEGER NOT NULL CHECK (tokens_per_minute >= 0),
        tokens_per_day      INTEGER NOT NULL CHECK (tokens_per_day >= 0),
        created_at_ms       INTEGER NOT NULL CHECK (created_at_ms >= 0)
    ) STRICT;
    CREATE TABLE usage (
        workspace_id TEXT NOT NULL,
        second       INTEGER NOT NULL CHECK (second >= 0),
        requests     INTEGER NOT NULL CHECK (requests >= 0),
        tokens       INTEGER NOT NULL CHECK (tokens >= 0),
        PRIMARY KEY (workspace_id, second)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX usage_by_second ON usage (second);
    CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY, workspace_id TEXT NOT NULL, from_status TEXT NOT NULL,
        to_status TEXT NOT NULL, at_ms INTEGER NOT NULL CHECK (at_ms >= 0), reason TEXT NOT NULL
    ) STRICT;
    CREATE INDEX transitions_by_workspace ON transitions (workspace_id, seq);
    CREATE INDEX transitions_by_time ON transitions (at_ms);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL CHECK (at_ms >= 0),
        action TEXT NOT NULL, workspace_id TEXT, detail TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_time ON audit (at_ms);
    CREATE TABLE upstream_state (workspace_id TEXT PRIMARY KEY NOT NULL, state TEXT NOT NULL) STRICT;
    CREATE TABLE sessions (
        digest        BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        workspace_id  TEXT,
        expires_at_ms INTEGER NOT NULL CHECK (expires_at_ms >= 0)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX sessions_by_workspace ON sessions (workspace_id);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);
    PRAGMA user_version = 2;
"#;

#[tokio::test]
async fn a_database_of_the_previous_release_upgrades_keeping_workspaces_keys_usage_and_sessions() {
    use quota_alert::auth::key_digest;
    let path = temp_db("upgrade-v2");
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let key = "qa_key-of-the-previous-release-0123456789";
    let (workspace_session, admin_session) = ("old-workspace-session", "old-admin-session");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(PREVIOUS_RELEASE_SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO workspaces VALUES ('legacy', ?1, 100, 10000, 0, 0, ?2)",
            rusqlite::params![&key_digest(key)[..], (now_ms - 86_400_000) as i64],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO usage VALUES ('legacy', ?1, 3, 30)",
            [(now_ms / 1000 - 5) as i64],
        )
        .unwrap();
        // Sessions as that release wrote them: a workspace's, and the admin's.
        for (id, workspace) in [(workspace_session, Some("legacy")), (admin_session, None)] {
            conn.execute(
                "INSERT INTO sessions VALUES (?1, ?2, ?3)",
                rusqlite::params![
                    &key_digest(id)[..],
                    workspace,
                    (now_ms + 3 * 86_400_000) as i64
                ],
            )
            .unwrap();
        }
    }

    let service = service_on(&path).await;
    let server = common::serve(service).await;
    let (status, body) = server.get("/api/quota/status", Some(key)).await;
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "the key still works: {body}"
    );
    assert_eq!(body["workspace_id"], "legacy");
    assert_eq!(body["requests_per_day"]["current"], 3, "usage kept: {body}");
    assert_eq!(body["tokens_per_day"]["current"], 30, "{body}");
    let cookie = |id: &str| format!("qa_session={id}");
    assert_eq!(
        status_with_cookie(
            &server.http,
            &server.base,
            "/api/quota/status",
            &cookie(workspace_session)
        )
        .await,
        200,
        "a workspace session of the previous release survives the upgrade"
    );
    // Admin sessions carried no admin key binding: they end (documented).
    assert_eq!(
        status_with_cookie(
            &server.http,
            &server.base,
            "/api/admin/sessions",
            &cookie(admin_session)
        )
        .await,
        401
    );
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 8, "upgraded to the latest schema");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
