//! Catching up with Redis: a key this instance does not know (looked up,
//! bounded), a key change it missed, and full reloads of keys and sessions
//! on every (re)subscribe and whenever an epoch moved.

use super::{decode_digest, Shared};
use crate::auth::key_digest;
use crate::service::QuotaService;
use crate::store::redis::{RedisShared, SharedWorkspace, REVOKED_DIGEST_HEX};
use crate::store::StoreError;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl QuotaService {
    /// The digest this instance holds for the workspace's key (hex), as
    /// Redis should still have it.
    pub(in crate::service) fn expected_key(&self, id: &str) -> String {
        self.inner
            .registry
            .current_digest(id)
            .map(hex::encode)
            .unwrap_or_else(|| REVOKED_DIGEST_HEX.to_string())
    }

    /// Redis said the workspace's key is not the one this instance holds:
    /// take Redis's.
    pub(in crate::service) async fn reload_workspace_key(&self, id: &str) {
        let Some(shared) = self.backend().redis() else {
            return;
        };
        match shared.redis.current_key(id).await {
            Ok(Some(current)) => {
                tracing::warn!(
                    workspace_id = id,
                    "missed a key change of this workspace; reloaded it from Redis"
                );
                let digest = (current != REVOKED_DIGEST_HEX).then_some(current.as_str());
                self.apply_key_change(id, digest);
            }
            Ok(None) => {}
            Err(e) => self.backend().report(&e),
        }
    }

    /// Makes sure a key this instance does not know has been looked up in
    /// Redis (a key created or rotated on another instance a moment ago).
    /// Call before authenticating; cheap for known keys and without Redis.
    pub async fn learn_key(&self, key: &str) {
        let Some(shared) = self.backend().redis() else {
            return;
        };
        if self.inner.registry.knows(key) {
            return;
        }
        let digest = key_digest(key);
        let lookups = &self.inner.lookups;
        if lookups.recently_unknown(&digest) || lookups.budget.check().is_err() {
            return;
        }
        match shared.redis.lookup_key(&hex::encode(digest)).await {
            Ok(Some(workspace)) => self.learn_workspace(&shared.redis, &workspace).await,
            Ok(None) => lookups.remember_unknown(digest),
            Err(e) => self.backend().report(&e),
        }
    }

    /// Applies a workspace as Redis holds it: created here if new (with its
    /// day of usage), its key replaced if it changed.
    pub(super) async fn learn_workspace(&self, redis: &RedisShared, w: &SharedWorkspace) {
        if !self.engine().contains(&w.id) {
            self.apply_created(&w.id, &w.key_digest, w.limits);
            if w.settings.is_some() {
                self.apply_settings(&w.id, w.limits, w.settings.as_deref());
            }
            if let Ok(buckets) = redis.load_day_buckets(&w.id).await {
                for (minute, requests, tokens) in buckets {
                    let _ = self
                        .engine()
                        .restore_usage(&w.id, minute * 60_000, requests, tokens);
                }
            }
            let _ = self.engine().settle(&w.id);
            self.inner.lookups.forget_unknown();
            return;
        }
        // Settings changed while this instance was not listening.
        if let Ok((limits, settings)) = self.engine().settings(&w.id) {
            if limits != w.limits || crate::service::settings::stored_form(&settings) != w.settings
            {
                self.apply_settings(&w.id, w.limits, w.settings.as_deref());
            }
        }
        if self.expected_key(&w.id) != w.key_digest {
            let digest = (w.key_digest != REVOKED_DIGEST_HEX).then_some(w.key_digest.as_str());
            self.apply_key_change(&w.id, digest);
            self.inner.lookups.forget_unknown();
        }
    }

    /// Reloads every workspace's key and every session from Redis: what
    /// this instance may have missed while it was not subscribed. Usage of
    /// workspaces already known is not reloaded (Redis decides admission;
    /// the local view catches up with the next events).
    pub(super) async fn shared_reload(&self) -> Result<(), StoreError> {
        let Some(shared) = self.backend().redis().cloned() else {
            return Ok(());
        };
        let _one_at_a_time = self.inner.lookups.reloading.lock().await;
        // Read before loading: a change made during the load moves an epoch
        // past what is stored below, and the next poll loads again.
        let (epoch, session_epoch) = shared.redis.epochs().await?;
        let workspaces = shared.redis.load_workspaces().await?;
        for w in &workspaces {
            self.learn_workspace(&shared.redis, w).await;
        }
        let keyed: HashSet<&str> = workspaces
            .iter()
            .filter(|w| w.key_digest != REVOKED_DIGEST_HEX)
            .map(|w| w.id.as_str())
            .collect();
        self.reload_sessions(&shared, |id| keyed.contains(id))
            .await?;
        self.inner.lookups.epoch.store(epoch, Ordering::Release);
        self.inner
            .lookups
            .session_epoch
            .store(session_epoch, Ordering::Release);
        Ok(())
    }

    /// Reloads only the sessions (the session epoch moved, the key epoch did
    /// not): a session ended on another instance whose `session_closed`
    /// event never arrived here ends here too. The workspaces whose keys
    /// this instance holds are the ones whose sessions can act.
    pub(super) async fn shared_reload_sessions(&self) -> Result<(), StoreError> {
        let Some(shared) = self.backend().redis().cloned() else {
            return Ok(());
        };
        let _one_at_a_time = self.inner.lookups.reloading.lock().await;
        let (_, session_epoch) = shared.redis.epochs().await?;
        let registry = &self.inner.registry;
        self.reload_sessions(&shared, |id| registry.current_digest(id).is_some())
            .await?;
        self.inner
            .lookups
            .session_epoch
            .store(session_epoch, Ordering::Release);
        Ok(())
    }

    /// Sessions stored in Redis are restored (those of a workspace for
    /// which `keyed` holds); sessions known here before the
    /// load that Redis no longer has (signed out or ended elsewhere) are
    /// forgotten. One opened here during the load is not in the first list,
    /// so it is never forgotten by mistake.
    async fn reload_sessions(
        &self,
        shared: &Shared,
        keyed: impl Fn(&str) -> bool,
    ) -> Result<(), StoreError> {
        let known_before = self.inner.sessions.digests();
        let now = self.engine().now_ms();
        let loaded = shared.redis.load_sessions(now).await?;
        let keyed: HashSet<&str> = loaded
            .iter()
            .filter_map(|(_, session)| session.workspace_id.as_deref())
            .filter(|id| keyed(id))
            .collect();
        let mut stored = HashSet::new();
        for (digest_hex, session) in &loaded {
            if let Some(digest) = decode_digest(digest_hex) {
                stored.insert(digest);
                let stored =
                    crate::service::session_lifecycle::stored_from_shared(digest, session.clone());
                self.restore_session(stored, now, &keyed);
            }
        }
        for digest in known_before {
            if !stored.contains(&digest) {
                self.apply_session_closed(digest);
            }
        }
        Ok(())
    }
}
