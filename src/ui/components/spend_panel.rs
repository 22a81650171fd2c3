//! The dashboard's "Spend, models and people" section of one workspace: per
//! budget its meter, spend per day and projection; today's usage by model and
//! by user; the CSV export. Live: while open it watches the workspace over
//! its own WebSocket (`watch_quota`), so it moves with every call, not with
//! the dashboard's refresh.
//!
//! Open by default for a workspace's own dashboard; folded for the admin,
//! who may list thousands of workspaces and should not hold a socket for
//! each: opening one starts its socket, folding it closes it.

use crate::ui::components::breakdown::{BreakdownTable, Dimension};
use crate::ui::components::export::ExportLinks;
use crate::ui::components::spend::BudgetMeter;
use crate::ui::components::spend_chart::{DailySpendChart, ProjectionLine};
use crate::ui::hooks::use_quota_monitor::watch_quota;
use crate::wire::QuotaSnapshot;
use leptos::html::Details;
use leptos::prelude::*;

#[component]
pub fn SpendSection(
    /// The workspace's latest snapshot from the dashboard's data; the live
    /// part starts from it when opened.
    #[prop(into)]
    latest: Signal<Option<QuotaSnapshot>>,
    admin: bool,
) -> impl IntoView {
    let open = RwSignal::new(!admin);
    let details = NodeRef::<Details>::new();
    let on_toggle = move |_| {
        if let Some(el) = details.get() {
            // Only a real change: setting the same value would restart the socket.
            if open.get_untracked() != el.open() {
                open.set(el.open());
            }
        }
    };
    view! {
        <details
            class="ws-details ws-spend"
            node_ref=details
            open=!admin
            on:toggle=on_toggle
            data-testid="spend-section"
        >
            <summary>"Spend, models and people"</summary>
            {move || {
                open.get()
                    .then(|| latest.get_untracked())
                    .flatten()
                    .map(|initial| view! { <LiveSpend initial admin/> })
            }}
        </details>
    }
    .into_any()
}

#[component]
fn LiveSpend(initial: QuotaSnapshot, admin: bool) -> impl IntoView {
    let target = admin.then(|| initial.workspace_id.clone());
    let monitor = watch_quota(initial, target.clone());
    let snapshot: Signal<QuotaSnapshot> = monitor.snapshot.into();
    let received_at: Signal<Option<f64>> = monitor.received_at.into();
    // Rebuilt only when the number of budgets changes; each part follows
    // the snapshot itself.
    let count = Memo::new(move |_| snapshot.with(|s| s.budgets.len()));
    view! {
        <div class="spend" data-testid="spend" data-connection=move || monitor.connection.get().as_str()>
            <Show
                when=move || { count.get() > 0 }
                fallback=|| view! {
                    <p class="muted" data-testid="no-budgets">
                        "No spend budgets are set for this workspace."
                    </p>
                }
            >
                <div class="spend-budgets">
                    {move || {
                        (0..count.get())
                            .map(|index| view! { <BudgetSpend snapshot index received_at/> })
                            .collect_view()
                    }}
                </div>
            </Show>
            <div class="breakdowns">
                <BreakdownTable snapshot dimension=Dimension::Model/>
                <BreakdownTable snapshot dimension=Dimension::User/>
            </div>
            <ExportLinks snapshot workspace=target/>
        </div>
    }
    .into_any()
}

/// One budget: meter, spend per day, projection.
#[component]
fn BudgetSpend(
    snapshot: Signal<QuotaSnapshot>,
    index: usize,
    received_at: Signal<Option<f64>>,
) -> impl IntoView {
    let budget = Memo::new(move |_| snapshot.with(|s| s.budgets.get(index).cloned()));
    let chart_id = snapshot.with_untracked(|s| format!("spend-chart-{}-{index}", s.workspace_id));
    view! {
        <div class="budget-spend" data-testid="budget-spend">
            <BudgetMeter snapshot index received_at/>
            {move || budget.get().map(|b| view! { <ProjectionLine budget=b/> })}
            {move || budget.get().map(|b| view! { <DailySpendChart budget=b id=chart_id.clone()/> })}
        </div>
    }
}
