//! The bus: work queues (ingest, delivery, media), the live-update notices, and a small
//! cache, behind one trait with two backends.
//!
//! * `local`: in-process (tokio primitives); the default when `REDIS_URL` is unset.
//! * `redis`: lists consumed with BLPOP so several replicas share the work, a per-replica
//!   notice list so every replica's live hub is woken, and `SET … EX` for the cache.
//!
//! The bus is never the system of record. A queue entry only says "look at row N"; the row
//! itself is durable in the store before it is enqueued, and the sweeper re-enqueues rows
//! whose entries were lost (a crash, a Redis restart that kept nothing). So a bus failure
//! delays work but never loses it.

mod local;
mod redis;

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;

pub use self::{local::LocalBus, redis::RedisBus};

/// The work queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Ids of `webhook_inbox` rows to turn into messages.
    Ingest,
    /// Ids of outgoing `messages` to send to LINE.
    Delivery,
    /// Ids of incoming `messages` whose content is to be downloaded.
    Media,
}

impl Queue {
    pub const ALL: [Queue; 3] = [Queue::Ingest, Queue::Delivery, Queue::Media];

    pub fn name(self) -> &'static str {
        match self {
            Queue::Ingest => "ingest",
            Queue::Delivery => "delivery",
            Queue::Media => "media",
        }
    }
}

/// What every backend provides.
pub trait Bus: Send + Sync + 'static {
    /// "local" or "redis".
    fn kind(&self) -> &'static str;
    /// Appends ids to a queue.
    fn enqueue(&self, queue: Queue, ids: Vec<i64>) -> BoxFuture<'_, anyhow::Result<()>>;
    /// Takes up to `max` ids, waiting up to `wait` for the first one; empty on timeout.
    fn dequeue(
        &self,
        queue: Queue,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, anyhow::Result<Vec<i64>>>;
    /// Ids waiting in a queue (for metrics and tests).
    fn depth(&self, queue: Queue) -> BoxFuture<'_, anyhow::Result<u64>>;
    /// Announces that the event log has grown up to `event_id`, to every replica's hub.
    fn publish(&self, event_id: i64) -> BoxFuture<'_, anyhow::Result<()>>;
    /// The hub's one blocking read: the highest event id announced since the last call, or
    /// `None` after `wait` with nothing announced.
    fn next_notice(&self, wait: Duration) -> BoxFuture<'_, anyhow::Result<Option<i64>>>;
    /// A cached value (profiles), if present and not expired.
    fn cache_get(&self, key: String) -> BoxFuture<'_, anyhow::Result<Option<String>>>;
    fn cache_set(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'_, anyhow::Result<()>>;
    /// Whether the backend answers (readiness).
    fn ping(&self) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// The bus handle the rest of the crate holds.
pub type SharedBus = Arc<dyn Bus>;

/// Picks the backend from the configuration: Redis when `REDIS_URL` is set.
pub async fn connect(config: &crate::config::Config) -> anyhow::Result<SharedBus> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(RedisBus::connect(url.expose(), &config.redis_prefix).await?),
        None => Arc::new(LocalBus::new()),
    })
}
