//! Contacts (LINE users, groups, rooms), their conversations and group membership.

use sqlx::SqlitePool;

use rusqlite::{OptionalExtension, params};

use super::direct::Db;

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

/// A contact as `upsert` leaves it: its id, and when its profile was last fetched.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub id: i64,
    pub profile_fetched_at: Option<i64>,
}

/// Finds or creates the contact for `line_id`, moving its last-seen time forward.
pub fn upsert(db: &Db, line_id: &str, kind: ContactKind, seen_at: i64) -> rusqlite::Result<Seen> {
    let known = db
        .prepare_cached("SELECT id, profile_fetched_at FROM contacts WHERE line_id = ?1")?
        .query_row(params![line_id], |r| {
            Ok(Seen {
                id: r.get(0)?,
                profile_fetched_at: r.get(1)?,
            })
        })
        .optional()?;
    if let Some(seen) = known {
        db.prepare_cached(
            "UPDATE contacts SET last_seen_at = ?1 WHERE id = ?2 AND last_seen_at < ?1",
        )?
        .execute(params![seen_at, seen.id])?;
        return Ok(seen);
    }
    db.prepare_cached(
        "INSERT INTO contacts (line_id, kind, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)",
    )?
    .execute(params![line_id, kind.as_str(), seen_at])?;
    Ok(Seen {
        id: db.last_insert_rowid(),
        profile_fetched_at: None,
    })
}

pub fn set_follow_state(db: &Db, id: i64, state: &str) -> rusqlite::Result<()> {
    db.prepare_cached("UPDATE contacts SET follow_state = ?1 WHERE id = ?2")?
        .execute(params![state, id])?;
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

/// Stores a fetched profile (or, with `None`, that there was none to fetch) and when it was
/// fetched, so it is not asked for again on every message; answers whether anything shown to
/// agents changed. A job for the store's writer: profile look-ups come in bursts with new
/// contacts (a broadcast answered by thousands), and each as a transaction of its own held
/// the write lock through its own commit while the webhooks' commits queued behind it.
pub fn save_profile(
    db: &Db,
    id: i64,
    profile: Option<&Profile>,
    at: i64,
) -> rusqlite::Result<bool> {
    let changed = match profile {
        Some(p) => {
            db.prepare_cached(
                "UPDATE contacts SET display_name = ?1, picture_url = ?2, status_message = ?3,
                        language = ?4, profile_fetched_at = ?5
                 WHERE id = ?6 AND (display_name IS NOT ?1 OR picture_url IS NOT ?2
                                    OR status_message IS NOT ?3 OR language IS NOT ?4)",
            )?
            .execute(params![
                p.display_name,
                p.picture_url,
                p.status_message,
                p.language,
                at,
                id
            ])? > 0
        }
        None => false,
    };
    if !changed {
        db.prepare_cached("UPDATE contacts SET profile_fetched_at = ?1 WHERE id = ?2")?
            .execute(params![at, id])?;
    }
    Ok(changed)
}

/// The conversations that show this contact: its own, and those of the groups and rooms it
/// is a member of.
pub fn conversations_showing(db: &Db, contact_id: i64) -> rusqlite::Result<Vec<i64>> {
    db.prepare_cached(
        "SELECT id FROM conversations WHERE contact_id = ?1
         UNION SELECT conversation_id FROM conversation_members WHERE contact_id = ?1",
    )?
    .query_map(params![contact_id], |r| r.get(0))?
    .collect()
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

/// The LINE id of a conversation's chat (the user, group or room messages are sent to).
pub fn chat_line_id(db: &Db, conversation_id: i64) -> rusqlite::Result<String> {
    db.prepare_cached(
        "SELECT contacts.line_id FROM conversations JOIN contacts ON contacts.id = conversations.contact_id
         WHERE conversations.id = ?1",
    )?
    .query_row([conversation_id], |r| r.get(0))
}

/// Finds or creates the conversation of a chat contact.
pub fn ensure_conversation(db: &Db, contact_id: i64, at: i64) -> rusqlite::Result<i64> {
    let known = db
        .prepare_cached("SELECT id FROM conversations WHERE contact_id = ?1")?
        .query_row(params![contact_id], |r| r.get(0))
        .optional()?;
    if let Some(id) = known {
        return Ok(id);
    }
    db.prepare_cached(
        "INSERT INTO conversations (contact_id, last_activity_at, created_at) VALUES (?1, ?2, ?2)",
    )?
    .execute(params![contact_id, at])?;
    Ok(db.last_insert_rowid())
}

/// Moves a conversation's activity forward to `message_id`. A customer message (`from_customer`)
/// counts towards `in_count` (what unread counts are measured against) and reopens a resolved
/// or pending conversation: the customer is waiting again. Answers whether the status changed.
pub fn touch(
    db: &Db,
    id: i64,
    at: i64,
    message_id: i64,
    from_customer: bool,
) -> rusqlite::Result<bool> {
    let reopened = from_customer
        && db
            .prepare_cached(
                "UPDATE conversations SET status = 'open' WHERE id = ?1 AND status IN ('resolved', 'pending')",
            )?
            .execute(params![id])?
            > 0;
    db.prepare_cached(
        "UPDATE conversations SET last_message_id = ?1,
             last_activity_at = CASE WHEN ?2 > last_activity_at THEN ?2 ELSE last_activity_at END,
             in_count = in_count + ?3
         WHERE id = ?4",
    )?
    .execute(params![message_id, at, i64::from(from_customer), id])?;
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
pub fn join_member(
    db: &Db,
    conversation_id: i64,
    contact_id: i64,
    at: i64,
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO conversation_members (conversation_id, contact_id, joined_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (conversation_id, contact_id) DO UPDATE SET left_at = NULL",
    )?
    .execute(params![conversation_id, contact_id, at])?;
    Ok(())
}

pub fn leave_member(
    db: &Db,
    conversation_id: i64,
    contact_id: i64,
    at: i64,
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO conversation_members (conversation_id, contact_id, joined_at, left_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (conversation_id, contact_id) DO UPDATE SET left_at = excluded.left_at",
    )?
    .execute(params![conversation_id, contact_id, at])?;
    Ok(())
}

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
