//! `POST /conversations/{id}/messages` (an agent's reply) and `POST /messages/{id}/retry`.
//!
//! A reply is stored as a queued outgoing message (with its retry key and event-log line) in
//! one transaction, then its id is enqueued for the delivery worker; the answer is the new
//! message row, status "queued". The delivery status then arrives through the live channel.
//! The form's one-use nonce becomes the message's client key, so a double submit (two clicks,
//! a retried request) stores one message.

use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use maud::html;
use serde::Deserialize;

use crate::{
    app::AppState,
    bus::Queue,
    domain::{OutgoingText, TextError},
    error::{AppError, Result},
    http::auth::Agent,
    i18n::{Lang, Msg},
    store::{
        contacts, direct,
        events::{self, EventKind},
        messages::{self, NewOutgoing},
    },
    views::{ids, inbox::nonce_field, messages::message_row},
    worker::delivery::queue_message,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/messages", post(send_reply))
        .route("/messages/{id}/retry", post(retry_message))
}

#[derive(Deserialize)]
struct ReplyForm {
    text: String,
    nonce: String,
}

async fn send_reply(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    Path(conversation_id): Path<i64>,
    Form(form): Form<ReplyForm>,
) -> Result<Response> {
    let text = match OutgoingText::parse(&form.text) {
        Ok(text) => text,
        Err(e) => return Ok(refused(lang, e)),
    };
    let body = serde_json::json!({ "type": "text", "text": text.as_str() }).to_string();
    let message = DeskMessage {
        kind: "text",
        body: &body,
        text: Some(text.as_str()),
    };
    queue_from_desk(&state, &agent, lang, conversation_id, &form.nonce, &message).await
}

/// A message an agent sends from the composer (a reply, a sticker).
pub(super) struct DeskMessage<'a> {
    pub kind: &'a str,
    /// The LINE message object, as JSON.
    pub body: &'a str,
    pub text: Option<&'a str>,
}

/// Stores the agent's message as queued, keyed by the composer's one-use nonce (a double
/// submit stores it once), hands it to the delivery worker, and answers with its row and the
/// next nonce.
pub(super) async fn queue_from_desk(
    state: &AppState,
    agent: &Agent,
    lang: Lang,
    conversation_id: i64,
    nonce: &str,
    message: &DeskMessage<'_>,
) -> Result<Response> {
    if nonce.is_empty() || nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(AppError::Invalid("bad form nonce".into()));
    }
    contacts::conversation(&state.store.pool, conversation_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let client_key = format!("desk:{}:{}", agent.agent.id, nonce);
    // A job of the group commit, so replies posted at once share their fsync.
    let (kind, body) = (message.kind.to_owned(), message.body.to_owned());
    let text = message.text.map(str::to_owned);
    let (agent_id, key) = (agent.agent.id, client_key.clone());
    let queued = state
        .store
        .writer
        .run(move |db| {
            Ok(queue_message(
                db,
                &NewOutgoing {
                    conversation_id,
                    kind: &kind,
                    body: &body,
                    text: text.as_deref(),
                    agent_id: Some(agent_id),
                    client_key: Some(&key),
                },
            )?)
        })
        .await
        .map_err(AppError::store)?;
    let (id, event_id) = match queued {
        Some((id, event_id)) => (id, Some(event_id)),
        // A double submit: answer with the message the first one stored.
        None => {
            let first = messages::by_client_key(&state.store.pool, &client_key)
                .await?
                .ok_or(AppError::NotFound)?;
            (first.id, None)
        }
    };
    // Read before the worker hears of it, so the answer shows the row as stored ("queued");
    // what happens next arrives through the live channel.
    let message = messages::get(&state.store.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if let Some(event_id) = event_id {
        announce(state, id, event_id).await;
    }
    let next_nonce = crate::app::random_token();
    Ok(html! {
        (message_row(lang, &message, None))
        (nonce_field(&next_nonce, true))
    }
    .into_response())
}

/// A reply LINE would not take: 422 with the reason, shown under the composer.
fn refused(lang: Lang, e: TextError) -> Response {
    let reason = match e {
        TextError::Empty => Msg::ReplyEmpty,
        TextError::TooLong(_) => Msg::ReplyTooLong,
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        [
            ("hx-retarget", format!("#{}", ids::COMPOSER_ERROR)),
            ("hx-reswap", "innerHTML".to_owned()),
        ],
        html! { (lang.t(reason)) },
    )
        .into_response()
}

/// The agent's Retry on a failed message: queued again (same retry key, so LINE can never
/// get it twice), announced, enqueued.
async fn retry_message(
    State(state): State<AppState>,
    _agent: Agent,
    lang: Lang,
    Path(id): Path<i64>,
) -> Result<Response> {
    let message = messages::get(&state.store.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut tx = state.store.write().await?;
    let requeued = if messages::requeue_failed(&mut tx, id).await? {
        let data = serde_json::json!({ "status": "queued", "error": null }).to_string();
        let event_id = direct(&mut tx, |db| {
            events::append(
                db,
                EventKind::MessageUpdated,
                Some(message.conversation_id),
                Some(id),
                Some(&data),
            )
        })
        .await?;
        tx.commit().await?;
        Some(event_id)
    } else {
        // Nothing to change: give the write gate back before reading.
        drop(tx);
        None
    };
    // Read before the worker hears of it, so the answer shows the row as queued again (as
    // `send_reply` does); what happens next arrives through the live channel.
    let message = messages::get(&state.store.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if let Some(event_id) = requeued {
        announce(&state, id, event_id).await;
    }
    Ok(message_row(lang, &message, None).into_response())
}

/// Hands a committed message to the delivery worker and wakes the live hubs. Failures are
/// logged, not returned: the row is durable and the sweeper enqueues it once the bus is back.
async fn announce(state: &AppState, id: i64, event_id: i64) {
    if let Err(e) = state.bus.enqueue(Queue::Delivery, vec![id]).await {
        tracing::warn!(
            error = format!("{e:#}"),
            message_id = id,
            "reply stored, not enqueued; the sweeper will"
        );
    }
    if let Err(e) = state.bus.publish(event_id).await {
        tracing::debug!(
            error = format!("{e:#}"),
            "notice not published; the hub polls"
        );
    }
}
