//! The event log behind live updates: each change an agent must see, in commit order.

use sqlx::SqlitePool;

use rusqlite::params;

use super::direct::Db;
use crate::domain::now_ms;

/// What changed; the live hub and the views decide what to redraw from this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A message (in, out or system line) was added to a conversation.
    MessageNew,
    /// An outgoing message's delivery status changed, or an incoming one was unsent/edited,
    /// or its media became ready.
    MessageUpdated,
    /// Status, assignee or activity of a conversation changed.
    ConversationUpdated,
    /// A contact's profile or follow state changed.
    ContactUpdated,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageNew => "message.new",
            EventKind::MessageUpdated => "message.updated",
            EventKind::ConversationUpdated => "conversation.updated",
            EventKind::ContactUpdated => "contact.updated",
        }
    }
}

/// A row of the event log.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub conversation_id: Option<i64>,
    pub message_id: Option<i64>,
    pub data: Option<String>,
    pub created_at: i64,
}

/// Appends an event inside the caller's transaction, so it exists exactly when the change does.
pub fn append(
    db: &Db,
    kind: EventKind,
    conversation_id: Option<i64>,
    message_id: Option<i64>,
    data: Option<&str>,
) -> rusqlite::Result<i64> {
    db.prepare_cached(
        "INSERT INTO events (kind, conversation_id, message_id, data, created_at) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![kind.as_str(), conversation_id, message_id, data, now_ms()])?;
    db.note_logged();
    Ok(db.last_insert_rowid())
}

/// Events after `after`, oldest first.
///
/// Read in one hop (`direct`) rather than a round trip to sqlx's thread per row.
pub async fn since(pool: &SqlitePool, after: i64, limit: i64) -> sqlx::Result<Vec<Event>> {
    let mut conn = pool.acquire().await?;
    super::direct(&mut conn, |db| since_in(db, after, limit)).await
}

/// `since` on a connection at hand (the writer's, right after a commit).
pub fn since_in(db: &Db, after: i64, limit: i64) -> rusqlite::Result<Vec<Event>> {
    db.prepare_cached(
        "SELECT id, kind, conversation_id, message_id, data, created_at FROM events
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?
    .query_map(params![after, limit], |r| {
        Ok(Event {
            id: r.get(0)?,
            kind: r.get(1)?,
            conversation_id: r.get(2)?,
            message_id: r.get(3)?,
            data: r.get(4)?,
            created_at: r.get(5)?,
        })
    })?
    .collect()
}

/// The newest event id (0 when the log is empty).
pub async fn latest_id(pool: &SqlitePool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
        .fetch_one(pool)
        .await
}
