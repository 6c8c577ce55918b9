//! The LINE touches an agent's actions cause: opening a conversation marks the customer's
//! messages as read on LINE, and typing shows them LINE's loading animation. Both are
//! switched in the settings, run in the background (a page never waits for LINE), and are
//! best effort: a failure is logged, never shown to the agent.

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::post,
};

use crate::{
    app::AppState,
    error::{AppError, Result},
    http::auth::Agent,
    store::{contacts, settings, touches},
};

/// At most one loading-animation call per conversation in this window (the client pings at
/// most every 5 s while the agent types).
pub const LOADING_THROTTLE_MS: i64 = 10_000;
/// How long each call asks LINE to show the animation (5–60, a multiple of 5): longer than
/// the throttle window, so it does not flicker off between calls while the agent types. It
/// disappears anyway as soon as the reply arrives.
pub const LOADING_SECONDS: u32 = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/typing", post(typing))
        .route("/conversations/{id}/read", post(read))
}

/// Marks conversation `id`'s customer messages as read on LINE, if the setting is on.
/// Each token is taken from the store once; marking the newest also marks every earlier one
/// (LINE_API_NOTES §6), so only that one is sent.
pub fn mark_read_on_open(state: &AppState, conversation_id: i64) {
    let state = state.clone();
    state.workers.tracker.clone().spawn(async move {
        if let Err(e) = mark_read(&state, conversation_id).await {
            tracing::warn!(conversation_id, error = %e, "mark as read failed");
        }
    });
}

async fn mark_read(state: &AppState, conversation_id: i64) -> anyhow::Result<()> {
    if !settings::switch(&state.store.pool, settings::MARK_AS_READ).await? {
        return Ok(());
    }
    let taken = touches::take_read_tokens(&state.store, conversation_id).await?;
    let Some((message_id, token)) = taken.last() else {
        return Ok(());
    };
    match state.line.mark_as_read(token).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_retryable() => {
            // Try again the next time someone opens the conversation.
            touches::restore_read_token(&state.store, *message_id, token).await?;
            Err(e.into())
        }
        // LINE refused the token (4xx): sending it again would not help.
        Err(e) => Err(e.into()),
    }
}

/// `POST /conversations/{id}/read`: a customer message arrived live in the thread an agent
/// has open and in view (app.js), so it is read as if the conversation had been opened.
async fn read(
    State(state): State<AppState>,
    _agent: Agent,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    contacts::conversation(&state.store.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    mark_read_on_open(&state, id);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /conversations/{id}/typing`: the agent is typing a reply.
async fn typing(
    State(state): State<AppState>,
    _agent: Agent,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    let pool = &state.store.pool;
    contacts::conversation(pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !settings::switch(pool, settings::LOADING_ANIMATION).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    // Groups and rooms have no loading animation; a user who blocked us sees nothing.
    let Some(user_id) = touches::loading_target(&state.store, id).await? else {
        return Ok(StatusCode::NO_CONTENT);
    };
    if touches::claim_loading(&state.store, id, LOADING_THROTTLE_MS).await? {
        let line = state.line.clone();
        state.workers.tracker.spawn(async move {
            if let Err(e) = line.start_loading(&user_id, LOADING_SECONDS).await {
                tracing::warn!(conversation_id = id, error = %e, "loading animation failed");
            }
        });
    }
    Ok(StatusCode::NO_CONTENT)
}
