//! The WebSocket side of the monitor (browser only): connect, read until the
//! connection ends, wait out the backoff, connect again.

use super::policy::{backoff_ms, OFFLINE_AFTER_FAILURES, SILENCE_LIMIT_MS};
use super::{browser_online, ConnectionState, MonitorSignals};
use crate::ui::hooks::use_ticker::now_ms;
use crate::wire::WsMessage;
use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::web_sys::js_sys::Math;

/// Connects, and reconnects after every ending, until aborted.
pub(super) async fn socket_loop(signals: MonitorSignals) {
    let url = socket_url(signals.target.as_deref());
    let mut failures: u32 = 0;
    loop {
        // Offline, an attempt can only fail: wait for the network.
        while !browser_online() {
            signals.set_connection.try_set(ConnectionState::Offline);
            signals.set_next_attempt_at.try_set(None);
            TimeoutFuture::new(250).await;
        }
        if let Some(url) = &url {
            if connect_once(&signals, url).await {
                failures = 0;
            }
        }
        failures = failures.saturating_add(1);
        let state = if failures > OFFLINE_AFTER_FAILURES || !browser_online() {
            ConnectionState::Offline
        } else {
            ConnectionState::Reconnecting
        };
        signals.set_connection.try_set(state);
        let delay = backoff_ms(failures, Math::random());
        signals.set_next_attempt_at.try_set(Some(now_ms() + delay));
        wait(delay, signals.retry).await;
        signals.set_next_attempt_at.try_set(None);
    }
}

/// One connection, until it ends. True when the server answered at all.
async fn connect_once(signals: &MonitorSignals, url: &str) -> bool {
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
                signals.apply(data, true);
                signals.set_connection.try_set(ConnectionState::Connected);
                signals.set_session_ended.try_set(false);
            }
            Ok(WsMessage::QuotaUpdate { data, .. }) => signals.apply(data, false),
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
