//! Promise 1 with the real binary: a webhook that got its 2xx survives `kill -9` right after
//! the answer.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use linechat::line::fake::FakeLine;

use crate::{
    helpers::{Bus, SECRET, TOKEN, eventually},
    line_events::{body, text, user},
};

/// A free port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the real `linechat` binary on `port` with `data_dir`, talking to `line_base`.
pub fn start_binary(
    port: u16,
    data_dir: &std::path::Path,
    line_base: &str,
    redis: Option<(&str, &str)>,
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linechat"));
    cmd.arg("serve")
        .env_clear()
        .env("LINECHAT_ADDR", format!("127.0.0.1:{port}"))
        .env("LINECHAT_DATA_DIR", data_dir)
        .env("LINE_CHANNEL_SECRET", SECRET)
        .env("LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
        .env("LINE_API_BASE", line_base)
        .env("LINE_DATA_API_BASE", line_base)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    if let Some((url, prefix)) = redis {
        cmd.env("REDIS_URL", url)
            .env("LINECHAT_REDIS_PREFIX", prefix);
    }
    cmd.spawn().expect("the linechat binary starts")
}

pub async fn wait_healthy(http: &reqwest::Client, port: u16) {
    eventually(
        "the binary answers /healthz",
        Duration::from_secs(20),
        || async {
            http.get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
}

/// POSTs a signed webhook to the binary; true when it was acknowledged with 200.
fn post_signed(
    http: &reqwest::Client,
    url: &str,
    payload: String,
) -> impl std::future::Future<Output = bool> + use<> {
    let signature = linechat::line::webhook::sign(SECRET, payload.as_bytes());
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-line-signature", signature)
        .body(payload);
    async move { request.send().await.is_ok_and(|r| r.status() == 200) }
}

/// Starts the binary again on the same data, and opens its database beside it.
async fn restart(
    port: u16,
    data_dir: &std::path::Path,
    line_base: &str,
    redis: Option<(&str, &str)>,
    http: &reqwest::Client,
) -> (Child, sqlx::SqlitePool) {
    let child = start_binary(port, data_dir, line_base, redis);
    wait_healthy(http, port).await;
    let url = format!("sqlite://{}", data_dir.join("linechat.db").display());
    (child, sqlx::SqlitePool::connect(&url).await.unwrap())
}

async fn kill9_after_acks(bus: Bus) {
    let fake = FakeLine::new(TOKEN);
    let base = fake.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("linechat-crash-{}", uuid::Uuid::new_v4().simple());
    let redis_url = match bus {
        Bus::Local => None,
        Bus::Redis => Some(std::env::var("REDIS_URL").unwrap()),
    };
    let redis = redis_url.as_deref().map(|u| (u, prefix.as_str()));
    let port = free_port();
    let mut child = start_binary(port, dir.path(), &base, redis);
    let http = reqwest::Client::new();
    wait_healthy(&http, port).await;

    const N: usize = 300;
    let url = format!("http://127.0.0.1:{port}/line/webhook");
    let sends = (0..N).map(|i| {
        let payload = body(vec![text(
            &user((i % 20) as u32),
            &format!("{}", 100_000 + i),
            &format!("crash test {i}"),
        )]);
        post_signed(&http, &url, payload)
    });
    let acked: Vec<bool> = futures::future::join_all(sends).await;
    // Right after the last answer: no time for the workers to catch up.
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let acked: Vec<String> = acked
        .iter()
        .enumerate()
        .filter(|(_, ok)| **ok)
        .map(|(i, _)| format!("{}", 100_000 + i))
        .collect();
    assert_eq!(
        acked.len(),
        N,
        "every webhook was acknowledged before the kill"
    );

    let (mut child, db) = restart(port, dir.path(), &base, redis, &http).await;
    eventually(
        "every acknowledged webhook is a message after the restart",
        Duration::from_secs(30),
        || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE direction = 'in'")
                .fetch_one(&db)
                .await
                .unwrap();
            n as usize == acked.len()
        },
    )
    .await;
    let distinct: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT line_message_id) FROM messages WHERE direction = 'in'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(distinct as usize, N, "each exactly once");
    child.kill().unwrap();
    child.wait().unwrap();
}

crate::both_buses!(acked_webhooks_survive_kill_9, |bus| async move {
    kill9_after_acks(bus).await;
});

/// Graceful shutdown: SIGTERM in the middle of a stream of webhooks whose follow events each
/// queue a welcome message. Every acknowledged webhook is stored once, every welcome reaches
/// LINE once (by retry key or reply token), and the process exits promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_loses_nothing_and_sends_nothing_twice() {
    let fake = FakeLine::new(TOKEN);
    let base = fake.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start_binary(port, dir.path(), &base, None);
    let http = reqwest::Client::new();
    wait_healthy(&http, port).await;

    let url = format!("http://127.0.0.1:{port}/line/webhook");
    let send = |i: usize| {
        let follow = crate::line_events::event(
            "follow",
            crate::line_events::from_user(&user(1000 + i as u32)),
            serde_json::json!({ "follow": { "isUnblocked": false } }),
        );
        let payload = body(vec![follow]);
        post_signed(&http, &url, payload)
    };
    let mut acked = 0usize;
    let mut stopped_at = None;
    for round in 0..20 {
        if round == 10 {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            stopped_at = Some(std::time::Instant::now());
        }
        let results = futures::future::join_all((0..10).map(|k| send(round * 10 + k))).await;
        acked += results.into_iter().filter(|ok| *ok).count();
    }
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let took = stopped_at.unwrap().elapsed();
    eprintln!(
        "graceful shutdown: exited {exit:?} {took:?} after SIGTERM; {acked} webhooks acknowledged"
    );
    assert!(took < Duration::from_secs(20), "shutdown is bounded");
    assert!(acked >= 100, "the webhooks before SIGTERM were answered");

    // Restart: whatever was acknowledged is there once, and every welcome is sent once.
    let (mut child, db) = restart(port, dir.path(), &base, None, &http).await;
    eventually(
        "every acknowledged follow is stored and its welcome sent",
        Duration::from_secs(30),
        || async {
            let stored: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE kind = 'follow'")
                    .fetch_one(&db)
                    .await
                    .unwrap();
            let sent: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'sent'",
            )
            .fetch_one(&db)
            .await
            .unwrap();
            stored as usize == acked && sent as usize == acked
        },
    )
    .await;
    let delivered = fake.delivered();
    assert_eq!(
        delivered.len(),
        acked,
        "each welcome reached LINE exactly once"
    );
    let mut keys: Vec<_> = delivered
        .iter()
        .filter_map(|d| d.retry_key.clone())
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "no retry key executed twice");
    child.kill().unwrap();
    child.wait().unwrap();
}
