//! The SQLite store: files created, data surviving a reopen, group commit under
//! concurrency, round trips, pruning, and clear refusals of bad files.

use quota_alert::store::{
    path_from_url, PruneStats, SqliteStore, StoreError, StoredAudit, StoredSession,
    StoredTransition, StoredWorkspace, UsageRow, DEFAULT_DATABASE_URL,
};
use quota_alert::wire::Limits;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "quota-alert-store-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const T0: u64 = 1_800_000_000_000;

fn limits(n: u64) -> Limits {
    Limits {
        requests_per_minute: n,
        requests_per_day: n * 100,
        tokens_per_minute: n * 1000,
        tokens_per_day: u64::MAX / 4,
    }
}

/// Pseudo-random bytes without a dependency.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect()
}

#[tokio::test]
async fn open_creates_the_directory_and_the_file() {
    let tmp = TempDir::new("create");
    let path = tmp.path("nested/deeper/quota.db");
    assert!(!path.parent().unwrap().exists());
    let store = SqliteStore::open(&path).expect("open");
    assert!(path.is_file(), "{} should exist", path.display());
    assert_eq!(store.path(), path);
    store.ping().await.expect("ping");
    store.close().await.expect("close");
    // Reopening an existing, migrated file works too.
    let again = SqliteStore::open(&path).expect("reopen");
    again.ping().await.expect("ping after reopen");
}

