//! One workspace on the admin page: its keys (rotate, with the new key shown
//! once; revoke, after a confirmation) and its settings editor. The
//! workspace is the one named by `?workspace=`, so a reload keeps it open;
//! its settings are read with `admin_settings` (awaited on the server, so
//! the form is in the page's HTML).

use crate::server_fns::admin::{admin_revoke_keys, admin_rotate_key, admin_settings};
use crate::ui::components::conversation::describe_error;
use crate::ui::components::key_reveal::KeyReveal;
use crate::ui::components::settings_form::SettingsForm;
use crate::wire::{AdminResult, WorkspaceSettingsView};
use leptos::prelude::*;

#[component]
pub fn WorkspacePanel(
    /// The workspace named by the address, if any.
    #[prop(into)]
    selected: Signal<Option<String>>,
    /// Whether the selected workspace has a working key (from the list).
    #[prop(into)]
    has_key: Signal<bool>,
    /// Called after any change (the page refreshes its list and audit).
    #[prop(into)]
    on_changed: Callback<()>,
) -> impl IntoView {
    let settings = Resource::new(
        move || selected.get(),
        |id| async move {
            match id {
                Some(id) => admin_settings(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading the workspace…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Ok(None) => ().into_any(),
                    Ok(Some(answer)) => view! { <Loaded answer has_key on_changed/> }.into_any(),
                    Err(e) => view! {
                        <section class="card" role="alert">
                            <p>"This workspace cannot be shown: "{describe_error(&e)}</p>
                        </section>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Loaded(
    answer: AdminResult<WorkspaceSettingsView>,
    has_key: Signal<bool>,
    on_changed: Callback<()>,
) -> impl IntoView {
    let view = match answer {
        Ok(view) => view,
        Err(refusal) => {
            return view! {
                <section class="card" role="alert" data-testid="workspace-refused">
                    <p>{refusal.message}</p>
                </section>
            }
            .into_any()
        }
    };
    let id = view.id.clone();
    view! {
        <section class="card workspace-panel" aria-labelledby="panel-heading" data-testid="workspace-panel" data-workspace=id.clone()>
            <h2 id="panel-heading">{format!("Workspace {id}")}</h2>
            <KeyActions id=id.clone() has_key on_changed/>
            <SettingsForm initial=view on_saved=on_changed/>
        </section>
    }
    .into_any()
}

#[component]
fn KeyActions(id: String, has_key: Signal<bool>, on_changed: Callback<()>) -> impl IntoView {
    let revealed = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<&'static str>);

    let rotate = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            busy.set(true);
            error.set(None);
            done.set(None);
            confirming.set(false);
            leptos::task::spawn_local(async move {
                match admin_rotate_key(id).await {
                    Ok(Ok(rotated)) => {
                        revealed.try_set(Some(rotated.api_key));
                        on_changed.run(());
                    }
                    Ok(Err(refusal)) => {
                        error.try_set(Some(refusal.message));
                    }
                    Err(e) => {
                        error.try_set(Some(describe_error(&e)));
                    }
                }
                busy.try_set(false);
            });
        }
    };
    let revoke = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            busy.set(true);
            error.set(None);
            leptos::task::spawn_local(async move {
                match admin_revoke_keys(id).await {
                    Ok(Ok(())) => {
                        revealed.try_set(None);
                        done.try_set(Some("Every key of this workspace is revoked. Rotate the key to issue a new one."));
                        on_changed.run(());
                    }
                    Ok(Err(refusal)) => {
                        error.try_set(Some(refusal.message));
                    }
                    Err(e) => {
                        error.try_set(Some(describe_error(&e)));
                    }
                }
                confirming.try_set(false);
                busy.try_set(false);
            });
        }
    };

    let workspace = id.clone();
    view! {
        <div class="key-actions" role="group" aria-label="Keys">
            <h3>"Key"</h3>
            <p class="muted" data-testid="key-state">
                {move || if has_key.get() {
                    "The workspace has a working key. Rotating replaces it: the old key and its browser sessions stop working at once."
                } else {
                    "The workspace has no working key: rotate to issue one."
                }}
            </p>
            <div class="button-row">
                <button type="button" on:click=rotate disabled=move || busy.get()>"Rotate key"</button>
                <button
                    type="button"
                    class="button-quiet button-danger"
                    on:click=move |_| confirming.set(true)
                    disabled=move || busy.get() || !has_key.get()
                >"Revoke keys…"</button>
            </div>
            <Show when=move || confirming.get()>
                <div class="confirm" role="alertdialog" aria-labelledby="revoke-question" aria-describedby="revoke-consequence">
                    <p id="revoke-question"><strong>{format!("Revoke every key of {workspace}?")}</strong></p>
                    <p id="revoke-consequence">
                        "Its key and browser sessions stop working at once, open connections included. Nothing can act for it until you rotate a new key."
                    </p>
                    <div class="button-row">
                        <button type="button" class="button-danger-solid" on:click=revoke.clone() disabled=move || busy.get()>"Revoke every key"</button>
                        <button type="button" class="button-quiet" on:click=move |_| confirming.set(false)>"Cancel"</button>
                    </div>
                </div>
            </Show>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
            <p class="form-saved" role="status">{move || done.get()}</p>
            {move || revealed.get().map(|key| view! {
                <KeyReveal workspace=id.clone() key what="The key is rotated: the old key has stopped working." on_done=move |_| revealed.set(None)/>
            })}
        </div>
    }
}
