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
//! - `qa:workspaces`: id → JSON (key digest, limits)
//! - `qa:sessions`: hex digest of a browser session id → JSON (workspace or
//!   null for the admin, expiry). One hash for every session, so signing out
//!   needs only the cookie's digest; each session script touches only this key.
//!   Ending a workspace's sessions and pruning expired ones walk the whole
//!   hash inside Redis (a few µs per session): fine for browser sessions,
//!   which number in the thousands, not the millions.

use super::StoreError;
use crate::model::Limits;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

pub const EVENTS_CHANNEL: &str = "qa:events";
const WORKSPACES_KEY: &str = "qa:workspaces";
const SESSIONS_KEY: &str = "qa:sessions";

/// Moves a session's expiry forward only if the session still exists (it may
/// have been signed out or revoked on another instance meanwhile) and only
/// forward. Returns 1 if it changed.
const EXTEND_SESSION_SCRIPT: &str = r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local ok, session = pcall(cjson.decode, current)
if ok and type(session) == 'table' and tonumber(session.expires_at_ms)
   and tonumber(session.expires_at_ms) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// Deletes sessions matching a rule: `workspace` (ARGV[2]: its id) or
/// `expired` (ARGV[2]: now, Unix ms). Unreadable entries are deleted too.
/// Returns how many went.
const DELETE_SESSIONS_SCRIPT: &str = r#"
local rule, arg = ARGV[1], ARGV[2]
local entries = redis.call('HGETALL', KEYS[1])
local deleted = 0
for i = 1, #entries, 2 do
  local ok, session = pcall(cjson.decode, entries[i + 1])
  local doomed = not ok or type(session) ~= 'table'
  if not doomed then
    if rule == 'workspace' then
      doomed = session.workspace_id == arg
    else
      local now = tonumber(arg)
      local absolute = tonumber(session.absolute_expires_at_ms)
      doomed = (tonumber(session.expires_at_ms) or 0) <= now
        or (absolute ~= nil and absolute > 0 and absolute <= now)
    end
  end
  if doomed then
    redis.call('HDEL', KEYS[1], entries[i])
    deleted = deleted + 1
  end
end
return deleted
"#;

/// Evicts expired buckets, optionally checks room for one request, adds usage.
/// Returns {admitted (0/1), mr, mt, dr, dt}.
const ADD_SCRIPT: &str = r#"
local sec, secidx, min, minidx, tot = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now_ms = tonumber(ARGV[1])
local requests, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local check = ARGV[4] == '1'
local rpm, rpd, tpm, tpd = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local now_s = math.floor(now_ms / 1000)
local now_m = math.floor(now_ms / 60000)

local function evict(hash, idx, oldest_kept, rfield, tfield)
  local old = redis.call('ZRANGEBYSCORE', idx, '-inf', '(' .. oldest_kept)
  for _, b in ipairs(old) do
    local v = redis.call('HGET', hash, b)
    if v then
      local r, t = string.match(v, '(%d+):(%d+)')
      redis.call('HINCRBY', tot, rfield, -tonumber(r))
      redis.call('HINCRBY', tot, tfield, -tonumber(t))
      redis.call('HDEL', hash, b)
    end
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. oldest_kept) end
end

evict(sec, secidx, now_s - 59, 'mr', 'mt')
evict(min, minidx, now_m - 1439, 'dr', 'dt')
local t = redis.call('HMGET', tot, 'mr', 'mt', 'dr', 'dt')
local mr, mt, dr, dt = tonumber(t[1] or 0) or 0, tonumber(t[2] or 0) or 0, tonumber(t[3] or 0) or 0, tonumber(t[4] or 0) or 0

if check and (mr + 1 > rpm or dr + 1 > rpd or mt >= tpm or dt >= tpd) then
  return {0, mr, mt, dr, dt}
end

local function add(hash, idx, bucket)
  local v = redis.call('HGET', hash, bucket)
  local r, tk = 0, 0
  if v then
    local a, b = string.match(v, '(%d+):(%d+)')
    r, tk = tonumber(a), tonumber(b)
  end
  redis.call('HSET', hash, bucket, (r + requests) .. ':' .. (tk + tokens))
  redis.call('ZADD', idx, bucket, bucket)
end
if requests > 0 or tokens > 0 then
  add(sec, secidx, now_s)
  add(min, minidx, now_m)
  redis.call('HINCRBY', tot, 'mr', requests)
  redis.call('HINCRBY', tot, 'mt', tokens)
  redis.call('HINCRBY', tot, 'dr', requests)
  redis.call('HINCRBY', tot, 'dt', tokens)
  -- Idle workspaces cost nothing: everything expires a day after last use.
  for _, k in ipairs({sec, secidx, min, minidx, tot}) do redis.call('EXPIRE', k, 90000) end
