//! The webhook's door: signature, size, shape (promise 5) and redelivery (promise 2).

use std::time::Duration;

use linechat::line::webhook::sign;
use serde_json::json;

use crate::{
    both_buses,
    helpers::{Bus, SECRET, TestApp, eventually},
    line_events::{self as ev, body, text, user},
};

async fn stored(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM webhook_inbox").await
}

#[tokio::test]
async fn missing_or_wrong_signature_is_401_and_stores_nothing() {
    let app = TestApp::spawn(Bus::Local).await;
    let payload = body(vec![text(&user(1), "1001", "hi")]);
    let unsigned = app
        .http
        .post(app.url("/line/webhook"))
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let wrong = app
        .http
        .post(app.url("/line/webhook"))
        .header(
            "x-line-signature",
            sign("another-secret", payload.as_bytes()),
        )
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // Signed, then one byte changed.
    let tampered = payload.replace("hi", "ho");
    let changed = app
        .http
        .post(app.url("/line/webhook"))
        .header("x-line-signature", sign(SECRET, payload.as_bytes()))
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 401);
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test]
async fn oversized_body_is_413_and_stores_nothing() {
    let app = TestApp::spawn(Bus::Local).await;
    let huge = body(vec![text(&user(1), "1002", &"x".repeat(2 * 1024 * 1024))]);
    let response = app.webhook(&huge).await;
    assert_eq!(response.status(), 413);
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test]
async fn signed_but_malformed_is_400_and_stores_nothing() {
    let app = TestApp::spawn(Bus::Local).await;
    for bad in [
        "not json".to_owned(),
        r#"{"destination":"U1","events":{}}"#.to_owned(),
        // One good event and one without its webhookEventId: nothing of the body is kept.
        {
            let good = text(&user(1), "1003", "fine");
            let mut broken = text(&user(1), "1004", "broken");
            broken.as_object_mut().unwrap().remove("webhookEventId");
            body(vec![good, broken])
        },
    ] {
        let response = app.webhook(&bad).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert!(response.text().await.unwrap().contains("malformed"));
    }
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::spawn(Bus::Local).await;
    let payload = body(vec![text(&user(1), "1005", "hi")]);
    let response = app
        .http
        .post(app.url("/line/webhook"))
        .header("content-type", "text/plain")
        .header("x-line-signature", sign(SECRET, payload.as_bytes()))
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test]
async fn verify_request_with_no_events_is_200() {
    let app = TestApp::spawn(Bus::Local).await;
    let response = app
        .webhook(&json!({ "destination": ev::BOT, "events": [] }).to_string())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(stored(&app).await, 0);
}

both_buses!(redelivered_event_makes_one_message, |bus| async move {
    let app = TestApp::spawn(bus).await;
    let first = text(&user(7), "2001", "only once");
    let mut again = first.clone();
    again["deliveryContext"]["isRedelivery"] = json!(true);
    // The original, a redelivery, and several concurrent copies.
    assert_eq!(app.webhook(&body(vec![first.clone()])).await.status(), 200);
    assert_eq!(app.webhook(&body(vec![again.clone()])).await.status(), 200);
    let doubled = body(vec![again.clone(), first.clone()]);
    let copies = (0..8).map(|_| app.webhook(&doubled));
    for response in futures::future::join_all(copies).await {
        assert_eq!(response.status(), 200);
    }
    eventually(
        "the message is ingested",
        Duration::from_secs(10),
        || async {
            app.count("SELECT COUNT(*) FROM messages WHERE line_message_id = '2001'")
                .await
                == 1
        },
    )
    .await;
    // Let any stray duplicate work finish before counting again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM messages WHERE line_message_id = '2001'")
            .await,
        1
    );
    assert_eq!(stored(&app).await, 1);
});

both_buses!(a_body_with_many_events_stores_each, |bus| async move {
    let app = TestApp::spawn(bus).await;
    let events = (0..50)
        .map(|i| text(&user(i % 5), &format!("3{i:03}"), &format!("m{i}")))
        .collect();
    assert_eq!(app.webhook(&body(events)).await.status(), 200);
    eventually("all 50 ingested", Duration::from_secs(10), || async {
        app.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'")
            .await
            == 50
    })
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM conversations").await, 5);
});
