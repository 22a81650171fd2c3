//! The Lua scripts: everything that must change several Redis keys at once
//! runs inside one of them (atomic on the Redis server). Also what the
//! admission script is asked to check ([`AddGuard`]) and what it answers
//! ([`AddCode`], [`SharedTotals`]).

use crate::engine::Hold;
use crate::wire::Limits;

/// Moves a session's expiry forward only if the session still exists (it may
/// have been signed out or revoked on another instance meanwhile) and only
/// forward. Returns 1 if it changed.
pub(super) const EXTEND_SESSION_SCRIPT: &str = r#"
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
pub(super) const DELETE_SESSIONS_SCRIPT: &str = r#"
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
/// exists and its JSON is still ARGV[6], the one the caller changed — so a
/// settings change on another instance between the caller's read and this
/// write is never overwritten, the caller reads again; `backfill`: only if
/// `qa:{ws}:key` is missing), id, digest, JSON, the revoked digest. Returns
/// 1 if it changed something, -1 if the JSON was not ARGV[6] any more. This script spans
/// hash slots, which is fine: quota-alert talks to one Redis server (its
/// client is not a Cluster client).
pub(super) const KEY_SCRIPT: &str = r#"
local workspaces, keyname, index, epoch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, id, digest, json, revoked = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if mode == 'create' then
  if redis.call('HSETNX', workspaces, id, json) == 0 then return 0 end
  redis.call('SET', keyname, digest)
elseif mode == 'change' then
  local current = redis.call('HGET', workspaces, id)
  if not current then return 0 end
  if current ~= ARGV[6] then return -1 end
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
/// none, kept ARGV[11] ms), evicts expired buckets and expired token holds,
/// releases the holds being settled (ARGV[15]: ids joined by `,`, '' for
/// none), optionally checks room for one request and for the new hold's
/// tokens beside those used and held, adds usage and the new hold (ARGV[12]
/// its id, '' for none; ARGV[13] tokens; ARGV[14] expiry, unix ms) — all or
/// nothing, atomically. Holds are KEYS[8] (id → tokens) and KEYS[9] (id by
/// expiry); their sum is `rsv` in the totals, which is why reserve and settle
/// run in this one script on the same keys as admission.
/// Returns {code, mr, mt, dr, dt, rsv}; code: 1 counted, 0 refused (no room),
/// -1 the key is no longer the workspace's, 2 idempotent replay (nothing
/// counted), 3 the idempotency key was used for another request.
pub(super) const ADD_SCRIPT: &str = r#"
local sec, secidx, min, minidx, tot = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now_ms = tonumber(ARGV[1])
local requests, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local check = ARGV[4] == '1'
local rpm, rpd, tpm, tpd = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local expected_key, fingerprint, idem_ttl = ARGV[9], ARGV[10], tonumber(ARGV[11])
local rsv, rsvexp = KEYS[8], KEYS[9]
local hold_id, hold_tokens, hold_expires = ARGV[12], tonumber(ARGV[13]) or 0, tonumber(ARGV[14]) or 0
local settles = ARGV[15]
local now_s = math.floor(now_ms / 1000)
local now_m = math.floor(now_ms / 60000)

if expected_key ~= '' then
  local current = redis.call('GET', KEYS[6])
  if current and current ~= expected_key then return {-1, 0, 0, 0, 0, 0} end
end
if fingerprint ~= '' then
  local prior = redis.call('GET', KEYS[7])
  if prior then
    if prior == fingerprint then return {2, 0, 0, 0, 0, 0} end
    return {3, 0, 0, 0, 0, 0}
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

