//! The live scenarios. Agents' SSE connections are raw sockets speaking HTTP/1.1 (tens of
//! thousands of them, from many loopback source addresses so the client never runs out of
//! ports); long-poll agents loop on `GET /live/poll` as `app.js` does.
//!
//! - `fanout`: every webhook's text starts with `BENCH#<i>#`; each agent scans what it
//!   receives for those markers, and the latency of event `i` at an agent is its arrival time
//!   minus the moment the webhook POST started.
//! - `capacity`: idle connections; the server's RSS before and after; then `--reconnect` of
//!   them dropped and reopened at once, timed until every one has its `200` again.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::Semaphore,
};

use crate::{
    Args,
    ingest::{post_signed, text_event, ticker},
    percentiles,
    server::{Server, Session},
};

const MARKER: &[u8] = b"BENCH#";
/// Signed-in sessions shared by the agents (each sign-in costs an argon2 verification).
const SESSIONS: usize = 8;

/// Opens `GET /live/sse` on a fresh socket from source address `local`; returns the stream
/// once the `200` head has arrived, with whatever body bytes came with it.
async fn open_sse(
    addr: SocketAddr,
    local: IpAddr,
    session: &Session,
) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    let mut stream = socket.connect(addr).await?;
    let request = format!(
        "GET /live/sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCookie: {}={}\r\n\r\n",
        linechat::http::SESSION_COOKIE,
        session.cookie
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed before the response head");
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&head, b"\r\n\r\n") {
            anyhow::ensure!(
                head.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&head[..head.len().min(60)])
            );
            return Ok((stream, head.split_off(end + 4)));
        }
        anyhow::ensure!(head.len() < 16 * 1024, "response head too long");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Loopback source address number `i` (127.0.0.2 …), so each has its own port range.
