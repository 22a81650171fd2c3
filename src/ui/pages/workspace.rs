//! `/`: the conversation workspace. Server-rendered with the current status
//! (the banner is in the HTML before any script runs), then kept live by
//! the quota monitor. Not signed in: redirected to `/signin` by the server.
//! The admin opens a workspace with `/?workspace=<id>`.
//!
//! The page provides who is signed in, its quota monitor and its clock as
//! context (see `ui::context`); the components below read them from there.

use crate::server_fns::status::{workspace_page, WorkspaceData, WorkspacePageAnswer};
use crate::ui::components::connection::ConnectionIndicator;
use crate::ui::components::conversation::{describe_error, ConversationPanel};
use crate::ui::components::layout::{Page, Section, TopBar};
use crate::ui::components::meter::Meters;
use crate::ui::components::spend::SpendMeters;
use crate::ui::components::status_view::{status_label, StatusBadge, StatusChip};
use crate::ui::components::toast::{ToastRegion, Toasts};
use crate::ui::context::SignedIn;
use crate::ui::hooks::use_quota_monitor::provide_quota_monitor;
use crate::ui::hooks::use_ticker::Ticker;
use crate::wire::Caller;
use leptos::context::Provider;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

#[component]
pub fn WorkspaceRoute() -> impl IntoView {
    let query = use_query_map();
    let page = Resource::new(move || query.with(|q| q.get("workspace")), workspace_page);
    view! {
        <Suspense fallback=|| view! { <Page><p class="loading">"Loading the workspace…"</p></Page> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(WorkspacePageAnswer::Ready(data)) => {
                        // A fresh owner for this page's context (see `ui::context`).
                        let viewer = SignedIn(data.viewer.clone());
                        view! { <Provider value=viewer><WorkspaceView data=*data/></Provider> }.into_any()
                    }
                    Ok(WorkspacePageAnswer::SignedOut { session }) => {
                        view! { <Redirect path=session.signin_path()/> }.into_any()
                    }
                    Ok(WorkspacePageAnswer::ChooseWorkspace) => view! { <Redirect path="/dashboard"/> }.into_any(),
                    Err(e) => view! {
                        <Page>
                            <TopBar section=Section::Conversation/>
                            <section class="card" role="alert" data-testid="page-error">
                                <h1>"This workspace cannot be shown"</h1>
                                <p>{describe_error(&e)}</p>
                                <p><a href="/dashboard">"Back to the dashboard"</a></p>
                            </section>
                        </Page>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn WorkspaceView(data: WorkspaceData) -> impl IntoView {
    let WorkspaceData {
        viewer,
        workspace_id,
        snapshot,
        conversation,
        transcript,
    } = data;
    // An admin watches the workspace it opened; a workspace session its own.
    let target = viewer.is_admin().then(|| workspace_id.clone());
    let monitor = provide_quota_monitor(snapshot, target);
    Ticker::provide(250);
    let toasts = Toasts::new();
    Effect::new(move |_| {
        if let Some(change) = monitor.last_change.get() {
            toasts.status_changed(&change);
        }
    });
    let status = Signal::derive(move || monitor.snapshot.with(|s| s.status));
    // A background tab shows the status in its title.
    let title = {
        let workspace_id = workspace_id.clone();
        move || {
            format!(
                "{} · {} — quota-alert",
                status_label(status.get()),
                workspace_id
            )
        }
    };
    let admin_note = match &viewer {
        Caller::Admin => Some(view! {
            <p class="admin-note">"Viewing as the admin. "<a href="/dashboard">"All workspaces"</a></p>
        }),
        Caller::Workspace(_) => None,
    };

    view! {
        <Title text=title/>
        <Page class="page-wide">
            <TopBar section=Section::Conversation/>
            <div class="workspace-title">
                <h1>
                    <span class="muted">"Workspace "</span>
                    <span data-testid="workspace-id">{workspace_id.clone()}</span>
                </h1>
                <span class="title-status">{move || view! { <StatusChip status=status.get()/> }}</span>
            </div>
            {admin_note}
            <div class="workspace-grid">
                <ConversationPanel workspace_id=workspace_id.clone() conversation transcript/>
                <aside class="card quota-panel" aria-labelledby="quota-heading">
                    <h2 id="quota-heading">"Quota"</h2>
                    <ConnectionIndicator/>
                    <p class="status-line">
                        <StatusBadge status/>
                        <span class="status-message" data-testid="status-message">
                            {move || monitor.snapshot.with(|s| s.message.clone())}
                        </span>
                    </p>
                    <Meters snapshot=monitor.snapshot received_at=monitor.received_at/>
                    <SpendMeters snapshot=monitor.snapshot received_at=monitor.received_at/>
                    <p class="fine-print">
                        "Limits slide: per-minute windows free up second by second, day windows minute by minute."
                    </p>
                </aside>
            </div>
            <ToastRegion toasts/>
        </Page>
    }
}
