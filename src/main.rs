//! The quota-alert server: `run` starts everything in order and returns the
//! one error that stopped it; `main` prints it and exits with its code.

use quota_alert::config::{AdminKeySource, Config, LogFormat};
use quota_alert::engine::SystemClock;
use quota_alert::service::{QuotaService, Shared, SHUTDOWN_DRAIN};
use quota_alert::store::{RedisShared, SqliteStore};
use std::process::ExitCode;
use std::sync::Arc;

/// Why the server stopped (or never started). Exit code 2: a setting, a file
/// or a store the operator must fix before starting again; 1: a failure while
/// running.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Runtime(String),
}

impl RunError {
    fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Setup(_) => ExitCode::from(2),
            RunError::Runtime(_) => ExitCode::from(1),
        }
    }
}

fn setup(e: impl std::fmt::Display) -> RunError {
    RunError::Setup(e.to_string())
}

/// The service on the store `QUOTA_DATABASE_URL` names: Redis (shared by
/// several instances) or a SQLite file. Errors name the store and the problem.
async fn start_service(config: Config) -> Result<QuotaService, RunError> {
    let url = config.database_url.clone();
    if config.uses_redis() {
        let redis = RedisShared::connect(&url).await.map_err(setup)?;
        let shared = Shared {
            redis,
            instance: quota_alert::auth::generate_secret("i_"),
            policy: config.redis_failure_policy,
        };
        return QuotaService::with_redis(config, Arc::new(SystemClock), shared)
            .await
            .map_err(|e| setup(format!("cannot load shared state: {e}")));
    }
    let path = quota_alert::store::path_from_url(&url).map_err(setup)?;
    let store = SqliteStore::open(&path).map_err(setup)?;
    QuotaService::with_store(config, Arc::new(SystemClock), store)
        .await
        .map_err(|e| setup(format!("cannot load saved state: {e}")))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=warn".into());
    match format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
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

async fn run() -> Result<(), RunError> {
    // Settings first: the log format is one of them.
    let mut config = Config::load().map_err(setup)?;
    init_logging(config.log_format);
    // Certificates are checked before anything is opened, so a bad file stops
    // the server at once with the file named.
    let tls = match &config.tls {
        Some(files) => Some(quota_alert::server::tls::load(files).map_err(setup)?),
        None => None,
    };
    let leptos_options = quota_alert::server::leptos_options().map_err(setup)?;
    // A generated admin key is kept in the data directory, so a restart
    // keeps it (and the admin's sessions); under Redis one is refused, since
    // every instance must accept the same key. The log says where the key
    // is, never the key.
    config.keep_generated_admin_key().map_err(setup)?;
    if let AdminKeySource::File(path) = &config.admin_key_source {
        tracing::warn!(
            path = %path.display(),
            "QUOTA_ADMIN_RESET_KEY is not set: the admin key is the one kept in this file \
             (readable by this user only); set QUOTA_ADMIN_RESET_KEY to choose your own"
        );
    }

    let addr = leptos_options.site_addr;
    // Listen first: an instance that cannot have its port (another one has
    // it) stops before it opens, migrates or ticks on the store.
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| RunError::Runtime(format!("cannot listen on {addr}: {e}")))?;
    let service = start_service(config).await?;
    // The tokenizer tables take a moment to build; off the start-up path, so
    // `/readyz` is not held for them (a call that needs them first waits).
    tokio::task::spawn_blocking(quota_alert::tokens::warm_up);
    service.spawn_ticker();
    service.start_alerts();
    if service.config().upstream.api_key.is_none() {
        tracing::warn!(
            "OPENAI_API_KEY is not set: proxied requests reach the upstream without a key"
        );
    }
    let state = match quota_alert::api::AppState::new(service.clone()) {
        Ok(state) => state,
        Err(e) => {
            service.shutdown(SHUTDOWN_DRAIN).await;
            return Err(RunError::Runtime(format!(
                "cannot build the upstream HTTP client: {e}"
            )));
        }
    };
    let shutdown_service = state.service.clone();
    let timeouts = state.service.config().http.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let app = quota_alert::server::app(state, leptos_options);

    tracing::info!("listening on {scheme}://{addr}");
    // SIGTERM (orchestrators) or Ctrl-C: stop accepting, tell WebSockets we
    // are going away (close code 1001, so clients reconnect elsewhere), and let
    // in-flight requests finish.
    let shutdown = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: draining requests, closing WebSockets");
        shutdown_service.begin_shutdown();
    };
    let served = quota_alert::server::serve(listener, app, &timeouts, tls, shutdown)
        .await
        .map_err(|e| RunError::Runtime(format!("server error: {e}")));
    // Requests are done: let the background writes land and close the store,
    // whether the server stopped on a signal or on an error.
    service.shutdown(SHUTDOWN_DRAIN).await;
    served
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("quota-alert: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(run());
    // Not the default drop, which waits forever for blocking work (a stalled
    // disk read, a webhook host whose DNS never answers): shutdown already
    // had its deadline.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quota-alert: {e}");
            e.exit_code()
        }
    }
}
