//! `/admin`: the admin's workspaces. Create one (its key shown once), see
//! every workspace with its status and key, open one (`?workspace=<id>`) to
//! rotate or revoke its key and edit its limits and settings, and read the
//! audit trail. Admin only: signed out goes to sign-in, a workspace session
//! is told it needs the admin key (403).
//!
//! Every action is a server function that runs the REST endpoint's own
//! checks (`server_fns::admin`); the page only shows what they answer.

use crate::server_fns::admin::{admin_page, admin_workspaces, AdminOverview, AdminPageAnswer};
use crate::ui::components::audit_log::AuditLog;
use crate::ui::components::conversation::describe_error;
use crate::ui::components::create_workspace::CreateWorkspace;
use crate::ui::components::key_reveal::KeyReveal;
use crate::ui::components::layout::{Page, Section, TopBar};
use crate::ui::components::status_view::StatusBadge;
use crate::ui::components::workspace_panel::WorkspacePanel;
use crate::ui::context::SignedIn;
use crate::ui::format::count;
use crate::wire::{Caller, CreatedWorkspace, WorkspaceList, WorkspaceSummary};
use leptos::context::Provider;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_navigate, use_query_map};

#[component]
pub fn AdminRoute() -> impl IntoView {
    let data = Resource::new(|| (), |_| admin_page());
    view! {
        <Suspense fallback=|| view! { <Page><p class="loading">"Loading the workspaces…"</p></Page> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(AdminPageAnswer::Ready(overview)) => view! {
                        <Provider value=SignedIn(Caller::Admin)><AdminView initial=*overview/></Provider>
                    }
                    .into_any(),
                    Ok(AdminPageAnswer::SignedOut { session }) => {
                        view! { <Redirect path=session.signin_path()/> }.into_any()
                    }
                    Ok(AdminPageAnswer::NotAdmin { viewer }) => {
                        view! { <Provider value=SignedIn(viewer)><NotAdmin/></Provider> }.into_any()
                    }
                    Err(e) => view! {
                        <Page>
                            <TopBar section=Section::Admin/>
                            <section class="card" role="alert" data-testid="page-error">
                                <h1>"The workspaces cannot be shown"</h1>
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

#[component]
fn NotAdmin() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::FORBIDDEN);
    }
    view! {
        <Page class="page-narrow">
            <TopBar section=Section::Admin/>
            <section class="card" role="alert" data-testid="admin-only">
                <h1>"This page is for the admin"</h1>
                <p>
                    "Workspaces are managed with the admin key; a workspace key cannot do it. "
                    <a href="/signin" rel="external">"Sign in with the admin key"</a>
                    ", or go back to "<a href="/" rel="external">"your conversation"</a>"."
                </p>
            </section>
        </Page>
    }
}

#[component]
fn AdminView(initial: AdminOverview) -> impl IntoView {
    let AdminOverview { workspaces, audit } = initial;
    let list = RwSignal::new(workspaces);
    let list_error = RwSignal::new(None::<String>);
    let audit_version = RwSignal::new(0u64);
    let created = RwSignal::new(None::<CreatedWorkspace>);
    let query = use_query_map();
    let selected =
        Signal::derive(move || query.with(|q| q.get("workspace")).filter(|w| !w.is_empty()));
    let has_key = Signal::derive(move || {
        let id = selected.get();
        list.with(|l| {
            l.workspaces
                .iter()
                .any(|w| Some(&w.id) == id.as_ref() && w.has_key)
        })
    });
    let workspace_ids =
        Signal::derive(move || list.with(|l| l.workspaces.iter().map(|w| w.id.clone()).collect()));

    // After any change: the list (status, key, settings in brief) and the
    // audit trail are read again.
    let latest = StoredValue::new(0u64);
    let refresh = Callback::new(move |_: ()| {
        audit_version.update(|v| *v += 1);
        let this = latest.try_update_value(|n| {
            *n += 1;
            *n
        });
        leptos::task::spawn_local(async move {
            let answer = admin_workspaces().await;
            // Refreshes can overlap: an older answer never replaces a newer one.
            if latest.try_get_value() != this {
                return;
            }
            match answer {
                Ok(Ok(fresh)) => {
                    list.try_set(fresh);
                    list_error.try_set(None);
                }
                Ok(Err(refusal)) => {
                    list_error.try_set(Some(refusal.message));
                }
                Err(e) => {
                    list_error.try_set(Some(describe_error(&e)));
                }
            }
        });
    });
    let navigate = use_navigate();
    let on_created = Callback::new(move |c: CreatedWorkspace| {
        // Open the new workspace for its settings; the key stays shown
        // above, on this same page, until the admin hides it.
        navigate(&format!("/admin?workspace={}", c.id), Default::default());
        created.set(Some(c));
        refresh.run(());
    });

    view! {
        <Page class="page-wide">
            <TopBar section=Section::Admin/>
            <div class="dashboard-head">
                <div>
                    <h1>"Workspaces"</h1>
                    <p class="muted">
                        "Create workspaces and hand out their keys, rotate or revoke keys, and set limits, budgets and time zones. Every change is in the audit trail below."
                    </p>
                </div>
            </div>
            <div class="admin-top">
                <CreateWorkspace on_created/>
                {move || created.get().map(|c| view! {
                    <div class="card">
                        <KeyReveal
                            workspace=c.id.clone()
                            key=c.api_key.clone()
                            what="The workspace is created. Give this key to whoever will use it."
                            on_done=move |_| created.set(None)
                        />
                    </div>
                })}
            </div>
            <section class="card" aria-labelledby="list-heading">
                <h2 id="list-heading">{move || list.with(|l| format!("All workspaces ({})", count(l.total as u64)))}</h2>
                {move || list_error.get().map(|e| view! {
                    <p class="notice notice-warning" role="status">"Could not refresh the list: "{e}</p>
                })}
                <WorkspaceTable list selected/>
            </section>
            <WorkspacePanel selected has_key on_changed=refresh/>
            <AuditLog initial=audit version=audit_version workspace_ids/>
        </Page>
    }
}

#[component]
fn WorkspaceTable(
    list: RwSignal<WorkspaceList>,
    selected: Signal<Option<String>>,
) -> impl IntoView {
    let rows = move || list.with(|l| l.workspaces.clone());
    view! {
        <Show
            when=move || list.with(|l| !l.workspaces.is_empty())
            fallback=|| view! { <p class="muted" data-testid="no-workspaces">"No workspaces yet: create the first one above."</p> }
        >
            <div class="table-wrap">
                <table class="admin-table" data-testid="workspace-table">
                    <thead>
                        <tr>
                            <th scope="col">"Workspace"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Key"</th>
                            <th scope="col">"Limits (req/min · req/day · tok/min · tok/day)"</th>
                            <th scope="col">"Time zone"</th>
                            <th scope="col">"Rules"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=rows key=|w| format!("{w:?}") let:w>
                            <WorkspaceRow w selected/>
                        </For>
                    </tbody>
                </table>
            </div>
            {move || list.with(|l| (l.total > l.workspaces.len()).then(|| view! {
                <p class="fine-print">{format!("Showing the first {} by id.", l.workspaces.len())}</p>
            }))}
        </Show>
    }
}

#[component]
fn WorkspaceRow(w: WorkspaceSummary, selected: Signal<Option<String>>) -> impl IntoView {
    let id = w.id.clone();
    let current = {
        let id = id.clone();
        move || (selected.get().as_ref() == Some(&id)).then_some("true")
    };
    let l = w.limits;
    let rules = format!(
        "{} budget{}, {} model, {} user",
        w.budgets,
        if w.budgets == 1 { "" } else { "s" },
        w.model_limits,
        w.user_overrides
    );
    view! {
        <tr data-workspace=id.clone() aria-current=current>
            <th scope="row">{id.clone()}</th>
            <td><StatusBadge status=w.status/></td>
            <td data-testid="key-cell">{if w.has_key { "Active" } else { "Revoked" }}</td>
            <td class="nowrap">
                {format!(
                    "{} · {} · {} · {}",
                    count(l.requests_per_minute),
                    count(l.requests_per_day),
                    count(l.tokens_per_minute),
                    count(l.tokens_per_day)
                )}
            </td>
            <td>{w.time_zone.clone()}</td>
            <td>{rules}</td>
            <td>
                <a href=format!("/admin?workspace={id}") aria-label=format!("Manage {id}")>"Manage"</a>
            </td>
        </tr>
    }
}
