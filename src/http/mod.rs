//! The HTTP surface: merges each audience's router and adds the shared layers.

mod ops;
pub mod webhook;

use std::time::Duration;

use axum::{Router, http::StatusCode};
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(webhook::router())
        .merge(ops::router())
        .layer(TraceLayer::new_for_http())
        // Ordinary requests never need long; live endpoints (later) set their own bounds.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}
