//! `soak`: the promises under a mix of faults, for as long as asked. A steady stream of signed
//! webhooks and agent replies runs while
//! - the server is killed with SIGKILL at random moments and started again (same data);
//! - with `--own-redis`, a Redis started for the run is killed and left down for a while now
//!   and then (it keeps nothing on disk, like a cache that restarts empty);
//! - the fake LINE answers push calls with 429s (with and without Retry-After), 500s, and
//!   10 s stalls after executing the call, and its connection is now and then reset after it
//!   executed a push, before the answer got out (a TCP relay in front of it).
//!
//! Webhooks that were not answered 2xx are sent again, as LINE redelivers; replies that were
//! not answered 2xx are posted again with the same form nonce, as a browser retry would. One
//! SSE agent stays connected throughout, reconnecting with `Last-Event-ID`. At the end it waits
//! for the queues to drain and reads the store file directly, then prints the counts: acked
//! webhooks missing from the store or stored twice, accepted replies delivered twice or never
//! (a reply may also end `failed` with a reason — counted apart), and event-log ids the agent
//! missed or saw twice. Any lost or doubled item makes the run exit 2.

use std::{
    collections::{HashMap, HashSet},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{
    extract::Request,
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use linechat::line::fake::FakeLine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    Args,
    ingest::{post_signed, reply_token, text_event, ticker},
    server::{Server, Session, TOKEN, conversation_ids, form, serve_line},
};

/// LINE's behaviour for one send call: mostly fine, sometimes not.
async fn faulty(stats: Arc<LineStats>, request: Request, next: Next) -> Response {
    // Push only: a fault on a reply call ends the message as "failed, may have arrived" by
    // design (reply calls have no retry key), which tests/it/delivery.rs covers.
    if request.uri().path() != "/v2/bot/message/push" {
        return next.run(request).await;
    }
    let roll = rand::random::<f64>();
    let throttled = |retry_after: Option<&'static str>| {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            [("content-type", "application/json")],
            r#"{"message":"The API rate limit has been exceeded. Try again later."}"#,
        )
            .into_response();
        if let Some(s) = retry_after {
            r.headers_mut()
                .insert("retry-after", s.parse().expect("a header value"));
        }
        r
    };
    if roll < 0.06 {
        stats.faults.fetch_add(1, Ordering::Relaxed);
        throttled(None)
    } else if roll < 0.09 {
        stats.faults.fetch_add(1, Ordering::Relaxed);
        throttled(Some("1"))
    } else if roll < 0.13 {
        stats.faults.fetch_add(1, Ordering::Relaxed);
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            r#"{"message":"Internal server error"}"#,
        )
            .into_response()
    } else if roll < 0.14 {
        // LINE acts on the call but answers after linechat's 10 s timeout.
        stats.stalls.fetch_add(1, Ordering::Relaxed);
        let response = next.run(request).await;
        tokio::time::sleep(Duration::from_secs(11)).await;
        response
    } else {
        next.run(request).await
    }
}

#[derive(Default)]
struct LineStats {
    faults: AtomicU64,
    stalls: AtomicU64,
    resets: AtomicU64,
}

/// Share of push answers the relay replaces with a connection reset.
const RESET_SHARE: f64 = 0.03;

/// A TCP relay in front of the fake LINE (`upstream`, `http://host:port`) that now and then
/// resets the connection (RST, zero linger) instead of passing a push call's answer back: LINE
/// acted on the call, and linechat cannot know it. Returns the relay's base URL.
async fn resetting_relay(upstream: &str, stats: Arc<LineStats>) -> anyhow::Result<String> {
    let upstream = upstream
        .strip_prefix("http://")
        .context("the fake LINE's base is http://")?
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, stats) = (upstream.clone(), stats.clone());
            tokio::spawn(async move {
                let _ = relay(client, &upstream, &stats).await;
            });
        }
    });
    Ok(base)
}

