//! `/dashboard`: every workspace (admin) or the signed-in one: status, the four
//! windows with a prediction each, per-minute usage for the last hour, the
//! alert history, and spend (budgets, by model and user, CSV export; see
//! `spend_panel`). Server-rendered, then refreshed every few seconds; the
//! spend section, while open, live over its own WebSocket.
//!
//! The page provides who is signed in and its clock as context (see
//! `ui::context`); the top bar and the meters read them from there.

use crate::server_fns::dashboard::{
    dashboard_data, DashboardAnswer, DashboardReport, WorkspaceReport, HISTORY_MINUTES,
};
use crate::ui::components::alert_history::AlertHistory;
use crate::ui::components::chart::UsageChart;
use crate::ui::components::conversation::describe_error;
use crate::ui::components::icon::{Icon, IconName, StatusIcon};
use crate::ui::components::layout::{Page, Section, TopBar};
use crate::ui::components::meter::Meter;
use crate::ui::components::prediction::{predict, PredictionLine};
use crate::ui::components::spend_panel::SpendSection;
use crate::ui::components::status_view::{status_label, status_slug, StatusBadge};
use crate::ui::components::windows::WindowKind;
use crate::ui::context::SignedIn;
use crate::ui::format::countdown;
use crate::ui::hooks::use_ticker::{use_ticker, Ticker};
use crate::wire::QuotaStatus;
use leptos::context::Provider;
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// How often the browser refreshes the dashboard.
pub const REFRESH_MS: u32 = 5_000;

#[component]
pub fn DashboardRoute() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard_data());
    view! {
        <Suspense fallback=|| view! { <Page><p class="loading">"Loading the dashboard…"</p></Page> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(DashboardAnswer::Ready(data)) => {
                        // A fresh owner for this page's context (see `ui::context`).
                        let viewer = SignedIn(data.viewer.clone());
                        view! { <Provider value=viewer><DashboardView initial=*data/></Provider> }.into_any()
                    }
                    Ok(DashboardAnswer::SignedOut { session }) => {
                        view! { <Redirect path=session.signin_path()/> }.into_any()
                    }
                    Err(e) => view! {
                        <Page>
                            <TopBar section=Section::Dashboard/>
                            <section class="card" role="alert" data-testid="page-error">
                                <h1>"The dashboard cannot be shown"</h1>
                                <p>{describe_error(&e)}</p>
                            </section>
                        </Page>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// Why the last refresh did not bring new data.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Stale {
    Unreachable(String),
    SignedOut,
}

#[component]
fn DashboardView(initial: DashboardReport) -> impl IntoView {
    let admin = initial.viewer.is_admin();
    let data = RwSignal::new(initial);
    let received_at = RwSignal::new(None::<f64>);
    let stale = RwSignal::new(None::<Stale>);
    let filter = RwSignal::new(String::new());
    Ticker::provide(1_000);

    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            received_at.set(Some(crate::ui::hooks::use_ticker::now_ms()));
            #[cfg(feature = "hydrate")]
            refresh::start(data, received_at, stale);
        }
    });

    // The ids shown, in order; each card is keyed by its id alone, so it
    // stays mounted (with its live spend section) across refreshes.
    let ids = move || {
        let needle = filter.get().trim().to_lowercase();
        data.with(|d| {
            d.workspaces
                .iter()
                .map(|w| w.snapshot.workspace_id.clone())
                .filter(|id| needle.is_empty() || id.contains(&needle))
                .collect::<Vec<_>>()
        })
    };
    let counts = move || {
        data.with(|d| {
            QuotaStatus::ALL
                .iter()
                .rev()
                .map(|s| {
                    (
                        *s,
                        d.workspaces
                            .iter()
                            .filter(|w| w.snapshot.status == *s)
                            .count(),
                    )
                })
                .collect::<Vec<_>>()
        })
    };

    view! {
        <Page class="page-wide">
            <TopBar section=Section::Dashboard/>
            <div class="dashboard-head">
                <div>
                    <h1>{if admin { "All workspaces" } else { "Your workspace" }}</h1>
                    <p class="muted" data-testid="dashboard-freshness">
                        {move || {
                            let n = data.with(|d| d.workspaces.len());
                            format!(
                                "{n} workspace{} · usage of the last {HISTORY_MINUTES} minutes · refreshes every {}s",
                                if n == 1 { "" } else { "s" },
                                REFRESH_MS / 1000
                            )
                        }}
                    </p>
                </div>
                {admin.then(|| view! {
                    <div class="filter">
                        <label for="ws-filter">"Find a workspace"</label>
                        <input
                            id="ws-filter"
                            type="search"
                            placeholder="workspace id"
                            prop:value=move || filter.get()
                            on:input=move |ev| filter.set(event_target_value(&ev))
                        />
                    </div>
                })}
            </div>
            <ul class="status-summary" aria-label="Workspaces by status">
                {move || counts()
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, n)| view! {
                        <li class=format!("chip status-{}", status_slug(s)) data-status=s.as_str()>
                            <StatusIcon status=s/>
                            {format!("{n} {}", status_label(s).to_lowercase())}
                        </li>
                    })
                    .collect_view()}
            </ul>
            {move || stale.get().map(|s| match s {
                Stale::Unreachable(e) => view! {
                    <p class="notice notice-warning" role="status" data-testid="dashboard-stale">
                        <Icon name=IconName::Warning/>" "
                        "Could not refresh ("{e}"); showing the last data received. Retrying."
                    </p>
                }.into_any(),
                Stale::SignedOut => view! {
                    <p class="notice notice-warning" role="alert" data-testid="session-ended">
                        "Your session has ended. "<a href="/signin?expired=1" rel="external">"Sign in again"</a>"."
                    </p>
                }.into_any(),
            })}
            <div class="workspace-list">
                <For each=ids key=|id| id.clone() let:id>
                    <WorkspaceCard id data admin received_at/>
                </For>
                <Show when=move || data.with(|d| d.workspaces.is_empty())>
                    <section class="card empty">
                        <h2>"No workspaces yet"</h2>
                        <p>
                            "Create one on the "<a href="/admin">"Workspaces"</a>" page (or with "
                            <code>"POST /api/admin/workspaces"</code>
                            " and the admin key); it appears here within a few seconds."
                        </p>
                    </section>
                </Show>
            </div>
        </Page>
    }
}

