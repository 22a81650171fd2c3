//! `use_quota_monitor`: one workspace's quota, live.
//!
//! Over the WebSocket (`/api/quota/ws`, authenticated by the session cookie) it
//! keeps a snapshot, the connection state and the last status change as
//! signals. A dropped connection is retried with exponential backoff and jitter
//! (capped); every (re)connection starts with `quota_initial`, which replaces
//! whatever was known, so nothing missed while away survives. Heartbeats are
//! answered; a server silent for too long counts as gone. While disconnected,
//! the `get_status` server function is polled so the page stays current.
//!
//! On the server (and before hydration) the hook only holds the snapshot it was
//! given, which is what the server rendered.

use crate::wire::{QuotaSnapshot, QuotaStatus};
use leptos::prelude::*;

/// First retry after about this long; doubles per failure.
pub const BACKOFF_BASE_MS: f64 = 500.0;
/// Retries are never further apart than this.
pub const BACKOFF_CAP_MS: f64 = 10_000.0;
/// After this many failures in a row the state reads "offline" (retries go on).
pub const OFFLINE_AFTER_FAILURES: u32 = 6;
/// While disconnected, the status is polled this often.
pub const POLL_EVERY_MS: f64 = 5_000.0;
/// The server pings every 15 s; this long without a word means it is gone.
pub const SILENCE_LIMIT_MS: u32 = 50_000;

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

/// The signals of [`use_quota_monitor`]. `Copy`: pass it around freely.
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

