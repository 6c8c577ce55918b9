//! `POST /conversations/{id}/stickers`: the composer's sticker picker sends one of the
//! default stickers, through the same queued → sent path as a text reply.

use axum::{
    Form, Router,
    extract::{Path, State},
    response::Response,
    routing::post,
};
use serde::Deserialize;

use super::reply::{DeskMessage, queue_from_desk};
use crate::{
    app::AppState,
    domain::OutgoingSticker,
    error::{AppError, Result},
    http::auth::Agent,
    i18n::Lang,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/conversations/{id}/stickers", post(send_sticker))
}

#[derive(Deserialize)]
struct StickerForm {
    package_id: String,
    sticker_id: String,
    nonce: String,
}

async fn send_sticker(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    Path(conversation_id): Path<i64>,
    Form(form): Form<StickerForm>,
) -> Result<Response> {
    let sticker = OutgoingSticker::parse(&form.package_id, &form.sticker_id)
        .ok_or_else(|| AppError::Invalid("not one of the stickers on offer".into()))?;
    let body = sticker.message().to_string();
    let message = DeskMessage {
        kind: "sticker",
        body: &body,
        text: None,
    };
    queue_from_desk(&state, &agent, lang, conversation_id, &form.nonce, &message).await
}
