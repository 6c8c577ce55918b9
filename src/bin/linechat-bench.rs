//! `linechat-bench`: a load generator that talks to a real linechat only through its public
//! surfaces. It starts the `linechat` binary built next to it (fresh data dir, its own fake
//! LINE, the embedded bus or `--redis-url`), drives it, and reports JSON plus a summary:
//! rates, latency percentiles, errors, and the server's RSS and CPU time.
//!
//! Scenario `ingest`: signed webhooks (one text event each, unique `webhookEventId`s, 200
//! simulated users), either as fast as `--concurrency` connections allow (`--rate 0`) or
//! open-loop at a fixed `--rate`, measuring the time to the 2xx (the durable ack).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use linechat::line::{fake::FakeLine, webhook::sign};
use serde_json::json;
use tokio::sync::Semaphore;

const SECRET: &str = "bench-channel-secret";
const TOKEN: &str = "bench-access-token";

#[derive(Parser, Debug)]
#[command(about = "Load generator for linechat")]
struct Args {
    /// Scenario to run.
    #[arg(value_parser = ["ingest"])]
    scenario: String,
    /// Webhooks to send.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Webhooks per second; 0 = as fast as the connections allow.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Connections (closed loop) or most requests in flight (open loop).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Run linechat against this Redis instead of the embedded bus.
    #[arg(long)]
    redis_url: Option<String>,
    /// The linechat binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Print only the JSON line.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fake = FakeLine::new(TOKEN);
    let line_base = fake.spawn().await?;
    let dir = tempfile_dir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut server = start_server(&args, port, &dir, &line_base)?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    wait_healthy(&http, &base).await?;
    let cpu_before = cpu_ticks(server.id());

    let started = Instant::now();
    let latencies = run_ingest(&args, &http, &base).await;
    let elapsed = started.elapsed();

    let cpu = cpu_ticks(server.id())
        .zip(cpu_before)
        .map(|(a, b)| (a - b) as f64 / 100.0);
    let rss_kb = rss_kb(server.id());
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    report(&args, &latencies, elapsed, cpu, rss_kb);
    Ok(())
}

/// Outcome of one request: latency in microseconds, or an error.
type Outcome = Result<u64, String>;

async fn run_ingest(args: &Args, http: &reqwest::Client, base: &str) -> Vec<Outcome> {
    let url = Arc::new(format!("{base}/line/webhook"));
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = Vec::with_capacity(args.count);
    let mut ticker = (args.rate > 0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    for i in 0..args.count {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            send_one(&http, &url, i).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

async fn send_one(http: &reqwest::Client, url: &str, i: usize) -> Outcome {
    let body = json!({
        "destination": "Ubbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "events": [{
            "type": "message",
            "mode": "active",
            "timestamp": linechat::domain::now_ms(),
            "source": { "type": "user", "userId": format!("U{:032x}", i % 200) },
            "webhookEventId": format!("01BENCH{:019}", i),
            "deliveryContext": { "isRedelivery": false },
            "replyToken": format!("rt{i}"),
            "message": { "type": "text", "id": format!("{}", 10_000_000 + i), "quoteToken": "q", "text": format!("您好，我想詢問訂單 #{i} 的狀態") }
        }]
    })
    .to_string();
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

fn report(
    args: &Args,
    outcomes: &[Outcome],
    elapsed: Duration,
    cpu_secs: Option<f64>,
    rss_kb: Option<u64>,
) {
    let mut ok: Vec<u64> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    ok.sort_unstable();
    let errors = outcomes.len() - ok.len();
    let pct = |p: f64| -> f64 {
        if ok.is_empty() {
            return 0.0;
        }
        let idx = ((ok.len() as f64 - 1.0) * p).round() as usize;
        ok[idx] as f64 / 1000.0
    };
    let rate = ok.len() as f64 / elapsed.as_secs_f64();
    let summary = json!({
        "scenario": args.scenario,
        "bus": if args.redis_url.is_some() { "redis" } else { "embedded" },
        "count": outcomes.len(),
        "ok": ok.len(),
        "errors": errors,
        "target_rate": args.rate,
        "concurrency": args.concurrency,
        "seconds": elapsed.as_secs_f64(),
        "acked_per_sec": rate,
        "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
        "server_cpu_seconds": cpu_secs,
        "server_rss_mb": rss_kb.map(|k| k as f64 / 1024.0),
    });
    println!("{summary}");
    if !args.json {
        eprintln!(
            "{} ({}): {} acked in {:.2}s = {:.0}/s, {} errors; ack latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server CPU {:.2}s, RSS {:.1} MB",
            args.scenario,
            summary["bus"].as_str().unwrap_or(""),
            ok.len(),
            elapsed.as_secs_f64(),
            rate,
            errors,
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(1.0),
            cpu_secs.unwrap_or(0.0),
            rss_kb.unwrap_or(0) as f64 / 1024.0
        );
    }
    if let Some(first) = outcomes.iter().find_map(|o| o.as_ref().err()) {
        eprintln!("first error: {first}");
    }
}

fn start_server(
    args: &Args,
    port: u16,
    dir: &std::path::Path,
    line_base: &str,
) -> anyhow::Result<Child> {
    let exe = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("linechat"),
    };
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .env_clear()
        .env("LINECHAT_ADDR", format!("127.0.0.1:{port}"))
        .env("LINECHAT_DATA_DIR", dir)
        .env("LINE_CHANNEL_SECRET", SECRET)
        .env("LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
        .env("LINE_API_BASE", line_base)
        .env("LINE_DATA_API_BASE", line_base)
        .env("LINECHAT_WELCOME_MESSAGE", "")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = &args.redis_url {
        cmd.env("REDIS_URL", url).env(
            "LINECHAT_REDIS_PREFIX",
            format!("bench-{}", uuid::Uuid::new_v4().simple()),
        );
    }
    Ok(cmd.spawn()?)
}

async fn wait_healthy(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("linechat did not become healthy")
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("linechat-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// utime + stime of a process, in clock ticks (100 Hz on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
