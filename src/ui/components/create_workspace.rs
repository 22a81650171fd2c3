//! "Create workspace" on the admin page: an id and, optionally, limits that
//! differ from the server's defaults. Sent with `admin_create_workspace`
//! (the twin of `POST /api/admin/workspaces`); a refusal shows beside the id
//! or the limit it names, and the new key goes to the page to show once.

use crate::server_fns::admin::admin_create_workspace;
use crate::ui::components::conversation::describe_error;
use crate::ui::components::form_field::{Field, FormErrors};
use crate::ui::components::settings_form::draft::WindowsDraft;
use crate::ui::components::settings_form::rows::{WindowInputs, WindowsState};
use crate::wire::CreatedWorkspace;
use leptos::prelude::*;

#[component]
pub fn CreateWorkspace(#[prop(into)] on_created: Callback<CreatedWorkspace>) -> impl IntoView {
    let id = RwSignal::new(String::new());
    let limits = WindowsState::new(&WindowsDraft::default());
    let errors = FormErrors::new();
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let overrides = match limits.draft().overrides("limits") {
            Ok(overrides) => overrides,
            Err(e) => {
                errors.field(e.field.clone(), format!("{}: {}", e.field, e.message));
                return;
            }
        };
        busy.set(true);
        let new_id = id.get_untracked().trim().to_string();
        leptos::task::spawn_local(async move {
            match admin_create_workspace(new_id, overrides).await {
                Ok(Ok(created)) => {
                    id.try_set(String::new());
                    limits.set(&WindowsDraft::default());
                    on_created.run(created);
                }
                Ok(Err(refusal)) => errors.refused(&refusal),
                Err(e) => errors.general(describe_error(&e)),
            }
            busy.try_set(false);
        });
    };

    view! {
        <form class="card create-workspace" on:submit=submit aria-labelledby="create-heading" novalidate>
            <h2 id="create-heading">"Create workspace"</h2>
            <Field
                id="new-workspace-id".to_string()
                label="Workspace id"
                value=id
                field="id".to_string()
                errors
                placeholder="acme-support"
                required=true
            />
            <p class="fine-print">"1 to 64 lowercase letters, digits, _ and -. It cannot be changed later."</p>
            <details class="create-limits">
                <summary>"Limits (optional: the server's defaults otherwise)"</summary>
                <div class="field-grid">
                    <WindowInputs id="new-limits".to_string() windows=limits prefix="limits".to_string() errors placeholder="default"/>
                </div>
            </details>
            <div class="form-actions">
                <button type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create workspace" }}
                </button>
                {move || errors.summary().map(|m| view! {
                    <p class="form-error" role="alert" data-testid="create-error">"Not created: "{m}</p>
                })}
            </div>
        </form>
    }
}
