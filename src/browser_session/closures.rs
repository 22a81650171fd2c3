//! The closure signal: the digest of every session that ends, however it
//! ends (signed out, revoked, expired, evicted by the cap, ended by the
//! admin or on another instance), on one broadcast channel, so the open
//! WebSockets of that session close at once (see `api::ws`).

use super::SessionDigest;
use tokio::sync::broadcast;

/// How many closures can queue for a slow WebSocket task before it lags; a
/// lagging one re-checks its own session instead, so nothing is missed.
const CLOSURE_QUEUE: usize = 1024;

pub(super) struct ClosureSignal {
    ended: broadcast::Sender<SessionDigest>,
}

impl ClosureSignal {
    pub(super) fn new() -> Self {
        Self {
            ended: broadcast::channel(CLOSURE_QUEUE).0,
        }
    }

    /// Digests of sessions as they end.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<SessionDigest> {
        self.ended.subscribe()
    }

    /// Tells every listener that `digest` ended. With no listener there is
    /// no socket of it to close, so a send nobody receives is fine.
    pub(super) fn ended(&self, digest: SessionDigest) {
        let _ = self.ended.send(digest);
    }
}

#[cfg(test)]
mod tests {
    use crate::browser_session::test_support::{acme, index, open, DAY_MS, T0};

    #[test]
    fn every_way_a_session_ends_is_signalled() {
        let store = index();
        let mut closures = store.closures();
        let signed_out = open(&store, acme(), T0);
        store.remove(&signed_out);
        assert_eq!(closures.try_recv().ok(), Some(signed_out));
        let revoked = open(&store, acme(), T0);
        assert_eq!(store.close_workspace("acme"), vec![revoked]);
        assert_eq!(closures.try_recv().ok(), Some(revoked));
        let expired = open(&store, acme(), T0);
        assert_eq!(store.ends_at(&expired, T0), Some(T0 + 7 * DAY_MS));
        assert_eq!(store.ends_at(&expired, T0 + 7 * DAY_MS), None);
        assert_eq!(closures.try_recv().ok(), Some(expired));
        let swept = open(&store, acme(), T0);
        store.sweep(T0 + 8 * DAY_MS);
        assert_eq!(closures.try_recv().ok(), Some(swept));
        assert!(store.is_empty());
        assert_eq!(store.count_of(Some("acme")), 0);
    }
}