end
return {1, mr + requests, mt + tokens, dr + requests, dt + tokens}
"#;

/// Totals of one workspace as Redis holds them after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedTotals {
    pub admitted: bool,
    pub minute_requests: u64,
    pub minute_tokens: u64,
    pub day_requests: u64,
    pub day_tokens: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedWorkspace {
    pub id: String,
    pub key_digest: String,
    pub limits: Limits,
}

/// A browser session as Redis holds it (keyed by the hex digest of its id).
/// Entries written before sessions had lifetimes and bindings are read as
/// opened a TTL before their expiry (the earliest they can have been) and
/// without an admin key binding (so an admin session of then ends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSession {
    /// `None`: the admin.
    pub workspace_id: Option<String>,
    pub expires_at_ms: u64,
    #[serde(default)]
    pub created_at_ms: u64,
    #[serde(default)]
    pub absolute_expires_at_ms: u64,
    /// Admin sessions: hex of `session::admin_key_binding` of the admin key
    /// that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key_binding: Option<String>,
}

#[derive(Clone)]
pub struct RedisShared {
    client: redis::Client,
    connection: ConnectionManager,
    add_script: Script,
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

    /// Adds usage; with `limits`, only if one more request fits (admission).
    pub async fn add(
        &self,
        workspace: &str,
        now_ms: u64,
        requests: u64,
        tokens: u64,
        limits: Option<&Limits>,
    ) -> Result<SharedTotals, StoreError> {
        let mut con = self.connection.clone();
        let l = limits.copied().unwrap_or(Limits {
            requests_per_minute: u64::MAX >> 12,
            requests_per_day: u64::MAX >> 12,
            tokens_per_minute: u64::MAX >> 12,
            tokens_per_day: u64::MAX >> 12,
        });
        let k = |suffix: &str| format!("qa:{{{workspace}}}:{suffix}");
        let result: Vec<i64> = self
            .add_script
            .key(k("sec"))
            .key(k("secidx"))
            .key(k("min"))
            .key(k("minidx"))
            .key(k("tot"))
            .arg(now_ms)
            .arg(requests)
            .arg(tokens)
            .arg(if limits.is_some() { "1" } else { "0" })
            .arg(l.requests_per_minute)
            .arg(l.requests_per_day)
            .arg(l.tokens_per_minute)
            .arg(l.tokens_per_day)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed("add usage", e))?;
        let get = |i: usize| result.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(SharedTotals {
            admitted: get(0) == 1,
            minute_requests: get(1),
            minute_tokens: get(2),
            day_requests: get(3),
            day_tokens: get(4),
        })
    }

    /// Per-minute buckets of the day window, oldest first: (minute, requests, tokens).
    pub async fn load_day_buckets(
        &self,
        workspace: &str,
    ) -> Result<Vec<(u64, u64, u64)>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Vec<(String, String)> = con
            .hgetall(format!("qa:{{{workspace}}}:min"))
            .await
            .map_err(|e| self.failed("load usage", e))?;
        let mut buckets: Vec<(u64, u64, u64)> = raw
            .into_iter()
            .filter_map(|(minute, value)| {
                let (r, t) = value.split_once(':')?;
                Some((minute.parse().ok()?, r.parse().ok()?, t.parse().ok()?))
            })
            .collect();
        buckets.sort_unstable();
        Ok(buckets)
    }

    pub async fn clear_usage(&self, workspace: &str) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let keys: Vec<String> = ["sec", "secidx", "min", "minidx", "tot"]
            .iter()
            .map(|s| format!("qa:{{{workspace}}}:{s}"))
            .collect();
        con.del::<_, ()>(keys)
            .await
            .map_err(|e| self.failed("clear usage", e))
    }

    pub async fn save_workspace(&self, workspace: &SharedWorkspace) -> Result<bool, StoreError> {
        let mut con = self.connection.clone();
        let json = serde_json::to_string(workspace).unwrap_or_default();
        con.hset_nx(WORKSPACES_KEY, &workspace.id, json)
            .await
            .map_err(|e| self.failed("save workspace", e))
    }

    /// Replaces a workspace's key digest (rotation) or, with `None`, marks it
    /// revoked (an all-zero digest no key hashes to).
    pub async fn set_workspace_key(
        &self,
        id: &str,
        digest_hex: Option<String>,
    ) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let raw: Option<String> = con
            .hget(WORKSPACES_KEY, id)
            .await
            .map_err(|e| self.failed("update key", e))?;
        let Some(mut workspace) =
            raw.and_then(|r| serde_json::from_str::<SharedWorkspace>(&r).ok())
        else {
            return Ok(());
        };
        workspace.key_digest = digest_hex.unwrap_or_else(|| "00".repeat(32));
        let json = serde_json::to_string(&workspace).unwrap_or_default();
        con.hset::<_, _, _, ()>(WORKSPACES_KEY, id, json)
            .await
            .map_err(|e| self.failed("update key", e))
    }

    pub async fn load_workspaces(&self) -> Result<Vec<SharedWorkspace>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Vec<(String, String)> = con
            .hgetall(WORKSPACES_KEY)
            .await
            .map_err(|e| self.failed("load workspaces", e))?;
        Ok(raw
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str(&json).ok())
            .collect())
    }

    /// The workspace's current key digest (hex; all zeroes once revoked),
    /// `None` for an unknown workspace.
    pub async fn workspace_key_digest(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Option<String> = con
            .hget(WORKSPACES_KEY, id)
            .await
            .map_err(|e| self.failed("read key", e))?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<SharedWorkspace>(&r).ok())
            .map(|w| w.key_digest))
    }

    // ---- browser sessions -------------------------------------------------

    pub async fn save_session(
        &self,
        digest_hex: &str,
        session: &SharedSession,
    ) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let json = serde_json::to_string(session).unwrap_or_default();
        con.hset::<_, _, _, ()>(SESSIONS_KEY, digest_hex, json)
            .await
            .map_err(|e| self.failed("save session", e))
    }

    /// Moves a stored session's expiry forward; `false` if it is gone.
    pub async fn extend_session(
        &self,
        digest_hex: &str,
        session: &SharedSession,
    ) -> Result<bool, StoreError> {
        let mut con = self.connection.clone();
        let json = serde_json::to_string(session).unwrap_or_default();
        let changed: i64 = self
            .extend_session_script
            .key(SESSIONS_KEY)
            .arg(digest_hex)
            .arg(json)
            .arg(session.expires_at_ms)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed("extend session", e))?;
        Ok(changed == 1)
    }

    pub async fn delete_session(&self, digest_hex: &str) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        con.hdel::<_, _, ()>(SESSIONS_KEY, digest_hex)
            .await
            .map_err(|e| self.failed("delete session", e))
    }

    /// Deletes these sessions (ended by the cap or by the admin).
    pub async fn delete_sessions_by_digest(
        &self,
        digests_hex: &[String],
    ) -> Result<(), StoreError> {
        if digests_hex.is_empty() {
            return Ok(());
        }
        let mut con = self.connection.clone();
        con.hdel::<_, _, ()>(SESSIONS_KEY, digests_hex)
            .await
            .map_err(|e| self.failed("delete sessions", e))
    }

    /// Ends every session of a workspace (its keys were rotated or revoked).
    pub async fn delete_workspace_sessions(&self, id: &str) -> Result<u64, StoreError> {
        self.delete_sessions("workspace", id.to_string(), "delete workspace sessions")
            .await
    }

    /// Deletes sessions expired at `now_ms`.
    pub async fn prune_sessions(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.delete_sessions("expired", now_ms.to_string(), "prune sessions")
            .await
    }

    async fn delete_sessions(
        &self,
        rule: &str,
        arg: String,
        op: &'static str,
    ) -> Result<u64, StoreError> {
        let mut con = self.connection.clone();
        let deleted: i64 = self
            .delete_sessions_script
            .key(SESSIONS_KEY)
            .arg(rule)
            .arg(arg)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed(op, e))?;
        Ok(deleted.max(0) as u64)
    }

    /// Every readable session not expired at `now_ms`: (hex digest, session).
    pub async fn load_sessions(
        &self,
        now_ms: u64,
    ) -> Result<Vec<(String, SharedSession)>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Vec<(String, String)> = con
            .hgetall(SESSIONS_KEY)
            .await
            .map_err(|e| self.failed("load sessions", e))?;
        Ok(raw
            .into_iter()
            .filter_map(|(digest, json)| {
                let mut session: SharedSession = serde_json::from_str(&json).ok()?;
                if session.absolute_expires_at_ms == 0 {
                    let policy = crate::session::WORKSPACE_SESSIONS;
                    let ttl = u64::try_from(policy.idle_ttl.as_millis()).unwrap_or(u64::MAX);
                    session.created_at_ms = session.expires_at_ms.saturating_sub(ttl);
                    session.absolute_expires_at_ms = policy.absolute_end(session.created_at_ms);
                }
                (session.expires_at_ms > now_ms && session.absolute_expires_at_ms > now_ms)
                    .then_some((digest, session))
            })
            .collect())
    }

    /// True for the first caller to claim `name` within `ttl_ms` across all
    /// instances (SET NX PX): one alert per transition, not one per instance.
    pub async fn claim(&self, name: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let mut con = self.connection.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("qa:claim:{name}"))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1))
            .query_async(&mut con)
            .await
            .map_err(|e| self.failed("claim", e))?;
        Ok(reply.is_some())
    }

    pub async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        con.publish::<_, _, ()>(EVENTS_CHANNEL, payload)
            .await
            .map_err(|e| self.failed("publish", e))
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
