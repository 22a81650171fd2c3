//! The polling fallback (browser only): while the socket is down, the
//! `get_status` server function keeps the snapshot current and tells whether
//! the session still exists.

use super::policy::POLL_EVERY_MS;
use super::{browser_online, ConnectionState, MonitorSignals};
use crate::server_fns::status::get_status;
use crate::ui::hooks::use_ticker::now_ms;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;

/// While the socket is down, asks the server function instead; until aborted.
pub(super) async fn poll_loop(signals: MonitorSignals) {
    let mut last_poll: Option<f64> = None;
    loop {
        TimeoutFuture::new(1_000).await;
        let connected = signals.connection.try_get_untracked() == Some(ConnectionState::Connected);
        if connected || !browser_online() {
            last_poll = None;
            continue;
        }
        let now = now_ms();
        if last_poll.is_some_and(|at| now - at < POLL_EVERY_MS) {
            continue;
        }
        last_poll = Some(now);
        match get_status(signals.target.clone()).await {
            Ok(Some(snapshot)) => {
                // The socket may have come back meanwhile: it is fresher.
                if signals.connection.try_get_untracked() != Some(ConnectionState::Connected) {
                    signals.apply(snapshot, true);
                    signals.set_polled_at.try_set(Some(now_ms()));
                }
                signals.set_session_ended.try_set(false);
            }
            Ok(None) => {
                signals.set_session_ended.try_set(true);
            }
            // The server is unreachable too: keep showing the last snapshot.
            Err(_) => {}
        }
    }
}
