//! The delivery worker against a fake LINE that checks every request (promise 3).

use std::time::Duration;

use linechat::line::fake::{Fault, Via};

use crate::{
    both_buses,
    helpers::{Bus, TestApp},
    line_events::{body, text, user},
};

const PUSH: &str = "/v2/bot/message/push";
const REPLY: &str = "/v2/bot/message/reply";

both_buses!(
    a_reply_is_pushed_once_with_its_retry_key,
    |bus| async move {
        let app = TestApp::spawn(bus).await;
        let u = user(20);
        let conv = app.conversation(&u).await;
        let id = app.queue_text(conv, "您好，請問需要什麼協助？").await;
        let m = app.wait_status(id, "sent").await;
        let delivered = app.fake.delivered();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].via, Via::Push);
        assert_eq!(delivered[0].to.as_deref(), Some(u.as_str()));
        assert_eq!(delivered[0].retry_key.as_deref(), m.retry_key.as_deref());
        assert_eq!(
            m.line_message_id.as_deref(),
            Some(delivered[0].line_message_id.as_str())
        );
        assert_eq!(m.via.as_deref(), Some("push"));
        assert!(
            app.count("SELECT COUNT(*) FROM events WHERE kind = 'message.updated'")
                .await
                >= 2
        );
        assert!(
            app.fake.violations().is_empty(),
            "{:?}",
            app.fake.violations()
        );
    }
);

#[tokio::test]
async fn a_fresh_reply_token_is_used_and_a_refused_one_falls_back_to_push() {
    let app = TestApp::spawn(Bus::Local).await;
    let (a, b) = (user(21), user(22));
    // a's token is known to the fake LINE; b's is not (as if expired).
    app.fake.add_reply_token("rt-9301");
    app.webhook(&body(vec![text(&a, "9301", "hi"), text(&b, "9302", "hi")]))
        .await;
    let conv = |u: String| {
        let app = &app;
        async move {
            crate::helpers::eventually("conversation", Duration::from_secs(10), || async {
                linechat::store::contacts::conversation_by_line_id(app.pool(), &u)
                    .await
                    .unwrap()
                    .is_some()
            })
            .await;
            linechat::store::contacts::conversation_by_line_id(app.pool(), &u)
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let id_a = app.queue_text(conv(a.clone()).await, "by reply").await;
    let id_b = app.queue_text(conv(b.clone()).await, "by push").await;
    assert_eq!(
        app.wait_status(id_a, "sent").await.via.as_deref(),
        Some("reply")
    );
    assert_eq!(
        app.wait_status(id_b, "sent").await.via.as_deref(),
        Some("push")
    );
    let delivered = app.fake.delivered();
    assert_eq!(delivered.len(), 2);
    // The token was used once; a second message to a goes by push.
    let again = app.queue_text(conv(a).await, "second").await;
    assert_eq!(
        app.wait_status(again, "sent").await.via.as_deref(),
        Some("push")
    );
}

both_buses!(
    a_push_that_times_out_then_succeeds_reaches_line_once,
    |bus| async move {
        // LINE executes the push but answers after our 2 s timeout; the retry with the same key
        // gets 409 "already accepted", which counts as sent.
        let app = TestApp::spawn(bus).await;
        let conv = app.conversation(&user(23)).await;
        app.fake
            .inject(PUSH, Fault::DelayAfterExecute(Duration::from_secs(3)));
        let id = app.queue_text(conv, "slow LINE").await;
        let m = app.wait_status(id, "sent").await;
        let key = m.retry_key.clone().unwrap();
        assert_eq!(app.fake.accepted_by_retry_key(&key), 1);
        assert_eq!(app.fake.delivered().len(), 1);
        assert!(m.attempts >= 2, "attempts {}", m.attempts);
        let with_key = app
            .fake
            .requests()
            .iter()
            .filter(|r| r.retry_key.as_deref() == Some(key.as_str()))
            .count();
        assert!(with_key >= 2, "the retry used the same key");
    }
);

#[tokio::test]
async fn rate_limits_and_server_errors_retry_with_backoff() {
    let app = TestApp::spawn(Bus::Local).await;
    let conv = app.conversation(&user(24)).await;
    app.fake.inject(
        PUSH,
        Fault::Status {
            status: 429,
            message: "The API rate limit has been exceeded. Try again later.".into(),
            retry_after: Some(1),
        },
    );
    app.fake.inject(
        PUSH,
        Fault::Status {
            status: 500,
            message: "Internal server error".into(),
            retry_after: None,
        },
    );
    let started = std::time::Instant::now();
    let id = app.queue_text(conv, "eventually").await;
    let m = app.wait_status(id, "sent").await;
    assert_eq!(m.attempts, 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(app.fake.delivered().len(), 1);
    let keys: Vec<_> = app
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == PUSH)
        .map(|r| r.retry_key)
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| k == &keys[0]),
        "one key across retries: {keys:?}"
    );
}

