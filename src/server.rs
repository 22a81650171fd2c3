//! Assembles the whole HTTP application: the API and the Leptos pages.

use crate::api::AppState;
use crate::app::{shell, App};
use axum::Router;
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

pub fn app(state: AppState, leptos_options: LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    let pages = Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            {
                // Server functions and SSR find the app state in context.
                let state = state.clone();
                move || provide_context(state.clone())
            },
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos_options);
    crate::api::router(state)
        .merge(pages)
        .layer(TraceLayer::new_for_http())
}

/// Leptos options from the environment (`LEPTOS_SITE_ROOT`, `LEPTOS_SITE_ADDR`,
/// ...), with the output name filled in when the binary was not built by
/// cargo-leptos (plain `cargo build`/`cargo test`).
pub fn leptos_options() -> Result<LeptosOptions, String> {
    let mut options = leptos::config::get_configuration(None)
        .map_err(|e| format!("invalid LEPTOS_* setting: {e}"))?
        .leptos_options;
    if options.output_name.is_empty() {
        options.output_name = "quota-alert".into();
    }
    Ok(options)
}
