//! The quota monitor: one workspace's quota, live.
//!
//! Over the WebSocket (`/api/quota/ws`, authenticated by the session cookie) it
//! keeps a snapshot, the connection state and the last status change as
//! signals. A dropped connection is retried with exponential backoff and jitter
//! (capped); every (re)connection starts with `quota_initial`, which replaces
//! whatever was known, so nothing missed while away survives. Heartbeats are
//! answered; a server silent for too long counts as gone. While disconnected,
//! the `get_status` server function is polled so the page stays current.
//!
//! On the server (and before hydration) the monitor only holds the snapshot it
//! was given, which is what the server rendered.
//!
//! By concern: `policy.rs` (backoff, offline threshold, poll interval, which
//! snapshot wins: pure, unit-tested), `socket.rs` (the WebSocket loop),
//! `polling.rs` (the `get_status` fallback); this file holds the signals, the
//! one place a snapshot is taken in ([`MonitorSignals::apply`]), and the page
//! context ([`provide_quota_monitor`], [`use_quota_monitor`]).

mod policy;
#[cfg(feature = "hydrate")]
mod polling;
#[cfg(feature = "hydrate")]
mod socket;

pub use policy::{
    accepts, backoff_ms, BACKOFF_BASE_MS, BACKOFF_CAP_MS, OFFLINE_AFTER_FAILURES, POLL_EVERY_MS,
    SILENCE_LIMIT_MS,
};

use crate::ui::hooks::use_ticker::now_ms;
use crate::wire::{QuotaSnapshot, QuotaStatus};
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first connection is being opened.
    Connecting,
    Connected,
    /// Lost; retrying.
    Reconnecting,
    /// Retries keep failing, or the browser says it is offline.
    Offline,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Offline => "offline",
        }
    }
}

/// A status change as the browser saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusChange {
    /// Increases with every change this page saw.
    pub seq: u64,
    pub workspace_id: String,
    pub from: QuotaStatus,
    pub to: QuotaStatus,
    pub message: String,
    pub retry_after_s: Option<f64>,
    /// The snapshot version that carried the change.
    pub version: u64,
}

/// The monitor's signals, read-only. `Copy`; the page provides it as context
/// ([`provide_quota_monitor`]) and components read it with
/// [`use_quota_monitor`].
#[derive(Clone, Copy)]
pub struct QuotaMonitor {
    pub snapshot: ReadSignal<QuotaSnapshot>,
    /// Browser time (ms) the snapshot arrived; durations in it count from here.
    /// `None` on the server and before hydration.
    pub received_at: ReadSignal<Option<f64>>,
    pub connection: ReadSignal<ConnectionState>,
    pub last_change: ReadSignal<Option<StatusChange>>,
    /// While disconnected: when the next attempt starts (browser ms).
    pub next_attempt_at: ReadSignal<Option<f64>>,
    /// When the polling fallback last brought a snapshot (browser ms).
    pub polled_at: ReadSignal<Option<f64>>,
    /// The server no longer knows this browser's session.
    pub session_ended: ReadSignal<bool>,
    retry: RwSignal<bool>,
}

impl QuotaMonitor {
    /// Skips the rest of the current backoff.
    pub fn retry_now(&self) {
        self.retry.set(true);
    }
}

/// Starts watching a workspace and provides the monitor to everything the
/// calling component renders. `initial` is the server-rendered snapshot;
/// `target` names the workspace for an admin session (a workspace session
/// watches its own). Called the same way on the server and in the browser, so
/// both renders see the same context.
pub fn provide_quota_monitor(initial: QuotaSnapshot, target: Option<String>) -> QuotaMonitor {
    let monitor = start_monitor(initial, target);
    provide_context(monitor);
    monitor
}

/// Watches a workspace without providing the monitor as context: for a page
/// that shows several workspaces (the dashboard), each part watching its own.
/// It stops when the calling component's owner is cleaned up.
pub fn watch_quota(initial: QuotaSnapshot, target: Option<String>) -> QuotaMonitor {
    start_monitor(initial, target)
}

