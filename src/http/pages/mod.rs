//! The agent desk's screens, a file per screen. Every route here needs a signed-in `Agent`.

mod admin;
mod inbox;
mod me;
mod reply;
pub(crate) mod touches;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(inbox::router())
        .merge(reply::router())
        .merge(admin::router())
        .merge(me::router())
        .merge(touches::router())
}

/// Whether the request came from htmx (then only the fragment is rendered).
pub(crate) fn is_htmx(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}