/// Backoff before attempt `failures + 1` (`failures` ≥ 1 in a row): doubling
/// from [`BACKOFF_BASE_MS`], capped at [`BACKOFF_CAP_MS`], then scaled by
/// `0.5 + jitter / 2` (`jitter` in 0..1) so that many browsers dropped at once
/// do not return in lockstep.
pub fn backoff_ms(failures: u32, jitter: f64) -> f64 {
    let doubled = BACKOFF_BASE_MS * 2f64.powi(failures.saturating_sub(1).min(20) as i32);
    doubled.min(BACKOFF_CAP_MS) * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Whether `incoming` replaces `current`: always on a resync (a new connection
/// or a poll: the server may have restarted with fresh versions), otherwise
/// only if it is not older.
pub fn accepts(current: &QuotaSnapshot, incoming: &QuotaSnapshot, resync: bool) -> bool {
    resync || incoming.workspace_id != current.workspace_id || incoming.version >= current.version
}

/// Starts watching a workspace. `initial` is the server-rendered snapshot;
/// `target` names the workspace for an admin session (a workspace session
/// watches its own).
pub fn use_quota_monitor(initial: QuotaSnapshot, target: Option<String>) -> QuotaMonitor {
    let (snapshot, set_snapshot) = signal(initial);
    let (received_at, set_received_at) = signal(None::<f64>);
    let (connection, set_connection) = signal(ConnectionState::Connecting);
    let (last_change, set_last_change) = signal(None::<StatusChange>);
    let (next_attempt_at, set_next_attempt_at) = signal(None::<f64>);
    let (polled_at, set_polled_at) = signal(None::<f64>);
    let (session_ended, set_session_ended) = signal(false);
    let retry = RwSignal::new(false);

    let parts = Parts {
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
            parts
                .set_received_at
                .set(Some(crate::ui::hooks::use_ticker::now_ms()));
            #[cfg(feature = "hydrate")]
            live::start(parts.clone());
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

#[derive(Clone)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
struct Parts {
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
impl Parts {
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
        self.set_received_at
            .try_set(Some(crate::ui::hooks::use_ticker::now_ms()));
        self.set_snapshot.try_set(incoming);
    }
}

#[cfg(feature = "hydrate")]
mod live {
    use super::*;
    use crate::server_fns::status::get_status;
    use crate::ui::hooks::use_ticker::now_ms;
    use crate::wire::WsMessage;
    use futures_util::future::{abortable, select, Either};
    use futures_util::{SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message};
    use gloo_timers::future::TimeoutFuture;
    use leptos::web_sys::js_sys::Math;

    pub fn start(parts: Parts) {
        let (socket, socket_abort) = abortable(socket_loop(parts.clone()));
        let (poll, poll_abort) = abortable(poll_loop(parts.clone()));
        leptos::task::spawn_local(async move {
            let _ = socket.await;
        });
        leptos::task::spawn_local(async move {
            let _ = poll.await;
        });
        // Back online: try at once instead of waiting out the backoff.
        let retry = parts.retry;
        let online = window_event_listener_untyped("online", move |_| {
            retry.try_set(true);
        });
        // Leaving the page stops both loops; dropping the socket closes it.
        on_cleanup(move || {
            socket_abort.abort();
            poll_abort.abort();
            online.remove();
        });
    }

    async fn socket_loop(parts: Parts) {
        let url = socket_url(parts.target.as_deref());
        let mut failures: u32 = 0;
        loop {
            // Offline, an attempt can only fail: wait for the network.
            while !browser_online() {
                parts.set_connection.try_set(ConnectionState::Offline);
                parts.set_next_attempt_at.try_set(None);
                TimeoutFuture::new(250).await;
            }
            if let Some(url) = &url {
                if connect_once(&parts, url).await {
                    failures = 0;
                }
            }
            failures = failures.saturating_add(1);
            let state = if failures > OFFLINE_AFTER_FAILURES || !browser_online() {
                ConnectionState::Offline
            } else {
                ConnectionState::Reconnecting
            };
            parts.set_connection.try_set(state);
            let delay = backoff_ms(failures, Math::random());
            parts.set_next_attempt_at.try_set(Some(now_ms() + delay));
            wait(delay, parts.retry).await;
            parts.set_next_attempt_at.try_set(None);
        }
    }

    /// One connection, until it ends. True when the server answered at all.
    async fn connect_once(parts: &Parts, url: &str) -> bool {
        let Ok(socket) = WebSocket::open(url) else {
            return false;
        };
        let (mut write, mut read) = socket.split();
        let mut answered = false;
        // The browser going offline ends the connection at once (a socket may
        // otherwise look open for a long time).
        let mut offline = Box::pin(async {
            while browser_online() {
                TimeoutFuture::new(500).await;
            }
        });
        loop {
            let silence = select(TimeoutFuture::new(SILENCE_LIMIT_MS), &mut offline);
            let next = select(read.next(), silence).await;
            let text = match next {
                Either::Left((Some(Ok(Message::Text(text))), _)) => text,
                Either::Left((Some(Ok(Message::Bytes(_))), _)) => continue,
                // Closed, failed, silent for too long, or offline.
                Either::Left((Some(Err(_)) | None, _)) | Either::Right(_) => break,
            };
            match serde_json::from_str::<WsMessage>(&text) {
                Ok(WsMessage::QuotaInitial { data }) => {
                    answered = true;
                    parts.apply(data, true);
                    parts.set_connection.try_set(ConnectionState::Connected);
                    parts.set_session_ended.try_set(false);
                }
                Ok(WsMessage::QuotaUpdate { data, .. }) => parts.apply(data, false),
                Ok(WsMessage::Ping) => {
                    let pong = serde_json::to_string(&WsMessage::Pong)
                        .unwrap_or_else(|_| r#"{"type":"pong"}"#.to_string());
                    if write.send(Message::Text(pong)).await.is_err() {
                        break;
                    }
                }
                Ok(WsMessage::Pong) => {}
                Err(e) => leptos::logging::warn!("quota monitor: unreadable message ({e})"),
            }
        }
        answered
    }

    /// While the socket is down, asks the server function instead.
    async fn poll_loop(parts: Parts) {
        let mut last_poll: Option<f64> = None;
        loop {
            TimeoutFuture::new(1_000).await;
            let connected =
                parts.connection.try_get_untracked() == Some(ConnectionState::Connected);
            if connected || !browser_online() {
                last_poll = None;
                continue;
            }
            let now = now_ms();
            if last_poll.is_some_and(|at| now - at < POLL_EVERY_MS) {
                continue;
            }
            last_poll = Some(now);
            match get_status(parts.target.clone()).await {
                Ok(Some(snapshot)) => {
                    // The socket may have come back meanwhile: it is fresher.
                    if parts.connection.try_get_untracked() != Some(ConnectionState::Connected) {
                        parts.apply(snapshot, true);
                        parts.set_polled_at.try_set(Some(now_ms()));
                    }
                    parts.set_session_ended.try_set(false);
                }
                Ok(None) => {
                    parts.set_session_ended.try_set(true);
                }
                // The server is unreachable too: keep showing the last snapshot.
                Err(_) => {}
            }
        }
    }

    /// Sleeps `ms`, cut short by a retry request.
    async fn wait(ms: f64, retry: RwSignal<bool>) {
        let until = now_ms() + ms;
        while now_ms() < until {
            if retry.try_get_untracked() == Some(true) {
                retry.try_set(false);
                return;
            }
            let step = (until - now_ms()).clamp(1.0, 200.0) as u32;
            TimeoutFuture::new(step).await;
        }
    }

    fn browser_online() -> bool {
        window().navigator().on_line()
    }

    fn socket_url(target: Option<&str>) -> Option<String> {
        let location = window().location();
        let scheme = if location.protocol().ok().as_deref() == Some("https:") {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().ok()?;
        let query = target
            .map(|id| format!("?workspace_id={}", encode(id)))
            .unwrap_or_default();
        Some(format!("{scheme}://{host}/api/quota/ws{query}"))
    }

    fn encode(value: &str) -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WindowUsage;

    fn snapshot(id: &str, version: u64, status: QuotaStatus) -> QuotaSnapshot {
        let window = WindowUsage {
            current: 0,
            limit: 10,
            percentage: 0.0,
            resets_in_s: 0.0,
        };
        QuotaSnapshot {
            workspace_id: id.into(),
            status,
            message: String::new(),
            requests_per_minute: window,
            requests_per_day: window,
            tokens_per_minute: window,
            tokens_per_day: window,
            retry_after_s: None,
            last_error: None,
            upstream_limits: None,
            updated_at: String::new(),
            version,
        }
    }

    #[test]
    fn updates_never_go_back_but_a_resync_always_wins() {
        let current = snapshot("a", 10, QuotaStatus::Warning);
        assert!(accepts(
            &current,
            &snapshot("a", 11, QuotaStatus::Normal),
            false
        ));
        assert!(accepts(
            &current,
            &snapshot("a", 10, QuotaStatus::Warning),
            false
        ));
        assert!(!accepts(
            &current,
            &snapshot("a", 9, QuotaStatus::Normal),
            false
        ));
        // After a restart the server counts versions afresh.
        assert!(accepts(
            &current,
            &snapshot("a", 1, QuotaStatus::Normal),
            true
        ));
        assert!(accepts(
            &current,
            &snapshot("b", 1, QuotaStatus::Normal),
            false
        ));
    }

    #[test]
    fn backoff_doubles_then_caps_with_jitter() {
        assert_eq!(backoff_ms(1, 1.0), 500.0);
        assert_eq!(backoff_ms(2, 1.0), 1000.0);
        assert_eq!(backoff_ms(3, 1.0), 2000.0);
        assert_eq!(backoff_ms(10, 1.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(u32::MAX, 1.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(1, 0.0), 250.0);
        assert_eq!(backoff_ms(10, 0.0), BACKOFF_CAP_MS / 2.0);
    }
}