async fn relay(
    mut client: tokio::net::TcpStream,
    upstream: &str,
    stats: &LineStats,
) -> std::io::Result<()> {
    let mut server = tokio::net::TcpStream::connect(upstream).await?;
    let (mut from_client, mut from_server) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    // Whether the request now being answered is a push (requests on one connection are
    // answered in order, and linechat's client does not pipeline).
    let mut push = false;
    loop {
        tokio::select! {
            n = client.read(&mut from_client) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                let chunk = &from_client[..n];
                if chunk.starts_with(b"POST ") || chunk.starts_with(b"GET ") {
                    push = chunk.starts_with(b"POST /v2/bot/message/push ");
                }
                server.write_all(chunk).await?;
            }
            n = server.read(&mut from_server) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                if push && rand::random::<f64>() < RESET_SHARE {
                    stats.resets.fetch_add(1, Ordering::Relaxed);
                    client.set_zero_linger()?;
                    return Ok(());
                }
                push = false;
                client.write_all(&from_server[..n]).await?;
            }
        }
    }
}

/// A Redis server of the run's own, on a free port, keeping nothing on disk.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut r = OwnRedis { port, child: None };
        r.up()?;
        Ok(r)
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    fn up(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start redis-server")?;
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!("redis-server did not start")
    }
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.down();
    }
}

/// What the run saw from outside.
#[derive(Default)]
struct Seen {
    acked: HashSet<usize>,
    accepted: HashSet<usize>,
    webhook_retries: u64,
    reply_retries: u64,
}

