//! A real `redis-server` (Debian's) on a free loopback port, and server
//! instances sharing it, for the scale-out tests.

use super::{serve, test_config, Server};
use quota_alert::engine::{Clock, SystemClock};
use quota_alert::service::{FailurePolicy, QuotaService, Shared};
use quota_alert::store::RedisShared;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Runs one command with redis-cli's arguments, e.g. `["CLIENT", "KILL",
    /// "TYPE", "pubsub"]`, and returns its reply.
    pub async fn command(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis");
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut con).await.expect("redis command")
    }

    /// Drops every pub/sub subscription (the instances resubscribe on their
    /// own, after half a second): what a network blip does to them.
    pub async fn kill_subscriptions(&self) {
        self.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    }
}

// The child is owned by `RedisServer`, whose drop kills and reaps it.
#[allow(clippy::zombie_processes)]
pub async fn start_redis(port: u16) -> RedisServer {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/test.sh installs it)");
    let server = RedisServer { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start");
}

pub async fn instance(port: u16) -> (QuotaService, Server) {
    instance_with(port, Arc::new(SystemClock), &[]).await
}

pub async fn instance_with_clock(port: u16, clock: Arc<dyn Clock>) -> (QuotaService, Server) {
    instance_with(port, clock, &[]).await
}

/// An instance on the Redis at `port`, configured by `extra` on top of the
/// test defaults.
pub async fn instance_with(
    port: u16,
    clock: Arc<dyn Clock>,
    extra: &[(&str, &str)],
) -> (QuotaService, Server) {
    let id = quota_alert::auth::generate_secret("i_");
    instance_named(port, clock, extra, &id).await
}

/// An instance whose events carry `instance` as their origin. Two instances
/// of one id each drop the other's events as their own: a subscription that
/// is up yet delivers nothing, for the missed-event tests.
pub async fn instance_with_id(port: u16, instance: &str) -> (QuotaService, Server) {
    instance_named(port, Arc::new(SystemClock), &[], instance).await
}

async fn instance_named(
    port: u16,
    clock: Arc<dyn Clock>,
    extra: &[(&str, &str)],
    instance: &str,
) -> (QuotaService, Server) {
    let service = redis_service(port, test_config(extra), clock, instance).await;
    let server = serve(service.clone()).await;
    (service, server)
}

/// A service on the Redis at `port` (failure policy open), without a server:
/// the one way the tests build one.
pub async fn redis_service(
    port: u16,
    config: quota_alert::config::Config,
    clock: Arc<dyn Clock>,
    instance: &str,
) -> QuotaService {
    let url = format!("redis://127.0.0.1:{port}/");
    let redis = RedisShared::connect(&url).await.expect("connect to redis");
    let shared = Shared {
        redis,
        instance: instance.to_string(),
        policy: FailurePolicy::Open,
    };
    QuotaService::with_redis(config, clock, shared)
        .await
        .expect("load from redis")
}

/// Creates a workspace on `a` and waits until `b` knows its key.
pub async fn shared_workspace(a: &Server, b: &Server, id: &str, limits: Value) -> String {
    let key = a.workspace_with_limits(id, limits).await;
    for _ in 0..100 {
        if b.get("/api/quota/status", Some(&key)).await.0 == StatusCode::OK {
            return key;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("instance b never learned about workspace {id}");
}

/// Limits no test reaches.
pub fn big_limits() -> Value {
    json!({"requests_per_minute": 100000, "requests_per_day": 1000000})
}
