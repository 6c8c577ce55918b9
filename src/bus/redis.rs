//! The Redis bus, for deployments with several replicas.
//!
//! * Queues are lists: RPUSH to enqueue, BLPOP (then LPOP for a batch) to consume. Each
//!   blocking consumer has a connection of its own, because a BLPOP blocks the whole
//!   multiplexed connection it runs on.
//! * Notices: each replica owns a list `<prefix>:live:<replica>` and registers itself in the
//!   sorted set `<prefix>:replicas` (score = last heartbeat). `publish` RPUSHes the event id
//!   to every live replica's list, so each hub has exactly one blocking reader and browser
//!   connections never hold a Redis connection each.
//! * Connections are `ConnectionManager`s: after Redis goes away they reconnect with backoff
//!   on the next command, and until then commands fail fast, which the callers log and retry.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context;
use futures::{FutureExt, future::BoxFuture};
use redis::{
    AsyncCommands,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::Mutex as AsyncMutex;

use super::{Bus, Queue};

/// A replica not heard from for this long is dropped from the notice fan-out.
const REPLICA_TTL: Duration = Duration::from_secs(30);
/// How often a replica refreshes its registration, and the publisher its list of replicas.
const HEARTBEAT: Duration = Duration::from_secs(5);

pub struct RedisBus {
    prefix: String,
    replica: String,
    /// Shared, multiplexed: every non-blocking command.
    conn: ConnectionManager,
    /// One per blocking reader (a queue consumer or the hub).
    blocking: HashMap<&'static str, AsyncMutex<ConnectionManager>>,
    /// To open fresh blocking connections after an outage.
    client: redis::Client,
    replicas: Mutex<(Instant, Vec<String>)>,
    last_heartbeat: Mutex<Option<Instant>>,
}

impl RedisBus {
    /// Connects (failing with a clear message when Redis does not answer) and registers this
    /// replica for notices.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is not a valid redis URL")?;
        let conn = manager(&client, Duration::from_secs(2)).await?;
        let mut blocking = HashMap::new();
        for name in ["ingest", "delivery", "media", "live"] {
            // A blocking read waits up to a few seconds by design; allow for that.
            blocking.insert(
                name,
                AsyncMutex::new(manager(&client, Duration::from_secs(10)).await?),
            );
        }
        let bus = Self {
            prefix: prefix.to_owned(),
            replica: uuid::Uuid::new_v4().simple().to_string(),
            conn,
            blocking,
            client,
            replicas: Mutex::new((Instant::now() - HEARTBEAT * 2, Vec::new())),
            last_heartbeat: Mutex::new(None),
        };
        bus.heartbeat().await?;
        Ok(bus)
    }

    fn queue_key(&self, queue: Queue) -> String {
        format!("{}:q:{}", self.prefix, queue.name())
    }

    fn live_key(&self, replica: &str) -> String {
        format!("{}:live:{}", self.prefix, replica)
    }

    fn replicas_key(&self) -> String {
        format!("{}:replicas", self.prefix)
    }

    /// Registers this replica as alive (at most every HEARTBEAT) and forgets dead ones.
    async fn heartbeat(&self) -> anyhow::Result<()> {
        {
            let mut last = self.last_heartbeat.lock().expect("heartbeat lock");
            if last.is_some_and(|t| t.elapsed() < HEARTBEAT) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let now = now_secs();
        let mut conn = self.conn.clone();
        redis::pipe()
            .zadd(self.replicas_key(), &self.replica, now)
            .zrembyscore(self.replicas_key(), 0, now - REPLICA_TTL.as_secs() as i64)
            .query_async::<()>(&mut conn)
            .await
            .context("redis: register replica")?;
        Ok(())
    }

    /// Live replicas, refreshed at most every HEARTBEAT.
    async fn live_replicas(&self) -> anyhow::Result<Vec<String>> {
        {
            let cached = self.replicas.lock().expect("replicas lock");
            if cached.0.elapsed() < HEARTBEAT && !cached.1.is_empty() {
                return Ok(cached.1.clone());
            }
        }
        let mut conn = self.conn.clone();
        let min = now_secs() - REPLICA_TTL.as_secs() as i64;
        let mut list: Vec<String> = conn
            .zrangebyscore(self.replicas_key(), min, "+inf")
            .await
            .context("redis: list replicas")?;
        if !list.contains(&self.replica) {
            list.push(self.replica.clone());
        }
        *self.replicas.lock().expect("replicas lock") = (Instant::now(), list.clone());
        Ok(list)
    }

    /// BLPOP one id (up to `wait`), then LPOP more without blocking. After a failure the
    /// reader's connection is replaced: a manager whose blocking command died with the server
    /// was seen to stay broken after Redis came back.
    async fn blocking_pop(
        &self,
        reader: &'static str,
        key: String,
        max: usize,
        wait: Duration,
    ) -> anyhow::Result<Vec<i64>> {
        let mut conn = self.blocking[reader].lock().await;
        let result = pop(&mut conn, &key, max, wait).await;
        if let Err(e) = &result {
            match manager(&self.client, Duration::from_secs(10)).await {
                Ok(fresh) => {
                    tracing::debug!(reader, error = %e, "blocking reader reconnected");
                    *conn = fresh;
                }
                Err(e2) => {
                    tracing::debug!(reader, error = %e, reconnect = %e2, "blocking reader cannot reconnect yet")
                }
            }
        }
        result.with_context(|| format!("redis: BLPOP {reader}"))
    }
}

async fn pop(
    conn: &mut ConnectionManager,
    key: &str,
    max: usize,
    wait: Duration,
) -> redis::RedisResult<Vec<i64>> {
    let wait_secs = wait.as_secs_f64().max(0.01);
    let first: Option<(String, i64)> = redis::cmd("BLPOP")
        .arg(key)
        .arg(wait_secs)
        .query_async(conn)
        .await?;
    let Some((_, first)) = first else {
        return Ok(Vec::new());
    };
    let mut ids = vec![first];
    if max > 1 {
        let more: Option<Vec<i64>> = redis::cmd("LPOP")
            .arg(key)
            .arg(max - 1)
            .query_async(conn)
            .await?;
        ids.extend(more.unwrap_or_default());
    }
    Ok(ids)
}

async fn manager(
    client: &redis::Client,
    response_timeout: Duration,
) -> anyhow::Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2));
    client
        .get_connection_manager_with_config(config)
        .await
        .context("cannot connect to Redis at REDIS_URL")
}

