//! `/signin`: a workspace key opens the conversation workspace, the admin key
//! the dashboard of all workspaces. The form posts to `/api/session` natively
//! (it works before the WASM loads); the key goes to the server once and the
//! browser keeps only an HttpOnly, SameSite session cookie.

use crate::server_fns::whoami::{whoami, Session};
use crate::ui::components::icon::{Icon, IconName};
use crate::ui::components::layout::{Page, Section, TopBar};
use crate::wire::Caller;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || {
        query.with(|q| match q.get("error").as_deref() {
            Some("invalid_key") => Some(
                "That key is not valid. Check that you pasted the whole key (workspace keys start with qa_).",
            ),
            Some("store_unavailable") => Some(
                "The server could not save your session just now, so you are not signed in. Try again in a moment.",
            ),
            Some(_) => Some("Signing in failed; try again."),
            None => None,
        })
    };
    let expired = move || query.with(|q| q.get("expired").is_some());
    let session = Resource::new(|| (), |_| whoami());

    view! {
        <Page class="page-narrow">
            <TopBar section=Section::SignIn/>
            <section class="card signin" aria-labelledby="signin-heading">
                <h1 id="signin-heading">"Sign in"</h1>
                <p class="lead">
                    "Paste a workspace key to open its conversation workspace, or the admin key for the dashboard of every workspace."
                </p>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match session.await {
                            Ok(Session::SignedIn(viewer)) => Some(view! { <AlreadySignedIn viewer/> }),
                            _ => None,
                        }
                    })}
                </Suspense>
                {move || expired().then(|| view! {
                    <p class="notice" role="status" data-testid="signin-expired">
                        <Icon name=IconName::Info/>" "
                        "Your session has ended. Sign in again to continue."
                    </p>
                })}
                {move || error().map(|e| view! {
                    <p class="form-error" role="alert" data-testid="signin-error" id="signin-error">
                        <Icon name=IconName::Blocked/>" "{e}
                    </p>
                })}
                <form class="signin-form" method="post" action="/api/session">
                    <label for="api_key">"Key"</label>
                    <input
                        id="api_key"
                        name="api_key"
                        type="password"
                        autocomplete="current-password"
                        spellcheck="false"
                        required
                        placeholder="qa_…"
                        aria-invalid=move || error().is_some().then_some("true")
                        aria-describedby=move || error().is_some().then_some("signin-error")
                    />
                    <button type="submit" data-testid="sign-in">"Sign in"</button>
                </form>
                <p class="fine-print">
                    "No key? An admin creates workspaces with "<code>"POST /api/admin/workspaces"</code>
                    " and hands out their keys."
                </p>
            </section>
        </Page>
    }
}

#[component]
fn AlreadySignedIn(viewer: Caller) -> impl IntoView {
    let (who, href, place) = match &viewer {
        Caller::Admin => ("the admin".to_string(), "/dashboard", "the dashboard"),
        Caller::Workspace(id) => (format!("workspace {id}"), "/", "the conversation"),
    };
    view! {
        <p class="notice" data-testid="signin-current">
            "You are signed in as "<strong>{who}</strong>". "
            <a href=href rel="external">"Go to "{place}</a>
            ", or sign in with another key below."
        </p>
    }
}
