//! What every page shares: the `<main>` element (marked once hydrated, which
//! end-to-end tests wait for), the top bar with navigation, who is signed in
//! (from the page's [`SignedIn`](crate::ui::context::SignedIn) context), and
//! signing out.

use crate::ui::components::icon::{Icon, IconName};
use crate::ui::context::signed_in;
use crate::wire::Caller;
use leptos::prelude::*;

/// The page's `<main>`; `data-hydrated` turns "true" once the WASM has taken over.
#[component]
pub fn Page(#[prop(optional)] class: &'static str, children: Children) -> impl IntoView {
    let (hydrated, set_hydrated) = signal(false);
    // Effects run only in the browser: this marks the moment hydration is done.
    Effect::new(move |_| set_hydrated.set(true));
    view! {
        <main class=format!("page {class}") data-hydrated=move || hydrated.get().to_string()>
            {children()}
        </main>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Conversation,
    Dashboard,
    /// The admin's workspaces (`/admin`).
    Admin,
    SignIn,
}

/// The top bar; with navigation and signing out when the page was rendered
/// for someone signed in.
#[component]
pub fn TopBar(section: Section) -> impl IntoView {
    let viewer = signed_in();
    let current = move |s: Section| if s == section { Some("page") } else { None };
    let conversation_link = match &viewer {
        Some(Caller::Workspace(_)) => Some("/"),
        _ => None,
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/" rel="external">
                <span class="brand-mark" aria-hidden="true">"◔"</span>
                " quota-alert"
            </a>
            {viewer.clone().map(|viewer| view! {
                <nav class="topnav" aria-label="Main">
                    {conversation_link.map(|href| view! {
                        <a href=href aria-current=current(Section::Conversation)>"Conversation"</a>
                    })}
                    <a href="/dashboard" aria-current=current(Section::Dashboard)>"Dashboard"</a>
                    {viewer.is_admin().then(|| view! {
                        <a href="/admin" aria-current=current(Section::Admin)>"Workspaces"</a>
                    })}
                </nav>
                <div class="whoami">
                    <span class="whoami-label" data-testid="whoami">
                        <Icon name=if viewer.is_admin() { IconName::Key } else { IconName::Workspace }/>" "
                        {if viewer.is_admin() { "Admin".to_string() } else { format!("Workspace {}", viewer.label()) }}
                    </span>
                    <SignOutButton/>
                </div>
            })}
        </header>
    }
}

/// Signs out (`DELETE /api/session`), then goes to the sign-in page.
#[component]
pub fn SignOutButton() -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let on_click = move |_| {
        busy.set(true);
        error.set(None);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let result = gloo_net::http::Request::delete("/api/session").send().await;
            match result {
                Ok(response) if response.ok() => {
                    let _ = window().location().set_href("/signin");
                }
                Ok(response) => {
                    busy.try_set(false);
                    error.try_set(Some(format!(
                        "Could not sign out (HTTP {}).",
                        response.status()
                    )));
                }
                Err(_) => {
                    busy.try_set(false);
                    error.try_set(Some(
                        "Could not sign out: the server is unreachable.".to_string(),
                    ));
                }
            }
        });
    };
    view! {
        <button type="button" class="button-small button-quiet" data-testid="sign-out" on:click=on_click disabled=move || busy.get()>
            "Sign out"
        </button>
        {move || error.get().map(|e| view! { <span class="form-error" role="alert">{e}</span> })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::context::SignedIn;
    use leptos::context::Provider;

    fn render_html(view: impl FnOnce() -> AnyView) -> String {
        Owner::new().with(|| view().to_html())
    }

    #[test]
    fn the_top_bar_shows_whom_the_page_was_rendered_for() {
        let html = render_html(|| {
            view! {
                <Provider value=SignedIn(Caller::Workspace("acme".into()))>
                    <TopBar section=Section::Conversation/>
                </Provider>
            }
            .into_any()
        });
        assert!(html.contains("Workspace acme"), "{html}");
        assert!(html.contains(r#"data-testid="sign-out""#), "{html}");
    }

    #[test]
    fn a_page_s_viewer_stays_inside_its_provider() {
        // What the routes rely on: the error branch, rendered where a page
        // could have been, shows nobody as signed in.
        let html = render_html(|| {
            view! {
                <Provider value=SignedIn(Caller::Admin)>
                    <TopBar section=Section::Dashboard/>
                </Provider>
                <TopBar section=Section::SignIn/>
            }
            .into_any()
        });
        assert_eq!(html.matches(r#"data-testid="whoami""#).count(), 1, "{html}");
    }
}