/// The page's quota monitor, from context.
///
/// # Panics
/// Outside a page that called [`provide_quota_monitor`]: a component that shows
/// live quota is only placed on such a page, so this is a programming error.
pub fn use_quota_monitor() -> QuotaMonitor {
    use_context::<QuotaMonitor>()
        .expect("the page provides a QuotaMonitor (provide_quota_monitor) before rendering this")
}

fn start_monitor(initial: QuotaSnapshot, target: Option<String>) -> QuotaMonitor {
    let (snapshot, set_snapshot) = signal(initial);
    let (received_at, set_received_at) = signal(None::<f64>);
    let (connection, set_connection) = signal(ConnectionState::Connecting);
    let (last_change, set_last_change) = signal(None::<StatusChange>);
    let (next_attempt_at, set_next_attempt_at) = signal(None::<f64>);
    let (polled_at, set_polled_at) = signal(None::<f64>);
    let (session_ended, set_session_ended) = signal(false);
    let retry = RwSignal::new(false);

    let signals = MonitorSignals {
        target,
        snapshot,
        set_snapshot,
        set_received_at,
        connection,
        set_connection,
        last_change,
        set_last_change,
        set_next_attempt_at,
        set_polled_at,
        set_session_ended,
        retry,
    };
    // Effects run only in the browser, once hydrated.
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            signals.set_received_at.set(Some(now_ms()));
            #[cfg(feature = "hydrate")]
            start_live(signals.clone());
        }
    });

    QuotaMonitor {
        snapshot,
        received_at,
        connection,
        last_change,
        next_attempt_at,
        polled_at,
        session_ended,
        retry,
    }
}

/// What the socket and polling loops read and write.
#[derive(Clone)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
struct MonitorSignals {
    target: Option<String>,
    snapshot: ReadSignal<QuotaSnapshot>,
    set_snapshot: WriteSignal<QuotaSnapshot>,
    set_received_at: WriteSignal<Option<f64>>,
    connection: ReadSignal<ConnectionState>,
    set_connection: WriteSignal<ConnectionState>,
    last_change: ReadSignal<Option<StatusChange>>,
    set_last_change: WriteSignal<Option<StatusChange>>,
    set_next_attempt_at: WriteSignal<Option<f64>>,
    set_polled_at: WriteSignal<Option<f64>>,
    set_session_ended: WriteSignal<bool>,
    retry: RwSignal<bool>,
}

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
impl MonitorSignals {
    /// Takes a snapshot from the server; records a change when the status moved.
    fn apply(&self, incoming: QuotaSnapshot, resync: bool) {
        let Some(current) = self.snapshot.try_get_untracked() else {
            return;
        };
        if !accepts(&current, &incoming, resync) {
            return;
        }
        if incoming.status != current.status {
            let seq = self
                .last_change
                .try_get_untracked()
                .flatten()
                .map_or(1, |c| c.seq + 1);
            self.set_last_change.try_set(Some(StatusChange {
                seq,
                workspace_id: incoming.workspace_id.clone(),
                from: current.status,
                to: incoming.status,
                message: incoming.message.clone(),
                retry_after_s: incoming.retry_after_s,
                version: incoming.version,
            }));
        }
        self.set_received_at.try_set(Some(now_ms()));
        self.set_snapshot.try_set(incoming);
    }
}

/// Starts the socket and polling loops; leaving the page stops both.
#[cfg(feature = "hydrate")]
fn start_live(signals: MonitorSignals) {
    use futures_util::future::abortable;

    let (socket, socket_abort) = abortable(socket::socket_loop(signals.clone()));
    let (poll, poll_abort) = abortable(polling::poll_loop(signals.clone()));
    leptos::task::spawn_local(async move {
        let _ = socket.await;
    });
    leptos::task::spawn_local(async move {
        let _ = poll.await;
    });
    // Back online: try at once instead of waiting out the backoff.
    let retry = signals.retry;
    let online = window_event_listener_untyped("online", move |_| {
        retry.try_set(true);
    });
    // Dropping the socket closes it.
    on_cleanup(move || {
        socket_abort.abort();
        poll_abort.abort();
        online.remove();
    });
}

/// What the browser says about the network.
#[cfg(feature = "hydrate")]
fn browser_online() -> bool {
    window().navigator().on_line()
}
