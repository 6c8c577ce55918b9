//! `GET /conversations/{id}/messages?before={message id}`: the page of a thread before a
//! message, for scrolling back (the sentinel at the top of the thread asks for it).

use axum::{
    Router,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use sqlx::SqlitePool;

use crate::{
    app::AppState,
    error::{AppError, Result},
    http::auth::Agent,
    i18n::Lang,
    store::{contacts, messages},
    views::history::older_page,
};

/// Messages of a thread shown at once, and per older page.
pub const PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/conversations/{id}/messages", get(older))
}

/// The `PAGE` messages before `before`, oldest first, and whether there are more before them.
pub async fn page_before(
    pool: &SqlitePool,
    conversation_id: i64,
    before: i64,
) -> sqlx::Result<(Vec<messages::Message>, bool)> {
    let mut rows = messages::page(pool, conversation_id, before, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    if more {
        rows.remove(0);
    }
    Ok((rows, more))
}

#[derive(Deserialize)]
struct Older {
    before: String,
}

async fn older(
    State(state): State<AppState>,
    // Signed-in agents only.
    _agent: Agent,
    lang: Lang,
    Path(id): Path<i64>,
    Query(q): Query<Older>,
) -> Result<Response> {
    let before = q
        .before
        .parse::<i64>()
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| AppError::Invalid("before must be a message id".into()))?;
    let pool = &state.store.pool;
    contacts::conversation(pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let (rows, more) = page_before(pool, id, before).await?;
    Ok(older_page(lang, id, &rows, more).into_response())
}
