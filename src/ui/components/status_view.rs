//! How a status looks: every status is shown with colour, text and an icon —
//! never colour alone.

use crate::ui::components::icon::StatusIcon;
use crate::wire::QuotaStatus;
use leptos::prelude::*;

/// CSS modifier: `normal`, `warning`, `degraded`, `rate-limited`, `quota-exceeded`.
pub fn status_slug(status: QuotaStatus) -> &'static str {
    match status {
        QuotaStatus::Normal => "normal",
        QuotaStatus::Warning => "warning",
        QuotaStatus::Degraded => "degraded",
        QuotaStatus::RateLimited => "rate-limited",
        QuotaStatus::QuotaExceeded => "quota-exceeded",
    }
}

/// "Rate limited" etc., with the machine name beside it for people who look it up.
pub fn status_label(status: QuotaStatus) -> &'static str {
    match status {
        QuotaStatus::Normal => "Normal",
        QuotaStatus::Warning => "Warning",
        QuotaStatus::Degraded => "Degraded",
        QuotaStatus::RateLimited => "Rate limited",
        QuotaStatus::QuotaExceeded => "Quota exceeded",
    }
}

#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<QuotaStatus>) -> impl IntoView {
    view! {
        <span
            class=move || format!("status status-{}", status_slug(status.get()))
            data-testid="status-badge"
            data-status=move || status.get().as_str()
            title=move || status.get().as_str()
        >
            {move || view! { <StatusIcon status=status.get()/> }}
            <span>{move || status_label(status.get())}</span>
        </span>
    }
}

/// A small status label for lists (history, summaries): icon + text + colour.
#[component]
pub fn StatusChip(status: QuotaStatus) -> impl IntoView {
    view! {
        <span class=format!("chip status-{}", status_slug(status)) data-status=status.as_str()>
            <StatusIcon status/>
            {status_label(status)}
        </span>
    }
}
