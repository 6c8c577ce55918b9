//! What the agent desk lists: conversations with their contact and last message, newest
//! activity first, filtered by assignee, status and a search; and the desk's own writes to a
//! conversation (assignee, status, what each agent has read). (The ingest worker's writes to
//! conversations live in `contacts`, beside the contact upserts it groups them with.)

use std::collections::HashMap;

use sqlx::SqlitePool;

use super::Conn;
use crate::domain::now_ms;

/// One row of the inbox list.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: i64,
    pub contact_id: i64,
    pub status: String,
    pub assignee_id: Option<i64>,
    pub assignee_name: Option<String>,
    pub in_count: i64,
    pub created_at: i64,
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
            "SELECT c.id, c.contact_id, c.status, c.assignee_id, a.display_name AS assignee_name,
        c.in_count, c.created_at, c.last_activity_at, ct.line_id, ct.display_name,
        ct.picture_url, m.kind AS last_kind, m.text AS last_text, m.direction AS last_direction
    FROM conversations c
    JOIN contacts ct ON ct.id = c.contact_id
    LEFT JOIN agents a ON a.id = c.assignee_id
    LEFT JOIN messages m ON m.id = c.last_message_id ",
            $tail
        )
    };
}

/// A conversation's state in the desk's workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    Pending,
    Resolved,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Open, Status::Pending, Status::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Whose conversations the list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Who {
    #[default]
    All,
    /// Assigned to this agent.
    Mine(i64),
    Unassigned,
}

impl Who {
    pub fn as_str(self) -> &'static str {
        match self {
            Who::All => "all",
            Who::Mine(_) => "mine",
            Who::Unassigned => "unassigned",
        }
    }
}

/// What the list shows: `status` `None` = every status; `search` matches contact names and
/// message text (case-insensitive for ASCII; `%` and `_` are literal).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub who: Who,
    pub status: Option<Status>,
    pub search: Option<String>,
}

/// `text` as a LIKE pattern matching it anywhere, its wildcards escaped with `\`.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The newest `limit` conversations by activity that pass `filter`.
pub async fn list(
    pool: &SqlitePool,
    filter: &Filter,
    limit: i64,
) -> sqlx::Result<Vec<ConversationRow>> {
    let (who, me) = match filter.who {
        Who::Mine(id) => ("mine", Some(id)),
        other => (other.as_str(), None),
    };
    let pattern = filter.search.as_deref().map(like_pattern);
    sqlx::query_as(select_rows!(
        "WHERE (?1 IS NULL OR c.status = ?1)
           AND (?2 = 'all' OR (?2 = 'mine' AND c.assignee_id = ?3)
                OR (?2 = 'unassigned' AND c.assignee_id IS NULL))
           AND (?4 IS NULL OR ct.display_name LIKE ?4 ESCAPE '\\'
                OR EXISTS (SELECT 1 FROM messages s WHERE s.conversation_id = c.id
                           AND s.direction IN ('in', 'out') AND s.status != 'unsent'
                           AND s.text LIKE ?4 ESCAPE '\\'))
         ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?5"
    ))
    .bind(filter.status.map(Status::as_str))
    .bind(who)
    .bind(me)
    .bind(pattern)
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

/// Sets who answers a conversation (`None` = nobody). Answers whether anything changed.
pub async fn set_assignee(
    conn: &mut Conn,
    id: i64,
    assignee_id: Option<i64>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE conversations SET assignee_id = ? WHERE id = ? AND assignee_id IS NOT ?",
    )
    .bind(assignee_id)
    .bind(id)
    .bind(assignee_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// Sets a conversation's status. Answers whether it changed.
pub async fn set_status(conn: &mut Conn, id: i64, status: Status) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("UPDATE conversations SET status = ? WHERE id = ? AND status != ?")
            .bind(status.as_str())
            .bind(id)
            .bind(status.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0,
    )
}

/// Records that `agent_id` has read conversation `id` up to `in_count` customer messages
/// (never more than it has, never backwards). Answers the read count now stored.
pub async fn mark_read(
    conn: &mut Conn,
    agent_id: i64,
    id: i64,
    in_count: Option<i64>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO agent_reads (agent_id, conversation_id, read_in_count, read_at)
         SELECT ?, c.id, MIN(c.in_count, COALESCE(?, c.in_count)), ? FROM conversations c WHERE c.id = ?
         ON CONFLICT (agent_id, conversation_id) DO UPDATE SET
             read_in_count = MAX(agent_reads.read_in_count, excluded.read_in_count),
             read_at = excluded.read_at
         RETURNING read_in_count",
    )
    .bind(agent_id)
    .bind(in_count)
    .bind(now_ms())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// What `agent_id` has read of the `limit` most recently active conversations (those the
/// desk can show), as conversation id → read count. Missing = nothing read, for every
/// conversation active after the second value; `None` there means the map is complete.
pub async fn reads(
    pool: &SqlitePool,
    agent_id: i64,
    limit: i64,
) -> sqlx::Result<(HashMap<i64, i64>, Option<i64>)> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT r.conversation_id, r.read_in_count, c.last_activity_at FROM agent_reads r
         JOIN conversations c ON c.id = r.conversation_id
         WHERE r.agent_id = ?
         ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?",
    )
    .bind(agent_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let complete_after = (rows.len() as i64 >= limit)
        .then(|| rows.last().map(|r| r.2))
        .flatten();
    Ok((
        rows.into_iter().map(|(id, read, _)| (id, read)).collect(),
        complete_after,
    ))
}

/// One agent's read count of one conversation (0 = nothing read).
pub async fn read_count(pool: &SqlitePool, agent_id: i64, id: i64) -> sqlx::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT read_in_count FROM agent_reads WHERE agent_id = ? AND conversation_id = ?",
    )
    .bind(agent_id)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_keep_wildcards_literal() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("王"), "%王%");
    }
}
