//! Operations endpoints: liveness and readiness.

use axum::{Router, extract::State, http::StatusCode, routing::get};

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and serving.
async fn healthz() -> &'static str {
    "ok"
}

/// Ready to take traffic: the store takes writes, the bus answers, the workers run. A 503
/// names the part that is not.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if let Err(e) = state.store.check_writable().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}"));
    }
    if let Err(e) = state.bus.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("bus ({}): {e:#}", state.bus.kind()),
        );
    }
    if let Some(stopped) = state.workers.stopped() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("worker stopped: {stopped}"),
        );
    }
    (StatusCode::OK, "ready".to_owned())
}
