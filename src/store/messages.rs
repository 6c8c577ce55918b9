//! Messages: what customers wrote, what agents (and the welcome greeting) send, and the quiet
//! system lines; plus the outbox and media bookkeeping the workers rely on.

use sqlx::SqlitePool;

use rusqlite::{OptionalExtension, params};

use super::{Conn, direct::Db};
use crate::domain::{Direction, now_ms};

/// A message as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    pub direction: String,
    pub kind: String,
    pub body: String,
    pub text: Option<String>,
    pub sender_contact_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub line_message_id: Option<String>,
    pub webhook_event_id: Option<String>,
    pub client_key: Option<String>,
    pub quote_token: Option<String>,
    pub quoted_message_id: Option<String>,
    pub mark_as_read_token: Option<String>,
    pub reply_token: Option<String>,
    pub reply_token_state: Option<String>,
    pub status: String,
    pub retry_key: Option<String>,
    pub via: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub claimed_until: Option<i64>,
    pub last_error: Option<String>,
    pub media_state: Option<String>,
    pub media_path: Option<String>,
    pub media_mime: Option<String>,
    pub media_size: Option<i64>,
    pub media_attempts: i64,
    pub line_timestamp: Option<i64>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub unsent_at: Option<i64>,
    pub edited_at: Option<i64>,
    /// The sender's display name, when read with `with_sender!` (else `None`).
    #[sqlx(default)]
    pub sender_name: Option<String>,
    /// A group or room member wrote it (not the 1:1 customer), when read with `with_sender!`:
    /// the thread then shows who.
    #[sqlx(default)]
    pub from_member: bool,
}

/// Reads messages with who sent them (a macro so the SQL stays a `&'static str`).
macro_rules! with_sender {
    ($tail:literal) => {
        concat!(
            "SELECT m.*, sc.display_name AS sender_name,
                (m.direction = 'in' AND m.sender_contact_id IS NOT NULL
                 AND m.sender_contact_id <> cv.contact_id) AS from_member
             FROM messages m
             JOIN conversations cv ON cv.id = m.conversation_id
             LEFT JOIN contacts sc ON sc.id = m.sender_contact_id ",
            $tail
        )
    };
}

/// A message or system line that arrived through a webhook event.
#[derive(Clone, Debug, Default)]
pub struct NewIncoming<'a> {
    pub conversation_id: i64,
    pub system: bool,
    pub kind: &'a str,
    pub body: &'a str,
    pub text: Option<&'a str>,
    pub sender_contact_id: Option<i64>,
    pub line_message_id: Option<&'a str>,
    pub webhook_event_id: &'a str,
    pub quote_token: Option<&'a str>,
    pub quoted_message_id: Option<&'a str>,
    pub mark_as_read_token: Option<&'a str>,
    /// Kept only while it may be used (active mode, event can be replied to).
    pub reply_token: Option<&'a str>,
    pub media_state: Option<&'a str>,
    pub line_timestamp: i64,
}

/// Inserts an incoming row; `None` when this webhook event was already stored (promise 2).
pub fn insert_incoming(db: &Db, m: &NewIncoming<'_>) -> rusqlite::Result<Option<i64>> {
    let direction = if m.system {
        Direction::System
    } else {
        Direction::In
    };
    let now = now_ms();
    let status = if m.system { "info" } else { "received" };
    db.prepare_cached(
        "INSERT INTO messages (conversation_id, direction, kind, body, text, sender_contact_id,
             line_message_id, webhook_event_id, quote_token, quoted_message_id, mark_as_read_token,
             reply_token, reply_token_state, status, media_state, next_attempt_at, line_timestamp,
             created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (webhook_event_id) DO NOTHING",
    )?
    .execute(params![
        m.conversation_id,
        direction.as_str(),
        m.kind,
        m.body,
        m.text,
        m.sender_contact_id,
        m.line_message_id,
        m.webhook_event_id,
        m.quote_token,
        m.quoted_message_id,
        m.mark_as_read_token,
        m.reply_token,
        m.reply_token.map(|_| "fresh"),
        status,
        m.media_state,
        // A pending download is due now; the sweeper only steps in once it is overdue.
        m.media_state.filter(|s| *s == "pending").map(|_| now),
        m.line_timestamp,
        now,
    ])?;
    Ok(super::inserted_id(db))
}

