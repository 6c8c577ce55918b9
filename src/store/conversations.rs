//! What the agent desk lists: conversations with their contact and last message, newest
//! activity first. (Writes to conversations live in `contacts`, beside the contact upserts
//! the ingest worker groups them with.)

use sqlx::SqlitePool;

/// One row of the inbox list.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: i64,
    pub status: String,
    pub last_activity_at: i64,
    pub line_id: String,
    pub display_name: Option<String>,
    pub picture_url: Option<String>,
    pub last_kind: Option<String>,
    pub last_text: Option<String>,
    pub last_direction: Option<String>,
}

/// The shared head of both queries (a macro so the SQL stays a `&'static str`, which sqlx 0.9
/// asks for to rule out injection by formatting).
macro_rules! select_rows {
    ($tail:literal) => {
        concat!(
            "SELECT c.id, c.status, c.last_activity_at, ct.line_id, ct.display_name,
        ct.picture_url, m.kind AS last_kind, m.text AS last_text, m.direction AS last_direction
    FROM conversations c
    JOIN contacts ct ON ct.id = c.contact_id
    LEFT JOIN messages m ON m.id = c.last_message_id ",
            $tail
        )
    };
}

/// The newest `limit` conversations by activity (the `conversations_by_activity` index).
pub async fn list(pool: &SqlitePool, limit: i64) -> sqlx::Result<Vec<ConversationRow>> {
    sqlx::query_as(select_rows!(
        "ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn row(pool: &SqlitePool, id: i64) -> sqlx::Result<Option<ConversationRow>> {
    sqlx::query_as(select_rows!("WHERE c.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
}
