//! The agent desk's screens, a file per screen. Every route here needs a signed-in `Agent`.

mod admin;
mod collab;
mod history;
mod inbox;
mod me;
mod media;
mod reply;
mod stickers;
pub(crate) mod touches;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(inbox::router())
        .merge(reply::router())
        .merge(collab::router())
        .merge(history::router())
        .merge(media::router())
        .merge(stickers::router())
        .merge(admin::router())
        .merge(me::router())
        .merge(touches::router())
}

/// Whether the request came from htmx (then only the fragment is rendered).
pub(crate) fn is_htmx(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}
