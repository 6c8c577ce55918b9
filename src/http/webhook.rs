//! `POST /line/webhook`: LINE's door in.
//!
//! Order matters: the signature is checked over the raw bytes before anything is parsed
//! (re-serialised JSON would not match, and unauthenticated input is not worth parsing); the
//! whole body is parsed before anything is stored, so a malformed request stores nothing; the
//! 2xx goes out only after the events are committed (promise 1); the work itself is left to
//! the ingest worker, so LINE's 2-second budget is never spent on LINE calls or rendering.

use std::time::Instant;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::Response,
    routing::post,
};

use crate::{
    app::{AppState, WebhookSecret},
    bus::Queue,
    error::{AppError, Result},
    line::webhook::{parse_body, verify_signature},
    store::{NewInboxRow, inbox},
};

/// Largest body accepted. LINE's webhook bodies are small (a few KB even with many events);
/// this leaves room for batches without letting anyone make us buffer megabytes.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/line/webhook", post(receive))
        // Larger bodies are refused with 413 before they are read whole.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Outside the limit, so refusals of every kind are counted too.
        .layer(middleware::from_fn(observe))
}

/// Counts each webhook by outcome and times the ones acknowledged.
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let outcome = match response.status() {
        StatusCode::OK => {
            crate::telemetry::webhook_ack(started.elapsed());
            "ok"
        }
        StatusCode::UNAUTHORIZED => "bad_signature",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::BAD_REQUEST => "bad_json",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_type",
        StatusCode::SERVICE_UNAVAILABLE => "store_unavailable",
        _ => "other",
    };
    crate::telemetry::webhook_request(outcome);
    response
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let WebhookSecret(secret) = &state.webhook_secret;
    let signature = headers
        .get("x-line-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(AppError::Unauthorized("missing X-Line-Signature"))?;
    if !verify_signature(secret.expose(), &body, signature) {
        return Err(AppError::Unauthorized("bad X-Line-Signature"));
    }
    check_content_type(&headers)?;
    let parsed =
        parse_body(&body).map_err(|e| AppError::Invalid(format!("malformed webhook body: {e}")))?;
    if parsed.events.is_empty() {
        // LINE's Verify button and connectivity checks.
        return Ok(StatusCode::OK);
    }
    let rows: Vec<NewInboxRow> = parsed
        .events
        .into_iter()
        .map(|e| NewInboxRow {
            webhook_event_id: e.event.webhook_event_id.clone(),
            event_type: e.event.type_name().to_owned(),
            event_timestamp: e.event.timestamp,
            payload: e.raw,
        })
        .collect();
    let outcome = state
        .store
        .writer
        .run(move |db| Ok(inbox::insert(db, &rows)?))
        .await
        .map_err(|e| {
            tracing::error!(
                error = format!("{e:#}"),
                "webhook not stored; LINE will redeliver"
            );
            AppError::Unavailable("the store is not taking writes; try again")
        })?;
    crate::telemetry::webhook_events(outcome.new_ids.len(), outcome.duplicates);
    if outcome.duplicates > 0 {
        tracing::debug!(
            duplicates = outcome.duplicates,
            "redelivered webhook events ignored"
        );
    }
    if !outcome.new_ids.is_empty() {
        // The events are durable; queueing them must not hold up LINE's answer, even while
        // Redis is unreachable (its client retries). If this fails, the sweeper enqueues them.
        let bus = state.bus.clone();
        tokio::spawn(async move {
            if let Err(e) = bus.enqueue(Queue::Ingest, outcome.new_ids).await {
                tracing::debug!(
                    error = format!("{e:#}"),
                    "webhook stored but not enqueued; the sweeper will pick it up"
                );
            }
        });
    }
    Ok(StatusCode::OK)
}

/// LINE sends `application/json` (with or without a charset); anything else is not LINE.
fn check_content_type(headers: &HeaderMap) -> Result<()> {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(()),
        Some(v)
            if v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) =>
        {
            Ok(())
        }
        Some(_) => Err(AppError::UnsupportedMediaType(
            "the webhook takes application/json",
        )),
    }
}
