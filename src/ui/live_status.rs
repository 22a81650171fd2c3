//! Connect to a workspace with its key and watch its status change live over the
//! WebSocket. (The full conversation workspace, sign-in and reconnection logic
//! come with the browser UI; this is the foundation's live view.)

use super::status_view::SnapshotView;
use crate::model::QuotaSnapshot;
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    Idle,
    Connecting,
    Connected,
    Closed,
}

impl Connection {
    fn label(self) -> &'static str {
        match self {
            Connection::Idle => "not connected",
            Connection::Connecting => "connecting…",
            Connection::Connected => "connected — live",
            Connection::Closed => "disconnected",
        }
    }
}

#[component]
pub fn LiveStatus() -> impl IntoView {
    let (key, set_key) = signal(String::new());
    let (snapshot, set_snapshot) = signal(None::<QuotaSnapshot>);
    let (connection, set_connection) = signal(Connection::Idle);
    let (error, set_error) = signal(None::<String>);

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let key = key.get_untracked().trim().to_string();
        if key.is_empty() {
            set_error.set(Some("Enter a workspace key first.".into()));
            return;
        }
        set_error.set(None);
        connect(key, set_snapshot, set_connection, set_error);
    };

    view! {
        <section class="card" aria-labelledby="live-heading">
            <h2 id="live-heading">"Watch a workspace live"</h2>
            <form class="connect-form" on:submit=on_submit>
                <label for="api_key">"Workspace key"</label>
                <input
                    id="api_key"
                    name="api_key"
                    type="password"
                    autocomplete="off"
                    placeholder="qa_…"
                    prop:value=key
                    on:input=move |ev| set_key.set(event_target_value(&ev))
                />
                <button type="submit" data-testid="connect">"Connect"</button>
            </form>
            <p class="connection" data-testid="connection" data-state=move || format!("{:?}", connection.get()).to_lowercase()>
                {move || connection.get().label()}
            </p>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
            {move || snapshot.get().map(|s| view! { <SnapshotView snapshot=s/> })}
        </section>
    }
}

#[cfg(feature = "hydrate")]
fn connect(
    key: String,
    set_snapshot: WriteSignal<Option<QuotaSnapshot>>,
    set_connection: WriteSignal<Connection>,
    set_error: WriteSignal<Option<String>>,
) {
    use crate::model::WsMessage;
    use futures_util::{SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message};

    let location = window().location();
    let scheme = if location.protocol().ok().as_deref() == Some("https:") {
        "wss"
    } else {
        "ws"
    };
    let host = location.host().unwrap_or_default();
    let token: String = js_sys_encode(&key);
    let url = format!("{scheme}://{host}/api/quota/ws?token={token}");
    set_connection.set(Connection::Connecting);
    let socket = match WebSocket::open(&url) {
        Ok(socket) => socket,
        Err(e) => {
            set_connection.set(Connection::Closed);
            set_error.set(Some(format!("Could not open the WebSocket: {e}")));
            return;
        }
    };
    leptos::task::spawn_local(async move {
        let (mut write, mut read) = socket.split();
        let mut got_message = false;
        while let Some(message) = read.next().await {
            let Ok(Message::Text(text)) = message else {
                break;
            };
            got_message = true;
            match serde_json::from_str::<WsMessage>(&text) {
                Ok(WsMessage::QuotaInitial { data }) | Ok(WsMessage::QuotaUpdate { data, .. }) => {
                    set_connection.set(Connection::Connected);
                    set_snapshot.set(Some(data));
                }
                Ok(WsMessage::Ping) => {
                    let pong = serde_json::to_string(&WsMessage::Pong).unwrap_or_default();
                    if write.send(Message::Text(pong)).await.is_err() {
                        break;
                    }
                }
                Ok(WsMessage::Pong) | Err(_) => {}
            }
        }
        set_connection.set(Connection::Closed);
        if !got_message {
            set_error.set(Some(
                "The server refused the connection: check the key.".into(),
            ));
        }
    });
}

#[cfg(feature = "hydrate")]
fn js_sys_encode(value: &str) -> String {
    // Keys are [A-Za-z0-9_], but encode anyway so any input yields a valid URL.
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

#[cfg(not(feature = "hydrate"))]
fn connect(
    _key: String,
    _set_snapshot: WriteSignal<Option<QuotaSnapshot>>,
    _set_connection: WriteSignal<Connection>,
    _set_error: WriteSignal<Option<String>>,
) {
    // Event handlers never run during server rendering.
}
