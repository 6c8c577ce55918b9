//! The durable webhook inbox.
//!
//! A webhook is acknowledged only after its events are committed here (promise 1). The
//! webhook handlers do not commit themselves: their rows are a job for the store's
//! group-commit writer (`store::writer`), which commits everything that queued up while the
//! previous commit ran in one transaction, and answers every waiting handler at once.

use sqlx::SqlitePool;

use super::{Conn, direct::Db};
use crate::domain::now_ms;

/// One webhook event as it is kept: the raw JSON plus what the sweeper and metrics need.
#[derive(Clone, Debug)]
pub struct NewInboxRow {
    pub webhook_event_id: String,
    pub event_type: String,
    pub event_timestamp: i64,
    pub payload: String,
}

/// What became of a request's rows: the ids of rows that were new, and how many were
/// redeliveries of events already stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboxOutcome {
    pub new_ids: Vec<i64>,
    pub duplicates: usize,
}

/// Stores a request's rows; an event id already stored (a redelivery, or a repeat inside
/// the same request) is counted as a duplicate and left as it was.
pub fn insert(db: &Db, rows: &[NewInboxRow]) -> rusqlite::Result<InboxOutcome> {
    let received_at = now_ms();
    let mut statement = db.prepare_cached(
        "INSERT INTO webhook_inbox (webhook_event_id, event_type, event_timestamp, payload, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (webhook_event_id) DO NOTHING",
    )?;
    let mut outcome = InboxOutcome::default();
    for row in rows {
        statement.execute(rusqlite::params![
            row.webhook_event_id,
            row.event_type,
            row.event_timestamp,
            row.payload,
            received_at
        ])?;
        match super::inserted_id(db) {
            Some(id) => outcome.new_ids.push(id),
            None => outcome.duplicates += 1,
        }
    }
    Ok(outcome)
}

/// A claimed inbox row, ready for the ingest worker.
#[derive(Debug)]
pub struct InboxRow {
    pub id: i64,
    pub webhook_event_id: String,
    pub payload: String,
    pub received_at: i64,
}

/// Claims pending rows inside the caller's transaction by marking them done up front: if the
/// transaction rolls back (crash, error), they are pending again and will be redone.
pub fn claim(db: &Db, ids: &[i64]) -> rusqlite::Result<Vec<InboxRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = vec!["?"; ids.len()].join(", ");
    let sql = format!(
        "UPDATE webhook_inbox SET state = 'done', processed_at = {} WHERE state = 'pending' AND id IN ({list})
         RETURNING id, webhook_event_id, payload, received_at",
        now_ms()
    );
    let mut statement = db.prepare(&sql)?;
    let mut rows = statement
        .query_map(rusqlite::params_from_iter(ids), |r| {
            Ok(InboxRow {
                id: r.get(0)?,
                webhook_event_id: r.get(1)?,
                payload: r.get(2)?,
                received_at: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Records that an event could not be processed; it stays in the inbox for inspection.
pub fn mark_failed(db: &Db, id: i64, error: &str) -> rusqlite::Result<()> {
    db.prepare_cached("UPDATE webhook_inbox SET state = 'failed', last_error = ?1 WHERE id = ?2")?
        .execute(rusqlite::params![error, id])?;
    Ok(())
}

/// Pending rows older than `received_before`: their queue entries were probably lost.
pub async fn overdue(
    pool: &SqlitePool,
    received_before: i64,
    limit: i64,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM webhook_inbox WHERE state = 'pending' AND received_at < ? ORDER BY id LIMIT ?",
    )
    .bind(received_before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Counts by state, for tests and readiness.
pub async fn count(pool: &SqlitePool, state: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_inbox WHERE state = ?")
        .bind(state)
        .fetch_one(pool)
        .await
}

/// Attempts after which a row that keeps failing is parked as 'failed'.
pub const MAX_ATTEMPTS: i64 = 5;

/// Records a failed processing attempt of one row; parks it after MAX_ATTEMPTS.
pub async fn record_failure(conn: &mut Conn, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_inbox SET attempts = attempts + 1, last_error = ?,
             state = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE state END
         WHERE id = ? AND state = 'pending'",
    )
    .bind(error)
    .bind(MAX_ATTEMPTS)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
