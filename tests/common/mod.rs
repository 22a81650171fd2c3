//! Shared by the integration tests: a real server on 127.0.0.1:0.
#![allow(dead_code)]

use quota_alert::config::Config;
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

pub const ADMIN: &str = "test-admin-key-0123456789";

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn start() -> Server {
    start_with(&[]).await
}

/// A server whose environment is the test defaults (small limits) overridden
/// by `extra`.
pub async fn start_with(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("OPENAI_RATE_LIMIT_PER_MINUTE", "10"),
        ("OPENAI_RATE_LIMIT_PER_DAY", "1000"),
        ("OPENAI_TOKEN_LIMIT_PER_MINUTE", "10000"),
        ("OPENAI_TOKEN_LIMIT_PER_DAY", "100000"),
    ];
    env.retain(|(name, _)| !extra.iter().any(|(k, _)| k == name));
    env.extend_from_slice(extra);
    serve(QuotaService::new(test_config(&env), Arc::new(SystemClock))).await
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let res = req.send().await.expect("send");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let res = req.send().await.expect("send");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(
        &self,
        path: &str,
        key: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .body(body.to_string());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.expect("send");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Creates workspace `id` with the default limits; its API key.
    pub async fn workspace(&self, id: &str) -> String {
        create_workspace(&self.http, &self.base, id, None).await
    }

    /// Creates workspace `id` with `limits`; its API key.
    pub async fn workspace_with_limits(&self, id: &str, limits: Value) -> String {
        create_workspace(&self.http, &self.base, id, Some(limits)).await
    }

    pub async fn record(&self, key: &str, body: Value) -> Value {
        let (status, body) = self.post("/api/quota/record", Some(key), body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!(
            "{}/api/quota/ws{query}",
            self.base.replace("http://", "ws://")
        )
    }
}

/// Creates workspace `id` as the admin on the server at `base` (any server:
/// in-process, a child process, over TLS), with `limits` if given; asserts
/// 201 and returns its API key.
pub async fn create_workspace(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    limits: Option<Value>,
) -> String {
    let mut body = json!({ "id": id });
    if let Some(limits) = limits {
        body["limits"] = limits;
    }
    let res = http
        .post(format!("{base}/api/admin/workspaces"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("create workspace");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["api_key"].as_str().expect("api_key").to_string()
}

/// Polls `server`'s status with `key` (10 s at most) until `check` holds;
/// returns that snapshot.
pub async fn eventually(server: &Server, key: &str, check: impl Fn(&Value) -> bool) -> Value {
    let last = std::cell::RefCell::new(Value::Null);
    let held = holds_within(WAIT, || async {
        let snapshot = server.get("/api/quota/status", Some(key)).await.1;
        let held = check(&snapshot);
        *last.borrow_mut() = snapshot;
        held
    })
    .await;
    let last = last.into_inner();
    assert!(held, "condition never held; last snapshot {last}");
    last
}

/// How long a test waits for an event before it fails.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The one poll loop of the tests: runs `check` every 20 ms until it holds
/// or `within` has passed, and says whether it held. Every wait for an event
/// no channel announces (a status, a row in a store, a socket count) is
/// this loop with its own failure message.
pub async fn holds_within<F, Fut>(within: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Polls `check` (every 20 ms, 10 s at most) until it holds; `what` names
/// the awaited event in the failure. For events no status shows (a write in
/// the background reaching a store, another instance learning something).
pub async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    assert!(
        holds_within(WAIT, check).await,
        "waited 10 s: {what} never happened"
    );
}

pub mod fake_openai;
pub mod process;
pub mod redis;

/// Signs in with `key` at `base`; the `qa_session=<id>` pair to send as
/// `Cookie`.
pub async fn sign_in(http: &reqwest::Client, base: &str, key: &str) -> String {
    let res = http
        .post(format!("{base}/api/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::OK);
    res.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// The test configuration (admin key, small limits) plus `extra`.
pub fn test_config(extra: &[(&str, &str)]) -> Config {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_sources(None, Path::new("none"), move |name| {
        if let Some((_, v)) = extra.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        match name {
            "QUOTA_ADMIN_RESET_KEY" => Some(ADMIN.into()),
            _ => None,
        }
    })
    .expect("config")
}

/// Serves `service` on 127.0.0.1:0 the way the binary does (same timeouts,
/// same middleware), over plain HTTP.
pub async fn serve(service: QuotaService) -> Server {
    let (base, _) = serve_with_tls(service, None).await;
    Server {
        base,
        // A bound on every request, so a server that stops answering fails the
        // test that found it instead of stalling the whole run.
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client"),
    }
}

/// Like [`serve`], over TLS when `tls` is given; returns the base URL (with
/// `https://localhost:<port>` under TLS, for the certificate's name) and the
/// bound address.
pub async fn serve_with_tls(
    service: QuotaService,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
) -> (String, std::net::SocketAddr) {
    let timeouts = service.config().http.clone();
    let options = quota_alert::server::leptos_options().expect("leptos options");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = match tls {
        Some(_) => format!("https://localhost:{}", addr.port()),
        None => format!("http://{addr}"),
    };
    server_runtime().spawn(async move {
        service.spawn_ticker();
        service.start_alerts();
        let state = quota_alert::api::AppState::new(service).expect("state");
        let app = quota_alert::server::app(state, options);
        quota_alert::server::serve(listener, app, &timeouts, tls, std::future::pending()).await
    });
    (base, addr)
}

/// The runtime test servers run on: multi-threaded, as the binary's is, and
/// apart from each test's own single-threaded runtime, so a server never
/// shares a thread with the client waiting on it, and races that only a
/// multi-threaded server has (webhook order was one) show up in tests.
fn server_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-server")
            .enable_all()
            .build()
            .expect("server runtime")
    })
}

/// Limits no test of money, models or people reaches: what they test is
/// budgets and per-model / per-user rules, not the workspace's windows.
pub fn roomy_limits() -> Value {
    json!({"requests_per_minute": 100000, "requests_per_day": 1000000,
           "tokens_per_minute": 10000000, "tokens_per_day": 100000000})
}

/// A price file (in `config/prices.json`'s format) that prices the fake's
/// `hold` model (held at the fake until released) at `per_million` USD per
/// 1M tokens, input and output alike.
pub fn hold_price_file(name: &str, per_million: f64) -> std::path::PathBuf {
    let path = process::temp_dir(name).join("prices.json");
    std::fs::write(
        &path,
        json!({"models": {"hold": [{"from": "2020-01-01", "input": per_million, "output": per_million}]}})
            .to_string(),
    )
    .expect("write the price file");
    path
}

impl Server {
    /// `PATCH /api/admin/workspaces/{id}` as the admin; asserts 200.
    pub async fn patch_settings(&self, id: &str, body: Value) {
        let res = self
            .http
            .patch(self.url(&format!("/api/admin/workspaces/{id}")))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
