//! The live hub: one per process. Its single reader waits for bus notices ("the event log
//! grew up to N"), reads the new rows from the store once, and broadcasts them to every local
//! subscriber (SSE streams, long-polls). Browser connections never touch Redis or poll the
//! store on their own.
//!
//! Correctness never rests on a notice arriving: the reader also re-reads the log when a wait
//! times out, so a lost notice (Redis restarted, a publish that failed) only delays an event.
//! Subscribers keep their own cursor; `events_since` subscribes before reading the backlog so
//! nothing slips between the two, and a subscriber that lagged re-reads from the store.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use sqlx::SqlitePool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{
    bus::SharedBus,
    store::events::{self, Event},
};

/// How long the reader waits for a notice before re-reading the log anyway.
const SAFETY_POLL: Duration = Duration::from_secs(2);
/// Most events read from the store at once.
const PAGE: i64 = 500;

#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    tx: broadcast::Sender<Arc<Event>>,
    /// The highest event id broadcast so far.
    latest: AtomicI64,
}

impl LiveHub {
    pub fn new(pool: SqlitePool, latest: i64) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Inner {
                pool,
                tx,
                latest: AtomicI64::new(latest),
            }),
        }
    }

    /// The highest event id this hub has broadcast.
    pub fn latest(&self) -> i64 {
        self.inner.latest.load(Ordering::Acquire)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.tx.subscribe()
    }

    /// Events after `cursor`: at once if there are any, else the first to arrive within
    /// `wait`, else none. Both live transports are thin wrappers over this.
    pub async fn events_since(&self, cursor: i64, wait: Duration) -> sqlx::Result<Vec<Event>> {
        let mut rx = self.subscribe();
        let backlog = events::since(&self.inner.pool, cursor, PAGE).await?;
        if !backlog.is_empty() || wait.is_zero() {
            return Ok(backlog);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(Vec::new()),
                Ok(Ok(event)) if event.id > cursor => {
                    // Whatever else arrived meanwhile comes in the same answer.
                    return events::since(&self.inner.pool, cursor, PAGE).await;
                }
                Ok(Ok(_)) => continue,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    return events::since(&self.inner.pool, cursor, PAGE).await;
                }
            }
        }
    }

    /// The reader loop; ends when `token` is cancelled.
    pub async fn run(self, bus: SharedBus, token: CancellationToken) {
        let mut bus_failing = false;
        loop {
            let notice = tokio::select! {
                _ = token.cancelled() => return,
                n = bus.next_notice(SAFETY_POLL) => n,
            };
            match notice {
                Ok(Some(id)) if id <= self.latest() => continue,
                Ok(_) => bus_failing = false,
                Err(e) => {
                    if !bus_failing {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "live hub: bus unavailable, polling the store"
                        );
                        bus_failing = true;
                    }
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "live hub: cannot read the event log");
            }
        }
    }

    /// Reads everything after the last broadcast id and broadcasts it, in order.
    pub async fn catch_up(&self) -> sqlx::Result<()> {
        loop {
            let after = self.latest();
            let page = events::since(&self.inner.pool, after, PAGE).await?;
            let Some(last) = page.last().map(|e| e.id) else {
                return Ok(());
            };
            for event in page {
                // No receivers is fine: nobody is watching right now.
                let _ = self.inner.tx.send(Arc::new(event));
            }
            self.inner.latest.store(last, Ordering::Release);
        }
    }
}
