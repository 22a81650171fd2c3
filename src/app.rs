//! The page shell and routes, shared by the server (SSR) and the browser (hydrate).
//!
//! Pages that depend on who is signed in render fully on the server
//! (`SsrMode::Async`): the HTML already holds the current status, and a browser
//! that is not signed in gets a real redirect to `/signin`.

use crate::ui::components::layout::Page;
use crate::ui::pages::admin::AdminRoute;
use crate::ui::pages::dashboard::DashboardRoute;
use crate::ui::pages::signin::SignInPage;
use crate::ui::pages::workspace::WorkspaceRoute;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, StaticSegment};

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
                <meta name="color-scheme" content="light dark"/>
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
                <Route path=StaticSegment("") view=WorkspaceRoute ssr=SsrMode::Async/>
                <Route path=StaticSegment("signin") view=SignInPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("dashboard") view=DashboardRoute ssr=SsrMode::Async/>
                <Route path=StaticSegment("admin") view=AdminRoute ssr=SsrMode::Async/>
            </Routes>
        </Router>
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
        <Page class="page-narrow">
            <section class="card">
                <h1>"Not found"</h1>
                <p>"There is no page here. "<a href="/" rel="external">"Back to quota-alert"</a></p>
            </section>
        </Page>
    }
}
