//! Assembles the whole HTTP application (the API and the Leptos pages) and
//! serves it, over TLS when configured.

pub mod csp;
pub mod slow_clients;
pub mod tls;

use crate::api::AppState;
use crate::app::{shell, App};
use crate::config::HttpTimeouts;
use axum::Router;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsConfig;
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tower_http::trace::TraceLayer;

/// Serves `app` on `listener` (HTTPS and WSS when `tls` is given) until
/// `shutdown` completes; then stops accepting and gives requests in flight up
/// to the configured drain time.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    timeouts: &HttpTimeouts,
    tls: Option<RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    // TCP_NODELAY on every accepted socket (axum-server's default acceptor
    // leaves it off): a stream's small SSE writes otherwise wait on Nagle's
    // algorithm meeting the client's delayed ACK, ~40 ms per event.
    let handle = axum_server::Handle::new();
    let watched = handle.clone();
    let drain = Duration::from_millis(timeouts.shutdown_drain_ms);
    tokio::spawn({
        let handle = handle.clone();
        async move {
            shutdown.await;
            handle.graceful_shutdown(Some(drain));
        }
    });
    let header_timeout = Duration::from_millis(timeouts.header_read_ms);
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        Some(config) => {
            let mut server = axum_server::from_tcp_rustls(listener, config)?
                .map(|acceptor| {
                    acceptor
                        .handshake_timeout(header_timeout)
                        .acceptor(NoDelayAcceptor::new())
                })
                .handle(handle);
            cut_off_slow_clients(server.http_builder(), header_timeout);
            server.serve(make_service).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?
                .acceptor(NoDelayAcceptor::new())
                .handle(handle);
            cut_off_slow_clients(server.http_builder(), header_timeout);
            server.serve(make_service).await
        }
    };
    // Past the drain, axum-server cuts the remaining connections and returns
    // without waiting for their tasks to end; a proxied stream settles its
    // usage as its task is dropped. Give those a moment, so the service's
    // shutdown (next, in `main`) sees and waits for the writes they start.
    let ended = async {
        while watched.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ended).await;
    served
}

/// hyper's own limits: a request's headers (and, on an idle keep-alive
/// connection, the start of the next request) must arrive within
/// `header_timeout`; an HTTP/2 peer that stops answering pings is dropped.
fn cut_off_slow_clients(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20));
}

pub fn app(state: AppState, leptos_options: LeptosOptions) -> Router {
    let routes = page_routes();
    let pages = Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            {
                // Server functions and SSR find the app state in context; each
                // page gets its CSP nonce before anything renders.
                let state = state.clone();
                move || {
                    provide_context(state.clone());
                    csp::provide_for_page();
                }
            },
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler_with_context(
            csp::provide_for_page,
            shell,
        ))
        .with_state(leptos_options);
    let config = state.service.config();
    let cors = cors_layer(&config.allowed_origins);
    let body_limits = slow_clients::BodyLimits {
        deadline: Duration::from_millis(config.http.body_read_ms),
        max_bytes: crate::api::MAX_BODY_BYTES,
    };
    let served_over_tls = config.tls.is_some();
    let guard = crate::api::guard::Guard::new(state.service.clone());
    crate::api::router(state)
        .layer(tower::util::option_layer(cors))
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            body_limits,
            slow_clients::read_body_within_deadline,
        ))
        // Outside the body reader: a request refused for its rate limit or
        // as cross-site is answered before its body is read. Over the pages
        // too, as that is where server functions (`/api/fn/*`) are routed.
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::api::guard::guard,
        ))
        .layer(axum::middleware::map_response_with_state(
            served_over_tls,
            add_security_headers,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
}

/// The span each request is traced in. Only the path and a redacted query:
/// browsers pass the WebSocket's key as `?token=`, and headers (which carry
/// keys and session cookies) are left out altogether.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        query = %request.uri().query().map(redact_query).unwrap_or_default(),
    )
}

/// `query` with the value of every `token` parameter replaced.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("token") => format!("{name}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
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

/// Headers on every response: no sniffing, no framing, no referrer leaks, a
/// content security policy (pages set their own, with a nonce, before this
/// runs) and, when served over TLS, HSTS.
async fn add_security_headers(
    axum::extract::State(served_over_tls): axum::extract::State<bool>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    set(header::CONTENT_SECURITY_POLICY, csp::DEFAULT_POLICY);
    if served_over_tls {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}

/// The app's page routes, found once per process. Finding them renders the
/// app with resource loading switched off for the whole process (leptos_server's
/// `SuppressResourceLoad` is one global flag), so doing it while another
/// server in the same process renders a page would leave that page's
/// resources unloaded and the page unanswered. The binary builds one app at
/// start; the integration tests build one per test, concurrently.
fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
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

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn tokens_never_reach_the_trace() {
        assert_eq!(
            redact_query("workspace_id=acme&token=qa_secret&x=1"),
            "workspace_id=acme&token=[redacted]&x=1"
        );
        assert_eq!(redact_query("TOKEN=qa_secret"), "TOKEN=[redacted]");
        assert_eq!(redact_query("minutes=5"), "minutes=5");
    }
}
