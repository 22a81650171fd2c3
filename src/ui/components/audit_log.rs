//! The audit trail on the admin page: who changed what, when, newest first,
//! of every workspace or one. Read with `admin_audit` (the twin of
//! `GET /api/admin/audit`), again whenever the page changes something.

use crate::server_fns::admin::{admin_audit, PAGE_AUDIT_ENTRIES};
use crate::ui::components::conversation::describe_error;
use crate::wire::{AdminResult, AuditEntry, AuditTrail};
use leptos::prelude::*;

/// What an audit action is called on the page.
pub fn action_label(action: &str) -> &str {
    match action {
        "create_workspace" => "Workspace created",
        "rotate_key" => "Key rotated",
        "revoke_keys" => "Keys revoked",
        "update_settings" => "Settings changed",
        "reset" => "Quota reset",
        "end_session" => "Session ended",
        "end_sessions" => "Sessions ended",
        other => other,
    }
}

/// "2026-01-05 12:03:04 UTC" from the entry's RFC 3339 time.
pub fn when(at: &str) -> String {
    match at.get(..19) {
        Some(head) => format!("{} UTC", head.replacen('T', " ", 1)),
        None => at.to_string(),
    }
}

#[component]
pub fn AuditLog(
    initial: AdminResult<AuditTrail>,
    /// Moved by the page after every change it made: the trail is read again.
    version: RwSignal<u64>,
    /// The workspaces to choose from.
    #[prop(into)]
    workspace_ids: Signal<Vec<String>>,
) -> impl IntoView {
    let trail = RwSignal::new(initial);
    // "" for every workspace.
    let scope = RwSignal::new(String::new());
    let loading = RwSignal::new(false);
    // Reads can overlap (a change, then a new scope): only the latest counts.
    let latest = StoredValue::new(0u64);

    // Read again when the scope or the version moves; not on the first run,
    // whose answer came with the page.
    Effect::new(move |before: Option<(String, u64)>| {
        let now = (scope.get(), version.get());
        if before.is_some_and(|b| b != now) {
            let workspace = Some(now.0.clone()).filter(|w| !w.is_empty());
            loading.set(true);
            let this = latest.try_update_value(|n| {
                *n += 1;
                *n
            });
            leptos::task::spawn_local(async move {
                let answer = match admin_audit(workspace).await {
                    Ok(answer) => answer,
                    Err(e) => Err(crate::wire::AdminRefusal {
                        status: 0,
                        code: "unreachable".into(),
                        message: describe_error(&e),
                        field: None,
                    }),
                };
                if latest.try_get_value() == this {
                    trail.try_set(answer);
                    loading.try_set(false);
                }
            });
        }
        now
    });

    view! {
        <section class="card audit" aria-labelledby="audit-heading" aria-busy=move || loading.get().to_string()>
            <div class="audit-head">
                <h2 id="audit-heading">"Audit trail"</h2>
                <div class="field">
                    <label for="audit-scope">"Show"</label>
                    <select id="audit-scope" on:change=move |ev| scope.set(event_target_value(&ev))>
                        <option value="" selected=true>"Every workspace"</option>
                        {move || workspace_ids.get().into_iter().map(|id| view! {
                            <option value=id.clone() prop:selected=move || scope.get() == id>{id.clone()}</option>
                        }).collect_view()}
                    </select>
                </div>
            </div>
            <p class="fine-print">{format!("The newest {PAGE_AUDIT_ENTRIES} changes, newest first. Only the admin can make them.")}</p>
            {move || trail.with(|t| match t {
                Err(refusal) => view! {
                    <p class="form-error" role="alert">"The audit trail cannot be read: "{refusal.message.clone()}</p>
                }.into_any(),
                Ok(AuditTrail { kept: false, .. }) => view! {
                    <p class="notice">"This server keeps no audit trail: it is kept only with SQLite storage (QUOTA_DATABASE_URL=sqlite://…)."</p>
                }.into_any(),
                Ok(AuditTrail { entries, .. }) if entries.is_empty() => view! {
                    <p class="muted" data-testid="audit-empty">"No changes yet."</p>
                }.into_any(),
                Ok(AuditTrail { entries, .. }) => view! { <AuditTable entries=entries.clone()/> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="admin-table" data-testid="audit-table">
                <thead>
                    <tr>
                        <th scope="col">"When"</th>
                        <th scope="col">"Who"</th>
                        <th scope="col">"What"</th>
                        <th scope="col">"Workspace"</th>
                        <th scope="col">"Detail"</th>
                    </tr>
                </thead>
                <tbody>
                    {entries.into_iter().map(|e| view! {
                        <tr data-action=e.action.clone() data-workspace=e.workspace_id.clone().unwrap_or_default()>
                            <td class="nowrap"><time datetime=e.at.clone()>{when(&e.at)}</time></td>
                            <td>"Admin"</td>
                            <td>{action_label(&e.action).to_string()}</td>
                            <td>{e.workspace_id.clone().unwrap_or_else(|| "—".into())}</td>
                            <td class="audit-detail"><code>{e.detail.clone()}</code></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_and_actions_as_words() {
        assert_eq!(when("2026-01-05T12:03:04.123Z"), "2026-01-05 12:03:04 UTC");
        assert_eq!(when("bad"), "bad");
        assert_eq!(action_label("rotate_key"), "Key rotated");
        assert_eq!(action_label("something_new"), "something_new");
    }
}
