//! The ingest worker: turns stored webhook events into contacts, conversations, messages and
//! event-log rows.
//!
//! A batch of inbox rows is claimed and applied in ONE transaction, together with marking the
//! rows done, so a crash at any point either leaves everything applied or leaves the rows
//! pending to be redone; and the unique `webhook_event_id` on messages makes a redo harmless.
//! Side effects outside the store (queueing the welcome message, downloading media, fetching
//! profiles, waking the live hub) happen only after the commit.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::profiles;
use crate::{
    app::AppState,
    bus::Queue,
    domain::now_ms,
    line::webhook::{
        ContentProvider, Event, EventKind, Message, MessageContent, Mode, Source, parse_event,
    },
    store::{
        Db,
        contacts::{self, ContactKind},
        events::{self, EventKind as LogKind},
        inbox,
        messages::{self, NewIncoming, NewOutgoing},
        settings,
    },
};

/// Most inbox rows applied in one transaction. The worker takes whatever is queued up to
/// this, so batches stay small while it keeps up, and grow when it falls behind: a batch
/// writes each page it touches once (mostly leaves of the messages-by-conversation index, in
/// random places), so a larger one costs fewer page writes per event. At 128 the worker
/// topped out ~20 % below the webhooks' ack rate at 512 connections; at 512 it keeps up.
const BATCH: usize = 512;