pub async fn run(args: &Args) -> anyhow::Result<Value> {
    let stats = Arc::new(LineStats::default());
    let fake = FakeLine::new(TOKEN);
    let layered = fake.router().layer(middleware::from_fn({
        let stats = stats.clone();
        move |req, next| faulty(stats.clone(), req, next)
    }));
    let line_base = resetting_relay(&serve_line(layered).await?, stats.clone()).await?;

    let mut redis = if args.own_redis {
        Some(OwnRedis::start()?)
    } else {
        None
    };
    let redis_url = redis.as_ref().map(OwnRedis::url).or(args.redis_url.clone());
    let mut server =
        Server::start_on(args.server.as_deref(), redis_url.as_deref(), &line_base).await?;
    let session = server.sign_in().await?;
    let (http, base, addr) = (server.http.clone(), server.base.clone(), server.addr);

    // The conversations replies go to: one customer message each, before any fault.
    let users = 20;
    for u in 0..users {
        fake.add_reply_token(&reply_token(1_000_000 + u));
        post_signed(
            &http,
            &format!("{base}/line/webhook"),
            text_event(1_000_000 + u, u, "hi"),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    }
    let conversations = conversation_ids(&http, &base, &session, users).await?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let running = Arc::new(AtomicBool::new(true));
    let agent = tokio::spawn(live_agent(addr, session.clone()));

    // Webhooks and replies, until the duration is over; each retried until accepted.
    let rate = if args.rate == 0 { 20 } else { args.rate };
    let senders = {
        let (http, base, seen, running) =
            (http.clone(), base.clone(), seen.clone(), running.clone());
        let (session, fake) = (session.clone(), fake.clone());
        tokio::spawn(async move {
            let mut tick = ticker(rate).expect("a rate");
            let mut tasks = Vec::new();
            let mut i = 0usize;
            while running.load(Ordering::Acquire) {
                tick.tick().await;
                let (http, base, seen) = (http.clone(), base.clone(), seen.clone());
                fake.add_reply_token(&reply_token(i));
                tasks.push(tokio::spawn(send_webhook(
                    http.clone(),
                    base.clone(),
                    seen.clone(),
                    i,
                )));
                // Two replies per customer message: the first may find a fresh reply token,
                // the second goes by push (where LINE's faults are).
                for j in [2 * i, 2 * i + 1] {
                    let conv = conversations[(j / 2) % conversations.len()];
                    let (http, base, seen) = (http.clone(), base.clone(), seen.clone());
                    let session = session.clone();
                    tasks.push(tokio::spawn(send_reply(http, base, seen, session, conv, j)));
                }
                i += 1;
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    // Faults, until the duration is over.
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut kills = 0;
    let mut redis_outages = 0;
    while Instant::now() < deadline {
        let pause =
            Duration::from_millis(1000 + (rand::random::<u64>() % (args.kill_every.max(2) * 1000)));
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        if Instant::now() >= deadline {
            break;
        }
        if let Some(r) = redis.as_mut()
            && rand::random::<f64>() < 0.3
        {
            r.down();
            redis_outages += 1;
            tokio::time::sleep(Duration::from_millis(500 + rand::random::<u64>() % 2500)).await;
            r.up()?;
            continue;
        }
        if args.kill_every > 0 {
            server.kill();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 300)).await;
            restart(&mut server).await?;
        }
    }
    running.store(false, Ordering::Release);
    senders.await?;

    // Drain: every accepted reply delivered (or failed with a reason), every acked webhook
    // stored and processed.
    let db = format!("sqlite://{}?mode=ro", server.database().display());
    let pool = sqlx::SqlitePool::connect(&db).await?;
    let drained_by = Instant::now() + Duration::from_secs(120);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM webhook_inbox WHERE state = 'pending')
                  + (SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status IN ('queued', 'sending'))",
        )
        .fetch_one(&pool)
        .await?;
        if open == 0 || Instant::now() > drained_by {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the agent catch up with the last events.
    tokio::time::sleep(Duration::from_secs(3)).await;
    STOP.store(true, Ordering::Release);
    let agent_ids = agent.await??;

    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    // Webhooks: every acked event id stored exactly once (the UNIQUE column allows no more;
    // a missing one is a lost webhook), and none left unprocessed.
    let stored: Vec<String> = sqlx::query_scalar("SELECT webhook_event_id FROM webhook_inbox")
        .fetch_all(&pool)
        .await?;
    let stored: HashSet<String> = stored.into_iter().collect();
    let lost_webhooks = seen
        .acked
        .iter()
        .filter(|i| !stored.contains(&format!("01BENCH{:019}", i)))
        .count();
    let unprocessed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_inbox WHERE state != 'done'")
            .fetch_one(&pool)
            .await?;
    let doubled_messages: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT line_message_id FROM messages WHERE direction = 'in'
             GROUP BY line_message_id HAVING COUNT(*) > 1)",
    )
    .fetch_one(&pool)
    .await?;
    // Replies: by their marker text, how often LINE accepted each.
    let mut delivered: HashMap<usize, usize> = HashMap::new();
    for d in fake.delivered() {
        if let Some(j) = d.message["text"].as_str().and_then(reply_marker) {
            *delivered.entry(j).or_default() += 1;
        }
    }
    let failed: Vec<String> = sqlx::query_scalar(
        "SELECT text FROM messages WHERE direction = 'out' AND status = 'failed' AND last_error IS NOT NULL",
    )
    .fetch_all(&pool)
    .await?;
    let failed: HashSet<usize> = failed.iter().filter_map(|t| reply_marker(t)).collect();
    let doubled_replies = delivered.values().filter(|n| **n > 1).count();
    let lost_replies = seen
        .accepted
        .iter()
        .filter(|j| !delivered.contains_key(j) && !failed.contains(j))
        .count();
    // Live: the agent saw every event id exactly once, in order.
    let all_events: Vec<i64> = sqlx::query_scalar("SELECT id FROM events ORDER BY id")
        .fetch_all(&pool)
        .await?;
    let first = agent_ids.first().copied().unwrap_or(0);
    let expected: Vec<i64> = all_events.into_iter().filter(|id| *id >= first).collect();
    let agent_set: HashSet<i64> = agent_ids.iter().copied().collect();
    let missed_events = expected.iter().filter(|id| !agent_set.contains(id)).count();
    let duplicate_events = agent_ids.len() - agent_set.len();
    let out_of_order = agent_ids.windows(2).filter(|w| w[1] <= w[0]).count();
    pool.close().await;

    Ok(json!({
        "seconds": args.duration,
        "bus": if redis_url.is_some() { "redis" } else { "embedded" },
        "kills": kills,
        "redis_outages": redis_outages,
        "line_faults": stats.faults.load(Ordering::Relaxed),
        "line_stalls": stats.stalls.load(Ordering::Relaxed),
        "line_resets": stats.resets.load(Ordering::Relaxed),
        "webhooks_acked": seen.acked.len(),
        "webhook_resends": seen.webhook_retries,
        "webhooks_stored": stored.len(),
        "webhooks_unprocessed": unprocessed,
        "lost_webhooks": lost_webhooks,
        "doubled_messages": doubled_messages,
        "replies_accepted": seen.accepted.len(),
        "reply_reposts": seen.reply_retries,
        "replies_delivered": delivered.len(),
        "replies_failed_with_reason": failed.len(),
        "lost_replies": lost_replies,
        "doubled_replies": doubled_replies,
        "events_seen_by_agent": agent_ids.len(),
        "missed_events": missed_events,
        "duplicate_events": duplicate_events,
        "out_of_order_events": out_of_order,
        "spec_violations": fake.violations().len(),
        "first_violation": fake.violations().first(),
    }))
}

