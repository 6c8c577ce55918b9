//! The sweeper: finds durable work whose queue entry was lost and queues it again.
//!
//! Queue entries are lost when the process dies between taking an id and finishing it, or when
//! Redis restarts without persistence. The rows themselves are in the store, so every
//! `sweep_interval` this re-enqueues inbox rows still pending, outgoing messages due (or stuck
//! in `sending` past their lease) and media still pending, once they are overdue by
//! `sweep_grace`. A duplicate entry is harmless: every consumer claims its row first.
//! Every few minutes it also deletes expired sessions.

use crate::{app::AppState, bus::Queue, domain::now_ms, store};

const LIMIT: i64 = 1000;
/// Expired sessions are deleted every this many passes (sign-in also deletes them).
const SESSION_SWEEP_EVERY: u32 = 300;

pub async fn run(state: AppState) {
    let token = state.workers.shutdown.clone();
    let mut failing = false;
    let mut passes: u32 = 0;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(state.config.sweep_interval) => {}
        }
        passes = passes.wrapping_add(1);
        if passes.is_multiple_of(SESSION_SWEEP_EVERY) {
            match state.auth.sessions.delete_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "sweeper: expired sessions deleted"),
                Err(e) => tracing::warn!(error = %e, "sweeper: cannot delete expired sessions"),
            }
        }
        match sweep(&state).await {
            Ok(n) => {
                if failing {
                    tracing::info!("sweeper: recovered");
                    failing = false;
                }
                if n > 0 {
                    tracing::info!(requeued = n, "sweeper re-queued overdue work");
                }
            }
            Err(e) => {
                // Once per outage, not once a second.
                if !failing {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "sweeper: cannot re-queue work yet"
                    );
                    failing = true;
                }
            }
        }
    }
}

/// One pass; returns how many ids were re-queued.
pub async fn sweep(state: &AppState) -> anyhow::Result<usize> {
    let pool = &state.store.pool;
    let before = now_ms() - state.config.sweep_grace.as_millis() as i64;
    let work = [
        (
            Queue::Ingest,
            store::inbox::overdue(pool, before, LIMIT).await?,
        ),
        (
            Queue::Delivery,
            store::messages::overdue_deliveries(pool, before, LIMIT).await?,
        ),
        (
            Queue::Media,
            store::messages::overdue_media(pool, before, LIMIT).await?,
        ),
    ];
    let mut total = 0;
    for (queue, ids) in work {
        total += ids.len();
        if !ids.is_empty() {
            state.bus.enqueue(queue, ids).await?;
        }
    }
    Ok(total)
}
