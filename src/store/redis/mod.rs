//! Shared state for several instances: counters and admission live in Redis
//! and change only inside Lua scripts (atomic on the Redis server), so N
//! instances enforce one limit exactly; events cross instances over pub/sub so
//! each instance's engine (and its WebSockets) sees every instance's traffic.
//!
//! Layout per workspace `{ws}` (the braces make every key of a workspace hash
//! to one slot, so the scripts also work on Redis Cluster):
//! - `qa:{ws}:sec` / `qa:{ws}:secidx`: per-second buckets (hash "r:t" + zset)
//! - `qa:{ws}:min` / `qa:{ws}:minidx`: per-minute buckets for the day window
//! - `qa:{ws}:tot`: running totals `mr mt dr dt` (minute/day requests/tokens)
//! - `qa:{ws}:key`: the workspace's current key digest (hex; all zeroes once
//!   revoked). The admission script reads it, so a proxied call or a record
//!   made with a key that was rotated or revoked is refused by Redis itself,
//!   even on an instance that missed the event (see `service::replication`).
//! - `qa:{ws}:idem:<sha256 of the Idempotency-Key>`: the fingerprint of the
//!   request that key was used for, `SET` inside the same script that counts
//!   it, with a 24 h expiry.
//! - `qa:workspaces`: id → JSON (key digest, limits)
//! - `qa:keys`: key digest (hex) → workspace id, so an instance can look up a
//!   key it has not heard of yet (created or rotated elsewhere a moment ago).
//!   Entries of old keys may linger; a lookup is only believed if the
//!   workspace's JSON names the same digest.
//! - `qa:keyepoch`: incremented on every key creation, rotation and
//!   revocation; instances poll it and reload keys and sessions when it moves,
//!   so a missed event is caught up within a second even on a subscription
//!   that looks alive.
//! - `{qa:sessions}:epoch` (the session epoch): incremented with every session deleted before its
//!   expiry (signed out, ended by the admin or the cap, its workspace's key
//!   changed), in the same atomic write as the delete; instances poll it with
//!   the key epoch and reload sessions when it moves, so a session ended on
//!   one instance stops working on the others within a second even if its
//!   `session_closed` event never arrived. Pruning expired sessions does not
//!   move it: every instance ends those by itself.
//! - `qa:sessions`: hex digest of a browser session id → JSON (workspace or
//!   null for the admin, expiry). One hash for every session, so signing out
//!   needs only the cookie's digest; each session script touches only this key.
//!   Ending a workspace's sessions and pruning expired ones walk the whole
//!   hash inside Redis (a few µs per session): fine for browser sessions,
//!   which number in the thousands, not the millions.
//!
//! The handle, [`RedisShared`], and the names above are defined here; the
//! Lua scripts (with what the admission script is told and answers) are in
//! `scripts`, and the methods by concern in `workspaces` (workspaces and
//! keys), `usage` (the counters), `sessions` and `events` (pub/sub, epochs,
//! claims).

mod events;
mod scripts;
mod sessions;
mod usage;
mod workspaces;

pub use scripts::{AddCode, AddGuard, Drift, SharedTotals};
pub use sessions::SharedSession;
pub use workspaces::SharedWorkspace;

use super::StoreError;
use redis::aio::ConnectionManager;
use redis::Script;
use scripts::{
    ADD_SCRIPT, DELETE_SESSIONS_SCRIPT, EXTEND_SESSION_SCRIPT, KEY_SCRIPT, RECONCILE_SCRIPT,
};
use std::path::PathBuf;
use std::time::Duration;

pub const EVENTS_CHANNEL: &str = "qa:events";
const WORKSPACES_KEY: &str = "qa:workspaces";
const SESSIONS_KEY: &str = "qa:sessions";
const KEYS_INDEX: &str = "qa:keys";
const KEY_EPOCH: &str = "qa:keyepoch";
/// Hash-tagged with `qa:sessions`, so the two share a Cluster slot and one
/// transaction or script can change both.
const SESSION_EPOCH: &str = "{qa:sessions}:epoch";
/// The stored digest of a revoked workspace: no key hashes to it.
pub const REVOKED_DIGEST_HEX: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone)]
pub struct RedisShared {
    client: redis::Client,
    connection: ConnectionManager,
    add_script: Script,
    reconcile_script: Script,
    key_script: Script,
    extend_session_script: Script,
    delete_sessions_script: Script,
    url: String,
}

impl RedisShared {
    /// Connects (and checks the server answers) within a few seconds.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let failed = |problem: String| StoreError::Open {
            path: PathBuf::from(redact(url)),
            problem,
        };
        let client = redis::Client::open(url).map_err(|e| StoreError::InvalidUrl {
            url: redact(url),
            problem: e.to_string(),
        })?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let connection = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| failed("no answer within 5s".into()))?
        .map_err(|e| failed(e.to_string()))?;
        let shared = Self {
            client,
            connection,
            add_script: Script::new(ADD_SCRIPT),
            reconcile_script: Script::new(RECONCILE_SCRIPT),
            key_script: Script::new(KEY_SCRIPT),
            extend_session_script: Script::new(EXTEND_SESSION_SCRIPT),
            delete_sessions_script: Script::new(DELETE_SESSIONS_SCRIPT),
            url: redact(url),
        };
        shared.ping().await?;
        Ok(shared)
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map(|_| ())
            .map_err(|e| self.failed("ping", e))
    }

    fn failed(&self, op: &'static str, e: redis::RedisError) -> StoreError {
        StoreError::Failed {
            path: PathBuf::from(&self.url),
            op,
            problem: e.to_string(),
        }
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
