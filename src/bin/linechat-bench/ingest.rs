//! `ingest`: signed webhooks (one text event each, unique `webhookEventId`s, 200 simulated
//! users), as fast as `--concurrency` connections allow (`--rate 0`) or open-loop at a fixed
//! `--rate`, measuring the time to the 2xx (the durable ack). Also the webhook bodies the other
//! scenarios send.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use linechat::line::webhook::sign;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{
    Args, percentiles,
    server::{SECRET, Server},
};

/// Outcome of one request: latency in microseconds, or an error.
pub type Outcome = Result<u64, String>;

pub async fn run(args: &Args) -> anyhow::Result<Value> {
    let server = Server::start(args).await?;
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let url = server.url("/line/webhook");
    let outcomes = drive(args, &server.http, &url, |i| {
        text_event(i, i % 200, &format!("您好，我想詢問訂單 #{i} 的狀態"))
    })
    .await;
    let elapsed = started.elapsed();
    // An ack only says the event is stored; the run also waits until the ingest worker has
    // turned every one into a message, so a rate that only defers work cannot pass for one.
    let drained = drained(&server).await?;
    let processed = started.elapsed();
    let cpu = server.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let mut v = summarize(args, &outcomes, elapsed);
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    v["ingested"] = json!(drained);
    v["ingested_within_ms_of_last_ack"] = json!((processed - elapsed).as_secs_f64() * 1e3);
    v["ingested_per_sec"] = json!(drained as f64 / processed.as_secs_f64());
    v["server_cpu_seconds"] = json!(cpu);
    v["server_rss_mb"] = json!(server.rss_mb());
    if drained < ok as i64 {
        v["errors"] = json!(v["errors"].as_u64().unwrap_or(0) + (ok as u64 - drained as u64));
        v["first_error"] = json!(format!("only {drained} of {ok} acked events were ingested"));
    }
    Ok(v)
}

/// Waits until no stored event is pending ingest (or 60 s pass); answers how many events
/// became messages.
async fn drained(server: &Server) -> anyhow::Result<i64> {
    let db = format!("sqlite://{}?mode=ro", server.database().display());
    let pool = sqlx::SqlitePool::connect(&db).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_inbox WHERE state = 'pending'")
                .fetch_one(&pool)
                .await?;
        if pending == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let messages = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE direction = 'in'")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(messages)
}

/// Sends `args.count` signed webhooks built by `body(i)` to `url`, closed loop or at
/// `args.rate`, at most `args.concurrency` in flight.
pub async fn drive(
    args: &Args,
    http: &reqwest::Client,
    url: &str,
    body: impl Fn(usize) -> String,
) -> Vec<Outcome> {
    let url = Arc::new(url.to_owned());
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = Vec::with_capacity(args.count);
    let mut ticker = ticker(args.rate);
    for i in 0..args.count {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let (http, url, body) = (http.clone(), url.clone(), body(i));
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            post_signed(&http, &url, body).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

/// An interval ticking `rate` times a second (bursting to catch up), or none for rate 0.
pub fn ticker(rate: u64) -> Option<tokio::time::Interval> {
    (rate > 0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    })
}

/// A webhook body with one text message event from simulated user `user`.
pub fn text_event(i: usize, user: usize, text: &str) -> String {
    json!({
        "destination": "Ubbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "events": [{
            "type": "message",
            "mode": "active",
            "timestamp": linechat::domain::now_ms(),
            "source": { "type": "user", "userId": user_id(user) },
            "webhookEventId": format!("01BENCH{:019}", i),
            "deliveryContext": { "isRedelivery": false },
            "replyToken": reply_token(i),
            "message": { "type": "text", "id": format!("{}", 10_000_000 + i), "quoteToken": "q", "text": text }
        }]
    })
    .to_string()
}

pub fn user_id(user: usize) -> String {
    format!("U{user:032x}")
}

pub fn reply_token(i: usize) -> String {
    format!("rt{i}")
}

/// POSTs a webhook body with a fresh signature; the latency to a 2xx, or why not.
pub async fn post_signed(http: &reqwest::Client, url: &str, body: String) -> Outcome {
    let signature = sign(SECRET, body.as_bytes());
    let started = Instant::now();
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-line-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let micros = started.elapsed().as_micros() as u64;
    if response.status().is_success() {
        Ok(micros)
    } else {
        Err(format!("status {}", response.status()))
    }
}

/// Rates, latency percentiles and errors of a batch of requests.
pub fn summarize(args: &Args, outcomes: &[Outcome], elapsed: Duration) -> Value {
    let ok: Vec<u64> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    let first_error = outcomes.iter().find_map(|o| o.as_ref().err());
    json!({
        "count": outcomes.len(),
        "ok": ok.len(),
        "errors": outcomes.len() - ok.len(),
        "first_error": first_error,
        "target_rate": args.rate,
        "concurrency": args.concurrency,
        "seconds": elapsed.as_secs_f64(),
        "ok_per_sec": ok.len() as f64 / elapsed.as_secs_f64(),
        "latency_ms": percentiles(ok),
    })
}
