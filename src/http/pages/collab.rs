//! Working together on a conversation: `POST /conversations/{id}/assign` (`assignee` = `me`,
//! an active agent's id, or empty for nobody), `POST /conversations/{id}/status` (`status` =
//! open, pending or resolved), and `POST /conversations/{id}/read` (`in_count`: this agent has
//! seen the customer's messages up to there; the browser sends it while a thread is open).
//!
//! A change is written with its event-log row in one transaction and announced, so every
//! other agent's list row, open thread header and contact panel follow live. The answer is
//! the redrawn thread header.

use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;

use crate::{
    app::AppState,
    error::{AppError, Result},
    http::auth::Agent,
    i18n::Lang,
    store::{
        agents,
        conversations::{self, Status},
        direct,
        events::{self, EventKind},
    },
    views::inbox::thread_head,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/assign", post(assign))
        .route("/conversations/{id}/status", post(set_status))
        .route("/conversations/{id}/read", get(read_count).post(mark_read))
}

#[derive(Deserialize)]
struct AssignForm {
    assignee: String,
}

async fn assign(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    Path(id): Path<i64>,
    Form(form): Form<AssignForm>,
) -> Result<Response> {
    let assignee = match form.assignee.trim() {
        "" => None,
        "me" => Some(agent.agent.id),
        other => {
            let id: i64 = other
                .parse()
                .map_err(|_| AppError::Invalid("unknown agent".into()))?;
            let found = agents::active_by_id(&state.store, id).await?;
            Some(found.ok_or(AppError::Invalid("unknown agent".into()))?.id)
        }
    };
    let data = serde_json::json!({ "assignee_id": assignee, "by": agent.agent.id });
    change(&state, lang, id, data, async |tx| {
        conversations::set_assignee(tx, id, assignee).await
    })
    .await
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
}

async fn set_status(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> Result<Response> {
    let status =
        Status::parse(form.status.trim()).ok_or(AppError::Invalid("unknown status".into()))?;
    let data = serde_json::json!({ "status": status.as_str(), "by": agent.agent.id });
    change(&state, lang, id, data, async |tx| {
        conversations::set_status(tx, id, status).await
    })
    .await
}

/// Applies `write` to conversation `id`; if it changed anything, logs and announces it.
/// Answers the redrawn thread header (404 for an unknown conversation).
async fn change(
    state: &AppState,
    lang: Lang,
    id: i64,
    data: serde_json::Value,
    write: impl AsyncFnOnce(&mut crate::store::Conn) -> sqlx::Result<bool>,
) -> Result<Response> {
    let pool = &state.store.pool;
    conversations::row(pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut tx = state.store.write().await?;
    let changed = write(&mut tx).await?;
    let event = if changed {
        let data = data.to_string();
        Some(
            direct(&mut tx, |db| {
                events::append(
                    db,
                    EventKind::ConversationUpdated,
                    Some(id),
                    None,
                    Some(&data),
                )
            })
            .await?,
        )
    } else {
        None
    };
    tx.commit().await?;
    if let Some(event_id) = event
        && let Err(e) = state.bus.publish(event_id).await
    {
        tracing::debug!(
            error = format!("{e:#}"),
            "notice not published; the hub polls"
        );
    }
    let row = conversations::row(pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let agents = agents::active(pool).await?;
    Ok(thread_head(lang, &row, &agents, None).into_response())
}

#[derive(Deserialize)]
struct ReadForm {
    in_count: i64,
}

async fn mark_read(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
    Form(form): Form<ReadForm>,
) -> Result<Response> {
    if form.in_count < 0 {
        return Err(AppError::Invalid("`in_count` is a count".into()));
    }
    let mut tx = state.store.write().await?;
    let read = conversations::mark_read(&mut tx, agent.agent.id, id, Some(form.in_count))
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    // What the agent read here is read on LINE too (if the admin turned that on).
    super::touches::mark_read_on_open(&state, id);
    Ok((StatusCode::OK, read.to_string()).into_response())
}

/// This agent's read count of one conversation, for a live row the page knew nothing about
/// (one active too long ago to be in the page's read counts).
async fn read_count(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
) -> Result<Response> {
    let read = conversations::read_count(&state.store.pool, agent.agent.id, id).await?;
    Ok(([("cache-control", "no-store")], read.to_string()).into_response())
}
