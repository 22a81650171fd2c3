//! The shared usage counters: per-second and per-minute buckets with running
//! totals, changed only by the admission script.

use super::scripts::{decode_add_reply, Drift};
use super::{AddGuard, RedisShared, SharedTotals};
use crate::store::{StoreError, IDEMPOTENCY_TTL_MS};
use crate::wire::Limits;
use redis::AsyncCommands;

impl RedisShared {
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
            .key(k("rsv"))
            .key(k("rsvexp"))
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
            .arg(IDEMPOTENCY_TTL_MS)
            .arg(
                guard
                    .hold
                    .as_ref()
                    .map_or("", |h| h.reservation_id.as_str()),
            )
            .arg(guard.hold.as_ref().map_or(0, |h| h.tokens))
            .arg(guard.hold.as_ref().map_or(0, |h| h.expires_at_ms))
            .arg(guard.settles.join(","))
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed("add usage", e))?;
        Ok(decode_add_reply(&result))
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

    /// Compares the workspace's running totals with the buckets and holds
    /// they sum, and with `repair` sets them right (see
    /// [`RECONCILE_SCRIPT`](super::scripts::RECONCILE_SCRIPT)); what differed.
    pub async fn reconcile(&self, workspace: &str, repair: bool) -> Result<Drift, StoreError> {
        let mut con = self.connection.clone();
        let k = |suffix: &str| format!("qa:{{{workspace}}}:{suffix}");
        let reply: Vec<i64> = self
            .reconcile_script
            .key(k("sec"))
            .key(k("min"))
            .key(k("tot"))
            .key(k("rsv"))
            .key(k("rsvexp"))
            .arg(if repair { "1" } else { "0" })
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed("reconcile usage", e))?;
        Ok(Drift::decode(&reply))
    }

    /// The ids of the workspace's holds as Redis has them (expired ones
    /// not yet evicted included: they are expired everywhere alike).
    pub async fn hold_ids(
        &self,
        workspace: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut con = self.connection.clone();
        con.hkeys(format!("qa:{{{workspace}}}:rsv"))
            .await
            .map_err(|e| self.failed("load holds", e))
    }

    pub async fn clear_usage(&self, workspace: &str) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let keys: Vec<String> = ["sec", "secidx", "min", "minidx", "tot", "rsv", "rsvexp"]
            .iter()
            .map(|s| format!("qa:{{{workspace}}}:{s}"))
            .collect();
        con.del::<_, ()>(keys)
            .await
            .map_err(|e| self.failed("clear usage", e))
    }
}

fn k_idem(workspace: &str, key_digest_hex: &str) -> String {
    format!("qa:{{{workspace}}}:idem:{key_digest_hex}")
}
