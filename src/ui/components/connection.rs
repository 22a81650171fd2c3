//! The live-connection indicator: connected / reconnecting / offline, with the
//! next attempt, the polling fallback's freshness, and an ended session.

use crate::ui::format::countdown;
use crate::ui::hooks::use_quota_monitor::{use_quota_monitor, ConnectionState};
use crate::ui::hooks::use_ticker::use_ticker;
use leptos::prelude::*;

/// Reads the page's quota monitor and clock from context.
#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let monitor = use_quota_monitor();
    let clock = use_ticker();
    let state = monitor.connection;
    let label = move || match state.get() {
        ConnectionState::Connecting => "Connecting…",
        ConnectionState::Connected => "Live",
        ConnectionState::Reconnecting => "Reconnecting…",
        ConnectionState::Offline => "Offline",
    };
    let detail = move || {
        let state = state.get();
        if state == ConnectionState::Connected || state == ConnectionState::Connecting {
            return None;
        }
        let next = monitor.next_attempt_at.get().map(|at| {
            let left = clock.now().map_or(0.0, |now| (at - now) / 1000.0);
            if left > 0.5 {
                format!("next try in {}", countdown(left))
            } else {
                "trying now".to_string()
            }
        });
        let polled = monitor.polled_at.get().map(|at| {
            let age = clock.now().map_or(0.0, |now| (now - at) / 1000.0);
            format!("status checked {} ago", countdown(age))
        });
        let mut parts = Vec::new();
        if state == ConnectionState::Offline {
            parts.push("showing the last known status".to_string());
        }
        parts.extend(next);
        parts.extend(polled);
        Some(parts.join(" · "))
    };
    view! {
        <div class="connection-row">
            <p
                class=move || format!("connection connection-{}", state.get().as_str())
                data-testid="connection"
                data-state=move || state.get().as_str()
                role="status"
                aria-live="polite"
            >
                <span class="connection-dot" aria-hidden="true"></span>
                <span class="connection-label">{label}</span>
                {move || detail().map(|d| view! { <span class="connection-detail">{d}</span> })}
            </p>
            <Show when=move || matches!(state.get(), ConnectionState::Reconnecting | ConnectionState::Offline)>
                <button type="button" class="button-small button-quiet" data-testid="retry-now" on:click=move |_| monitor.retry_now()>
                    "Retry now"
                </button>
            </Show>
        </div>
        <Show when=move || monitor.session_ended.get()>
            <p class="session-ended" role="alert" data-testid="session-ended">
                "Your session has ended (signed out elsewhere, or the server forgot it). "
                <a href="/signin?expired=1" rel="external">"Sign in again"</a>
                " — this page picks up the new session by itself."
            </p>
        </Show>
    }
}
