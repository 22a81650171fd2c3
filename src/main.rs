//! The quota-alert server.

use quota_alert::config::{AdminKeySource, Config};
use quota_alert::engine::SystemClock;
use quota_alert::service::QuotaService;
use quota_alert::store::SqliteStore;
use std::process::ExitCode;
use std::sync::Arc;

/// Opens the store `QUOTA_DATABASE_URL` names; errors name the file and problem.
fn open_store(url: &str) -> Result<SqliteStore, String> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Err(format!(
            "QUOTA_DATABASE_URL={url}: the Redis store is not available in this build; \
             use a SQLite file (sqlite://path/to/file.db)"
        ));
    }
    let path = quota_alert::store::path_from_url(url).map_err(|e| e.to_string())?;
    SqliteStore::open(&path).map_err(|e| e.to_string())
}

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
    let store = match open_store(&config.database_url) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("quota-alert: {e}");
            return ExitCode::from(2);
        }
    };
    let service = match QuotaService::with_store(config, Arc::new(SystemClock), store).await {
        Ok(service) => service,
        Err(e) => {
            eprintln!("quota-alert: cannot load saved state: {e}");
            return ExitCode::from(2);
        }
    };
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
