//! Operations endpoints: health, readiness, and the protected Prometheus metrics.

use std::time::Duration;

use crate::{
    helpers::{Bus, TestApp, eventually},
    line_events::{body, text, user},
};

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn(Bus::Local).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
}

#[tokio::test]
async fn metrics_need_the_token_and_count_the_traffic() {
    let app = TestApp::spawn(Bus::Local).await;
    app.webhook(&body(vec![text(&user(90), "9901", "metrics")]))
        .await;
    let unsigned = app
        .http
        .post(app.url("/line/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    eventually("ingested", Duration::from_secs(10), || async {
        app.count("SELECT COUNT(*) FROM messages").await == 1
    })
    .await;

    let anonymous = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let scrape = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("test-metrics-token")
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().await.unwrap();
    for needle in [
        r#"linechat_webhook_requests_total{outcome="ok"}"#,
        r#"linechat_webhook_requests_total{outcome="bad_signature"}"#,
        r#"linechat_webhook_events_total{outcome="new"}"#,
        r#"linechat_events_total{type="message"}"#,
        "linechat_webhook_ack_seconds_bucket",
        "linechat_webhook_to_hub_seconds_bucket",
        r#"linechat_queue_depth{queue="ingest"}"#,
        r#"linechat_queue_oldest_seconds{queue="delivery"}"#,
        r#"linechat_line_api_seconds_bucket{endpoint="profile""#,
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[tokio::test]
async fn metrics_are_off_without_a_token() {
    let app = TestApp::spawn_with(Bus::Local, |c| c.metrics_token = None).await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