/// A message to send to LINE.
#[derive(Clone, Debug)]
pub struct NewOutgoing<'a> {
    pub conversation_id: i64,
    pub kind: &'a str,
    /// The LINE message object to send, as JSON.
    pub body: &'a str,
    pub text: Option<&'a str>,
    pub agent_id: Option<i64>,
    /// Idempotency key inside linechat; a second insert with the same key is a no-op.
    pub client_key: Option<&'a str>,
}

/// Queues an outgoing message with its retry key, generated here once and kept across every
/// attempt (promise 3). `None` when `client_key` was already used.
pub fn insert_outgoing(db: &Db, m: &NewOutgoing<'_>) -> rusqlite::Result<Option<i64>> {
    let now = now_ms();
    db.prepare_cached(
        "INSERT INTO messages (conversation_id, direction, kind, body, text, agent_id, client_key,
             status, retry_key, next_attempt_at, created_at)
         VALUES (?1, 'out', ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?8)
         ON CONFLICT (client_key) DO NOTHING RETURNING id",
    )?
    .query_row(
        params![
            m.conversation_id,
            m.kind,
            m.body,
            m.text,
            m.agent_id,
            m.client_key,
            uuid::Uuid::new_v4().hyphenated().to_string(),
            now,
        ],
        |r| r.get(0),
    )
    .optional()
}

