//! `linechat-bench`: a load generator that talks to a real linechat only through its public
//! surfaces. It starts the `linechat` binary built next to it (fresh data dir, its own fake
//! LINE, the embedded bus or `--redis-url`), drives it, and prints one JSON line plus a
//! summary: rates, latency percentiles, errors, and the server's RSS and CPU time.
//!
//! Scenarios (docs/BENCHMARKS.md has the commands and the figures):
//! - `ingest`: signed webhooks, closed loop or at a fixed rate; time to the durable 2xx.
//! - `fanout`: agents hold SSE (and a share long-poll) connections; webhooks at a fixed rate;
//!   time from the webhook POST to the fragment reaching each agent.
//! - `capacity`: as many idle SSE connections as asked; RSS per connection; then a burst of
//!   reconnects at once and how long until all are back.
//! - `delivery`: replies posted the way the desk posts them, to a fake LINE answering in
//!   5–50 ms (optionally 429 to every other call); replies/s and the highest calls/s LINE saw.
//! - `idle`: RSS and CPU of a started server doing nothing.
//! - `soak`: webhooks and replies under SIGKILLs, Redis outages and LINE faults; counts of
//!   anything lost or doubled (see `soak.rs`).
//! - `baseline-hmac`, `baseline-redis`: the machine's own limits for comparison — a bare axum
//!   handler that only verifies the signature and parses the JSON, and raw Redis LPUSH.

mod baseline;
mod delivery;
mod ingest;
mod live;
mod server;
mod soak;

use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Ingest,
    Fanout,
    Capacity,
    Delivery,
    Idle,
    BaselineHmac,
    BaselineRedis,
    Soak,
}

#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for linechat")]
pub struct Args {
    /// Scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Webhooks (ingest, baselines) or replies (delivery) to send.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Per second (webhooks, or fan-out events); 0 = as fast as the connections allow.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Connections (closed loop) or most requests in flight (open loop).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// fanout: agents connected; capacity: idle connections to hold.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// fanout: the share of agents on long-poll instead of SSE (0.0–1.0).
    #[arg(long, default_value_t = 0.1)]
    poll_share: f64,
    /// capacity: connections dropped and reopened all at once after the hold.
    #[arg(long, default_value_t = 0)]
    reconnect: usize,
    /// fanout: seconds of events; idle: seconds to watch.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// soak: at most this many seconds between two SIGKILLs of the server (0 = no kills).
    #[arg(long, default_value_t = 8)]
    kill_every: u64,
    /// soak: start a Redis of the run's own and make it fail now and then.
    #[arg(long)]
    own_redis: bool,
    /// delivery: the fake LINE answers 429 to every other send call.
    #[arg(long)]
    throttle_half: bool,
    /// Run linechat against this Redis instead of the embedded bus (baseline-redis: the
    /// Redis to push to).
    #[arg(long)]
    redis_url: Option<String>,
    /// The linechat binary (default: next to this one).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
    /// Print only the JSON line.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let result = match args.scenario {
        Scenario::Ingest => ingest::run(&args).await?,
        Scenario::Fanout => live::fanout(&args).await?,
        Scenario::Capacity => live::capacity(&args).await?,
        Scenario::Delivery => delivery::run(&args).await?,
        Scenario::Idle => idle(&args).await?,
        Scenario::BaselineHmac => baseline::hmac(&args).await?,
        Scenario::BaselineRedis => baseline::redis(&args).await?,
        Scenario::Soak => soak::run(&args).await?,
    };
    let mut out = json!({
        "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "bus": if args.redis_url.is_some() { "redis" } else { "embedded" },
    });
    if let (Value::Object(o), Value::Object(r)) = (&mut out, result) {
        o.extend(r);
    }
    println!("{out}");
    if !args.json {
        eprintln!("{}", human(&out));
    }
    if let Some(problem) = failed(&out) {
        eprintln!("linechat-bench: {problem}");
        std::process::exit(2);
    }
    Ok(())
}

/// Why a run does not count, if it does not: any error, anything lost, or LINE seeing a
/// request that breaks its spec. (Slowness is never a failure: these are not timed tests.)
fn failed(out: &Value) -> Option<String> {
    for key in [
        "errors",
        "open_errors",
        "post_errors",
        "webhook_errors",
        "missing",
        "spec_violations",
        "over_ceiling",
    ] {
        if let Some(n) = out[key].as_u64().filter(|n| *n > 0) {
            return Some(format!("{key}: {n}"));
        }
    }
    if let Some(n) = out["reconnect"]["errors"].as_u64().filter(|n| *n > 0) {
        return Some(format!("reconnect errors: {n}"));
    }
    if let (Some(posted), Some(delivered)) = (out["posted"].as_u64(), out["delivered"].as_u64())
        && delivered < posted
    {
        return Some(format!("{} replies never reached LINE", posted - delivered));
    }
    None
}

/// `idle`: a started server, signed-in agent, nothing happening.
async fn idle(args: &Args) -> anyhow::Result<Value> {
    let server = server::Server::start(args).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let cpu = server.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    Ok(json!({
        "seconds": args.duration,
        "server_cpu_seconds": cpu,
        "server_rss_mb": server.rss_mb(),
    }))
}

/// Latencies in microseconds → `{p50, p90, p99, max}` in milliseconds.
pub fn percentiles(mut micros: Vec<u64>) -> Value {
    micros.sort_unstable();
    let pct = |p: f64| -> f64 {
        if micros.is_empty() {
            return 0.0;
        }
        let idx = ((micros.len() as f64 - 1.0) * p).round() as usize;
        micros[idx] as f64 / 1000.0
    };
    json!({ "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) })
}

/// One line for people: every field, nested latency objects flattened.
fn human(v: &Value) -> String {
    let mut parts = Vec::new();
    if let Value::Object(o) = v {
        for (k, v) in o {
            match v {
                Value::Object(inner) => {
                    let inner: Vec<String> =
                        inner.iter().map(|(ik, iv)| format!("{ik} {iv}")).collect();
                    parts.push(format!("{k}: {}", inner.join(", ")));
                }
                other => parts.push(format!("{k}: {other}")),
            }
        }
    }
    parts.join("; ")
}