#[tokio::test]
async fn usage_survives_a_reopen_with_exact_per_second_sums() {
    let tmp = TempDir::new("reopen");
    let path = tmp.path("quota.db");
    let store = SqliteStore::open(&path).unwrap();
    // (workspace, at_ms, requests, tokens)
    let records = [
        ("acme", T0, 1, 10),
        ("acme", T0 + 999, 1, 5), // same second as T0
        ("acme", T0 + 1000, 2, 0),
        ("acme", T0 + 61_500, 0, 7),
        ("beta", T0 + 10, 1, 100),
        ("beta", T0 + 86_400_000, 3, 300),
        ("beta", T0 + 86_400_500, 0, 0), // nothing to count: not stored
    ];
    for (ws, at, r, t) in records {
        store.append_usage(ws, at, r, t).await.unwrap();
    }
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    let row = |ws: &str, ms: u64, requests, tokens| UsageRow {
        workspace_id: ws.to_string(),
        second: ms / 1000,
        requests,
        tokens,
    };
    let expected = vec![
        row("acme", T0, 2, 15),
        row("acme", T0 + 1000, 2, 0),
        row("acme", T0 + 61_000, 0, 7),
        row("beta", T0, 1, 100),
        row("beta", T0 + 86_400_000, 3, 300),
    ];
    assert_eq!(store.load_usage(0).await.unwrap(), expected);
    // `since` includes the second that holds it.
    assert_eq!(
        store.load_usage(T0 + 1500).await.unwrap(),
        vec![
            row("acme", T0 + 1000, 2, 0),
            row("acme", T0 + 61_000, 0, 7),
            row("beta", T0 + 86_400_000, 3, 300),
        ]
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_acknowledged_and_exact() {
    const TASKS: u64 = 50;
    const PER_TASK: u64 = 100;
    let tmp = TempDir::new("concurrent");
    let path = tmp.path("quota.db");
    let store = SqliteStore::open(&path).unwrap();

    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let ws = format!("ws-{}", task % 5);
                for i in 0..PER_TASK {
                    // Many tasks hit the same rows (same workspace, same second).
                    store
                        .append_usage(&ws, T0 + i * 50, 1, task + i)
                        .await
                        .expect("append acknowledged");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();
    let total = TASKS * PER_TASK;
    println!(
        "group commit: {total} acknowledged appends in {elapsed:?} ({:.0} appends/s)",
        total as f64 / elapsed.as_secs_f64()
    );

    // For comparison: the same number of appends one at a time (one fsync each).
    let serial = 200;
    let started = Instant::now();
    for i in 0..serial {
        store.append_usage("serial", T0 + i, 1, 1).await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "one at a time: {serial} appends in {elapsed:?} ({:.0} appends/s)",
        serial as f64 / elapsed.as_secs_f64()
    );
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    let rows = store.load_usage(0).await.unwrap();
    let mut requests: BTreeMap<String, u64> = BTreeMap::new();
    let mut tokens_total = 0;
    for row in rows.iter().filter(|r| r.workspace_id != "serial") {
        *requests.entry(row.workspace_id.clone()).or_default() += row.requests;
        tokens_total += row.tokens;
    }
    assert_eq!(requests.values().sum::<u64>(), total);
    for n in 0..5 {
        assert_eq!(requests[&format!("ws-{n}")], total / 5);
    }
    let expected_tokens: u64 = (0..TASKS)
        .flat_map(|t| (0..PER_TASK).map(move |i| t + i))
        .sum();
    assert_eq!(tokens_total, expected_tokens);
    // 100 appends 50 ms apart span 5 seconds: 5 rows per workspace.
    assert_eq!(rows.iter().filter(|r| r.workspace_id == "ws-0").count(), 5);
    assert_eq!(
        rows.iter()
            .filter(|r| r.workspace_id == "serial")
            .map(|r| r.requests)
            .sum::<u64>(),
        serial
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn workspaces_transitions_audit_and_upstream_state_round_trip() {
    let tmp = TempDir::new("roundtrip");
    let path = tmp.path("quota.db");
    let store = SqliteStore::open(&path).unwrap();

    store
        .save_workspace("acme", [1; 32], limits(10), T0)
        .await
        .unwrap();
    store
        .save_workspace("beta", [2; 32], limits(20), T0 + 1)
        .await
        .unwrap();
    store
        .save_workspace("gone", [3; 32], limits(30), T0 + 2)
        .await
        .unwrap();
    assert!(store.update_workspace_key("acme", [9; 32]).await.unwrap());
    assert!(!store.update_workspace_key("nobody", [9; 32]).await.unwrap());
    // Saving again replaces (new limits).
    store
        .save_workspace("beta", [2; 32], limits(21), T0 + 1)
        .await
        .unwrap();

    for (i, (from, to)) in [
        ("NORMAL", "WARNING"),
        ("WARNING", "RATE_LIMITED"),
        ("RATE_LIMITED", "NORMAL"),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .append_transition("acme", from, to, T0 + i as u64, &format!("reason {i}"))
            .await
            .unwrap();
    }
    store
        .append_transition("gone", "NORMAL", "DEGRADED", T0, "x")
        .await
        .unwrap();
    store
        .append_audit("create_workspace", Some("acme"), "{\"by\":\"admin\"}", T0)
        .await
        .unwrap();
    store
        .append_audit("reset_all", None, "", T0 + 5)
        .await
        .unwrap();
    store
        .save_upstream_state("acme", r#"{"rate_limited_until_ms":1}"#)
        .await
        .unwrap();
    store
        .save_upstream_state("acme", r#"{"rate_limited_until_ms":2}"#)
        .await
        .unwrap();
    store.save_upstream_state("gone", "{}").await.unwrap();
    store.append_usage("gone", T0, 1, 1).await.unwrap();
    assert!(store.delete_workspace("gone").await.unwrap());
    assert!(!store.delete_workspace("gone").await.unwrap());
    store.close().await.unwrap();

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.load_workspaces().await.unwrap(),
        vec![
            StoredWorkspace {
                id: "acme".into(),
                key_digest: [9; 32],
                limits: limits(10),
                created_at_ms: T0,
                settings: None,
            },
            StoredWorkspace {
                id: "beta".into(),
                key_digest: [2; 32],
                limits: limits(21),
                created_at_ms: T0 + 1,
                settings: None,
            },
        ]
    );
    let transitions = store.load_transitions("acme", 10).await.unwrap();
    assert_eq!(transitions.len(), 3);
    assert_eq!(
        transitions[2],
        StoredTransition {
            workspace_id: "acme".into(),
            from: "RATE_LIMITED".into(),
            to: "NORMAL".into(),
            at_ms: T0 + 2,
            reason: "reason 2".into(),
        }
    );
    // The last two, still oldest first.
    let last_two = store.load_transitions("acme", 2).await.unwrap();
    assert_eq!(last_two, transitions[1..].to_vec());
    assert!(store.load_transitions("gone", 10).await.unwrap().is_empty());
    assert_eq!(
        store.load_audit(10).await.unwrap(),
        vec![
            StoredAudit {
                at_ms: T0,
                action: "create_workspace".into(),
                workspace_id: Some("acme".into()),
                detail: "{\"by\":\"admin\"}".into(),
            },
            StoredAudit {
                at_ms: T0 + 5,
                action: "reset_all".into(),
                workspace_id: None,
                detail: String::new(),
            },
        ]
    );
    assert_eq!(store.load_audit(1).await.unwrap().len(), 1);
    assert_eq!(
        store.load_upstream_states().await.unwrap(),
        vec![(
            "acme".to_string(),
            r#"{"rate_limited_until_ms":2}"#.to_string()
        )]
    );
    assert!(store.load_usage(0).await.unwrap().is_empty());
    store.close().await.unwrap();
}

#[tokio::test]
async fn per_day_rows_before_the_cutoff_day_are_pruned() {
    use quota_alert::store::{DetailRow, Dimension};
    let tmp = TempDir::new("prune-days");
    let store = SqliteStore::open(&tmp.path("quota.db")).unwrap();
    let row = |day: &str| DetailRow {
        workspace_id: "acme".into(),
        day: day.into(),
        dimension: Dimension::User,
        name: "alice".into(),
        requests: 1,
        tokens: 2,
        nano_usd: 3,
    };
    let days = ["2024-12-31", "2025-01-01", "2025-06-30"];
    store
        .write_behind_batch(
            Vec::new(),
            Vec::new(),
            days.iter()
                .map(|d| ("acme".into(), d.to_string(), 5))
                .collect(),
            days.iter().map(|d| row(d)).collect(),
        )
        .await
        .unwrap();
    assert_eq!(store.prune_days("2025-01-01").await.unwrap(), 2);
    let kept: Vec<String> = store
        .load_detail(None, "2000-01-01", "2100-01-01")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.day)
        .collect();
    assert_eq!(kept, ["2025-01-01", "2025-06-30"]);
    let spend: Vec<String> = store
        .load_spend()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, day, _)| day)
        .collect();
    assert_eq!(spend, ["2025-01-01", "2025-06-30"]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn prune_deletes_exactly_the_old_rows() {
    let tmp = TempDir::new("prune");
    let store = SqliteStore::open(&tmp.path("quota.db")).unwrap();
    let day = 86_400_000;
    let now = T0 + 2 * day;
    // Usage: the cutoff is now - day = T0 + day. The second holding the cutoff
    // (and everything after it) stays.
    for at in [
        T0,
        T0 + day - 1000,
        T0 + day - 1,
        T0 + day,
        T0 + day + 500,
        now,
    ] {
        store.append_usage("acme", at, 1, 0).await.unwrap();
    }
    // History: cutoff now - 7 days would keep all; use a 1.5 day horizon.
    let history_horizon = day + day / 2;
    let history_cutoff = now - history_horizon;
    for at in [T0, history_cutoff - 1, history_cutoff, now] {
        store
            .append_transition("acme", "NORMAL", "WARNING", at, "r")
            .await
            .unwrap();
        store.append_audit("act", None, "d", at).await.unwrap();
    }

    let stats = store.prune(now, day, history_horizon).await.unwrap();
    assert_eq!(
        stats,
        PruneStats {
            usage_rows: 2, // T0 and T0+day-1000 (T0+day-1 shares its second)
            transitions: 2,
            audit_entries: 2,
            sessions: 0,
        }
    );
    let seconds: Vec<u64> = store
        .load_usage(0)
        .await
        .unwrap()
        .iter()
        .map(|r| r.second)
        .collect();
    assert_eq!(seconds, vec![(T0 + day) / 1000, now / 1000]);
    let kept: Vec<u64> = store
        .load_transitions("acme", 100)
        .await
        .unwrap()
        .iter()
        .map(|t| t.at_ms)
        .collect();
    assert_eq!(kept, vec![history_cutoff, now]);
    let kept: Vec<u64> = store
        .load_audit(100)
        .await
        .unwrap()
        .iter()
        .map(|a| a.at_ms)
        .collect();
    assert_eq!(kept, vec![history_cutoff, now]);
    // Pruning again finds nothing.
    assert_eq!(
        store.prune(now, day, history_horizon).await.unwrap(),
        PruneStats::default()
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn sessions_round_trip_and_end_by_digest_key_change_or_expiry() {
    let tmp = TempDir::new("sessions");
    let path = tmp.path("quota.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .save_workspace("acme", [1; 32], limits(5), T0)
        .await
        .unwrap();
    let day = 86_400_000;
    let (mine, other, admin, old) = ([10; 32], [11; 32], [12; 32], [13; 32]);
    let session = |digest: [u8; 32], workspace: Option<&str>, expires: u64| StoredSession {
        digest,
        workspace_id: workspace.map(str::to_string),
        created_at_ms: T0,
        expires_at_ms: expires,
        absolute_expires_at_ms: T0 + 30 * day,
        admin_key_binding: workspace.is_none().then_some([42; 32]),
    };
    store
        .save_session(&session(mine, Some("acme"), T0 + 7 * day))
        .await
        .unwrap();
    store
        .save_session(&session(other, Some("acme"), T0 + 7 * day))
        .await
        .unwrap();
    store
        .save_session(&session(admin, None, T0 + 7 * day))
        .await
        .unwrap();
    store
        .save_session(&session(old, Some("beta"), T0 + day))
        .await
        .unwrap();

    // Extending moves forward only, and never brings a deleted one back.
    assert!(store.extend_session(mine, T0 + 8 * day).await.unwrap());
    assert!(!store.extend_session(mine, T0 + 2 * day).await.unwrap());
    assert!(store.delete_session(other).await.unwrap());
    assert!(!store.delete_session(other).await.unwrap());
    assert!(!store.extend_session(other, T0 + 9 * day).await.unwrap());

    // Reopened: what is there is what was acknowledged; expired ones are not loaded.
    store.close().await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let mut loaded = store.load_sessions(T0 + day).await.unwrap();
    loaded.sort_by_key(|s| s.digest);
    assert_eq!(
        loaded,
        vec![
            session(mine, Some("acme"), T0 + 8 * day),
            session(admin, None, T0 + 7 * day),
        ]
    );

    // A key change ends the workspace's sessions in the same write.
    store.update_workspace_key("acme", [2; 32]).await.unwrap();
    let mut left: Vec<[u8; 32]> = store
        .load_sessions(T0)
        .await
        .unwrap()
        .iter()
        .map(|s| s.digest)
        .collect();
    left.sort_unstable();
    assert_eq!(left, vec![admin, old]);

    // Pruning deletes the expired ones.
    let stats = store.prune(T0 + day, day, 30 * day).await.unwrap();
    assert_eq!(stats.sessions, 1);
    assert_eq!(store.load_sessions(0).await.unwrap().len(), 1);

    // Past its absolute end a session is neither loaded nor kept, however
    // late its sliding expiry.
    let mut used = session(other, Some("acme"), T0 + 40 * day);
    used.absolute_expires_at_ms = T0 + 2 * day;
    store.save_session(&used).await.unwrap();
    assert_eq!(store.load_sessions(T0 + day).await.unwrap().len(), 2);
    assert_eq!(store.load_sessions(T0 + 2 * day).await.unwrap().len(), 1);
    let stats = store.prune(T0 + 2 * day, day, 30 * day).await.unwrap();
    assert_eq!(stats.sessions, 1);
    assert_eq!(store.delete_sessions(vec![admin, other]).await.unwrap(), 1);
    assert!(store.load_sessions(0).await.unwrap().is_empty());
    store.close().await.unwrap();
}

#[test]
fn a_garbage_file_is_refused_with_its_path() {
    let tmp = TempDir::new("garbage");
    let path = tmp.path("quota.db");
    std::fs::write(&path, noise(8192, 42)).unwrap();
    let err = SqliteStore::open(&path).expect_err("garbage must be refused");
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a database"), "{msg}");
    // The file is left as it was.
    assert_eq!(std::fs::read(&path).unwrap(), noise(8192, 42));
}

#[tokio::test]
async fn a_damaged_database_is_refused_with_its_path() {
    let tmp = TempDir::new("damaged");
    let path = tmp.path("quota.db");
    let store = SqliteStore::open(&path).unwrap();
    for i in 0..3000 {
        store
            .append_usage(&format!("workspace-{}", i % 7), T0 + i * 1000, 1, i)
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    // Keep the header (first page), scribble over the rest.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 4 * 4096, "{} bytes", bytes.len());
    let len = bytes.len();
    bytes[4096..len].copy_from_slice(&noise(len - 4096, 7));
    std::fs::write(&path, &bytes).unwrap();

    let err = SqliteStore::open(&path).expect_err("damage must be refused");
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn an_unwritable_location_is_refused_with_its_path() {
    let tmp = TempDir::new("unwritable");
    let file = tmp.path("a-regular-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let path = file.join("quota.db");
    let err = SqliteStore::open(&path).expect_err("must fail");
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");

    // Deeper: the missing directory would have to be created inside a file.
    let path = file.join("sub/quota.db");
    let msg = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn a_newer_schema_is_refused() {
    let tmp = TempDir::new("newer");
    let path = tmp.path("quota.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let msg = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("999"), "{msg}");
}

#[tokio::test]
async fn bad_values_on_disk_are_errors_not_panics() {
    let tmp = TempDir::new("badvalues");
    let path = tmp.path("quota.db");
    let store = SqliteStore::open(&path).unwrap();
    {
        // Someone edits the file by hand, bypassing the CHECK constraints.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "ignore_check_constraints", true)
            .unwrap();
        conn.execute(
            "INSERT INTO usage (workspace_id, second, requests, tokens) VALUES ('x', 1, -5, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO workspaces VALUES ('short', x'0102', 1, 1, 1, 1, 0, NULL)",
            [],
        )
        .unwrap();
    }
    let err = store.load_usage(0).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    let err = store.load_workspaces().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    println!("{err}");
    store.close().await.unwrap();
}

#[tokio::test]
async fn writes_after_close_fail_cleanly() {
    let tmp = TempDir::new("closed");
    let path = tmp.path("quota.db");
    let store = SqliteStore::open(&path).unwrap();
    let other = store.clone();
    store.append_usage("acme", T0, 1, 1).await.unwrap();
    store.close().await.unwrap();
    let err = other.append_usage("acme", T0, 1, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed { .. }), "{err:?}");
    assert!(other.ping().await.is_err());
    // Closing twice is fine.
    other.close().await.unwrap();
}

#[test]
fn database_urls() {
    let ok = |url: &str| path_from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(ok(DEFAULT_DATABASE_URL), Path::new("data/quota-alert.db"));
    assert_eq!(ok("sqlite://data/x.db"), Path::new("data/x.db"));
    assert_eq!(ok("sqlite:///var/lib/x.db"), Path::new("/var/lib/x.db"));
    assert_eq!(ok("SQLITE://x.db"), Path::new("x.db"));
    assert_eq!(ok("sqlite:data/x.db"), Path::new("data/x.db"));
    assert_eq!(ok("sqlite:/abs/x.db"), Path::new("/abs/x.db"));
    assert_eq!(ok("data/x.db"), Path::new("data/x.db"));
    assert_eq!(ok("/abs/x.db"), Path::new("/abs/x.db"));
    assert_eq!(ok("  ./x.db "), Path::new("./x.db"));
    for bad in [
        "",
        "sqlite://",
        "sqlite:",
        "sqlite::memory:",
        "sqlite://x.db?mode=rwc",
        "postgres://localhost/db",
    ] {
        let err = path_from_url(bad).expect_err(bad);
        assert!(
            matches!(err, StoreError::InvalidUrl { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains(bad.trim()), "{err}");
    }
}
