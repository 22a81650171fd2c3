//! The quota-alert server.

use quota_alert::config::{AdminKeySource, Config};
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use std::process::ExitCode;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();

    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("quota-alert: {e}");
            return ExitCode::from(2);
        }
    };
    let leptos_options = match quota_alert::server::leptos_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("quota-alert: {e}");
            return ExitCode::from(2);
        }
    };
    if config.admin_key_source == AdminKeySource::Generated {
        // Printed once, to stdout only, so the operator can use it; never logged.
        println!(
            "QUOTA_ADMIN_RESET_KEY was not set; generated admin key for this run:\n  {}\n\
             Set QUOTA_ADMIN_RESET_KEY to keep a key across restarts.",
            config.admin_key
        );
    }

    let addr = leptos_options.site_addr;
    let service = QuotaService::new(config, Arc::new(SystemClock));
    service.spawn_ticker();
    if service.config().upstream.api_key.is_none() {
        tracing::warn!(
            "OPENAI_API_KEY is not set: proxied requests reach the upstream without a key"
        );
    }
    let state = match quota_alert::api::AppState::new(service) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("quota-alert: cannot build the upstream HTTP client: {e}");
            return ExitCode::from(1);
        }
    };
    let app = quota_alert::server::app(state, leptos_options);

    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("quota-alert: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!("listening on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("quota-alert: server error: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
