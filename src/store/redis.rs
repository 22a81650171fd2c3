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
//!   even on an instance that missed the event (see `service::shared`).
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

use super::StoreError;
use crate::wire::Limits;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
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
/// Sessions ended before their expiry move the session epoch (KEYS[2]).
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
if deleted > 0 and rule == 'workspace' then
  redis.call('INCR', KEYS[2])
end
return deleted
"#;

/// Every change of a workspace's key, atomically: the workspace's JSON,
/// `qa:{ws}:key` (what admission compares with), the digest index and the
/// epoch. ARGV: mode (`create`: only if the id is new; `change`: only if it
/// exists; `backfill`: only if `qa:{ws}:key` is missing), id, digest, JSON,
/// the revoked digest. Returns 1 if it changed something. This script spans
/// hash slots, which is fine: quota-alert talks to one Redis server (its
/// client is not a Cluster client).
const KEY_SCRIPT: &str = r#"
local workspaces, keyname, index, epoch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, id, digest, json, revoked = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if mode == 'create' then
  if redis.call('HSETNX', workspaces, id, json) == 0 then return 0 end
  redis.call('SET', keyname, digest)
elseif mode == 'change' then
  if redis.call('HEXISTS', workspaces, id) == 0 then return 0 end
  redis.call('HSET', workspaces, id, json)
  redis.call('SET', keyname, digest)
else
  if not redis.call('SET', keyname, digest, 'NX') then return 0 end
end
if digest ~= revoked then redis.call('HSET', index, digest, id) end
redis.call('INCR', epoch)
return 1
"#;

/// Checks the caller's key is still the workspace's (ARGV[9], '' to skip),
/// claims the idempotency key (KEYS[7] with fingerprint ARGV[10], '' for
/// none, kept ARGV[11] ms), evicts expired buckets, optionally checks room for
/// one request, adds usage — all or nothing, atomically.
/// Returns {code, mr, mt, dr, dt}; code: 1 counted, 0 refused (no room),
/// -1 the key is no longer the workspace's, 2 idempotent replay (nothing
/// counted), 3 the idempotency key was used for another request.
const ADD_SCRIPT: &str = r#"
local sec, secidx, min, minidx, tot = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now_ms = tonumber(ARGV[1])
local requests, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local check = ARGV[4] == '1'
local rpm, rpd, tpm, tpd = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local expected_key, fingerprint, idem_ttl = ARGV[9], ARGV[10], tonumber(ARGV[11])
local now_s = math.floor(now_ms / 1000)
local now_m = math.floor(now_ms / 60000)

if expected_key ~= '' then
  local current = redis.call('GET', KEYS[6])
  if current and current ~= expected_key then return {-1, 0, 0, 0, 0} end
end
if fingerprint ~= '' then
  local prior = redis.call('GET', KEYS[7])
  if prior then
    if prior == fingerprint then return {2, 0, 0, 0, 0} end
    return {3, 0, 0, 0, 0}
  end
end

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
if fingerprint ~= '' then
  redis.call('SET', KEYS[7], fingerprint, 'PX', idem_ttl)
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

/// What one [`RedisShared::add`] should do besides adding usage.
#[derive(Clone, Debug, Default)]
pub struct AddGuard {
    /// Admission: only if one more request fits these limits.
    pub limits: Option<Limits>,
    /// Only if the workspace's key in Redis is still this digest (hex): the
    /// one this instance accepted the caller's key against.
    pub expected_key: Option<String>,
    /// Count once per (workspace, key): digest (hex) of the
    /// `Idempotency-Key` and fingerprint (hex) of the request.
    pub idempotency: Option<(String, String)>,
}

/// How an [`RedisShared::add`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddCode {
    /// Added (and, with limits, admitted).
    Counted,
    /// No room within the limits: nothing added.
    Refused,
    /// The workspace's key changed in Redis since this instance learned it.
    KeyChanged,
    /// The idempotency key was already used for this request.
    Replayed,
    /// The idempotency key was already used for another request.
    Mismatch,
}

/// Totals of one workspace as Redis holds them after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedTotals {
    pub code: AddCode,
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
    /// Admin sessions: hex of `browser_session::admin_key_binding` of the admin key
    /// that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key_binding: Option<String>,
}

#[derive(Clone)]
pub struct RedisShared {
    client: redis::Client,
    connection: ConnectionManager,
    add_script: Script,
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

