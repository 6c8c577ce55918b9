//! A Redis that restarts empty in the middle of a stream loses nothing: webhooks are
//! acknowledged from the store, and the sweeper re-queues what the restart dropped.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    crash::free_port,
    helpers::{Bus, TestApp, eventually},
    line_events::{body, text, user},
};

fn start_redis(port: u16) -> Option<Child> {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

async fn wait_redis(port: u16) {
    eventually("redis answers", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_stream_loses_nothing() {
    let port = free_port();
    let Some(mut redis) = start_redis(port) else {
        eprintln!("SKIPPED a_redis_restart_mid_stream_loses_nothing: no redis-server on PATH");
        return;
    };
    wait_redis(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    // SAFETY of the env change: none; the app takes the URL from its config, not the env.
    let app = TestApp::spawn_with(Bus::Local, |c| {
        c.redis_url = Some(linechat::config::Secret::new(url.clone()))
    })
    .await;
    assert_eq!(app.state.bus.kind(), "redis");
    let conv = app.conversation(&user(40)).await;

    let mut acked = 0;
    let mut outgoing = Vec::new();
    for i in 0..150u32 {
        if i == 50 {
            // Redis dies with everything it held, and comes back empty a moment later.
            redis.kill().unwrap();
            redis.wait().unwrap();
        }
        if i == 100 {
            redis = start_redis(port).expect("redis restarts");
            wait_redis(port).await;
        }
        let payload = body(vec![text(
            &user(41 + i % 3),
            &format!("{}", 200_000 + i),
            "during a Redis restart",
        )]);
        if app.webhook(&payload).await.status() == 200 {
            acked += 1;
        }
        if i % 25 == 0 {
            outgoing.push(app.queue_text(conv, &format!("reply {i}")).await);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        acked, 150,
        "the store acknowledged webhooks while Redis was away"
    );
    eventually("all 150 messages ingested", Duration::from_secs(30), || async {
        // By exact id range: the conversation's own first message has a random id.
        app.count("SELECT COUNT(*) FROM messages WHERE CAST(line_message_id AS INTEGER) BETWEEN 200000 AND 200149").await
            == 150
    })
    .await;
    for id in &outgoing {
        app.wait_status(*id, "sent").await;
    }
    assert_eq!(
        app.fake.delivered().len(),
        outgoing.len(),
        "each reply reached LINE once"
    );
    let _ = redis.kill();
    let _ = redis.wait();
}
