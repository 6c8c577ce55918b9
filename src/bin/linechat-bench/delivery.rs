//! `delivery`: replies posted the way the desk posts them (the composer's form: CSRF token,
//! one-use nonce, text) into `--agents`-many conversations, delivered by linechat to a fake
//! LINE that answers each send call after 5–50 ms, and with `--throttle-half` answers 429 to
//! every other one. Reports replies/s from the first POST to the last message LINE accepted,
//! and the most send calls LINE saw in any one-second window (sliding, not calendar seconds):
//! more than the server's ceiling (`LINECHAT_DELIVERY_RATE`, started at `DELIVERY_RATE`:
//! LINE's 2,000/s) fails the run.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use linechat::line::fake::FakeLine;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{
    Args,
    ingest::{Outcome, post_signed, reply_token, text_event},
    percentiles,
    server::{DELIVERY_RATE, Server, TOKEN, conversation_ids, form, serve_line},
};

/// How LINE behaves in this run, and what it saw.
struct Line {
    throttle_half: bool,
    calls: AtomicU64,
    started: Instant,
    /// When each send call arrived, since `started`.
    arrivals: Mutex<Vec<Duration>>,
}

async fn behave(line: Arc<Line>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let send = path == "/v2/bot/message/push" || path == "/v2/bot/message/reply";
    if send {
        let at = line.started.elapsed();
        line.arrivals.lock().expect("arrivals").push(at);
        let n = line.calls.fetch_add(1, Ordering::AcqRel);
        let wait = 5 + (n.wrapping_mul(2_654_435_761) % 46);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if line.throttle_half && n % 2 == 1 {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("content-type", "application/json")],
                r#"{"message":"The API rate limit has been exceeded. Try again later."}"#,
            )
                .into_response();
        }
    }
    next.run(request).await
}

pub async fn run(args: &Args) -> anyhow::Result<Value> {
    let fake = FakeLine::new(TOKEN);
    let line = Arc::new(Line {
        throttle_half: args.throttle_half,
        calls: AtomicU64::new(0),
        started: Instant::now(),
        arrivals: Mutex::new(Vec::new()),
    });
    let layered = fake.router().layer(middleware::from_fn({
        let line = line.clone();
        move |req, next| behave(line.clone(), req, next)
    }));
    let line_base = serve_line(layered).await?;
    let server = Server::start_with(args, fake.clone(), &line_base).await?;
    let session = server.sign_in().await?;

    // The conversations to reply in: one customer message each.
    let users = args.agents.max(1);
    for u in 0..users {
        fake.add_reply_token(&reply_token(u));
        let body = text_event(u, u, "請問有貨嗎？");
        post_signed(&server.http, &server.url("/line/webhook"), body)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let conversations = conversation_ids(&server.http, &server.base, &session, users).await?;

    let cookie = format!("{}={}", linechat::http::SESSION_COOKIE, session.cookie);
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let url = server.url(&format!(
            "/conversations/{}/messages",
            conversations[i % conversations.len()]
        ));
        let (http, cookie, csrf) = (server.http.clone(), cookie.clone(), session.csrf.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let text = format!("您好，訂單 {i} 已出貨，謝謝您！");
            let nonce = format!("bench{i}n{}", uuid::Uuid::new_v4().simple());
            let t = Instant::now();
            let r = http
                .post(&url)
                .header("cookie", cookie)
                .header("hx-request", "true")
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("text", &text), ("nonce", &nonce), ("csrf", &csrf)]))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let micros = t.elapsed().as_micros() as u64;
            if r.status().is_success() {
                Ok(micros)
            } else {
                Err(format!("status {}", r.status()))
            }
        }));
    }
    let mut posts: Vec<Outcome> = Vec::with_capacity(tasks.len());
    for t in tasks {
        posts.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    let posted = posts.iter().filter(|p| p.is_ok()).count();
    let post_seconds = started.elapsed().as_secs_f64();
    // Wait for LINE to have accepted every reply (or 30 s without progress).
    let mut last = 0;
    let mut quiet_since = Instant::now();
    let delivered = loop {
        let n = fake.delivered().len();
        if n >= posted {
            break n;
        }
        if n != last {
            last = n;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(30) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let max_per_second = busiest_second(&mut line.arrivals.lock().expect("arrivals"));
    let post_latency: Vec<u64> = posts
        .iter()
        .filter_map(|p| p.as_ref().ok().copied())
        .collect();
    Ok(json!({
        "replies": args.count,
        "conversations": conversations.len(),
        "posted": posted,
        "post_errors": args.count - posted,
        "first_error": posts.iter().find_map(|p| p.as_ref().err()),
        "post_seconds": post_seconds,
        "post_latency_ms": percentiles(post_latency),
        "delivered": delivered,
        "seconds": elapsed,
        "delivered_per_sec": delivered as f64 / elapsed,
        "line_send_calls": line.calls.load(Ordering::Acquire),
        "line_max_calls_in_one_second": max_per_second,
        "line_ceiling": DELIVERY_RATE,
        "over_ceiling": max_per_second.saturating_sub(DELIVERY_RATE),
        "throttle_half": args.throttle_half,
        "spec_violations": fake.violations().len(),
        "server_cpu_seconds": cpu,
        "server_rss_mb": server.rss_mb(),
    }))
}

/// The most arrivals inside any one-second window.
fn busiest_second(arrivals: &mut [Duration]) -> u64 {
    arrivals.sort_unstable();
    let mut most = 0;
    let mut start = 0;
    for end in 0..arrivals.len() {
        while arrivals[end] - arrivals[start] >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_second_is_any_window_not_a_calendar_second() {
        let ms =
            |v: &[u64]| -> Vec<Duration> { v.iter().map(|m| Duration::from_millis(*m)).collect() };
        // Two calendar seconds of 2 each, but 4 inside 900..1,100 ms.
        assert_eq!(
            busiest_second(&mut ms(&[100, 900, 950, 1050, 1100, 2500])),
            4
        );
        assert_eq!(busiest_second(&mut ms(&[0, 1000, 2000])), 1);
        assert_eq!(busiest_second(&mut []), 0);
    }
}