    /// Adds usage, as `guard` allows (see [`AddGuard`]).
    pub async fn add(
        &self,
        workspace: &str,
        now_ms: u64,
        requests: u64,
        tokens: u64,
        guard: &AddGuard,
    ) -> Result<SharedTotals, StoreError> {
        let mut con = self.connection.clone();
        let limits = guard.limits.as_ref();
        let (idem_key, fingerprint) = match &guard.idempotency {
            Some((key, fingerprint)) => (k_idem(workspace, key), fingerprint.as_str()),
            None => (k_idem(workspace, "-"), ""),
        };
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
            .key(k("key"))
            .key(idem_key)
            .arg(now_ms)
            .arg(requests)
            .arg(tokens)
            .arg(if limits.is_some() { "1" } else { "0" })
            .arg(l.requests_per_minute)
            .arg(l.requests_per_day)
            .arg(l.tokens_per_minute)
            .arg(l.tokens_per_day)
            .arg(guard.expected_key.as_deref().unwrap_or(""))
            .arg(fingerprint)
            .arg(super::IDEMPOTENCY_TTL_MS)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed("add usage", e))?;
        let get = |i: usize| result.get(i).copied().unwrap_or(0).max(0) as u64;
        let code = match result.first().copied().unwrap_or(0) {
            1 => AddCode::Counted,
            -1 => AddCode::KeyChanged,
            2 => AddCode::Replayed,
            3 => AddCode::Mismatch,
            _ => AddCode::Refused,
        };
        Ok(SharedTotals {
            code,
            admitted: code == AddCode::Counted,
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

    /// Creates the workspace (`false` if the id is taken) with its key, its
    /// digest index entry and the epoch move, in one script.
    pub async fn save_workspace(&self, workspace: &SharedWorkspace) -> Result<bool, StoreError> {
        let json = serde_json::to_string(workspace).unwrap_or_default();
        self.run_key_script(
            "create",
            &workspace.id,
            &workspace.key_digest,
            &json,
            "save workspace",
        )
        .await
    }

    /// Runs [`KEY_SCRIPT`]; true if it changed something.
    async fn run_key_script(
        &self,
        mode: &str,
        id: &str,
        digest_hex: &str,
        json: &str,
        op: &'static str,
    ) -> Result<bool, StoreError> {
        let mut con = self.connection.clone();
        let changed: i64 = self
            .key_script
            .key(WORKSPACES_KEY)
            .key(format!("qa:{{{id}}}:key"))
            .key(KEYS_INDEX)
            .key(KEY_EPOCH)
            .arg(mode)
            .arg(id)
            .arg(digest_hex)
            .arg(json)
            .arg(REVOKED_DIGEST_HEX)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed(op, e))?;
        Ok(changed == 1)
    }

    /// Start-up backfill of `qa:{ws}:key` and `qa:keys` for workspaces
    /// stored before they existed.
    pub async fn backfill_key(&self, workspace: &SharedWorkspace) -> Result<(), StoreError> {
        self.run_key_script(
            "backfill",
            &workspace.id,
            &workspace.key_digest,
            "",
            "backfill key",
        )
        .await
        .map(|_| ())
    }

    /// The workspace a key digest (hex) belongs to right now, if any.
    pub async fn lookup_key(
        &self,
        digest_hex: &str,
    ) -> Result<Option<SharedWorkspace>, StoreError> {
        let mut con = self.connection.clone();
        let id: Option<String> = con
            .hget(KEYS_INDEX, digest_hex)
            .await
            .map_err(|e| self.failed("look up key", e))?;
        let Some(id) = id else { return Ok(None) };
        let raw: Option<String> = con
            .hget(WORKSPACES_KEY, &id)
            .await
            .map_err(|e| self.failed("look up key", e))?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<SharedWorkspace>(&r).ok())
            .filter(|w| w.key_digest == digest_hex))
    }

    /// One workspace as stored, if it exists.
    pub async fn load_workspace(&self, id: &str) -> Result<Option<SharedWorkspace>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Option<String> = con
            .hget(WORKSPACES_KEY, id)
            .await
            .map_err(|e| self.failed("load workspace", e))?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// How many key changes Redis has seen (see the module docs).
    pub async fn key_epoch(&self) -> Result<u64, StoreError> {
        let mut con = self.connection.clone();
        let epoch: Option<u64> = con
            .get(KEY_EPOCH)
            .await
            .map_err(|e| self.failed("read key epoch", e))?;
        Ok(epoch.unwrap_or(0))
    }

    /// The key epoch and the session epoch (see the module docs), in one
    /// read.
    pub async fn epochs(&self) -> Result<(u64, u64), StoreError> {
        let mut con = self.connection.clone();
        // A pipeline, not MGET: the two keys are in different Cluster slots.
        let (keys, sessions): (Option<u64>, Option<u64>) = redis::pipe()
            .get(KEY_EPOCH)
            .get(SESSION_EPOCH)
            .query_async(&mut con)
            .await
            .map_err(|e| self.failed("read epochs", e))?;
        Ok((keys.unwrap_or(0), sessions.unwrap_or(0)))
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
        let digest_hex = digest_hex.unwrap_or_else(|| REVOKED_DIGEST_HEX.to_string());
        workspace.key_digest = digest_hex.clone();
        let json = serde_json::to_string(&workspace).unwrap_or_default();
        self.run_key_script("change", id, &digest_hex, &json, "update key")
            .await
            .map(|_| ())
    }

    /// The workspace's key digest as the admission script sees it (the
    /// truth when an instance finds out it missed a change), falling back to
    /// the workspace's JSON for data written before that key existed.
    pub async fn current_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut con = self.connection.clone();
        let key: Option<String> = con
            .get(format!("qa:{{{id}}}:key"))
            .await
            .map_err(|e| self.failed("read key", e))?;
        match key {
            Some(key) => Ok(Some(key)),
            None => self.workspace_key_digest(id).await,
        }
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

    /// Ends a session (signed out), moving the session epoch in the same
    /// transaction.
    pub async fn delete_session(&self, digest_hex: &str) -> Result<(), StoreError> {
        self.delete_sessions_by_digest(&[digest_hex.to_string()])
            .await
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
        // One MULTI: no instance can read the epoch as moved and still find
        // the sessions, nor find them gone with the epoch unmoved.
        redis::pipe()
            .atomic()
            .hdel(SESSIONS_KEY, digests_hex)
            .ignore()
            .incr(SESSION_EPOCH, 1)
            .ignore()
            .query_async::<()>(&mut con)
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
            .key(SESSION_EPOCH)
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
                    let policy = crate::browser_session::WORKSPACE_SESSIONS;
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

fn k_idem(workspace: &str, key_digest_hex: &str) -> String {
    format!("qa:{{{workspace}}}:idem:{key_digest_hex}")
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
