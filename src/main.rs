//! The quota-alert server.

use quota_alert::config::{AdminKeySource, Config};
use quota_alert::engine::SystemClock;
use quota_alert::service::{FailurePolicy, QuotaService, Shared};
use quota_alert::store::{RedisShared, SqliteStore};
use std::process::ExitCode;
use std::sync::Arc;

/// The service on the store `QUOTA_DATABASE_URL` names: Redis (shared by
/// several instances) or a SQLite file. Errors name the store and the problem.
async fn start_service(config: Config) -> Result<QuotaService, String> {
    let url = config.database_url.clone();
    if config.uses_redis() {
        let policy = match std::env::var("QUOTA_REDIS_FAILURE_POLICY").as_deref() {
            Ok("closed") => FailurePolicy::Closed,
            Ok("open") | Err(_) => FailurePolicy::Open,
            Ok(other) => {
                return Err(format!(
                    "QUOTA_REDIS_FAILURE_POLICY must be `open` or `closed`, got {other:?}"
                ))
            }
        };
        let redis = RedisShared::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        let shared = Shared {
            redis,
            instance: quota_alert::auth::generate_secret("i_"),
            policy,
        };
        return QuotaService::with_redis(config, Arc::new(SystemClock), shared)
            .await
            .map_err(|e| format!("cannot load shared state: {e}"));
    }
    let path = quota_alert::store::path_from_url(&url).map_err(|e| e.to_string())?;
    let store = SqliteStore::open(&path).map_err(|e| e.to_string())?;
    QuotaService::with_store(config, Arc::new(SystemClock), store)
        .await
        .map_err(|e| format!("cannot load saved state: {e}"))
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=warn".into());
    if std::env::var("QUOTA_LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let mut config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("quota-alert: {e}");
            return ExitCode::from(2);
        }
    };
    // Certificates are checked before anything is opened, so a bad file stops
    // the server at once with the file named.
    let tls = match &config.tls {
        Some(files) => match quota_alert::server::tls::load(files) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("quota-alert: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let leptos_options = match quota_alert::server::leptos_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("quota-alert: {e}");
            return ExitCode::from(2);
        }
    };
    // A generated admin key is kept in the data directory, so a restart
    // keeps it (and the admin's sessions); under Redis one is refused, since
    // every instance must accept the same key. The log says where the key
    // is, never the key.
    if let Err(e) = config.keep_generated_admin_key() {
        eprintln!("quota-alert: {e}");
        return ExitCode::from(2);
    }
    if let AdminKeySource::File(path) = &config.admin_key_source {
        tracing::warn!(
            path = %path.display(),
            "QUOTA_ADMIN_RESET_KEY is not set: the admin key is the one kept in this file \
             (readable by this user only); set QUOTA_ADMIN_RESET_KEY to choose your own"
        );
    }

    let addr = leptos_options.site_addr;
    let service = match start_service(config).await {
        Ok(service) => service,
        Err(e) => {
            eprintln!("quota-alert: {e}");
            return ExitCode::from(2);
        }
    };
    service.spawn_ticker();
    service.start_alerts();
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
    let shutdown_service = state.service.clone();
    let timeouts = state.service.config().http.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let app = quota_alert::server::app(state, leptos_options);

    let listener = match std::net::TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("quota-alert: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!("listening on {scheme}://{addr}");
    // SIGTERM (orchestrators) or Ctrl-C: stop accepting, tell WebSockets we
    // are going away (close code 1001, so clients reconnect elsewhere), and let
    // in-flight requests finish.
    let shutdown = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: draining requests, closing WebSockets");
        shutdown_service.begin_shutdown();
    };
    if let Err(e) = quota_alert::server::serve(listener, app, &timeouts, tls, shutdown).await {
        eprintln!("quota-alert: server error: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
