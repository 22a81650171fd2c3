//! The page shell and routes, shared by the server (SSR) and the browser (hydrate).

use crate::ui::live_status::LiveStatus;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::StaticSegment;

/// The HTML document around the app. No `AutoReload`: the server runs on its own
/// (not under `cargo leptos watch`), and a reload script with nothing to talk to
/// would put errors in the browser console.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/quota-alert.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Meta name="description" content="Live OpenAI quota status per workspace"/>
        <Title text="quota-alert"/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=StaticSegment("") view=HomePage/>
            </Routes>
        </Router>
    }
}

#[component]
fn HomePage() -> impl IntoView {
    // Effects run only in the browser, so this marks the moment hydration is done
    // (end-to-end tests wait for it before clicking).
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    view! {
        <main class="page" data-hydrated=move || hydrated.get().to_string()>
            <header class="page-header">
                <h1><span aria-hidden="true">"◔ "</span>"quota-alert"</h1>
                <p class="tagline">
                    "Live OpenAI quota status per workspace: know before you hit a limit, and when you have."
                </p>
            </header>
            <LiveStatus/>
            <section class="card" aria-labelledby="api-heading">
                <h2 id="api-heading">"API"</h2>
                <ul class="endpoints">
                    <li><code>"GET /api/quota/status"</code>" — the workspace's snapshot"</li>
                    <li><code>"GET /api/quota/check"</code>" — may the next request go?"</li>
                    <li><code>"POST /api/quota/record"</code>" — report a call you made to OpenAI"</li>
                    <li><code>"GET /api/quota/ws"</code>" — live updates over a WebSocket"</li>
                </ul>
            </section>
        </main>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <main class="page">
            <h1>"Not found"</h1>
            <p><a href="/">"Back to quota-alert"</a></p>
        </main>
    }
}