pub async fn get(pool: &SqlitePool, id: i64) -> sqlx::Result<Option<Message>> {
    sqlx::query_as(with_sender!("WHERE m.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A conversation's messages with ids below `before` (newest first page), oldest first.
pub async fn page(
    pool: &SqlitePool,
    conversation_id: i64,
    before: i64,
    limit: i64,
) -> sqlx::Result<Vec<Message>> {
    let mut rows: Vec<Message> = sqlx::query_as(with_sender!(
        "WHERE m.conversation_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?"
    ))
    .bind(conversation_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.reverse();
    Ok(rows)
}

/// Marks a customer's message as unsent: the row stays, its content is no longer shown.
pub fn mark_unsent(
    db: &Db,
    line_message_id: &str,
    at: i64,
) -> rusqlite::Result<Option<(i64, i64)>> {
    db.prepare_cached(
        "UPDATE messages SET status = 'unsent', unsent_at = ?1
         WHERE line_message_id = ?2 AND direction = 'in' RETURNING id, conversation_id",
    )?
    .query_row(params![at, line_message_id], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// Replaces an edited text, keeping only the newest edit (edits can arrive out of order).
pub fn edit(
    db: &Db,
    line_message_id: &str,
    body: &str,
    text: &str,
    at: i64,
) -> rusqlite::Result<Option<(i64, i64)>> {
    db.prepare_cached(
        "UPDATE messages SET body = ?1, text = ?2, edited_at = ?3
         WHERE line_message_id = ?4 AND direction = 'in'
           AND ?3 > COALESCE(edited_at, line_timestamp, 0)
         RETURNING id, conversation_id",
    )?
    .query_row(params![body, text, at, line_message_id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

/// An outgoing message claimed for one delivery attempt.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    pub conversation_id: i64,
    pub body: String,
    pub retry_key: String,
    pub attempts: i64,
    pub via: Option<String>,
    pub created_at: i64,
}

/// Claims an outgoing message for an attempt: queued and due, or stuck in `sending` past its
/// lease (the process that held it died). The lease keeps two workers off one message.
pub fn claim_delivery(db: &Db, id: i64, lease_ms: i64) -> rusqlite::Result<Option<Claimed>> {
    let now = now_ms();
    db.prepare_cached(
        "UPDATE messages SET status = 'sending', attempts = attempts + 1, claimed_until = ?1
         WHERE id = ?2 AND direction = 'out'
           AND ((status = 'queued' AND next_attempt_at <= ?3) OR (status = 'sending' AND claimed_until < ?3))
         RETURNING id, conversation_id, body, retry_key, attempts, via, created_at",
    )?
    .query_row(params![now + lease_ms, id, now], |r| {
        Ok(Claimed {
            id: r.get(0)?,
            conversation_id: r.get(1)?,
            body: r.get(2)?,
            retry_key: r.get(3)?,
            attempts: r.get(4)?,
            via: r.get(5)?,
            created_at: r.get(6)?,
        })
    })
    .optional()
}

/// How far back among a conversation's newest messages a fresh reply token is looked for.
/// A token lives under a minute; a conversation rarely has this many lines in a minute, and
/// if it does, its newer lines carry newer tokens.
const REPLY_TOKEN_LOOKBACK: i64 = 20;

/// Takes the conversation's newest reply token that is still fresh (received after
/// `issued_after`) and unused, among its `REPLY_TOKEN_LOOKBACK` newest lines, marking it used
/// in the same statement so it is used once.
///
/// The look-back rides the conversation's index of its messages. (An index of fresh tokens
/// by conversation did the same job, but cost every incoming message an entry in a random
/// place of it: a page written per message at full ingest speed, and it only ever grew.)
pub fn take_reply_token(
    db: &Db,
    conversation_id: i64,
    issued_after: i64,
) -> rusqlite::Result<Option<String>> {
    db.prepare_cached(
        "UPDATE messages SET reply_token_state = 'used'
         WHERE id = (SELECT id FROM (SELECT id, reply_token_state, line_timestamp FROM messages
                                     WHERE conversation_id = ?1 ORDER BY id DESC LIMIT ?3)
                     WHERE reply_token_state = 'fresh' AND line_timestamp > ?2
                     ORDER BY id DESC LIMIT 1)
           AND reply_token_state = 'fresh'
         RETURNING reply_token",
    )?
    .query_row(
        params![conversation_id, issued_after, REPLY_TOKEN_LOOKBACK],
        |r| r.get(0),
    )
    .optional()
}

/// Records which API an attempt uses, before the call (so a crash mid-call is understood).
pub fn set_via(db: &Db, id: i64, via: &str) -> rusqlite::Result<()> {
    db.prepare_cached("UPDATE messages SET via = ?1 WHERE id = ?2")?
        .execute(params![via, id])?;
    Ok(())
}

pub fn mark_sent(
    db: &Db,
    id: i64,
    via: &str,
    line_message_id: Option<&str>,
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "UPDATE messages SET status = 'sent', via = ?1, line_message_id = ?2, sent_at = ?3,
             claimed_until = NULL, next_attempt_at = NULL, last_error = NULL
         WHERE id = ?4",
    )?
    .execute(params![via, line_message_id, now_ms(), id])?;
    Ok(())
}

/// Puts a message back in the queue for another attempt at `next_attempt_at`.
pub fn schedule_retry(db: &Db, id: i64, next_attempt_at: i64, error: &str) -> rusqlite::Result<()> {
    db.prepare_cached(
        "UPDATE messages SET status = 'queued', next_attempt_at = ?1, claimed_until = NULL, last_error = ?2
         WHERE id = ?3",
    )?
    .execute(params![next_attempt_at, error, id])?;
    Ok(())
}

pub fn mark_failed(db: &Db, id: i64, error: &str) -> rusqlite::Result<()> {
    db.prepare_cached(
        "UPDATE messages SET status = 'failed', claimed_until = NULL, next_attempt_at = NULL, last_error = ?1
         WHERE id = ?2",
    )?
    .execute(params![error, id])?;
    Ok(())
}

pub async fn requeue_failed(conn: &mut Conn, id: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE messages SET status = 'queued', attempts = 0, next_attempt_at = ?, via = NULL
         WHERE id = ? AND direction = 'out' AND status = 'failed'",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// Outgoing messages whose queue entry was probably lost: queued and due since before
/// `due_before`, or sending with an expired lease.
pub async fn overdue_deliveries(
    pool: &SqlitePool,
    due_before: i64,
    limit: i64,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM messages
         WHERE (status = 'queued' AND next_attempt_at < ?) OR (status = 'sending' AND claimed_until < ?)
         ORDER BY id LIMIT ?",
    )
    .bind(due_before)
    .bind(now_ms())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A message whose content is to be downloaded.
#[derive(Clone, Debug)]
pub struct MediaJob {
    pub id: i64,
    pub conversation_id: i64,
    pub line_message_id: Option<String>,
    pub kind: String,
    pub body: String,
    pub media_attempts: i64,
}

/// Takes a pending media job for one attempt (bumping its attempt count and pushing its next
/// sweep time out, so the sweeper leaves it alone while it runs).
///
/// This and the three below are jobs for the store's writer: a burst of photos is a burst of
/// these, and each as a transaction of its own held the write gate through its own fsync
/// while webhook commits waited.
pub fn claim_media(db: &Db, id: i64, lease_ms: i64) -> rusqlite::Result<Option<MediaJob>> {
    let now = now_ms();
    db.prepare_cached(
        "UPDATE messages SET media_attempts = media_attempts + 1, next_attempt_at = ?1
         WHERE id = ?2 AND media_state = 'pending' AND COALESCE(next_attempt_at, 0) <= ?3
         RETURNING id, conversation_id, line_message_id, kind, body, media_attempts",
    )?
    .query_row(params![now + lease_ms, id, now], |r| {
        Ok(MediaJob {
            id: r.get(0)?,
            conversation_id: r.get(1)?,
            line_message_id: r.get(2)?,
            kind: r.get(3)?,
            body: r.get(4)?,
            media_attempts: r.get(5)?,
        })
    })
    .optional()
}

pub fn media_ready(db: &Db, id: i64, path: &str, mime: &str, size: i64) -> rusqlite::Result<()> {
    db.prepare_cached(
        "UPDATE messages SET media_state = 'ready', media_path = ?1, media_mime = ?2,
             media_size = ?3, next_attempt_at = NULL, last_error = NULL
         WHERE id = ?4",
    )?
    .execute(params![path, mime, size, id])?;
    Ok(())
}

pub fn media_retry(db: &Db, id: i64, next_attempt_at: i64, error: &str) -> rusqlite::Result<()> {
    db.prepare_cached("UPDATE messages SET next_attempt_at = ?1, last_error = ?2 WHERE id = ?3")?
        .execute(params![next_attempt_at, error, id])?;
    Ok(())
}

pub fn media_failed(db: &Db, id: i64, error: &str) -> rusqlite::Result<()> {
    db.prepare_cached(
        "UPDATE messages SET media_state = 'failed', next_attempt_at = NULL, last_error = ?1
         WHERE id = ?2",
    )?
    .execute(params![error, id])?;
    Ok(())
}

/// Pending media jobs whose queue entry was probably lost.
pub async fn overdue_media(
    pool: &SqlitePool,
    due_before: i64,
    limit: i64,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM messages WHERE media_state = 'pending' AND COALESCE(next_attempt_at, 0) < ?
         ORDER BY id LIMIT ?",
    )
    .bind(due_before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Messages of a conversation in order (tests, exports).
pub async fn all_in_conversation(
    pool: &SqlitePool,
    conversation_id: i64,
) -> sqlx::Result<Vec<Message>> {
    sqlx::query_as("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id")
        .bind(conversation_id)
        .fetch_all(pool)
        .await
}

/// The message a client key was used for (a double submit finds the first one).
pub async fn by_client_key(pool: &SqlitePool, client_key: &str) -> sqlx::Result<Option<Message>> {
    sqlx::query_as("SELECT * FROM messages WHERE client_key = ?")
        .bind(client_key)
        .fetch_optional(pool)
        .await
}