fn source(i: usize) -> IpAddr {
    let n = (i % 250) as u8 + 2;
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Every `BENCH#<i>#` in `data`, given the tail of the previous chunk in `carry`.
fn markers(carry: &mut Vec<u8>, data: &[u8], out: &mut Vec<usize>) {
    carry.extend_from_slice(data);
    let mut at = 0;
    while let Some(pos) = find(&carry[at..], MARKER) {
        let start = at + pos + MARKER.len();
        let digits = carry[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if start + digits >= carry.len() {
            // The number may go on in the next chunk.
            at += pos;
            break;
        }
        if digits > 0
            && carry[start + digits] == b'#'
            && let Ok(i) = std::str::from_utf8(&carry[start..start + digits])
                .unwrap_or("")
                .parse()
        {
            out.push(i);
        }
        at = start + digits;
    }
    // Keep only what could be the start of a marker cut by the chunk boundary.
    let keep_from = carry
        .len()
        .saturating_sub(MARKER.len() + 24)
        .max(at.min(carry.len()));
    carry.drain(..keep_from);
}

/// What the fan-out agents share: when each event was posted, and every arrival latency.
struct Tally {
    started: Instant,
    posted: Vec<AtomicU64>,
    latencies: Mutex<Vec<u64>>,
}

impl Tally {
    fn arrived(&self, ids: &[usize], seen: &mut HashSet<usize>) {
        let now = self.started.elapsed().as_micros() as u64;
        let mut lat = Vec::new();
        for &i in ids {
            let Some(posted) = self.posted.get(i).map(|p| p.load(Ordering::Acquire)) else {
                continue;
            };
            if posted > 0 && seen.insert(i) {
                lat.push(now.saturating_sub(posted));
            }
        }
        if !lat.is_empty() {
            self.latencies.lock().expect("tally").extend(lat);
        }
    }
}

pub async fn fanout(args: &Args) -> anyhow::Result<Value> {
    let server = Server::start(args).await?;
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS.min(args.agents.max(1)) {
        sessions.push(server.sign_in().await?);
    }
    let events = (args.rate.max(1) * args.duration) as usize;
    let tally = Arc::new(Tally {
        started: Instant::now(),
        posted: (0..events).map(|_| AtomicU64::new(0)).collect(),
        latencies: Mutex::new(Vec::new()),
    });
    let pollers = ((args.agents as f64) * args.poll_share.clamp(0.0, 1.0)).round() as usize;
    let connected = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut agents = Vec::new();
    for a in 0..args.agents {
        let session = sessions[a % sessions.len()].clone();
        let (tally, connected, stop) = (tally.clone(), connected.clone(), stop.clone());
        if a < pollers {
            let http = server.http.clone();
            let url = server.url("/live/poll");
            agents.push(tokio::spawn(async move {
                poll_agent(http, url, session, tally, connected, stop).await
            }));
        } else {
            let addr = server.addr;
            agents.push(tokio::spawn(async move {
                sse_agent(addr, source(a), session, tally, connected, stop).await
            }));
        }
    }
    while connected.load(Ordering::Acquire) < args.agents {
        tokio::time::sleep(Duration::from_millis(20)).await;
        anyhow::ensure!(
            agents.iter().all(|a| !a.is_finished()),
            "an agent failed to connect"
        );
    }
    // Long-polls in flight before the first event.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cpu_before = server.cpu_seconds();
    let url = server.url("/line/webhook");
    let mut ticker = ticker(args.rate.max(1)).context("a rate")?;
    let mut posts = Vec::with_capacity(events);
    let send_started = Instant::now();
    for i in 0..events {
        ticker.tick().await;
        let body = text_event(i, i % 50, &format!("BENCH#{i}# 您好，請問運費怎麼算？"));
        let (http, url, tally) = (server.http.clone(), url.clone(), tally.clone());
        posts.push(tokio::spawn(async move {
            tally.posted[i].store(
                tally.started.elapsed().as_micros().max(1) as u64,
                Ordering::Release,
            );
            post_signed(&http, &url, body).await
        }));
    }
    let mut webhook_errors = 0;
    for p in posts {
        if !matches!(p.await, Ok(Ok(_))) {
            webhook_errors += 1;
        }
    }
    let expected = events * args.agents;
    // Stragglers: wait until everything arrived, or 5 s of silence.
    let mut last = 0;
    let mut quiet_since = Instant::now();
    loop {
        let n = tally.latencies.lock().expect("tally").len();
        if n >= expected {
            break;
        }
        if n != last {
            last = n;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = send_started.elapsed();
    let cpu = server.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    stop.cancel();
    let latencies = std::mem::take(&mut *tally.latencies.lock().expect("tally"));
    Ok(json!({
        "agents": args.agents,
        "long_poll_agents": pollers,
        "events": events,
        "event_rate": args.rate.max(1),
        "webhook_errors": webhook_errors,
        "deliveries_expected": expected,
        "deliveries": latencies.len(),
        "missing": expected.saturating_sub(latencies.len()),
        "deliveries_per_sec": latencies.len() as f64 / elapsed.as_secs_f64(),
        "latency_ms": percentiles(latencies),
        "server_cpu_seconds": cpu,
        "server_rss_mb": server.rss_mb(),
    }))
}

async fn sse_agent(
    addr: SocketAddr,
    local: IpAddr,
    session: Session,
    tally: Arc<Tally>,
    connected: Arc<AtomicUsize>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let (mut stream, first) = open_sse(addr, local, &session).await?;
    connected.fetch_add(1, Ordering::AcqRel);
    let (mut carry, mut ids, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
    markers(&mut carry, &first, &mut ids);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tally.arrived(&ids, &mut seen);
        ids.clear();
        let n = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            n = stream.read(&mut buf) => n?,
        };
        if n == 0 {
            anyhow::bail!("the server closed an SSE stream");
        }
        markers(&mut carry, &buf[..n], &mut ids);
    }
}

async fn poll_agent(
    http: reqwest::Client,
    url: String,
    session: Session,
    tally: Arc<Tally>,
    connected: Arc<AtomicUsize>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let cookie = format!("{}={}", linechat::http::SESSION_COOKIE, session.cookie);
    let mut cursor: Option<String> = None;
    let mut seen = HashSet::new();
    let mut first = true;
    loop {
        let mut req = http
            .get(&url)
            .header("cookie", &cookie)
            .header("accept", "text/html");
        if let Some(c) = &cursor {
            req = req.query(&[("after", c)]);
        }
        if first {
            connected.fetch_add(1, Ordering::AcqRel);
            first = false;
        }
        let response = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = req.send() => r?,
        };
        anyhow::ensure!(
            response.status().is_success(),
            "poll: {}",
            response.status()
        );
        if let Some(next) = response.headers().get(linechat::http::live::CURSOR_HEADER) {
            cursor = Some(next.to_str()?.to_owned());
        }
        let body = response.bytes().await?;
        let (mut carry, mut ids) = (Vec::new(), Vec::new());
        markers(&mut carry, &body, &mut ids);
        tally.arrived(&ids, &mut seen);
    }
}

pub async fn capacity(args: &Args) -> anyhow::Result<Value> {
    let server = Server::start(args).await?;
    // Each connection is a socket here and one in the server, each process under this limit
    // (raised to the hard limit at start); past it, opening would hang, not measure.
    let limit = crate::server::fd_limit();
    anyhow::ensure!(
        (args.agents as u64) + 256 <= limit,
        "--agents {} needs more open files than this machine allows a process ({limit}); \
         raise the hard limit (ulimit -Hn) or ask for fewer",
        args.agents
    );
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(server.sign_in().await?);
    }
    // Warm up: a few connections opened and closed, so the baseline includes the first-use
    // allocations.
    for i in 0..32 {
        drop(open_sse(server.addr, source(i), &sessions[i % SESSIONS]).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = server.rss_mb().context("server RSS")?;

    let total = args.agents;
    let opening = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let permit = opening
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let (addr, session) = (server.addr, sessions[i % SESSIONS].clone());
        tasks.push(tokio::spawn(async move {
            let r = open_sse(addr, source(i), &session).await;
            drop(permit);
            r.map(|(s, _)| s)
        }));
    }
    let mut streams = Vec::with_capacity(total);
    let mut open_errors = 0;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => streams.push(s),
            Ok(Err(e)) => {
                open_errors += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                open_errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    // Hold: the connections stay idle (keep-alive comments only).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_held = server.rss_mb().context("server RSS")?;
    let held = streams.len();
    let per_conn_kb = if held > 0 {
        (rss_held - rss_before) * 1024.0 / held as f64
    } else {
        0.0
    };

    // Reconnect storm: drop some connections and reopen them all at once.
    let again = args.reconnect.min(held);
    let mut reconnect = json!(null);
    if again > 0 {
        streams.truncate(held - again);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(again);
        for i in 0..again {
            let (addr, session) = (server.addr, sessions[i % SESSIONS].clone());
            tasks.push(tokio::spawn(async move {
                open_sse(addr, source(i + 7), &session)
                    .await
                    .map(|(s, _)| (s, started.elapsed().as_micros() as u64))
            }));
        }
        let mut back = Vec::with_capacity(again);
        let mut errors = 0;
        for t in tasks {
            match t.await {
                Ok(Ok((s, micros))) => {
                    streams.push(s);
                    back.push(micros);
                }
                _ => errors += 1,
            }
        }
        let all_back = back.iter().max().map(|m| *m as f64 / 1e6);
        reconnect = json!({
            "count": again,
            "errors": errors,
            "all_back_seconds": all_back,
            "time_to_200_ms": percentiles(back),
        });
    }
    let rss_after = server.rss_mb();
    drop(streams);
    Ok(json!({
        "connections_asked": total,
        "connections_held": held,
        "open_errors": open_errors,
        "first_error": first_error,
        "open_seconds": open_seconds,
        "rss_before_mb": rss_before,
        "rss_held_mb": rss_held,
        "rss_per_connection_kb": per_conn_kb,
        "reconnect": reconnect,
        "rss_after_reconnect_mb": rss_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_across_chunk_boundaries() {
        let mut carry = Vec::new();
        let mut out = Vec::new();
        markers(&mut carry, b"data: <li>BENCH#12# hi BENCH#3", &mut out);
        assert_eq!(out, vec![12]);
        markers(&mut carry, b"4# there BEN", &mut out);
        assert_eq!(out, vec![12, 34]);
        markers(&mut carry, b"CH#5#", &mut out);
        assert_eq!(out, vec![12, 34, 5]);
    }
}
