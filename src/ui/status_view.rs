//! Presentational pieces for a snapshot: status badge and window meters. Every
//! status is shown with colour, text and an icon — never colour alone.

use crate::model::{QuotaSnapshot, QuotaStatus, WindowUsage};
use leptos::prelude::*;

pub fn status_icon(status: QuotaStatus) -> &'static str {
    match status {
        QuotaStatus::Normal => "✓",
        QuotaStatus::Warning => "⚠",
        QuotaStatus::Degraded => "⚡",
        QuotaStatus::RateLimited => "⏱",
        QuotaStatus::QuotaExceeded => "⛔",
    }
}

pub fn status_class(status: QuotaStatus) -> &'static str {
    match status {
        QuotaStatus::Normal => "status status-normal",
        QuotaStatus::Warning => "status status-warning",
        QuotaStatus::Degraded => "status status-degraded",
        QuotaStatus::RateLimited => "status status-rate-limited",
        QuotaStatus::QuotaExceeded => "status status-quota-exceeded",
    }
}

#[component]
pub fn StatusBadge(status: QuotaStatus) -> impl IntoView {
    view! {
        <span class=status_class(status) data-testid="status-badge" data-status=status.as_str()>
            <span aria-hidden="true">{status_icon(status)}" "</span>
            {status.as_str()}
        </span>
    }
}

#[component]
pub fn Meter(label: &'static str, usage: WindowUsage) -> impl IntoView {
    let width = format!("width: {:.1}%", usage.percentage.min(100.0));
    let level = if usage.percentage >= 100.0 {
        "meter-fill full"
    } else if usage.percentage >= 80.0 {
        "meter-fill high"
    } else {
        "meter-fill"
    };
    let resets = if usage.current == 0 {
        String::from("empty")
    } else {
        format!("oldest leaves in {}", format_seconds(usage.resets_in_s))
    };
    view! {
        <div class="meter">
            <div class="meter-label">
                <span>{label}</span>
                <span class="meter-figures">{format!("{} / {}", usage.current, usage.limit)}</span>
            </div>
            <div
                class="meter-track"
                role="meter"
                aria-label=label
                aria-valuemin="0"
                aria-valuemax=usage.limit.to_string()
                aria-valuenow=usage.current.to_string()
            >
                <div class=level style=width></div>
            </div>
            <div class="meter-note">{format!("{:.1}% · {resets}", usage.percentage)}</div>
        </div>
    }
}

#[component]
pub fn SnapshotView(snapshot: QuotaSnapshot) -> impl IntoView {
    let retry = snapshot
        .retry_after_s
        .map(|s| format!("Requests allowed again in {}.", format_seconds(s)));
    view! {
        <div class="snapshot" data-testid="snapshot">
            <div class="snapshot-head">
                <strong>{snapshot.workspace_id.clone()}</strong>
                <StatusBadge status=snapshot.status/>
            </div>
            <p class="snapshot-message" data-testid="status-message">{snapshot.message.clone()}</p>
            {retry.map(|text| view! { <p class="snapshot-retry">{text}</p> })}
            <div class="meters">
                <Meter label="Requests / minute" usage=snapshot.requests_per_minute/>
                <Meter label="Tokens / minute" usage=snapshot.tokens_per_minute/>
                <Meter label="Requests / day" usage=snapshot.requests_per_day/>
                <Meter label="Tokens / day" usage=snapshot.tokens_per_day/>
            </div>
        </div>
    }
}

/// "1h 02m", "3m 05s", "12s", "0.4s".
pub fn format_seconds(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 10.0 && seconds.fract() != 0.0 {
        return format!("{seconds:.1}s");
    }
    let total = seconds.ceil() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::format_seconds;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_seconds(0.4), "0.4s");
        assert_eq!(format_seconds(12.0), "12s");
        assert_eq!(format_seconds(185.0), "3m 05s");
        assert_eq!(format_seconds(3720.0), "1h 02m");
    }
}
