//! The embedded bus: one process, no dependencies. Queues are deques woken by `Notify`;
//! notices are a `watch` of the highest announced event id (so bursts coalesce for free);
//! the cache is moka.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use tokio::sync::{Notify, watch};

use super::{Bus, Queue};

struct LocalQueue {
    items: Mutex<VecDeque<i64>>,
    ready: Notify,
}

pub struct LocalBus {
    queues: HashMap<Queue, LocalQueue>,
    notices: watch::Sender<i64>,
    /// The hub's view: what it has seen so far.
    seen: Mutex<watch::Receiver<i64>>,
    cache: moka::sync::Cache<String, (String, std::time::Instant)>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    pub fn new() -> Self {
        let (notices, seen) = watch::channel(0);
        let queues = Queue::ALL
            .into_iter()
            .map(|q| {
                let queue = LocalQueue {
                    items: Mutex::new(VecDeque::new()),
                    ready: Notify::new(),
                };
                (q, queue)
            })
            .collect();
        Self {
            queues,
            notices,
            seen: Mutex::new(seen),
            cache: moka::sync::Cache::new(100_000),
        }
    }

    fn take(&self, queue: Queue, max: usize) -> Vec<i64> {
        let mut items = self.queues[&queue].items.lock().expect("queue lock");
        let n = items.len().min(max);
        items.drain(..n).collect()
    }
}

impl Bus for LocalBus {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn enqueue(&self, queue: Queue, ids: Vec<i64>) -> BoxFuture<'_, anyhow::Result<()>> {
        let q = &self.queues[&queue];
        q.items.lock().expect("queue lock").extend(ids);
        // notify_one keeps a permit when nobody waits yet, so a consumer between its empty
        // check and its wait still wakes.
        q.ready.notify_one();
        futures::future::ready(Ok(())).boxed()
    }

    fn dequeue(
        &self,
        queue: Queue,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, anyhow::Result<Vec<i64>>> {
        async move {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let ids = self.take(queue, max);
                if !ids.is_empty() {
                    // Pass the baton: more may be waiting for another consumer.
                    if !self.queues[&queue]
                        .items
                        .lock()
                        .expect("queue lock")
                        .is_empty()
                    {
                        self.queues[&queue].ready.notify_one();
                    }
                    return Ok(ids);
                }
                let notified = self.queues[&queue].ready.notified();
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Ok(Vec::new());
                }
            }
        }
        .boxed()
    }

    fn depth(&self, queue: Queue) -> BoxFuture<'_, anyhow::Result<u64>> {
        let n = self.queues[&queue].items.lock().expect("queue lock").len() as u64;
        futures::future::ready(Ok(n)).boxed()
    }

    fn publish(&self, event_id: i64) -> BoxFuture<'_, anyhow::Result<()>> {
        self.notices.send_if_modified(|latest| {
            let newer = event_id > *latest;
            if newer {
                *latest = event_id;
            }
            newer
        });
        futures::future::ready(Ok(())).boxed()
    }

    fn next_notice(&self, wait: Duration) -> BoxFuture<'_, anyhow::Result<Option<i64>>> {
        async move {
            // Only the hub calls this, so the lock is never contended; a clone keeps it off
            // the await.
            let mut seen = self.seen.lock().expect("notice lock").clone();
            let changed = tokio::time::timeout(wait, seen.changed()).await;
            let latest = *seen.borrow_and_update();
            *self.seen.lock().expect("notice lock") = seen;
            Ok(match changed {
                Ok(Ok(())) => Some(latest),
                _ => None,
            })
        }
        .boxed()
    }

    fn cache_get(&self, key: String) -> BoxFuture<'_, anyhow::Result<Option<String>>> {
        let hit = self
            .cache
            .get(&key)
            .filter(|(_, expires)| *expires > std::time::Instant::now())
            .map(|(value, _)| value);
        futures::future::ready(Ok(hit)).boxed()
    }

    fn cache_set(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        self.cache
            .insert(key, (value, std::time::Instant::now() + ttl));
        futures::future::ready(Ok(())).boxed()
    }

    fn ping(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        futures::future::ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_hands_out_in_order_and_times_out_empty() {
        let bus = LocalBus::new();
        bus.enqueue(Queue::Ingest, vec![1, 2, 3]).await.unwrap();
        assert_eq!(
            bus.dequeue(Queue::Ingest, 2, Duration::ZERO).await.unwrap(),
            vec![1, 2]
        );
        assert_eq!(bus.depth(Queue::Ingest).await.unwrap(), 1);
        assert_eq!(
            bus.dequeue(Queue::Ingest, 9, Duration::ZERO).await.unwrap(),
            vec![3]
        );
        let empty = bus
            .dequeue(Queue::Ingest, 9, Duration::from_millis(10))
            .await
            .unwrap();
        assert!(empty.is_empty());
        assert_eq!(bus.depth(Queue::Delivery).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_on_enqueue() {
        let bus = std::sync::Arc::new(LocalBus::new());
        let consumer = {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.dequeue(Queue::Delivery, 10, Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        bus.enqueue(Queue::Delivery, vec![7]).await.unwrap();
        assert_eq!(consumer.await.unwrap().unwrap(), vec![7]);
    }

    #[tokio::test]
    async fn notices_coalesce_to_the_highest_id() {
        let bus = LocalBus::new();
        bus.publish(3).await.unwrap();
        bus.publish(9).await.unwrap();
        bus.publish(5).await.unwrap();
        assert_eq!(
            bus.next_notice(Duration::from_millis(10)).await.unwrap(),
            Some(9)
        );
        assert_eq!(
            bus.next_notice(Duration::from_millis(10)).await.unwrap(),
            None
        );
    }
}