fn now_secs() -> i64 {
    crate::domain::now_ms() / 1000
}

impl Bus for RedisBus {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn enqueue(&self, queue: Queue, ids: Vec<i64>) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            if ids.is_empty() {
                return Ok(());
            }
            let mut conn = self.conn.clone();
            let _: i64 = conn
                .rpush(self.queue_key(queue), ids)
                .await
                .with_context(|| format!("redis: enqueue {}", queue.name()))?;
            Ok(())
        }
        .boxed()
    }

    fn dequeue(
        &self,
        queue: Queue,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, anyhow::Result<Vec<i64>>> {
        self.blocking_pop(queue.name(), self.queue_key(queue), max, wait)
            .boxed()
    }

    fn depth(&self, queue: Queue) -> BoxFuture<'_, anyhow::Result<u64>> {
        async move {
            let mut conn = self.conn.clone();
            conn.llen(self.queue_key(queue))
                .await
                .context("redis: LLEN")
        }
        .boxed()
    }

    fn publish(&self, event_id: i64) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            let mut pipe = redis::pipe();
            for replica in self.live_replicas().await? {
                let key = self.live_key(&replica);
                // The expiry cleans up after a replica that died with notices unread.
                pipe.rpush(&key, event_id)
                    .ignore()
                    .expire(&key, REPLICA_TTL.as_secs() as i64)
                    .ignore();
            }
            let mut conn = self.conn.clone();
            pipe.query_async::<()>(&mut conn)
                .await
                .context("redis: publish notice")?;
            Ok(())
        }
        .boxed()
    }

    fn next_notice(&self, wait: Duration) -> BoxFuture<'_, anyhow::Result<Option<i64>>> {
        async move {
            self.heartbeat().await?;
            let ids = self
                .blocking_pop("live", self.live_key(&self.replica), 1000, wait)
                .await?;
            Ok(ids.into_iter().max())
        }
        .boxed()
    }

    fn cache_get(&self, key: String) -> BoxFuture<'_, anyhow::Result<Option<String>>> {
        async move {
            let mut conn = self.conn.clone();
            conn.get(format!("{}:cache:{key}", self.prefix))
                .await
                .context("redis: cache get")
        }
        .boxed()
    }

    fn cache_set(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            let mut conn = self.conn.clone();
            let _: () = conn
                .set_ex(
                    format!("{}:cache:{key}", self.prefix),
                    value,
                    ttl.as_secs().max(1),
                )
                .await
                .context("redis: cache set")?;
            Ok(())
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            let mut conn = self.conn.clone();
            let _: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .context("redis: PING")?;
            Ok(())
        }
        .boxed()
    }
}
