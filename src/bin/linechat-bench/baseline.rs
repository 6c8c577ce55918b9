//! The machine's own limits, measured by the same generator for comparison:
//! - `baseline-hmac`: a bare axum handler in this process that only checks the webhook
//!   signature (linechat's own function) and parses the JSON body, answering 200. No store,
//!   no queue: what one HTTP round trip costs here.
//! - `baseline-redis`: raw `LPUSH` of an id to a Redis list, `--concurrency` at a time over
//!   one multiplexed connection: the floor under the Redis bus's enqueue.

use std::{sync::Arc, time::Instant};

use axum::{Router, body::Bytes, http::HeaderMap, http::StatusCode, routing::post};
use linechat::line::webhook::{parse_body, verify_signature};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::{
    Args,
    ingest::{Outcome, drive, summarize, text_event},
    server::SECRET,
};

async fn bare(headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-line-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify_signature(SECRET, &body, signature) {
        return StatusCode::UNAUTHORIZED;
    }
    match parse_body(&body) {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

pub async fn hmac(args: &Args) -> anyhow::Result<Value> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/line/webhook", listener.local_addr()?);
    let app = Router::new().route("/line/webhook", post(bare));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let started = Instant::now();
    let outcomes = drive(args, &http, &url, |i| {
        text_event(i, i % 200, "您好，我想詢問訂單的狀態")
    })
    .await;
    Ok(summarize(args, &outcomes, started.elapsed()))
}

pub async fn redis(args: &Args) -> anyhow::Result<Value> {
    let url = args
        .redis_url
        .as_deref()
        .unwrap_or("redis://127.0.0.1:6379");
    let client = ::redis::Client::open(url)?;
    let conn = client.get_multiplexed_async_connection().await?;
    let key = format!("linechat-bench-baseline-{}", uuid::Uuid::new_v4().simple());
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut ticker = crate::ingest::ticker(args.rate);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.count);
    for i in 0..args.count {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let (mut conn, key) = (conn.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let r: Result<i64, _> = ::redis::cmd("LPUSH")
                .arg(&key)
                .arg(i)
                .query_async(&mut conn)
                .await;
            r.map(|_| t.elapsed().as_micros() as u64)
                .map_err(|e| e.to_string())
        }));
    }
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    let elapsed = started.elapsed();
    let mut conn = conn;
    let _: Result<i64, _> = ::redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
    Ok(summarize(args, &outcomes, elapsed))
}
