//! A workspace's alert history: its status transitions, newest first, with
//! time and reason.

use crate::server_fns::dashboard::AlertEntry;
use crate::ui::components::status_view::StatusChip;
use crate::ui::format::{ago, utc_datetime};
use leptos::prelude::*;

#[component]
pub fn AlertHistory(alerts: Vec<AlertEntry>, total: usize, now_ms: u64) -> impl IntoView {
    let shown = alerts.len();
    let summary = match total {
        0 => "Alert history — no status changes yet".to_string(),
        1 => "Alert history — 1 status change".to_string(),
        n => format!("Alert history — {n} status changes"),
    };
    view! {
        <section class="alerts" data-testid="alert-history">
            <h3>{summary}</h3>
            {(total == 0).then(|| view! {
                <p class="muted">"Every change of status will be listed here with its time and reason."</p>
            })}
            <ol class="alerts-list">
                {alerts
                    .into_iter()
                    .map(|a| view! {
                        <li class="alert-entry" data-testid="alert-entry" data-from=a.from.as_str() data-to=a.to.as_str()>
                            <div class="alert-when">
                                <time datetime=a.at.clone()>{utc_datetime(&a.at)}</time>
                                <span class="muted">" · "{ago(now_ms, a.at_ms)}</span>
                            </div>
                            <div class="alert-change">
                                <StatusChip status=a.from/>
                                <span class="arrow" aria-label="to">" → "</span>
                                <StatusChip status=a.to/>
                            </div>
                            <p class="alert-reason">{a.reason}</p>
                        </li>
                    })
                    .collect_view()}
            </ol>
            {(total > shown).then(|| view! {
                <p class="muted">{format!("Showing the latest {shown} of {total}.")}</p>
            })}
        </section>
    }
}
