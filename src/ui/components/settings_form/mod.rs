//! The settings editor of one workspace on the admin page: its four limits,
//! time zone, budgets, and per-model and per-user limits. Save sends every
//! setting in one patch (`admin_update_settings`, the twin of `PATCH
//! /api/admin/workspaces/{id}`); a refusal shows beside the field it names,
//! and a change saved shows the values the server kept.
//!
//! `draft.rs` is the form as text and its conversions (pure, tested);
//! `rows.rs` the reactive inputs.

pub mod draft;
pub mod rows;

use crate::server_fns::admin::admin_update_settings;
use crate::ui::components::conversation::describe_error;
use crate::ui::components::form_field::{Field, FormErrors};
use crate::wire::WorkspaceSettingsView;
use draft::SettingsDraft;
use leptos::prelude::*;
use rows::{BudgetRows, FormState, NamedRows, ScopedInputs, WindowInputs};

/// Time zones offered while typing; any IANA name is accepted.
const COMMON_ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Kyiv",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Africa/Cairo",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Mexico_City",
];

#[component]
pub fn SettingsForm(
    initial: WorkspaceSettingsView,
    /// Called after a change is saved (the page refreshes its list and audit).
    #[prop(into)]
    on_saved: Callback<()>,
) -> impl IntoView {
    let workspace = initial.id.clone();
    let state = FormState::new(&SettingsDraft::from_view(&initial));
    let errors = FormErrors::new();
    let busy = RwSignal::new(false);
    let saved = RwSignal::new(None::<String>);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        saved.set(None);
        let patch = match state.draft().to_patch() {
            Ok(patch) => patch,
            Err(e) => {
                errors.field(e.field.clone(), format!("{}: {}", e.field, e.message));
                return;
            }
        };
        busy.set(true);
        let id = workspace.clone();
        leptos::task::spawn_local(async move {
            match admin_update_settings(id, patch).await {
                Ok(Ok(view)) => {
                    state.load(&SettingsDraft::from_view(&view));
                    saved.try_set(Some(saved_summary(&view)));
                    on_saved.run(());
                }
                Ok(Err(refusal)) => errors.refused(&refusal),
                Err(e) => errors.general(describe_error(&e)),
            }
            busy.try_set(false);
        });
    };

    view! {
        <form class="settings-form" on:submit=submit aria-labelledby="settings-heading" novalidate>
            <h3 id="settings-heading">"Limits and settings"</h3>
            <fieldset class="settings-group">
                <legend>"Workspace limits"</legend>
                <p class="fine-print">"Every call of the workspace counts against these. Leave one empty to keep it as it is."</p>
                <div class="field-grid">
                    <WindowInputs id="limits".to_string() windows=state.limits prefix="limits".to_string() errors/>
                </div>
            </fieldset>
            <fieldset class="settings-group">
                <legend>"Local time"</legend>
                <p class="fine-print">"Budgets reset at midnight in this zone: an IANA name such as Europe/Berlin."</p>
                <Field id="time-zone".to_string() label="Time zone" value=state.time_zone field="time_zone".to_string() errors list="time-zones" required=true/>
                <datalist id="time-zones">
                    {COMMON_ZONES.iter().map(|z| view! { <option value=*z></option> }).collect_view()}
                </datalist>
            </fieldset>
            <fieldset class="settings-group">
                <legend>"Budgets"</legend>
                <p class="fine-print">"Spend per period in US dollars. A hard budget refuses calls once spent; a soft one only warns."</p>
                <SectionError errors field="budgets"/>
                <BudgetRows state errors/>
            </fieldset>
            <fieldset class="settings-group">
                <legend>"Per-model limits"</legend>
                <p class="fine-print">"A model or a family: gpt-4o also covers gpt-4o-2024-08-06, but not gpt-4o-mini. Empty fields set no limit."</p>
                <SectionError errors field="model_limits"/>
                <NamedRows state rows=state.models noun="Model" name_label="Model or family" map="model_limits" errors/>
            </fieldset>
            <fieldset class="settings-group">
                <legend>"Per-user limits"</legend>
                <p class="fine-print">"For calls that name an end user. The default applies to every user without a row of their own."</p>
                <fieldset class="settings-row">
                    <legend>"Every user (default)"</legend>
                    <ScopedInputs id="user-default".to_string() limits=state.user_default prefix="user_limits.default".to_string() errors/>
                </fieldset>
                <SectionError errors field="user_limits.overrides"/>
                <NamedRows state rows=state.users noun="User" name_label="User id" map="user_limits.overrides" errors/>
            </fieldset>
            <div class="form-actions">
                <button type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Saving…" } else { "Save settings" }}
                </button>
                {move || errors.summary().map(|m| view! {
                    <p class="form-error" role="alert" data-testid="settings-error">"Not saved: "{m}</p>
                })}
                <p class="form-saved" role="status" data-testid="settings-saved">{move || saved.get()}</p>
            </div>
        </form>
    }
}

/// A refusal of a whole list (too many rows), shown above its rows.
#[component]
fn SectionError(errors: FormErrors, field: &'static str) -> impl IntoView {
    move || {
        errors
            .message_for(field)
            .map(|m| view! { <p class="field-error">{m}</p> })
    }
}

/// "Saved: 1 budget, 2 model rules, 0 user rules; time zone Asia/Tokyo."
fn saved_summary(view: &WorkspaceSettingsView) -> String {
    let s = &view.settings;
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let users = s.user_limits.as_ref().map_or(0, |u| u.overrides.len());
    format!(
        "Saved: {}, {}, {}; time zone {}.",
        plural(s.budgets.as_ref().map_or(0, Vec::len), "budget"),
        plural(s.model_limits.as_ref().map_or(0, |m| m.len()), "model rule"),
        plural(users, "user rule"),
        s.time_zone.as_deref().unwrap_or("UTC"),
    )
}
