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
    Ok(db.last_insert_rowid())
}

/// Events after `after`, oldest first.
pub async fn since(pool: &SqlitePool, after: i64, limit: i64) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?")
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// The newest event id (0 when the log is empty).
pub async fn latest_id(pool: &SqlitePool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
        .fetch_one(pool)
        .await
}
