//! The durable webhook inbox and its group-commit writer.
//!
//! A webhook is acknowledged only after its events are committed here (promise 1). A commit
//! costs an fsync and, through sqlx, a hop to the connection's thread for every statement; one
//! transaction per request tops out at a few thousand webhooks per second on two cores. So the
//! webhook handlers do not write themselves: they hand their rows to one writer task, which
//! takes everything that queued up while the previous commit ran, inserts it with multi-row
//! statements in one transaction, and then answers every waiting handler at once.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{Conn, direct::Db};
use crate::domain::now_ms;

/// Most rows one commit takes; bounds the transaction's length and memory.
const MAX_ROWS_PER_COMMIT: usize = 4096;
/// Rows per INSERT statement: 5 bound values each stays well under SQLite's variable limit.
const ROWS_PER_STATEMENT: usize = 400;

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

struct Request {
    rows: Vec<NewInboxRow>,
    done: oneshot::Sender<Result<InboxOutcome, String>>,
}

/// Handle to the writer task. Cloning is cheap; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<Request>,
}

impl InboxWriter {
    pub(super) fn start(pool: SqlitePool, gate: super::WriteGate) -> Self {
        // Bounded, so a store that has stopped answering pushes back on the webhook handlers
        // instead of growing memory without limit.
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(run_writer(pool, gate, rx));
        Self { tx }
    }

    /// Durably stores `rows`; returns once they are committed (or the commit failed).
    pub async fn write(&self, rows: Vec<NewInboxRow>) -> anyhow::Result<InboxOutcome> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Request { rows, done })
            .await
            .map_err(|_| anyhow::anyhow!("the inbox writer has stopped"))?;
        answer
            .await
            .context("the inbox writer dropped the request")?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

async fn run_writer(pool: SqlitePool, gate: super::WriteGate, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut rows = batch[0].rows.len();
        while rows < MAX_ROWS_PER_COMMIT {
            match rx.try_recv() {
                Ok(next) => {
                    rows += next.rows.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        match commit(&pool, &gate, &batch).await {
            Ok(inserted) => answer_all(batch, inserted),
            Err(e) => {
                let message = format!("{e:#}");
                tracing::error!(error = %message, rows, "inbox commit failed");
                for request in batch {
                    let _ = request.done.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Gives each inserted id to the first row that carried its event id, in arrival order, so a
/// redelivery racing its original inside one commit still counts as a duplicate.
fn answer_all(batch: Vec<Request>, mut inserted: HashMap<String, i64>) {
    for request in batch {
        let mut outcome = InboxOutcome::default();
        for row in &request.rows {
            match inserted.remove(&row.webhook_event_id) {
                Some(id) => outcome.new_ids.push(id),
                None => outcome.duplicates += 1,
            }
        }
        let _ = request.done.send(Ok(outcome));
    }
}

async fn commit(
    pool: &SqlitePool,
    gate: &super::WriteGate,
    batch: &[Request],
) -> anyhow::Result<HashMap<String, i64>> {
    let mut tx = gate.begin(pool).await.context("begin inbox commit")?;
    let received_at = now_ms();
    let mut inserted = HashMap::new();
    let all: Vec<&NewInboxRow> = batch.iter().flat_map(|r| r.rows.iter()).collect();
    for chunk in all.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO webhook_inbox (webhook_event_id, event_type, event_timestamp, payload, received_at) ",
        );
        query.push_values(chunk, |mut b, row| {
            b.push_bind(row.webhook_event_id.clone())
                .push_bind(row.event_type.clone())
                .push_bind(row.event_timestamp)
                .push_bind(row.payload.clone())
                .push_bind(received_at);
        });
        query.push(" ON CONFLICT (webhook_event_id) DO NOTHING RETURNING id, webhook_event_id");
        for row in query.build().fetch_all(&mut *tx).await? {
            inserted.insert(row.get::<String, _>(1), row.get::<i64, _>(0));
        }
    }
    tx.commit().await.context("commit inbox rows")?;
    Ok(inserted)
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
