//! Wiring: `AppState` (what handlers and workers share), `build` (open the store, connect
//! the bus, choose live LINE or the sandbox), and `run` (serve HTTP and run the workers and
//! the live hub until the shutdown token is cancelled, then wait for them, bounded).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::extract::FromRef;
use tokio::net::TcpListener;

use crate::{
    bus::{self, SharedBus},
    config::{Config, LineMode, Secret},
    hub::LiveHub,
    line::{LineClient, fake::FakeLine},
    store::{self, Store},
    worker::{self, Workers},
};

/// Shared by every handler and worker; cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub bus: SharedBus,
    pub line: LineClient,
    pub hub: LiveHub,
    /// The secret webhook signatures are checked with (made up in sandbox mode).
    pub webhook_secret: WebhookSecret,
    /// The in-process fake LINE, in sandbox mode only.
    pub sandbox: Option<FakeLine>,
    /// Background tasks: their tracker, the shutdown token, their health.
    pub workers: Workers,
}

/// The channel secret, as its own type so handlers can extract just it.
#[derive(Clone)]
pub struct WebhookSecret(pub Secret);

/// Opens everything the process needs. Errors here stop start-up with one clear line.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    let store = Store::open(&config.database_url, &config.data_dir).await?;
    let bus = bus::connect(&config).await?;
    let (secret, token, sandbox, api_base, data_base) = match &config.line {
        LineMode::Live {
            channel_secret,
            access_token,
        } => (
            channel_secret.clone(),
            access_token.clone(),
            None,
            config.line_api_base.clone(),
            config.line_data_api_base.clone(),
        ),
        LineMode::Sandbox => {
            let token = Secret::new(random_token());
            let fake = FakeLine::new(token.expose());
            let base = fake
                .spawn()
                .await
                .context("starting the sandbox's fake LINE")?;
            (
                Secret::new(random_token()),
                token,
                Some(fake),
                base.clone(),
                base,
            )
        }
    };
    let line = LineClient::new(&api_base, &data_base, token, config.line_timeout)?;
    let latest = store::events::latest_id(&store.pool).await?;
    let hub = LiveHub::new(store.pool.clone(), latest);
    Ok(AppState {
        config: Arc::new(config),
        store,
        bus,
        line,
        hub,
        webhook_secret: WebhookSecret(secret),
        sandbox,
        workers: Workers::default(),
    })
}

/// Serves `listener` and runs the background tasks until `state.workers.shutdown` is
/// cancelled (by a signal in `main`, by the test that started it).
pub async fn run(state: AppState, listener: TcpListener) -> anyhow::Result<()> {
    let token = state.workers.shutdown.clone();
    let tracker = state.workers.tracker.clone();
    worker::spawn_all(&state);
    tracker.spawn(state.hub.clone().run(state.bus.clone(), token.clone()));

    let app = crate::http::router(state.clone());
    let shutdown = token.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("the HTTP server failed");
    // Whatever ended the server, the background tasks stop too.
    token.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(15), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop within 15 s; exiting anyway");
    }
    served
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}
