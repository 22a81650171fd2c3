//! Crossing instances: events published on [`EVENTS_CHANNEL`], the key and
//! session epochs every instance polls, and one-per-cluster claims.

use super::{RedisShared, EVENTS_CHANNEL, KEY_EPOCH, SESSION_EPOCH};
use crate::store::StoreError;
use redis::AsyncCommands;

impl RedisShared {
    /// How many key changes Redis has seen (`qa:keyepoch` in the layout,
    /// `store::redis`).
    pub async fn key_epoch(&self) -> Result<u64, StoreError> {
        let mut con = self.connection.clone();
        let epoch: Option<u64> = con
            .get(KEY_EPOCH)
            .await
            .map_err(|e| self.failed("read key epoch", e))?;
        Ok(epoch.unwrap_or(0))
    }

    /// The key epoch and the session epoch (see the layout in `store::redis`),
    /// in one read.
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
}
