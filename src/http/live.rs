//! Live updates for the desk: `GET /live/sse` (primary) and `GET /live/poll` (fallback), two
//! thin wrappers over `LiveHub::events_since`, both resuming from a cursor (an event-log id)
//! so a reconnect sees every event once, in order (promise 4).
//!
//! Both answer with HTML fragments of out-of-band swaps (`views::live`). Both end when the
//! process shuts down: an open stream would otherwise hold graceful shutdown forever.

use std::{convert::Infallible, time::Duration};

use axum::{
    Router,
    extract::{Query, State},
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::get,
};
use futures::{StreamExt, stream};
use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    app::AppState,
    error::Result,
    http::auth::{self, Agent},
    i18n::Lang,
    store::{conversations, events::Event, messages},
    views::live::{LiveItem, live_fragment},
};

/// How long a long-poll (and one SSE wait) holds before answering with nothing; under the
/// usual 30 s proxy idle timeouts.
pub const HOLD: Duration = Duration::from_secs(25);
/// The response header that carries the long-poll's next cursor.
pub const CURSOR_HEADER: &str = "x-live-cursor";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/live/sse", get(stream_events))
        .route("/live/poll", get(poll_events))
}

#[derive(Deserialize)]
struct After {
    after: Option<i64>,
}

/// SSE: each event-log row is one SSE event whose `id:` is the row's id. A reconnecting
/// `EventSource` sends `Last-Event-ID`, which wins over `?after=` (the page's first cursor).
async fn stream_events(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let cursor = resume.or(q.after).unwrap_or_else(|| state.hub.latest());
    let shutdown = state.workers.shutdown.clone().cancelled_owned();
    // Counted while the stream lives: the guard moves into the stream and drops with it.
    let open = crate::telemetry::LiveConnection::open("sse", agent.agent.id);
    let csrf = agent.csrf;
    let who = agent.agent;
    let batches = stream::unfold((state, cursor), move |(state, cursor)| {
        let csrf = csrf.clone();
        let who = who.clone();
        async move {
            loop {
                let events = state.hub.events_since(cursor, HOLD).await;
                // Deactivated (or password reset) meanwhile: the stream ends; reconnecting
                // meets the sign-in page.
                if !auth::still_signed_in(&state, &who).await {
                    return None;
                }
                match events {
                    Ok(events) if events.is_empty() => continue,
                    Ok(events) => {
                        let last = events.last().map_or(cursor, |e| e.id);
                        let sse = render_sse(&state, lang, &csrf, &events).await;
                        return Some((stream::iter(sse), (state, last)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live: cannot read the event log");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    let events = batches
        .flatten()
        .map(move |event| {
            let _ = &open;
            Ok::<_, Infallible>(event)
        })
        .take_until(shutdown);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn render_sse(state: &AppState, lang: Lang, csrf: &str, events: &[Event]) -> Vec<SseEvent> {
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        // An event that cannot be drawn still advances the cursor (an empty data line), so
        // a reconnect does not replay it forever.
        let html = match fragment(state, lang, csrf, event).await {
            Ok(markup) => markup.into_string(),
            Err(e) => {
                tracing::warn!(error = %e, event_id = event.id, "live: cannot draw an event");
                String::new()
            }
        };
        out.push(SseEvent::default().id(event.id.to_string()).data(html));
    }
    out
}

/// Long-poll: what is after `?after=` at once, else the first events within `HOLD`, else
/// nothing; the next cursor in `x-live-cursor`.
async fn poll_events(
    State(state): State<AppState>,
    agent: Agent,
    lang: Lang,
    Query(q): Query<After>,
) -> Result<Response> {
    let cursor = q.after.unwrap_or_else(|| state.hub.latest());
    let token = state.workers.shutdown.clone();
    let _open = crate::telemetry::LiveConnection::open("long_poll", agent.agent.id);
    let events = tokio::select! {
        _ = token.cancelled() => Vec::new(),
        events = state.hub.events_since(cursor, HOLD) => events?,
    };
    if !auth::still_signed_in(&state, &agent.agent).await {
        return Ok(axum::http::StatusCode::UNAUTHORIZED.into_response());
    }
    let next = events.last().map_or(cursor, |e| e.id);
    let mut fragments = Vec::with_capacity(events.len());
    for event in &events {
        fragments.push(fragment(&state, lang, &agent.csrf, event).await?);
    }
    Ok((
        [
            (CURSOR_HEADER, next.to_string()),
            ("cache-control", "no-store".to_owned()),
        ],
        html! { @for f in &fragments { (f) } },
    )
        .into_response())
}

/// The fragment for one event: the message it concerns and its conversation's list row.
async fn fragment(state: &AppState, lang: Lang, csrf: &str, event: &Event) -> Result<Markup> {
    let pool = &state.store.pool;
    let message = match event.message_id {
        Some(id) => messages::get(pool, id).await?,
        None => None,
    };
    let row = match event.conversation_id {
        Some(id) => conversations::row(pool, id).await?,
        None => None,
    };
    let item = LiveItem {
        event,
        message: message.as_ref(),
        row: row.as_ref(),
    };
    Ok(html! { (live_fragment(lang, csrf, &item)) })
}
