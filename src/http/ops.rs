//! Operations endpoints: liveness, readiness and Prometheus metrics.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    routing::get,
};
use subtle::ConstantTimeEq;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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

/// Prometheus exposition, for a scraper holding `LINECHAT_METRICS_TOKEN` as a bearer token.
/// Off (404) when no token is configured, so nothing about the traffic leaks by default.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> (StatusCode, String) {
    let Some(token) = &state.config.metrics_token else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off; set LINECHAT_METRICS_TOKEN".to_owned(),
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time, like every secret comparison.
    if !bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            "a bearer token is required".to_owned(),
        );
    }
    (
        StatusCode::OK,
        crate::telemetry::render(&state.store.pool, &state.bus).await,
    )
}
