//! `GET /` (the inbox) and `GET /conversations/{id}` (the inbox with a thread open; just the
//! thread pane for htmx).

use axum::{
    Router,
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    routing::get,
};

use super::is_htmx;
use crate::{
    app::AppState,
    error::{AppError, Result},
    http::auth::Agent,
    i18n::Lang,
    store::{conversations, events, messages},
    views::{
        inbox::{Thread, inbox_page, thread_pane},
        layout::Shell,
    },
};

/// Conversations listed at once (paging comes with the filters).
const LIST_LIMIT: i64 = 100;
/// Messages of a thread shown at once (scrolling back comes later).
const THREAD_LIMIT: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(show_inbox))
        .route("/conversations/{id}", get(show_conversation))
}

async fn show_inbox(State(state): State<AppState>, agent: Agent, lang: Lang) -> Result<Response> {
    // The cursor is read before the data, so whatever lands in between is replayed live
    // rather than missed (a replayed row is replaced in place, not duplicated).
    let cursor = events::latest_id(&state.store.pool).await?;
    let rows = conversations::list(&state.store.pool, LIST_LIMIT).await?;
    let shell = shell(lang, &agent, cursor, state.sandbox.is_some());
    Ok(inbox_page(&shell, &rows, None).into_response())
}

async fn show_conversation(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response> {
    let pool = &state.store.pool;
    let cursor = events::latest_id(pool).await?;
    let row = conversations::row(pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    // In the background: the page never waits for LINE.
    super::touches::mark_read_on_open(&state, id);
    let messages = messages::page(pool, id, i64::MAX, THREAD_LIMIT).await?;
    let nonce = crate::app::random_token();
    let thread = Thread {
        row: &row,
        messages: &messages,
        nonce: &nonce,
    };
    if is_htmx(&headers) {
        return Ok(thread_pane(lang, &agent.csrf, &thread).into_response());
    }
    let rows = conversations::list(pool, LIST_LIMIT).await?;
    let shell = shell(lang, &agent, cursor, state.sandbox.is_some());
    Ok(inbox_page(&shell, &rows, Some(&thread)).into_response())
}

fn shell<'a>(lang: Lang, agent: &'a Agent, cursor: i64, sandbox: bool) -> Shell<'a> {
    Shell {
        lang,
        title: lang.t(crate::i18n::Msg::Conversations),
        csrf: &agent.csrf,
        agent: Some(&agent.agent.display_name),
        live_cursor: Some(cursor),
        sandbox,
        admin: agent.agent.is_admin(),
    }
}