/// One workspace's card: the article and its spend section stay; what the
/// dashboard's refresh brings is drawn anew when the report changes.
#[component]
fn WorkspaceCard(
    id: String,
    data: RwSignal<DashboardReport>,
    admin: bool,
    received_at: RwSignal<Option<f64>>,
) -> impl IntoView {
    let report = {
        let id = id.clone();
        Memo::new(move |_| {
            data.with(|d| {
                d.workspaces
                    .iter()
                    .find(|w| w.snapshot.workspace_id == id)
                    .cloned()
            })
        })
    };
    let status = move || {
        report.with(|r| {
            r.as_ref()
                .map_or(QuotaStatus::Normal, |r| r.snapshot.status)
        })
    };
    let latest = Signal::derive(move || report.with(|r| r.as_ref().map(|r| r.snapshot.clone())));
    view! {
        <article
            class=move || format!("card ws-card status-edge-{}", status_slug(status()))
            data-testid="workspace-card"
            data-workspace=id.clone()
            data-status=move || status().as_str()
            aria-labelledby=format!("ws-{id}")
        >
            {move || {
                let now_ms = data.with_untracked(|d| d.now_ms);
                report.get().map(|report| view! { <CardBody report admin now_ms received_at/> })
            }}
            <SpendSection latest admin/>
        </article>
    }
    // Type-erased: the card's full view type is too deep for the release
    // WASM build's query limit.
    .into_any()
}