/// The worker loop.
pub async fn run(state: AppState) {
    let token = state.workers.shutdown.clone();
    let mut bus_failing = false;
    loop {
        let ids = tokio::select! {
            _ = token.cancelled() => return,
            ids = state.bus.dequeue(Queue::Ingest, BATCH, Duration::from_secs(1)) => ids,
        };
        match ids {
            Ok(ids) => {
                bus_failing = false;
                if !ids.is_empty() {
                    process(&state, &ids).await;
                }
            }
            Err(e) => {
                if !bus_failing {
                    tracing::warn!(error = format!("{e:#}"), "ingest: bus unavailable");
                    bus_failing = true;
                } else {
                    tracing::debug!(error = format!("{e:#}"), "ingest: bus still unavailable");
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Applies the given inbox rows (those still pending). A batch that fails is retried row by
/// row, so one bad event cannot hold up the others.
pub async fn process(state: &AppState, ids: &[i64]) {
    match apply_batch(state, ids).await {
        Ok(effects) => effects.dispatch(state).await,
        Err(e) if ids.len() > 1 => {
            tracing::warn!(
                error = format!("{e:#}"),
                rows = ids.len(),
                "ingest batch failed; retrying row by row"
            );
            for id in ids {
                match apply_batch(state, std::slice::from_ref(id)).await {
                    Ok(effects) => effects.dispatch(state).await,
                    Err(e) => record_failure(state, *id, &e).await,
                }
            }
        }
        Err(e) => record_failure(state, ids[0], &e).await,
    }
}

async fn record_failure(state: &AppState, id: i64, error: &anyhow::Error) {
    if crate::store::unavailable_in(error) {
        // The disk is full or the store is read-only: not the event's fault. It stays
        // pending, uncounted, and the sweeper brings it back once the store takes writes.
        tracing::warn!(
            inbox_id = id,
            error = format!("{error:#}"),
            "ingest postponed: the store is not taking writes"
        );
        return;
    }
    tracing::error!(inbox_id = id, error = format!("{error:#}"), "ingest failed");
    let recorded = async {
        let mut tx = state.store.write().await?;
        inbox::record_failure(&mut tx, id, &format!("{error:#}")).await?;
        tx.commit().await
    };
    if let Err(e) = recorded.await {
        tracing::error!(inbox_id = id, error = %e, "cannot record the ingest failure");
    }
}

/// What to do once the batch is committed.
#[derive(Default, Debug)]
struct Effects {
    /// When the batch was applied (to tell which profiles are due).
    now: i64,
    last_event: i64,
    deliveries: Vec<i64>,
    media: Vec<i64>,
    profiles: Vec<super::profiles::ProfileJob>,
    /// (event type, when its webhook was received), for metrics.
    ingested: Vec<(String, i64)>,
}

impl Effects {
    /// Asks for a contact's profile after the commit, if it is due.
    fn profile_if_due(
        &mut self,
        seen: contacts::Seen,
        job: impl FnOnce(i64) -> profiles::ProfileJob,
    ) {
        if profiles::due(seen.profile_fetched_at, self.now) {
            self.profiles.push(job(seen.id));
        }
    }

    async fn dispatch(self, state: &AppState) {
        for (queue, ids) in [
            (Queue::Delivery, self.deliveries),
            (Queue::Media, self.media),
        ] {
            if !ids.is_empty()
                && let Err(e) = state.bus.enqueue(queue, ids).await
            {
                tracing::warn!(
                    error = format!("{e:#}"),
                    queue = queue.name(),
                    "enqueue failed; the sweeper will retry"
                );
            }
        }
        if self.last_event > 0
            && let Err(e) = state.bus.publish(self.last_event).await
        {
            tracing::debug!(
                error = format!("{e:#}"),
                "notice not published; the hub polls"
            );
        }
        for (event_type, received_at) in &self.ingested {
            crate::telemetry::event_ingested(event_type, *received_at);
        }
        profiles::refresh_all(state, self.profiles);
    }
}

/// Per-batch facts the handlers need.
struct Ctx {
    config: std::sync::Arc<crate::config::Config>,
}

impl Ctx {
    /// The welcome message as the admin page last saved it, else as configured. Read when a
    /// follow needs it, inside the batch's job: no extra hop for the batches (nearly all)
    /// that have no follow in them.
    fn welcome(&self, db: &Db) -> anyhow::Result<String> {
        Ok(settings::get_in(db, settings::WELCOME_MESSAGE)?
            .unwrap_or_else(|| self.config.welcome_message.clone()))
    }
}

async fn apply_batch(state: &AppState, ids: &[i64]) -> anyhow::Result<Effects> {
    let ctx = Ctx {
        config: state.config.clone(),
    };
    // The whole batch is one bulk job of the group-commit writer: one commit for the batch,
    // after the webhook acks that queued with it, and its statements run in one hop.
    let ids = ids.to_vec();
    state
        .store
        .writer
        .run_bulk(move |db| apply_rows(db, &ids, &ctx))
        .await
        .context("ingest")
}

fn apply_rows(db: &Db, ids: &[i64], ctx: &Ctx) -> anyhow::Result<Effects> {
    let rows = inbox::claim(db, ids).context("claim inbox rows")?;
    let mut parsed = Vec::with_capacity(rows.len());
    for row in rows {
        match parse_event(&row.payload) {
            Ok(event) => parsed.push((row, event)),
            // The webhook validated it, so this is a bug or an old row; keep it for inspection.
            Err(e) => inbox::mark_failed(db, row.id, &e.to_string())?,
        }
    }
    // LINE does not promise chronological order inside a body (or across redeliveries).
    parsed.sort_by_key(|(row, event)| (event.timestamp, row.id));
    let mut effects = Effects {
        now: now_ms(),
        ..Effects::default()
    };
    for (row, event) in &parsed {
        apply(db, event, ctx, &mut effects).with_context(|| {
            format!(
                "applying {} event {}",
                event.type_name(),
                row.webhook_event_id
            )
        })?;
        effects
            .ingested
            .push((event.type_name().to_owned(), row.received_at));
    }
    Ok(effects)
}

/// The chat a source belongs to: the conversation's contact.
fn chat_of(source: &Source) -> (&str, ContactKind) {
    match source {
        Source::User { user_id } => (user_id, ContactKind::User),
        Source::Group { group_id, .. } => (group_id, ContactKind::Group),
        Source::Room { room_id, .. } => (room_id, ContactKind::Room),
    }
}

fn apply(db: &Db, event: &Event, ctx: &Ctx, fx: &mut Effects) -> anyhow::Result<()> {
    let Some(source) = &event.source else {
        // Module and bot-suspension events have no chat; the inbox row is their record.
        return Ok(());
    };
    if let EventKind::Other { .. } = event.kind {
        return Ok(());
    }
    let at = event.timestamp;
    let (chat_id, chat_kind) = chat_of(source);
    let contact = contacts::upsert(db, chat_id, chat_kind, at)?;
    let contact_id = contact.id;
    let conversation_id = contacts::ensure_conversation(db, contact_id, at)?;
    fx.profile_if_due(contact, |id| {
        profiles::ProfileJob::chat(id, chat_id, chat_kind)
    });
    let sender_contact_id = match (chat_kind, source.sender_id()) {
        (ContactKind::User, _) => Some(contact_id),
        (_, Some(user_id)) => {
            let member = contacts::upsert(db, user_id, ContactKind::User, at)?;
            contacts::join_member(db, conversation_id, member.id, at)?;
            fx.profile_if_due(member, |id| {
                profiles::ProfileJob::member(id, user_id, chat_id, chat_kind)
            });
            Some(member.id)
        }
        _ => None,
    };
    // In standby another channel holds the chat: keep the record, but never reply from it.
    let active = event.mode == Mode::Active;
    let reply_token = event.reply_token.as_deref().filter(|_| active);
    let base = NewIncoming {
        conversation_id,
        sender_contact_id,
        webhook_event_id: &event.webhook_event_id,
        reply_token,
        line_timestamp: at,
        ..Default::default()
    };
    match &event.kind {
        EventKind::Message(message) => {
            let content = content_fields(message)?;
            let row = NewIncoming {
                kind: message.content.type_name(),
                body: &content.body,
                text: content.text.as_deref(),
                line_message_id: Some(&message.id),
                quote_token: message.quote_token.as_deref(),
                quoted_message_id: message.quoted_message_id.as_deref(),
                mark_as_read_token: message.mark_as_read_token.as_deref(),
                media_state: content.media_state,
                ..base
            };
            if let Some(id) = add_line(db, &row, true, fx)?
                && content.media_state == Some("pending")
            {
                fx.media.push(id);
            }
        }
        EventKind::MessageEdited(message) => {
            let content = content_fields(message)?;
            if let Some((id, conv)) = messages::edit(
                db,
                &message.id,
                &content.body,
                content.text.as_deref().unwrap_or(""),
                at,
            )? {
                note(db, LogKind::MessageUpdated, conv, id, fx)?;
            }
        }
        EventKind::Unsend { message_id } => {
            if let Some((id, conv)) = messages::mark_unsent(db, message_id, at)? {
                note(db, LogKind::MessageUpdated, conv, id, fx)?;
            }
        }
        EventKind::Follow { is_unblocked } => {
            contacts::set_follow_state(db, contact_id, "following")?;
            let body = json!({ "type": "follow", "isUnblocked": is_unblocked }).to_string();
            let row = NewIncoming {
                system: true,
                kind: "follow",
                body: &body,
                ..base
            };
            if add_line(db, &row, false, fx)?.is_some() && active {
                let welcome = ctx.welcome(db)?;
                if !welcome.is_empty() {
                    queue_welcome(db, conversation_id, &event.webhook_event_id, &welcome, fx)?;
                }
            }
            contact_changed(db, conversation_id, fx)?;
        }
        EventKind::Unfollow => {
            contacts::set_follow_state(db, contact_id, "unfollowed")?;
            system_line(db, &base, "unfollow", json!({ "type": "unfollow" }), fx)?;
            contact_changed(db, conversation_id, fx)?;
        }
        EventKind::Join => {
            contacts::set_follow_state(db, contact_id, "joined")?;
            system_line(db, &base, "join", json!({ "type": "join" }), fx)?;
            contact_changed(db, conversation_id, fx)?;
        }
        EventKind::Leave => {
            contacts::set_follow_state(db, contact_id, "left")?;
            system_line(db, &base, "leave", json!({ "type": "leave" }), fx)?;
            contact_changed(db, conversation_id, fx)?;
        }
        EventKind::MemberJoined { user_ids } | EventKind::MemberLeft { user_ids } => {
            let joined = matches!(event.kind, EventKind::MemberJoined { .. });
            for user_id in user_ids {
                let member = contacts::upsert(db, user_id, ContactKind::User, at)?;
                let id = member.id;
                if joined {
                    contacts::join_member(db, conversation_id, id, at)?;
                    fx.profile_if_due(member, |id| {
                        profiles::ProfileJob::member(id, user_id, chat_id, chat_kind)
                    });
                } else {
                    contacts::leave_member(db, conversation_id, id, at)?;
                }
            }
            let (kind, wire) = if joined {
                ("member_joined", "memberJoined")
            } else {
                ("member_left", "memberLeft")
            };
            system_line(
                db,
                &base,
                kind,
                json!({ "type": wire, "userIds": user_ids }),
                fx,
            )?;
        }
        EventKind::Postback { data, params } => {
            let body = json!({ "type": "postback", "data": data, "params": params }).to_string();
            let row = NewIncoming {
                kind: "postback",
                body: &body,
                text: Some(data),
                ..base
            };
            add_line(db, &row, true, fx)?;
        }
        EventKind::Other { .. } => {}
    }
    Ok(())
}

/// The stored shape of a message's content.
struct ContentFields {
    body: String,
    text: Option<String>,
    media_state: Option<&'static str>,
}

fn content_fields(message: &Message) -> anyhow::Result<ContentFields> {
    let body = serde_json::to_string(&message.content).context("serialising message content")?;
    let provider_state = |p: &ContentProvider| match p {
        ContentProvider::Line => Some("pending"),
        ContentProvider::External { .. } => Some("external"),
    };
    let (text, media_state) = match &message.content {
        MessageContent::Text { text, .. } => (Some(text.clone()), None),
        MessageContent::Sticker { text, keywords, .. } => {
            (text.clone().or_else(|| keywords.first().cloned()), None)
        }
        MessageContent::Location { title, address, .. } => {
            let parts: Vec<&str> = [title.as_deref(), address.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            (Some(parts.join(" ")).filter(|s| !s.is_empty()), None)
        }
        MessageContent::File { file_name, .. } => (Some(file_name.clone()), Some("pending")),
        MessageContent::Image { provider, .. }
        | MessageContent::Video { provider, .. }
        | MessageContent::Audio { provider, .. } => (None, provider_state(provider)),
        MessageContent::Other { .. } => (None, None),
    };
    Ok(ContentFields {
        body,
        text,
        media_state,
    })
}

/// Inserts a line of the conversation and logs it; `None` if this event was stored before.
fn add_line(
    db: &Db,
    row: &NewIncoming<'_>,
    from_customer: bool,
    fx: &mut Effects,
) -> anyhow::Result<Option<i64>> {
    let Some(id) = messages::insert_incoming(db, row)? else {
        return Ok(None);
    };
    let reopened = contacts::touch(
        db,
        row.conversation_id,
        row.line_timestamp,
        id,
        from_customer,
    )?;
    note(db, LogKind::MessageNew, row.conversation_id, id, fx)?;
    if reopened {
        let ev = events::append(
            db,
            LogKind::ConversationUpdated,
            Some(row.conversation_id),
            None,
            Some(r#"{"status":"open"}"#),
        )?;
        fx.last_event = fx.last_event.max(ev);
    }
    Ok(Some(id))
}

fn system_line(
    db: &Db,
    base: &NewIncoming<'_>,
    kind: &str,
    body: serde_json::Value,
    fx: &mut Effects,
) -> anyhow::Result<()> {
    let body = body.to_string();
    let row = NewIncoming {
        system: true,
        kind,
        body: &body,
        ..base.clone()
    };
    add_line(db, &row, false, fx)?;
    Ok(())
}

fn note(
    db: &Db,
    kind: LogKind,
    conversation_id: i64,
    message_id: i64,
    fx: &mut Effects,
) -> anyhow::Result<()> {
    let ev = events::append(db, kind, Some(conversation_id), Some(message_id), None)?;
    fx.last_event = fx.last_event.max(ev);
    Ok(())
}

fn contact_changed(db: &Db, conversation_id: i64, fx: &mut Effects) -> anyhow::Result<()> {
    let ev = events::append(
        db,
        LogKind::ContactUpdated,
        Some(conversation_id),
        None,
        None,
    )?;
    fx.last_event = fx.last_event.max(ev);
    Ok(())
}

/// Queues the welcome message; keyed by the follow event so a redone ingest queues it once.
fn queue_welcome(
    db: &Db,
    conversation_id: i64,
    webhook_event_id: &str,
    text: &str,
    fx: &mut Effects,
) -> anyhow::Result<()> {
    let body = json!({ "type": "text", "text": text }).to_string();
    let key = format!("welcome:{webhook_event_id}");
    let outgoing = NewOutgoing {
        conversation_id,
        kind: "text",
        body: &body,
        text: Some(text),
        agent_id: None,
        client_key: Some(&key),
    };
    if let Some((id, ev)) = super::delivery::queue_message(db, &outgoing)? {
        fx.last_event = fx.last_event.max(ev);
        fx.deliveries.push(id);
    }
    Ok(())
}
