//! The banner inside the conversation panel whenever the status is not NORMAL:
//! what happened, what to do, and a live countdown to when requests are
//! allowed again. Server-rendered with the status the page was built with.

use crate::ui::components::icon::StatusIcon;
use crate::ui::components::status_view::{status_label, status_slug};
use crate::ui::components::windows::WindowKind;
use crate::ui::format::countdown;
use crate::ui::hooks::use_quota_monitor::use_quota_monitor;
use crate::ui::hooks::use_ticker::use_ticker;
use crate::wire::{QuotaSnapshot, QuotaStatus};
use leptos::prelude::*;

/// What a person can do about `snapshot`'s status.
pub fn advice(snapshot: &QuotaSnapshot) -> &'static str {
    match snapshot.status {
        QuotaStatus::Normal => "",
        QuotaStatus::Warning => {
            "Sending still works. Slow down or send fewer, shorter messages; the pressure \
             eases as older usage leaves the window."
        }
        QuotaStatus::Degraded => {
            "Nothing is blocked, but messages may fail while OpenAI (or the usage store) is \
             struggling. It clears by itself on the next success."
        }
        QuotaStatus::RateLimited => {
            "Sending is paused until the limit allows it again. Your conversation stays \
             here and sending resumes by itself."
        }
        QuotaStatus::QuotaExceeded if snapshot.retry_after_s.is_some_and(|s| s > 0.0) => {
            "Sending is paused. Ask an admin to raise the workspace's daily limit or reset \
             it — or wait until usage frees up."
        }
        QuotaStatus::QuotaExceeded => {
            "Sending is paused. Add credit or raise the plan's limit with OpenAI; the next \
             successful request clears it."
        }
    }
}

/// For WARNING: the busiest window and when its oldest usage leaves.
fn easing_in(snapshot: &QuotaSnapshot) -> Option<(WindowKind, f64)> {
    WindowKind::ALL
        .iter()
        .map(|k| (*k, k.of(snapshot)))
        .filter(|(_, w)| w.current > 0)
        .max_by(|a, b| a.1.percentage.total_cmp(&b.1.percentage))
        .map(|(k, w)| (k, w.resets_in_s))
}

/// Reads the page's quota monitor and clock from context.
#[component]
pub fn QuotaBanner() -> impl IntoView {
    let monitor = use_quota_monitor();
    let clock = use_ticker();
    let snapshot = monitor.snapshot;
    let status = Memo::new(move |_| snapshot.with(|s| s.status));
    let retry_left = move || {
        snapshot
            .with(|s| s.retry_after_s)
            .map(|s| clock.left(monitor.received_at.get(), s))
    };
    let timing = move || {
        let snap = snapshot.get();
        match snap.status {
            QuotaStatus::Normal => None,
            s if s.blocks_requests() => Some(match retry_left() {
                Some(left) if left > 0.0 => view! {
                    <p class="banner-when">
                        "Requests are allowed again in "
                        <strong class="countdown" data-testid="countdown" data-seconds=left.ceil().to_string()>
                            {countdown(left)}
                        </strong>
                        "."
                    </p>
                }
                .into_any(),
                Some(_) => view! {
                    <p class="banner-when">
                        <strong class="countdown" data-testid="countdown" data-seconds="0">"Any moment now"</strong>
                        " — waiting for the server to confirm."
                    </p>
                }
                .into_any(),
                None => view! {
                    <p class="banner-when">"No retry time is known: it clears as described above."</p>
                }
                .into_any(),
            }),
            QuotaStatus::Warning => easing_in(&snap).map(|(kind, resets)| {
                let left = clock.left(monitor.received_at.get(), resets);
                view! {
                    <p class="banner-when">
                        {kind.label()}" starts to ease in "
                        <strong class="countdown" data-testid="countdown" data-seconds=left.ceil().to_string()>
                            {countdown(left)}
                        </strong>
                        "."
                    </p>
                }
                .into_any()
            }),
            _ => None,
        }
    };
    view! {
        <Show when=move || status.get() != QuotaStatus::Normal>
            <div
                class=move || format!("banner status-{}", status_slug(status.get()))
                data-testid="quota-banner"
                data-status=move || status.get().as_str()
                role="region"
                aria-label="Quota status"
            >
                <span class="banner-icon">{move || view! { <StatusIcon status=status.get()/> }}</span>
                <div class="banner-text">
                    <p class="banner-title">
                        <strong>{move || status_label(status.get())}</strong>
                        <span class="banner-code">{move || status.get().as_str()}</span>
                    </p>
                    <p class="banner-what" data-testid="banner-message">{move || snapshot.with(|s| s.message.clone())}</p>
                    <p class="banner-advice">{move || snapshot.with(advice)}</p>
                    {timing}
                </div>
            </div>
        </Show>
    }
}
