//! Live updates for the desk: `GET /live/sse` (primary) and `GET /live/poll` (fallback), two
//! thin wrappers over `LiveHub::events_since`, both resuming from a cursor (an event-log id)
//! so a reconnect sees every event once, in order (promise 4).
//!
//! Both answer with HTML fragments of out-of-band swaps (`views::live`). Both end when the
//! process shuts down: an open stream would otherwise hold graceful shutdown forever.

use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, HeaderName, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use futures::{StreamExt, stream};
use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    app::AppState,
    error::Result,
    http::auth::{self, Agent},
    hub::Drawing,
    i18n::Lang,
    store::{
        agents, contacts, conversations,
        events::{Event, EventKind},
        messages,
    },
    views::live::{LiveItem, live_fragment},
};

/// How long a long-poll (and one SSE wait) holds before answering with nothing; under the
/// usual 30 s proxy idle timeouts.
pub const HOLD: Duration = Duration::from_secs(25);
/// How often an open SSE stream re-checks, at most, that its agent is still signed in when
/// nothing in this process said so.
const RECHECK: Duration = Duration::from_secs(60);
/// How long an SSE stream stays silent before it sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
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

/// SSE: each event-log row is one SSE event whose `id:` is the row's id; a wake-up sends all
/// that arrived in one write (a slow agent's backlog goes out together, not one wake-up per
/// event). A reconnecting `EventSource` sends `Last-Event-ID`, which wins over `?after=`
/// (the page's first cursor).
///
/// The body is written by hand rather than with axum's `Sse` so that every connection sends
/// the same shared bytes of each drawing (`LiveHub::drawn`), never a copy per agent.
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
    let who = agent.agent;
    let checked = (state.hub.sessions_generation(), Instant::now());
    let batches = stream::unfold((state, cursor, checked), move |(state, cursor, checked)| {
        let who = who.clone();
        async move {
            let mut checked = checked;
            loop {
                let events = state.hub.events_since(cursor, KEEP_ALIVE).await;
                // Deactivated (or password reset) meanwhile: the stream ends; reconnecting
                // meets the sign-in page. Asked of the store only when an agent's sign-in
                // changed in this process, or now and then (a change made elsewhere).
                let generation = state.hub.sessions_generation();
                if generation != checked.0 || checked.1.elapsed() > RECHECK {
                    if !auth::still_signed_in(&state, &who).await {
                        return None;
                    }
                    checked = (generation, Instant::now());
                }
                match events {
                    // Nothing for a while: a comment line keeps proxies from closing it.
                    Ok(events) if events.is_empty() => {
                        let chunks = vec![Bytes::from_static(b":\n\n")];
                        return Some((stream::iter(chunks), (state, cursor, checked)));
                    }
                    Ok(events) => {
                        let last = events.last().map_or(cursor, |e| e.id);
                        let mut chunks = Vec::with_capacity(events.len());
                        for event in &events {
                            chunks.push(drawing(&state, lang, event).await.sse_event);
                        }
                        return Some((stream::iter(chunks), (state, last, checked)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live: cannot read the event log");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    let body = batches
        .flatten()
        .map(move |chunk| {
            let _ = &open;
            Ok::<_, Infallible>(chunk)
        })
        .take_until(shutdown);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // nginx and friends: do not buffer the stream.
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
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
    let mut chunks = Vec::with_capacity(events.len());
    for event in &events {
        chunks.push(Ok::<_, Infallible>(drawing(&state, lang, event).await.html));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (HeaderName::from_static(CURSOR_HEADER), next.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream::iter(chunks)),
    )
        .into_response())
}

/// The shared drawing of an event in `lang`: looked up and rendered by the first connection
/// that needs it. An event that cannot be drawn is drawn empty (and not kept), so it still
/// advances the cursor and a reconnect does not replay it forever.
async fn drawing(state: &AppState, lang: Lang, event: &Event) -> Drawing {
    state
        .hub
        .drawn()
        .get_or_draw(event.id, lang, || async {
            fragment(state, lang, event)
                .await
                .map(|markup| Drawing::new(event.id, markup.into_string()))
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, event_id = event.id, "live: cannot draw an event");
            Drawing::new(event.id, String::new())
        })
}

/// The fragment for one event: the message it concerns and its conversation's list row.
async fn fragment(state: &AppState, lang: Lang, event: &Event) -> Result<Markup> {
    let pool = &state.store.pool;
    let message = match event.message_id {
        Some(id) => messages::get(pool, id).await?,
        None => None,
    };
    let row = match event.conversation_id {
        Some(id) => conversations::row(pool, id).await?,
        None => None,
    };
    // A conversation change redraws the open thread's header (assignee, status); it and a
    // contact change redraw the contact panel.
    let agents = match (&row, event.kind == EventKind::ConversationUpdated.as_str()) {
        (Some(_), true) => Some(agents::active(pool).await?),
        _ => None,
    };
    let contact_changed = event.kind == EventKind::ContactUpdated.as_str();
    let contact = match &row {
        Some(r) if agents.is_some() || contact_changed => contacts::get(pool, r.contact_id).await?,
        _ => None,
    };
    let item = LiveItem {
        event,
        message: message.as_ref(),
        row: row.as_ref(),
        agents: agents.as_deref(),
        contact: contact.as_ref(),
    };
    Ok(html! { (live_fragment(lang, &item)) })
}