#[component]
fn CardBody(
    report: WorkspaceReport,
    admin: bool,
    now_ms: u64,
    received_at: RwSignal<Option<f64>>,
) -> impl IntoView {
    let clock = use_ticker();
    let WorkspaceReport {
        snapshot,
        history,
        alerts,
        alert_count,
    } = report;
    let id = snapshot.workspace_id.clone();
    let status = snapshot.status;
    let idle = history.iter().all(|m| m.requests == 0 && m.tokens == 0);
    // With many workspaces, the quiet ones fold their charts and history away.
    let open_details = !admin || status != QuotaStatus::Normal;
    let details_summary = format!(
        "Usage of the last hour and alert history ({} change{})",
        alert_count,
        if alert_count == 1 { "" } else { "s" }
    );
    let href = if admin {
        format!("/?workspace={id}")
    } else {
        "/".to_string()
    };
    let retry = snapshot.retry_after_s.map(|s| {
        let left = move || countdown(clock.left(received_at.get(), s));
        view! {
            <p class="ws-retry">
                <Icon name=IconName::Timer/>" Requests allowed again in "<strong>{left}</strong>"."
            </p>
        }
    });
    let windows = WindowKind::ALL
        .into_iter()
        .map(|kind| {
            let usage = kind.of(&snapshot);
            let prediction = predict(kind, &usage, &history, now_ms);
            view! {
                <div class="ws-window">
                    <Meter kind usage=usage received_at/>
                    <PredictionLine prediction resets_in_s=usage.resets_in_s/>
                </div>
            }
        })
        .collect_view();
    view! {
            <header class="ws-card-head">
                <h2 id=format!("ws-{id}")>{id.clone()}</h2>
                <StatusBadge status/>
                <a class="ws-open" href=href rel="external">"Open conversation →"</a>
            </header>
            <p class="status-message">{snapshot.message.clone()}</p>
            {retry}
            <div class="ws-windows">{windows}</div>
            <details class="ws-details" open=open_details data-testid="workspace-details">
            <summary>{details_summary}</summary>
            {if idle {
                view! {
                    <p class="ws-idle muted" data-testid="no-usage">
                        "No usage in the last "{HISTORY_MINUTES}" minutes: nothing to chart."
                    </p>
                }
                .into_any()
            } else {
                view! {
                    <div class="ws-charts">
                        <UsageChart
                            kind=WindowKind::RequestsPerMinute
                            history=history.clone()
                            limit=snapshot.requests_per_minute.limit
                            id=format!("chart-{id}-requests")
                        />
                        <UsageChart
                            kind=WindowKind::TokensPerMinute
                            history=history
                            limit=snapshot.tokens_per_minute.limit
                            id=format!("chart-{id}-tokens")
                        />
                    </div>
                }
                .into_any()
            }}
            <AlertHistory alerts total=alert_count now_ms/>
            </details>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
mod refresh {
    use super::{Stale, REFRESH_MS};
    use crate::server_fns::dashboard::{dashboard_data, DashboardAnswer, DashboardReport};
    use crate::ui::components::conversation::describe_error;
    use futures_util::future::abortable;
    use gloo_timers::future::TimeoutFuture;
    use leptos::prelude::*;

    /// Refreshes `data` every [`REFRESH_MS`] until the page unmounts.
    pub fn start(
        data: RwSignal<DashboardReport>,
        received_at: RwSignal<Option<f64>>,
        stale: RwSignal<Option<Stale>>,
    ) {
        let (task, abort) = abortable(async move {
            loop {
                TimeoutFuture::new(REFRESH_MS).await;
                match dashboard_data().await {
                    Ok(DashboardAnswer::Ready(fresh)) => {
                        data.try_set(*fresh);
                        received_at.try_set(Some(crate::ui::hooks::use_ticker::now_ms()));
                        stale.try_set(None);
                    }
                    Ok(DashboardAnswer::SignedOut { .. }) => {
                        stale.try_set(Some(Stale::SignedOut));
                    }
                    Err(e) => {
                        stale.try_set(Some(Stale::Unreachable(describe_error(&e))));
                    }
                }
            }
        });
        leptos::task::spawn_local(async move {
            let _ = task.await;
        });
        on_cleanup(move || abort.abort());
    }
}
