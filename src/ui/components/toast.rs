//! Toasts: a short notice for every status change.
//!
//! Written here rather than taken from a crate: the Leptos toast crates on
//! crates.io are young, single-author, and lack what this needs — `role=alert`
//! vs `role=status` by level, sticky errors, keyboard dismissal, pausing while
//! hovered or focused, de-duplication by change, and server rendering that
//! hydrates cleanly. It is one small component.
//!
//! Info and warning toasts leave by themselves (paused while the pointer or
//! focus is on them); errors stay until dismissed (the × button, or Escape while
//! the toast has focus). Motion is CSS only and off under
//! `prefers-reduced-motion`.

use crate::ui::components::icon::StatusIcon;
use crate::ui::components::status_view::{status_label, status_slug};
use crate::ui::hooks::use_quota_monitor::StatusChange;
use crate::wire::{NotificationLevel, QuotaStatus};
use leptos::prelude::*;
use std::collections::VecDeque;

/// Info toasts stay this long (ms)...
pub const INFO_MS: f64 = 6_000.0;
/// ... and warnings this long. Errors stay until dismissed.
pub const WARNING_MS: f64 = 10_000.0;
/// At most this many at once; the oldest non-error goes first.
pub const MAX_TOASTS: usize = 5;

#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    pub id: u64,
    pub level: NotificationLevel,
    pub status: QuotaStatus,
    pub title: String,
    pub body: String,
    /// Browser ms; `None` for sticky toasts.
    pub expires_at: Option<f64>,
}

/// The toast stack of a page (`Copy`).
#[derive(Clone, Copy)]
pub struct Toasts {
    items: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
    /// Keys of changes already shown, so a change seen twice (socket and poll,
    /// or a reconnect) toasts once.
    seen: StoredValue<VecDeque<String>>,
    paused: RwSignal<bool>,
}

impl Toasts {
    pub fn new() -> Self {
        Toasts {
            items: RwSignal::new(Vec::new()),
            next_id: StoredValue::new(1),
            seen: StoredValue::new(VecDeque::new()),
            paused: RwSignal::new(false),
        }
    }

    /// A toast for a status change, unless this change was already shown.
    pub fn status_changed(&self, change: &StatusChange) {
        let key = format!(
            "{}:{}:{}:{}",
            change.workspace_id, change.version, change.from, change.to
        );
        let fresh = self
            .seen
            .try_update_value(|seen| {
                if seen.contains(&key) {
                    return false;
                }
                seen.push_back(key);
                if seen.len() > 64 {
                    seen.pop_front();
                }
                true
            })
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let (title, body) = describe(change);
        self.push(
            NotificationLevel::for_status(change.to),
            change.to,
            title,
            body,
        );
    }

    pub fn push(&self, level: NotificationLevel, status: QuotaStatus, title: String, body: String) {
        let id = self
            .next_id
            .try_update_value(|n| {
                *n += 1;
                *n
            })
            .unwrap_or_default();
        let now = crate::ui::hooks::use_ticker::now_ms();
        let expires_at = match level {
            NotificationLevel::Info => Some(now + INFO_MS),
            NotificationLevel::Warning => Some(now + WARNING_MS),
            NotificationLevel::Error => None,
        };
        self.items.try_update(|items| {
            items.push(Toast {
                id,
                level,
                status,
                title,
                body,
                expires_at,
            });
            while items.len() > MAX_TOASTS {
                let victim = items
                    .iter()
                    .position(|t| t.level != NotificationLevel::Error)
                    .unwrap_or(0);
                items.remove(victim);
            }
        });
    }

    pub fn dismiss(&self, id: u64) {
        self.items.try_update(|items| items.retain(|t| t.id != id));
    }

    /// Removes expired toasts unless the stack is paused.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn expire(&self, now: f64) {
        if self.paused.get_untracked() {
            return;
        }
        let expired = self.items.with_untracked(|items| {
            items
                .iter()
                .any(|t| t.expires_at.is_some_and(|at| at <= now))
        });
        if expired {
            self.items.try_update(|items| {
                items.retain(|t| t.expires_at.is_none_or(|at| at > now));
            });
        }
    }

    /// After a pause, leave a little time to read before anything goes.
    fn resume(&self, now: f64) {
        self.paused.set(false);
        self.items.try_update(|items| {
            for toast in items.iter_mut() {
                if let Some(at) = toast.expires_at.as_mut() {
                    *at = at.max(now + 2_000.0);
                }
            }
        });
    }
}

impl Default for Toasts {
    fn default() -> Self {
        Self::new()
    }
}

/// What a change means, in words.
fn describe(change: &StatusChange) -> (String, String) {
    let title = match (change.from, change.to) {
        (_, QuotaStatus::Normal) => "Back to normal".to_string(),
        (_, to) => status_label(to).to_string(),
    };
    let mut body = match change.to {
        QuotaStatus::Normal => {
            "All windows are below their limits; sending works again.".to_string()
        }
        _ => change.message.clone(),
    };
    if let Some(retry) = change.retry_after_s.filter(|_| change.to.blocks_requests()) {
        body.push_str(&format!(
            " Requests are allowed again in {}.",
            crate::ui::format::countdown(retry)
        ));
    }
    (title, body)
}

/// The stack. Place once per page.
#[component]
pub fn ToastRegion(toasts: Toasts) -> impl IntoView {
    // One ticking interval for the page's auto-dismissals, browser only.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let handle = set_interval_with_handle(
                move || toasts.expire(crate::ui::hooks::use_ticker::now_ms()),
                std::time::Duration::from_millis(500),
            );
            if let Ok(handle) = handle {
                on_cleanup(move || handle.clear());
            }
        }
    });
    let pause = move || toasts.paused.set(true);
    let resume = move || toasts.resume(crate::ui::hooks::use_ticker::now_ms());
    view! {
        <section
            class="toasts"
            aria-label="Notifications"
            on:mouseenter=move |_| pause()
            on:mouseleave=move |_| resume()
            on:focusin=move |_| pause()
            on:focusout=move |_| resume()
        >
            <For each=move || toasts.items.get() key=|t| t.id let:toast>
                <ToastView toast toasts/>
            </For>
        </section>
    }
}

#[component]
fn ToastView(toast: Toast, toasts: Toasts) -> impl IntoView {
    let id = toast.id;
    let level = match toast.level {
        NotificationLevel::Info => "info",
        NotificationLevel::Warning => "warning",
        NotificationLevel::Error => "error",
    };
    let error = toast.level == NotificationLevel::Error;
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            toasts.dismiss(id);
        }
    };
    let dismiss_label = format!("Dismiss notification: {}", toast.title);
    view! {
        <div
            class=format!("toast toast-{level} status-{}", status_slug(toast.status))
            data-testid="toast"
            data-level=level
            data-status=toast.status.as_str()
            role=if error { "alert" } else { "status" }
            aria-live=if error { "assertive" } else { "polite" }
            aria-atomic="true"
            tabindex="0"
            on:keydown=on_keydown
        >
            <span class="toast-icon"><StatusIcon status=toast.status/></span>
            <div class="toast-text">
                <strong class="toast-title">{toast.title.clone()}</strong>
                <p class="toast-body">{toast.body.clone()}</p>
                {error.then(|| view! { <p class="toast-hint">"Stays until dismissed (Esc)."</p> })}
            </div>
            <button
                type="button"
                class="toast-close"
                data-testid="toast-dismiss"
                aria-label=dismiss_label
                title="Dismiss (Esc)"
                on:click=move |_| toasts.dismiss(id)
            >
                <span aria-hidden="true">"×"</span>
            </button>
        </div>
    }
}