#[tokio::test]
async fn a_reply_with_an_unknown_outcome_is_not_sent_again_behind_the_agents_back() {
    // LINE executes the reply but answers after our 2 s timeout. A reply carries no retry
    // key, so pushing the same text now could deliver it twice: the message stops as failed,
    // saying it may have arrived, and nothing more goes to LINE.
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(27);
    let conv = app.conversation(&u).await;
    app.fake.add_reply_token("rt-9401");
    app.webhook(&body(vec![text(&u, "9401", "hi")])).await;
    crate::helpers::eventually(
        "the message with the token",
        Duration::from_secs(10),
        || async {
            app.count("SELECT COUNT(*) FROM messages WHERE reply_token_state = 'fresh'")
                .await
                == 1
        },
    )
    .await;
    app.fake
        .inject(REPLY, Fault::DelayAfterExecute(Duration::from_secs(3)));
    let id = app.queue_text(conv, "maybe twice").await;
    let m = app.wait_status(id, "failed").await;
    assert_eq!(m.via.as_deref(), Some("reply"));
    assert!(
        m.last_error
            .as_deref()
            .unwrap_or("")
            .contains("may have reached the customer"),
        "{:?}",
        m.last_error
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        app.fake.delivered().len(),
        1,
        "delivered once, by the reply"
    );
    assert!(
        app.fake.requests().iter().all(|r| r.path != PUSH),
        "no push behind the agent's back"
    );
}

#[tokio::test]
async fn a_long_run_of_429s_delays_a_message_but_never_fails_it() {
    let app = TestApp::spawn(Bus::Local).await;
    let conv = app.conversation(&user(26)).await;
    // More refusals than the policy's attempts (6 in tests): rate limiting is not the
    // message's fault and must not use them up.
    for _ in 0..8 {
        app.fake.inject(
            PUSH,
            Fault::Status {
                status: 429,
                message: "The API rate limit has been exceeded. Try again later.".into(),
                retry_after: None,
            },
        );
    }
    let id = app.queue_text(conv, "patience").await;
    let m = app.wait_status(id, "sent").await;
    assert_eq!(m.attempts, 9);
    assert_eq!(app.fake.delivered().len(), 1);
}

#[tokio::test]
async fn a_client_error_fails_at_once_with_lines_reason_and_can_be_retried() {
    let app = TestApp::spawn(Bus::Local).await;
    let conv = app.conversation(&user(25)).await;
    app.fake.inject(
        PUSH,
        Fault::Status {
            status: 400,
            message: "Failed to send messages".into(),
            retry_after: None,
        },
    );
    let id = app.queue_text(conv, "refused").await;
    let m = app.wait_status(id, "failed").await;
    assert_eq!(m.attempts, 1);
    assert!(
        m.last_error
            .as_deref()
            .unwrap()
            .contains("Failed to send messages"),
        "{:?}",
        m.last_error
    );
    assert!(app.fake.delivered().is_empty());
    // The agent's Retry.
    let mut conn = app.pool().acquire().await.unwrap();
    assert!(
        linechat::store::messages::requeue_failed(&mut conn, id)
            .await
            .unwrap()
    );
    app.state
        .bus
        .enqueue(linechat::bus::Queue::Delivery, vec![id])
        .await
        .unwrap();
    let m = app.wait_status(id, "sent").await;
    assert_eq!(app.fake.delivered().len(), 1);
    assert_eq!(m.last_error, None);
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit_with_the_reason() {
    let app = TestApp::spawn_with(Bus::Local, |c| c.retry.max_attempts = 3).await;
    let conv = app.conversation(&user(26)).await;
    for _ in 0..3 {
        app.fake.inject(
            PUSH,
            Fault::Status {
                status: 503,
                message: "Service unavailable".into(),
                retry_after: None,
            },
        );
    }
    let id = app.queue_text(conv, "never").await;
    let m = app.wait_status(id, "failed").await;
    assert_eq!(m.attempts, 3);
    assert!(m.last_error.unwrap().contains("503"));
    assert!(app.fake.delivered().is_empty());
}

#[tokio::test]
async fn a_message_lost_from_the_queue_is_found_by_the_sweeper() {
    let app = TestApp::spawn(Bus::Local).await;
    let conv = app.conversation(&user(27)).await;
    // Queued in the store but never enqueued: as after a crash or a Redis restart.
    let id = app.store_text(conv, "lost and found").await;
    app.wait_status(id, "sent").await;
    assert_eq!(app.fake.delivered().len(), 1);
}