local function release(id)
  local held = redis.call('HGET', rsv, id)
  if held then
    redis.call('HINCRBY', tot, 'rsv', -tonumber(held))
    redis.call('HDEL', rsv, id)
  end
  redis.call('ZREM', rsvexp, id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', rsvexp, '-inf', now_ms)) do release(id) end
if settles ~= '' then
  for id in string.gmatch(settles, '[^,]+') do release(id) end
end

local t = redis.call('HMGET', tot, 'mr', 'mt', 'dr', 'dt', 'rsv')
local mr, mt, dr, dt = tonumber(t[1] or 0) or 0, tonumber(t[2] or 0) or 0, tonumber(t[3] or 0) or 0, tonumber(t[4] or 0) or 0
local held = math.max(tonumber(t[5] or 0) or 0, 0)
-- A request needs at least one token of room; a hold needs all of its own.
local need = math.max(hold_tokens, 1)

if check and (mr + 1 > rpm or dr + 1 > rpd or mt + held + need > tpm or dt + held + need > tpd) then
  return {0, mr, mt, dr, dt, held}
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
end
if hold_id ~= '' then
  redis.call('HSET', rsv, hold_id, hold_tokens)
  redis.call('ZADD', rsvexp, hold_expires, hold_id)
  redis.call('HINCRBY', tot, 'rsv', hold_tokens)
  held = held + hold_tokens
end
if requests > 0 or tokens > 0 or hold_id ~= '' then
  -- Idle workspaces cost nothing: everything expires a day after last use.
  for _, k in ipairs({sec, secidx, min, minidx, tot, rsv, rsvexp}) do redis.call('EXPIRE', k, 90000) end
end
return {1, mr + requests, mt + tokens, dr + requests, dt + tokens, held}
"#;

/// Reconciliation of one workspace: the running totals admission decides
/// by (`tot`: mr, mt, dr, dt, rsv) against what they are the sum of — the
/// second and minute buckets and the holds — and holds without an expiry
/// (which would never be released). Buckets past their window count on both
/// sides until the next admission evicts them, so no clock is needed. With
/// ARGV[1] = '1' a difference is repaired (totals set to the sums, orphan
/// holds released), atomically, so admission is exact again.
/// Returns {mr, mt, dr, dt, rsv, orphans}: totals minus sums, and the count
/// of orphan holds.
pub(super) const RECONCILE_SCRIPT: &str = r#"
local sec, min, tot, rsv, rsvexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local repair = ARGV[1] == '1'
local function sums(hash)
  local r, t = 0, 0
  for _, v in ipairs(redis.call('HVALS', hash)) do
    local a, b = string.match(v, '(%d+):(%d+)')
    r, t = r + (tonumber(a) or 0), t + (tonumber(b) or 0)
  end
  return r, t
end
local sr, st = sums(sec)
local mr, mt = sums(min)
local held, orphans = 0, {}
local holds = redis.call('HGETALL', rsv)
for i = 1, #holds, 2 do
  if redis.call('ZSCORE', rsvexp, holds[i]) then
    held = held + (tonumber(holds[i + 1]) or 0)
  else
    orphans[#orphans + 1] = holds[i]
  end
end
local t = redis.call('HMGET', tot, 'mr', 'mt', 'dr', 'dt', 'rsv')
local function n(v) return tonumber(v or 0) or 0 end
local diff = {n(t[1]) - sr, n(t[2]) - st, n(t[3]) - mr, n(t[4]) - mt, n(t[5]) - held, #orphans}
if repair and (diff[1] ~= 0 or diff[2] ~= 0 or diff[3] ~= 0 or diff[4] ~= 0 or diff[5] ~= 0 or #orphans > 0) then
  for _, id in ipairs(orphans) do redis.call('HDEL', rsv, id) end
  if redis.call('EXISTS', tot) == 1 then
    redis.call('HSET', tot, 'mr', sr, 'mt', st, 'dr', mr, 'dt', mt, 'rsv', held)
  end
end
return diff
"#;

/// What a reconciliation pass found for one workspace (totals minus the
/// sums they should equal; 0 everywhere when all is well).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    pub minute_requests: i64,
    pub minute_tokens: i64,
    pub day_requests: i64,
    pub day_tokens: i64,
    pub reserved_tokens: i64,
    /// Holds with no expiry (never released on their own).
    pub orphan_holds: i64,
}

impl Drift {
    pub(super) fn decode(reply: &[i64]) -> Self {
        let get = |i: usize| reply.get(i).copied().unwrap_or(0);
        Self {
            minute_requests: get(0),
            minute_tokens: get(1),
            day_requests: get(2),
            day_tokens: get(3),
            reserved_tokens: get(4),
            orphan_holds: get(5),
        }
    }

    /// Requests off, in either direction, across both windows.
    pub fn requests(&self) -> u64 {
        self.minute_requests.unsigned_abs() + self.day_requests.unsigned_abs()
    }

    /// Tokens off, in either direction, across both windows.
    pub fn tokens(&self) -> u64 {
        self.minute_tokens.unsigned_abs() + self.day_tokens.unsigned_abs()
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// What one [`RedisShared::add`](super::RedisShared::add) should do besides adding usage.
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
    /// Tokens to hold for the call being admitted (with `limits`, they must
    /// fit beside those used and held).
    pub hold: Option<Hold>,
    /// Holds to release (the calls they were for have settled).
    pub settles: Vec<String>,
}

/// How an [`RedisShared::add`](super::RedisShared::add) ended.
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
    /// Tokens held for calls in flight on every instance.
    pub reserved_tokens: u64,
}

/// Reads the admission script's reply `{code, mr, mt, dr, dt, rsv}` (see
/// [`ADD_SCRIPT`]); missing or negative numbers read as 0.
pub(super) fn decode_add_reply(result: &[i64]) -> SharedTotals {
    let get = |i: usize| result.get(i).copied().unwrap_or(0).max(0) as u64;
    let code = match result.first().copied().unwrap_or(0) {
        1 => AddCode::Counted,
        -1 => AddCode::KeyChanged,
        2 => AddCode::Replayed,
        3 => AddCode::Mismatch,
        _ => AddCode::Refused,
    };
    SharedTotals {
        code,
        admitted: code == AddCode::Counted,
        minute_requests: get(1),
        minute_tokens: get(2),
        day_requests: get(3),
        day_tokens: get(4),
        reserved_tokens: get(5),
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_add_reply, AddCode};

    #[test]
    fn add_reply_codes_and_totals() {
        let counted = decode_add_reply(&[1, 2, 30, 4, 50]);
        assert_eq!(counted.code, AddCode::Counted);
        assert!(counted.admitted);
        assert_eq!(
            (
                counted.minute_requests,
                counted.minute_tokens,
                counted.day_requests,
                counted.day_tokens
            ),
            (2, 30, 4, 50)
        );
        for (code, expected) in [
            (0, AddCode::Refused),
            (-1, AddCode::KeyChanged),
            (2, AddCode::Replayed),
            (3, AddCode::Mismatch),
            (7, AddCode::Refused),
        ] {
            let reply = decode_add_reply(&[code, 0, 0, 0, 0]);
            assert_eq!(reply.code, expected, "code {code}");
            assert!(!reply.admitted, "code {code}");
        }
    }

    #[test]
    fn short_or_negative_replies_read_as_zero() {
        let reply = decode_add_reply(&[1, -5]);
        assert_eq!(reply.minute_requests, 0);
        assert_eq!(reply.day_tokens, 0);
        assert_eq!(decode_add_reply(&[]).code, AddCode::Refused);
    }
}
