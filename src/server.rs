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
    let cors = cors_layer(&state.service.config().allowed_origins);
    crate::api::router(state)
        .layer(tower::util::option_layer(cors))
        .merge(pages)
        .layer(security_headers())
        .layer(TraceLayer::new_for_http())
}

/// CORS for the API: only the configured origins, none by default (the app's
/// own pages are same-origin and need no CORS).
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// Headers on every response: no sniffing, no framing, no referrer leaks.
fn security_headers() -> tower::layer::util::Stack<
    tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue>,
    tower::layer::util::Stack<
        tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue>,
        tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue>,
    >,
> {
    use axum::http::{header, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    tower::layer::util::Stack::new(
        SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        tower::layer::util::Stack::new(
            SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ),
            SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            ),
        ),
    )
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
