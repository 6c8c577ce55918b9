//! Wiring: `AppState` (what handlers and workers share), `build` (open the store, connect
//! the bus, choose live LINE or the sandbox), and `run` (serve HTTP and run the workers and
//! the live hub until the shutdown token is cancelled, then wait for them, bounded).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::{
    auth::{LoginThrottle, SetupLink},
    bus::{self, SharedBus},
    config::{Config, LineMode, Secret},
    http::listener::Listener,
    hub::LiveHub,
    line::{LineClient, fake::FakeLine},
    sandbox::Sandbox,
    store::{self, Store, sessions::SqliteSessionStore},
    worker::{self, Workers},
};

/// Shared by every handler and worker; cloning it is one reference count (handlers,
/// middleware and tasks clone it several times per request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` holds.
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub bus: SharedBus,
    pub line: LineClient,
    pub hub: LiveHub,
    /// The secret webhook signatures are checked with (made up in sandbox mode).
    pub webhook_secret: WebhookSecret,
    /// The in-process fake LINE and the customer simulator, in sandbox mode only.
    pub sandbox: Option<Sandbox>,
    /// Background tasks: their tracker, the shutdown token, their health.
    pub workers: Workers,
    /// Sign-in machinery: sessions, the failed-login throttle, the first-run setup link.
    pub auth: AuthHandles,
}

/// What sign-in needs besides the agents table.
#[derive(Clone)]
pub struct AuthHandles {
    pub sessions: SqliteSessionStore,
    pub throttle: LoginThrottle,
    pub setup: SetupLink,
}

/// The channel secret, as its own type so handlers can extract just it.
#[derive(Clone)]
pub struct WebhookSecret(pub Secret);

/// Opens everything the process needs. Errors here stop start-up with one clear line.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    crate::telemetry::handle();
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
                Some(Sandbox::new(fake)),
                base.clone(),
                base,
            )
        }
    };
    let line = LineClient::new(&api_base, &data_base, token, config.line_timeout)?;
    let latest = store::events::latest_id(&store.pool).await?;
    let hub = LiveHub::new(store.pool.clone(), latest);
    let after_commit = hub.clone();
    store
        .writer
        .after_commit(Box::new(move |db| after_commit.catch_up_in(db)));
    let auth = AuthHandles {
        sessions: SqliteSessionStore::new(store.clone()),
        throttle: LoginThrottle::default(),
        setup: SetupLink::new(first_run_token(&store, &config).await?),
    };
    Ok(AppState(Arc::new(Shared {
        config: Arc::new(config),
        store,
        bus,
        line,
        hub,
        webhook_secret: WebhookSecret(secret),
        sandbox,
        workers: Workers::default(),
        auth,
    })))
}

/// With no agent yet, a one-time setup link for creating the first admin in the browser.
/// It is logged once, here: it is meant to be seen by whoever starts the server, and it is
/// worthless once used (or once any agent exists).
async fn first_run_token(store: &Store, config: &Config) -> anyhow::Result<Option<String>> {
    if store::agents::count(&store.pool).await? > 0 {
        return Ok(None);
    }
    let token = random_token();
    tracing::warn!(
        "no agent exists yet: open http://{}/setup/{} to create the first admin \
         (or use `linechat agent add`)",
        config.addr,
        token
    );
    Ok(Some(token))
}

/// Serves `listener` and runs the background tasks until `state.workers.shutdown` is
/// cancelled (by a signal in `main`, by the test that started it).
pub async fn run(state: AppState, listener: TcpListener) -> anyhow::Result<()> {
    if let Some(sandbox) = &state.sandbox {
        // The simulator posts its webhooks to this very server.
        sandbox.set_addr(listener.local_addr().context("the listener's address")?);
    }
    let token = state.workers.shutdown.clone();
    let tracker = state.workers.tracker.clone();
    worker::spawn_all(&state);
    tracker.spawn(state.hub.clone().run(state.bus.clone(), token.clone()));

    let app = crate::http::router(state.clone());
    let shutdown = token.clone();
    // Fresh live-stream connections are answered by the listener itself, with small
    // buffers; it hands every other connection to hyper.
    let listener = Listener::start(listener, app.clone(), token.clone(), tracker.clone())
        .context("the listener's address")?
        // A tap that does nothing, so connect info can take the peer address from it.
        .tap_io(|_| {});
    // Connect info gives sign-in throttling the client address.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
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
    // Closing the pool checkpoints SQLite's WAL into the database file, so a stopped
    // linechat leaves one self-contained `linechat.db` (what a file-level backup copies).
    state.store.pool.close().await;
    served
}

/// A random 64-hex-character token (two v4 UUIDs: ~244 bits from the OS generator).
pub(crate) fn random_token() -> String {
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
