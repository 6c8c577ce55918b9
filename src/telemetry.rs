//! Prometheus metrics: the `metrics` facade everywhere, rendered by
//! `metrics-exporter-prometheus` at `GET /metrics` (no hand-written exposition).
//!
//! The recorder is process-global (the facade's design), so it is installed once however many
//! apps a test process starts. Gauges that describe the store (queue depth, age of the oldest
//! job) are computed when scraped, so they are true even for work another replica queued.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::SqlitePool;

use crate::{bus::SharedBus, domain::now_ms};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds: 0.5 ms … 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Installs the recorder (first call) and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("static, non-empty buckets");
        // Another recorder installed first (an embedding program): keep ours unregistered
        // rather than failing; /metrics then shows what we can see.
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// What became of one webhook request.
pub fn webhook_request(outcome: &'static str) {
    counter!("linechat_webhook_requests_total", "outcome" => outcome).increment(1);
}

/// New and redelivered (duplicate) events of accepted webhooks.
pub fn webhook_events(new: usize, duplicates: usize) {
    counter!("linechat_webhook_events_total", "outcome" => "new").increment(new as u64);
    counter!("linechat_webhook_events_total", "outcome" => "duplicate")
        .increment(duplicates as u64);
}

/// Time from receiving a webhook to its durable 2xx.
pub fn webhook_ack(elapsed: Duration) {
    histogram!("linechat_webhook_ack_seconds").record(elapsed.as_secs_f64());
}

/// An event applied by the ingest worker, by LINE event type, and how long after its webhook
/// was received it was announced to the live hub.
pub fn event_ingested(event_type: &str, received_at_ms: i64) {
    counter!("linechat_events_total", "type" => event_type.to_owned()).increment(1);
    let ms = (now_ms() - received_at_ms).max(0) as f64;
    histogram!("linechat_webhook_to_hub_seconds").record(ms / 1000.0);
}

/// A delivery attempt's end: sent, retry or failed, with LINE's status ("none" for timeouts).
pub fn delivery(outcome: &'static str, status: Option<u16>) {
    let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
    counter!("linechat_deliveries_total", "outcome" => outcome, "status" => status).increment(1);
}

/// One call to LINE's API.
pub fn line_call(endpoint: &'static str, status: Option<u16>, elapsed: Duration) {
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    histogram!("linechat_line_api_seconds", "endpoint" => endpoint, "status" => status)
        .record(elapsed.as_secs_f64());
}

/// Open live connections per agent, behind the `agents online` gauge.
static ONLINE: OnceLock<Mutex<HashMap<i64, usize>>> = OnceLock::new();

/// Held for as long as a live connection (SSE stream or long-poll) is open.
pub struct LiveConnection {
    transport: &'static str,
    agent_id: i64,
}

impl LiveConnection {
    pub fn open(transport: &'static str, agent_id: i64) -> Self {
        gauge!("linechat_live_connections", "transport" => transport).increment(1.0);
        let online = ONLINE.get_or_init(Mutex::default);
        let mut online = online.lock().expect("online lock");
        *online.entry(agent_id).or_default() += 1;
        gauge!("linechat_agents_online").set(online.len() as f64);
        Self {
            transport,
            agent_id,
        }
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        gauge!("linechat_live_connections", "transport" => self.transport).decrement(1.0);
        let online = ONLINE.get_or_init(Mutex::default);
        let mut online = online.lock().expect("online lock");
        if let Some(n) = online.get_mut(&self.agent_id) {
            *n -= 1;
            if *n == 0 {
                online.remove(&self.agent_id);
            }
        }
        gauge!("linechat_agents_online").set(online.len() as f64);
    }
}

/// Renders the exposition, refreshing the gauges computed from the store and the bus.
pub async fn render(pool: &SqlitePool, bus: &SharedBus) -> String {
    let now = now_ms();
    let oldest: [(&str, &'static str); 3] = [
        (
            "ingest",
            "SELECT MIN(received_at) FROM webhook_inbox WHERE state = 'pending'",
        ),
        (
            "delivery",
            "SELECT MIN(next_attempt_at) FROM messages WHERE status IN ('queued', 'sending')",
        ),
        (
            "media",
            "SELECT MIN(created_at) FROM messages WHERE media_state = 'pending'",
        ),
    ];
    for (queue, sql) in oldest {
        let min: Option<i64> = sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .unwrap_or(None);
        let age = min.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
        gauge!("linechat_queue_oldest_seconds", "queue" => queue).set(age);
    }
    for queue in crate::bus::Queue::ALL {
        if let Ok(depth) = bus.depth(queue).await {
            gauge!("linechat_queue_depth", "queue" => queue.name()).set(depth as f64);
        }
    }
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}
