//! Per-workspace event bus. One `watch` channel per workspace that has
//! subscribers: publishers overwrite the latest snapshot and never wait, so a slow
//! WebSocket can never hold up the engine — it just sees the newest state when it
//! gets round to reading (latest snapshot wins). Snapshots are only built when
//! somebody is listening, which keeps recording cheap.

use crate::wire::QuotaSnapshot;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::watch;

pub type SnapshotReceiver = watch::Receiver<Option<Arc<QuotaSnapshot>>>;

#[derive(Default)]
pub struct Bus {
    channels: DashMap<String, watch::Sender<Option<Arc<QuotaSnapshot>>>>,
}

impl Bus {
    pub fn subscribe(&self, id: &str) -> SnapshotReceiver {
        self.channels
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Publishes a snapshot built by `build`, if anyone listens. Out-of-order
    /// publishes (two records racing) are dropped by comparing versions.
    pub fn publish_with(&self, id: &str, build: impl FnOnce() -> Option<QuotaSnapshot>) {
        let Some(sender) = self.live_sender(id) else {
            return;
        };
        let Some(snapshot) = build() else { return };
        sender.send_if_modified(|current| {
            let newer = current
                .as_ref()
                .is_none_or(|c| snapshot.version > c.version || snapshot.status != c.status);
            if newer {
                *current = Some(Arc::new(snapshot));
            }
            newer
        });
    }

    /// Publishes only if the windows' counts moved since the last publish (time
    /// passing, not a new record).
    pub fn refresh_with(&self, id: &str, build: impl FnOnce() -> Option<QuotaSnapshot>) {
        let Some(sender) = self.live_sender(id) else {
            return;
        };
        let Some(snapshot) = build() else { return };
        sender.send_if_modified(|current| {
            // Nothing published yet: subscribers started from a fresh snapshot of
            // their own, so store this one as the baseline without waking them.
            let Some(c) = current.as_ref() else {
                *current = Some(Arc::new(snapshot));
                return false;
            };
            let moved = {
                c.status != snapshot.status
                    || c.requests_per_minute.current != snapshot.requests_per_minute.current
                    || c.requests_per_day.current != snapshot.requests_per_day.current
                    || c.tokens_per_minute.current != snapshot.tokens_per_minute.current
                    || c.tokens_per_day.current != snapshot.tokens_per_day.current
            };
            if moved {
                *current = Some(Arc::new(snapshot));
            }
            moved
        });
    }

    /// Workspaces somebody is listening to; drops channels nobody listens to.
    pub fn subscribed_ids(&self) -> Vec<String> {
        self.channels
            .retain(|_, sender| sender.receiver_count() > 0);
        self.channels.iter().map(|e| e.key().clone()).collect()
    }

    fn live_sender(&self, id: &str) -> Option<watch::Sender<Option<Arc<QuotaSnapshot>>>> {
        let entry = self.channels.get(id)?;
        (entry.receiver_count() > 0).then(|| entry.clone())
    }
}