async fn restart(server: &mut Server) -> anyhow::Result<()> {
    // Redis may be down right now; linechat refuses to start without it, so try again.
    for _ in 0..30 {
        if server.restart().await.is_ok() {
            return Ok(());
        }
        server.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("linechat did not come back after a kill")
}

fn reply_marker(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("SOAK-R#")?;
    rest[..rest.find('#')?].parse().ok()
}

async fn send_webhook(http: reqwest::Client, base: String, seen: Arc<Mutex<Seen>>, i: usize) {
    let body = text_event(i, i % 20, &format!("SOAK#{i}# 請問今天有出貨嗎？"));
    let url = format!("{base}/line/webhook");
    let mut tries = 0u64;
    loop {
        if post_signed(&http, &url, body.clone()).await.is_ok() {
            let mut s = seen.lock().expect("seen");
            s.acked.insert(i);
            s.webhook_retries += tries;
            return;
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn send_reply(
    http: reqwest::Client,
    base: String,
    seen: Arc<Mutex<Seen>>,
    session: Session,
    conversation: i64,
    j: usize,
) {
    let url = format!("{base}/conversations/{conversation}/messages");
    let text = format!("SOAK-R#{j}# 已為您查詢，今天下午出貨。");
    let nonce = format!("soak{j}n{}", uuid::Uuid::new_v4().simple());
    let cookie = format!("{}={}", linechat::http::SESSION_COOKIE, session.cookie);
    let mut tries = 0u64;
    loop {
        let r = http
            .post(&url)
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("x-csrf-token", &session.csrf)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("text", &text),
                ("nonce", &nonce),
                ("csrf", &session.csrf),
            ]))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            let mut s = seen.lock().expect("seen");
            s.accepted.insert(j);
            s.reply_retries += tries;
            return;
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// One SSE agent for the whole run: it records every event id it receives and reconnects
/// with `Last-Event-ID` whenever the stream breaks (the server was killed).
async fn live_agent(addr: std::net::SocketAddr, session: Session) -> anyhow::Result<Vec<i64>> {
    let mut ids: Vec<i64> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = String::new();
    while !STOP.load(Ordering::Acquire) {
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let last = ids
            .last()
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /live/sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{last}Cookie: {}={}\r\n\r\n",
            linechat::http::SESSION_COOKIE,
            session.cookie
        );
        if stream.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        pending.clear();
        let mut head_done = false;
        loop {
            let n = match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await
            {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
                Err(_) if STOP.load(Ordering::Acquire) => return Ok(ids),
                Err(_) => continue,
            };
            pending.push_str(&String::from_utf8_lossy(&buf[..n]));
            if !head_done {
                let Some(end) = pending.find("\r\n\r\n") else {
                    continue;
                };
                if !pending.starts_with("HTTP/1.1 200") {
                    break;
                }
                pending.drain(..end + 4);
                head_done = true;
            }
            // Event ids, from complete `id:` lines (chunked framing lines are not `id:`).
            while let Some(nl) = pending.find('\n') {
                let line: String = pending.drain(..=nl).collect();
                if let Some(id) = line.trim_end().strip_prefix("id:")
                    && let Ok(id) = id.trim().parse::<i64>()
                {
                    ids.push(id);
                }
            }
        }
        if STOP.load(Ordering::Acquire) {
            return Ok(ids);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(ids)
}

/// Set once the run has drained: the agent returns what it saw.
static STOP: AtomicBool = AtomicBool::new(false);
