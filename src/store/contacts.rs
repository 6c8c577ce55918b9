//! Contacts (LINE users, groups, rooms), their conversations and group membership.

use sqlx::SqlitePool;

use super::Conn;

/// The kind of a LINE id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactKind {
    User,
    Group,
    Room,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::User => "user",
            ContactKind::Group => "group",
            ContactKind::Room => "room",
        }
    }
}

/// A profile as LINE returns it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub display_name: String,
    pub picture_url: Option<String>,
    pub status_message: Option<String>,
    pub language: Option<String>,
}

/// A stored contact.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Contact {
    pub id: i64,
    pub line_id: String,
    pub kind: String,
    pub display_name: Option<String>,
    pub picture_url: Option<String>,
    pub status_message: Option<String>,
    pub language: Option<String>,
    pub follow_state: String,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub profile_fetched_at: Option<i64>,
}

/// Finds or creates the contact for `line_id`, moving its last-seen time forward.
pub async fn upsert(
    conn: &mut Conn,
    line_id: &str,
    kind: ContactKind,
    seen_at: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO contacts (line_id, kind, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (line_id) DO UPDATE SET last_seen_at =
             CASE WHEN excluded.last_seen_at > contacts.last_seen_at
                  THEN excluded.last_seen_at ELSE contacts.last_seen_at END
         RETURNING id",
    )
    .bind(line_id)
    .bind(kind.as_str())
    .bind(seen_at)
    .bind(seen_at)
    .fetch_one(&mut *conn)
    .await
}

pub async fn set_follow_state(conn: &mut Conn, id: i64, state: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE contacts SET follow_state = ? WHERE id = ?")
        .bind(state)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get(pool: &SqlitePool, id: i64) -> sqlx::Result<Option<Contact>> {
    sqlx::query_as("SELECT * FROM contacts WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn by_line_id(pool: &SqlitePool, line_id: &str) -> sqlx::Result<Option<Contact>> {
    sqlx::query_as("SELECT * FROM contacts WHERE line_id = ?")
        .bind(line_id)
        .fetch_optional(pool)
        .await
}

/// Stores a fetched profile; answers whether anything shown to agents changed.
pub async fn update_profile(
    conn: &mut Conn,
    id: i64,
    profile: &Profile,
    at: i64,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "UPDATE contacts SET display_name = ?, picture_url = ?, status_message = ?, language = ?,
                profile_fetched_at = ?
         WHERE id = ? AND (display_name IS NOT ? OR picture_url IS NOT ? OR status_message IS NOT ?
                           OR language IS NOT ?)",
    )
    .bind(&profile.display_name)
    .bind(&profile.picture_url)
    .bind(&profile.status_message)
    .bind(&profile.language)
    .bind(at)
    .bind(id)
    .bind(&profile.display_name)
    .bind(&profile.picture_url)
    .bind(&profile.status_message)
    .bind(&profile.language)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if !changed {
        mark_profile_fetched(conn, id, at).await?;
    }
    Ok(changed)
}

/// Records a fetch attempt (also a failed one, so a missing profile is not asked for again
/// on every message).
pub async fn mark_profile_fetched(conn: &mut Conn, id: i64, at: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE contacts SET profile_fetched_at = ? WHERE id = ?")
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A conversation row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Conversation {
    pub id: i64,
    pub contact_id: i64,
    pub status: String,
    pub assignee_id: Option<i64>,
    pub last_activity_at: i64,
    pub last_message_id: Option<i64>,
    pub created_at: i64,
    pub in_count: i64,
}

/// Finds or creates the conversation of a chat contact.
pub async fn ensure_conversation(conn: &mut Conn, contact_id: i64, at: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO conversations (contact_id, last_activity_at, created_at) VALUES (?, ?, ?)
         ON CONFLICT (contact_id) DO UPDATE SET contact_id = excluded.contact_id
         RETURNING id",
    )
    .bind(contact_id)
    .bind(at)
    .bind(at)
    .fetch_one(&mut *conn)
    .await
}

/// Moves a conversation's activity forward to `message_id`. A customer message (`from_customer`)
/// counts towards `in_count` (what unread counts are measured against) and reopens a resolved
/// or pending conversation: the customer is waiting again. Answers whether the status changed.
pub async fn touch(
    conn: &mut Conn,
    id: i64,
    at: i64,
    message_id: i64,
    from_customer: bool,
) -> sqlx::Result<bool> {
    let reopened = if from_customer {
        sqlx::query(
            "UPDATE conversations SET status = 'open' WHERE id = ? AND status IN ('resolved', 'pending')",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            > 0
    } else {
        false
    };
    sqlx::query(
        "UPDATE conversations SET last_message_id = ?,
             last_activity_at = CASE WHEN ? > last_activity_at THEN ? ELSE last_activity_at END,
             in_count = in_count + ?
         WHERE id = ?",
    )
    .bind(message_id)
    .bind(at)
    .bind(at)
    .bind(i64::from(from_customer))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(reopened)
}

pub async fn conversation(pool: &SqlitePool, id: i64) -> sqlx::Result<Option<Conversation>> {
    sqlx::query_as("SELECT * FROM conversations WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The conversation of a chat (user, group or room id).
pub async fn conversation_by_line_id(
    pool: &SqlitePool,
    line_id: &str,
) -> sqlx::Result<Option<Conversation>> {
    sqlx::query_as(
        "SELECT conversations.* FROM conversations JOIN contacts ON contacts.id = conversations.contact_id
         WHERE contacts.line_id = ?",
    )
    .bind(line_id)
    .fetch_optional(pool)
    .await
}

/// Records that `contact_id` is (again) a member of a group or room conversation.
pub async fn join_member(
    conn: &mut Conn,
    conversation_id: i64,
    contact_id: i64,
    at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO conversation_members (conversation_id, contact_id, joined_at) VALUES (?, ?, ?)
         ON CONFLICT (conversation_id, contact_id) DO UPDATE SET left_at = NULL",
    )
    .bind(conversation_id)
    .bind(contact_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn leave_member(
    conn: &mut Conn,
    conversation_id: i64,
    contact_id: i64,
    at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO conversation_members (conversation_id, contact_id, joined_at, left_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (conversation_id, contact_id) DO UPDATE SET left_at = excluded.left_at",
    )
    .bind(conversation_id)
    .bind(contact_id)
    .bind(at)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Current members of a conversation, as (contact id, LINE id).
pub async fn members(pool: &SqlitePool, conversation_id: i64) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT contacts.id, contacts.line_id FROM conversation_members
         JOIN contacts ON contacts.id = conversation_members.contact_id
         WHERE conversation_members.conversation_id = ? AND conversation_members.left_at IS NULL
         ORDER BY contacts.id",
    )
    .bind(conversation_id)
    .fetch_all(pool)
    .await
}
