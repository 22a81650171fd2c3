//! The service's life: the ticker that turns the passing of time into
//! status changes (and probes and prunes the store), store health, and a
//! shutdown you can see: signalled, then every background task drained and
//! the store closed.

use super::QuotaService;
use std::sync::Arc;
use std::time::Duration;

/// Old usage and history are pruned about every 15 minutes (at 250 ms ticks).
const PRUNE_EVERY_TICKS: u64 = 3_600;

/// How long shutdown waits for background writes before giving up on them.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

impl QuotaService {
    /// Starts the ticker on the current tokio runtime. It holds only a weak
    /// reference, so it ends when the last service handle is dropped, and
    /// it ends at once when shutdown is signalled.
    pub fn spawn_ticker(&self) {
        let weak = Arc::downgrade(&self.inner);
        let period = Duration::from_millis(self.inner.config.tick_ms.max(10));
        self.spawn_until_shutdown(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut count: u64 = 0;
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                count += 1;
                let service = QuotaService { inner };
                // Usage meters slide slowly; refreshing them once a second is plenty.
                service.tick(count.is_multiple_of(4));
                if !service.engine().store_healthy() && count.is_multiple_of(8) {
                    service.probe_store().await;
                }
                if count.is_multiple_of(PRUNE_EVERY_TICKS) {
                    service.prune().await;
                }
            }
        });
    }

    /// Runs one of the service's own long-lived tasks (the ticker; under
    /// Redis the subscription and the epoch poll): tracked, and dropped at
    /// its next await once [`shutdown`](Self::shutdown) runs. Not at
    /// SIGTERM: while in-flight requests drain, time-driven transitions and
    /// other instances' events must still be applied.
    pub(super) fn spawn_until_shutdown(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let stop = self.inner.stop_tasks.clone();
        // Dropped with the service too: a task blocked on Redis (no message
        // coming) must not outlive the last handle.
        let mut service_alive = self.shutdown_signal();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = stop.cancelled() => {}
                () = async { while service_alive.changed().await.is_ok() {} } => {}
            }
        });
    }

    /// Tells long-lived connections (WebSockets) that the server is going
    /// away (at SIGTERM, before in-flight requests drain).
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Ends the service after the server stopped taking requests: signals
    /// shutdown, waits for the ticker (and, under Redis, the subscription
    /// and epoch poll) to stop, then for every background write (usage,
    /// transitions, events, session refreshes) to land, then closes the
    /// store, then delivers the webhook alerts already queued: all of it
    /// within `limit`. `false` if something was still running then.
    pub async fn shutdown(&self, limit: Duration) -> bool {
        self.begin_shutdown();
        self.inner.stop_tasks.cancel();
        let tasks = &self.inner.tasks;
        tasks.close();
        // One deadline for every wait: an orchestrator's grace period is
        // one number too.
        let deadline = tokio::time::Instant::now() + limit;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let stopped = tokio::time::timeout(left(), tasks.wait()).await.is_ok();
        let drained = self.backend().drain(left()).await;
        // Last: the drain above may still have changed a status.
        let alerted = match self.inner.alerts.get() {
            Some(alerts) => alerts.drain(left()).await,
            None => true,
        };
        let drained = drained && alerted;
        if stopped && drained {
            tracing::info!("background work drained; store closed");
        } else {
            tracing::warn!(?limit, "shutdown gave up waiting for background work");
        }
        stopped && drained
    }

    /// The store failed: every workspace becomes DEGRADED until the probe
    /// (every 2 s, from the ticker) reaches it again.
    pub(super) fn mark_store_unhealthy(&self) {
        for t in self.engine().set_store_healthy(false) {
            self.publish_transition(&t);
        }
    }

    /// Called by the ticker while the store is unhealthy.
    pub(super) async fn probe_store(&self) {
        let backend = self.backend();
        if !backend.is_persistent() || !backend.ping().await {
            return;
        }
        tracing::info!("usage store reachable again");
        for t in self.engine().set_store_healthy(true) {
            self.publish_transition(&t);
        }
    }

    /// Forgets expired sessions here and deletes what expired from the store.
    pub(super) async fn prune(&self) {
        let now = self.engine().now_ms();
        self.sweep_sessions(now);
        let history_ms = self.config().history_horizon_ms;
        self.backend().prune(now, history_ms).await;
    }
}
