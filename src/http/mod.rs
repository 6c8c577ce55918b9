//! The HTTP surface: merges each audience's router and adds the shared layers.
//!
//! The customer simulator (`sandbox`) is merged only in sandbox mode.
//!
//! Layers, outermost first: tracing and request ids for everything; then, for the desk's
//! routes only (LINE's webhook has none of these), the security headers, the session (cookie
//! → record in the store), dressed errors and the CSRF check on every unsafe method. The
//! request timeout wraps the ordinary routes only: the live routes hold connections open on
//! purpose and bound themselves (they end on shutdown, and long-polls answer within 25 s).

pub mod auth;
pub mod client_addr;
pub mod csrf;
mod errors;
pub mod listener;
pub mod live;
mod ops;
mod pages;
mod sandbox;
pub mod webhook;

use std::time::Duration;

use axum::{Router, http::StatusCode, middleware};
use axum::{extract::MatchedPath, http::Request};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::ServeDir,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};
use tracing::Level;

use crate::app::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "linechat_session";

pub fn router(state: AppState) -> Router {
    let sessions = SessionManagerLayer::new(state.auth.sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        // Lax: a link from elsewhere still opens the desk signed in; a cross-site POST
        // carries no cookie (and would lack the CSRF token anyway).
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(state.config.session_idle).unwrap_or(time::Duration::HOUR),
        ));
    let [csp, nosniff, referrer, frames] = csrf::security_headers();
    // The customer simulator exists in sandbox mode only: with real credentials its paths
    // are not routed at all (404), whoever asks.
    let simulator = match state.sandbox {
        Some(_) => sandbox::router(),
        None => Router::new(),
    };
    // The desk's routes: everything a browser reaches, with the session, the CSRF check, the
    // dressed errors and the security headers.
    let desk = Router::new()
        .merge(ops::router())
        .merge(auth::router())
        .merge(pages::router())
        .merge(simulator)
        .nest_service("/assets", ServeDir::new(&state.config.assets_dir))
        // Unknown paths are the desk's too, so they get its layers (a worded 404 page).
        .fallback(|| async { StatusCode::NOT_FOUND })
        // Ordinary requests never need long.
        .layer(ordinary_timeout())
        .merge(live::router())
        .layer(middleware::from_fn(csrf::require_token))
        .layer(middleware::from_fn_with_state(state.clone(), errors::dress))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::agent_language,
        ))
        .layer(sessions)
        .layer(csp)
        .layer(nosniff)
        .layer(referrer)
        .layer(frames);
    Router::new()
        .merge(desk)
        // LINE's door stays outside the desk's layers: it has no session, no form to guard
        // and no page to dress, and at full speed those layers were a tenth of the
        // webhook's cost.
        .merge(webhook::router().layer(ordinary_timeout()))
        // One info line per request, in a span carrying its request id. The span names the
        // route pattern, never the URI: paths and queries can hold tokens (the setup link).
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The bound on every request that is not a live one: none needs long.
fn ordinary_timeout() -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30))
}

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), route, request_id = id)
}
