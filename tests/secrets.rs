//! Keys never reach the logs: the binary at `RUST_LOG=debug` with JSON logs,
//! driven with every way a key travels (bearer header, `?token=`, sign-in
//! body, session cookie, wrong keys, rotation, the upstream key on proxied
//! calls), writes none of them, and its database holds only their digests.

mod common;

use common::process::{contains, database_bytes, free_port, temp_dir, ServerProcess};
use common::{create_workspace, ADMIN};
use serde_json::{json, Value};

const UPSTREAM_KEY: &str = "sk-upstream-secret-4242424242";
const WRONG_KEY: &str = "qa_not-a-real-key-but-still-private";

#[tokio::test]
async fn no_key_or_session_reaches_the_logs() {
    let dir = temp_dir("secrets");
    let log = dir.join("server.log");
    // Nothing listens there: proxied calls fail after the key was attached.
    let dead_upstream = format!("http://127.0.0.1:{}/v1", free_port());
    let server = ServerProcess::spawn(
        &dir.join("state.db"),
        &[
            ("RUST_LOG", "debug"),
            ("QUOTA_LOG_FORMAT", "json"),
            ("OPENAI_API_KEY", UPSTREAM_KEY),
            ("OPENAI_BASE_URL", dead_upstream.as_str()),
            ("OPENAI_CONNECT_TIMEOUT_S", "1"),
        ],
        Some(&log),
    )
    .await;
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let key = create_workspace(&http, &base, "private", None).await;

    let mut sent = Vec::new();
    sent.push(
        http.get(format!("{base}/api/quota/status"))
            .bearer_auth(&key)
            .send()
            .await,
    );
    sent.push(
        http.get(format!("{base}/api/quota/ws?token={key}"))
            .send()
            .await,
    );
    sent.push(
        http.get(format!("{base}/api/quota/status?token={WRONG_KEY}"))
            .send()
            .await,
    );
    sent.push(
        http.get(format!("{base}/api/quota/status"))
            .bearer_auth(WRONG_KEY)
            .send()
            .await,
    );
    let cookie = common::sign_in(&http, &base, &key).await;
    let session_id = cookie
        .split_once('=')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    assert!(session_id.len() >= 16, "{cookie}");
    sent.push(
        http.get(format!("{base}/api/quota/status"))
            .header("cookie", &cookie)
            .send()
            .await,
    );
    sent.push(
        http.post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await,
    );
    let rotated: Value = http
        .post(format!("{base}/api/admin/workspaces/private/rotate-key"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("rotate")
        .json()
        .await
        .expect("json");
    let new_key = rotated["api_key"].as_str().expect("new key").to_string();
    for response in sent {
        response.expect("every request is answered");
    }
    drop(server);

    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains("\"path\":\"/api/quota/ws\""),
        "requests are traced at debug (else this test proves nothing): {}",
        &logged[..logged.len().min(2000)]
    );
    assert!(
        logged.contains("token=[redacted]"),
        "the query is kept, redacted"
    );
    for (what, secret) in [
        ("the admin key", ADMIN),
        ("the workspace key", key.as_str()),
        ("the rotated key", new_key.as_str()),
        ("a wrong key", WRONG_KEY),
        ("the upstream key", UPSTREAM_KEY),
        ("the session id", session_id.as_str()),
    ] {
        assert!(!logged.contains(secret), "{what} was logged");
    }
    // Nor the database: keys are kept as digests only.
    let stored = database_bytes(&dir.join("state.db"));
    assert!(!stored.is_empty(), "the database was written");
    for (what, secret) in [
        ("the workspace key", key.as_str()),
        ("the rotated key", new_key.as_str()),
        ("the admin key", ADMIN),
    ] {
        assert!(!contains(&stored, secret.as_bytes()), "{what} is stored");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
