//! Sandbox mode's customer simulator (issue 3 part 9): a simulated customer's messages reach
//! the desk through real signed webhooks, the agents' replies reach the customer's view, and
//! with real credentials none of it exists.

use std::time::Duration;

use linechat::sandbox::{Sandbox, user_id_for};
use reqwest::Method;

use crate::helpers::{Browser, Bus, FormBody, TestApp, eventually, field_value};

fn sandbox(app: &TestApp) -> &Sandbox {
    app.state.sandbox.as_ref().expect("sandbox mode")
}

/// Adds a simulated customer through the page; returns their user id.
async fn add_customer(b: &Browser, name: &str) -> String {
    let (status, _) = b.page("/sandbox").await;
    assert_eq!(status, 200);
    let csrf = b.csrf();
    let r = b
        .post_form(
            "/sandbox/customers",
            &[("csrf", &csrf), ("display_name", name)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let id = user_id_for(name);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/sandbox?customer={id}")
    );
    id
}

async fn send(b: &Browser, customer: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let csrf = b.csrf();
    let mut form = vec![("csrf", csrf.as_str()), ("customer", customer)];
    form.extend_from_slice(fields);
    b.post_form("/sandbox/send", &form).await
}

async fn conversation_of(app: &TestApp, user_id: &str) -> i64 {
    eventually(
        "the conversation exists",
        Duration::from_secs(10),
        || async {
            linechat::store::contacts::conversation_by_line_id(app.pool(), user_id)
                .await
                .unwrap()
                .is_some()
        },
    )
    .await;
    linechat::store::contacts::conversation_by_line_id(app.pool(), user_id)
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn a_simulated_customers_text_becomes_an_incoming_message() {
    let app = TestApp::spawn_sandbox().await;
    let b = app.signed_in("amy").await;
    let u = add_customer(&b, "王小明").await;

    let r = send(&b, &u, &[("kind", "text"), ("text", "您好 <b>hi</b>")]).await;
    assert_eq!(r.status(), 303, "a plain form goes back to the page");
    let conv = conversation_of(&app, &u).await;
    let (kind, text): (String, Option<String>) = sqlx::query_as(
        "SELECT kind, text FROM messages WHERE conversation_id = ? AND direction = 'in'",
    )
    .bind(conv)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), text.as_deref()),
        ("text", Some("您好 <b>hi</b>"))
    );
    eventually(
        "the profile was fetched",
        Duration::from_secs(10),
        || async {
            let c = linechat::store::contacts::by_line_id(app.pool(), &u)
                .await
                .unwrap();
            c.is_some_and(|c| c.display_name.as_deref() == Some("王小明"))
        },
    )
    .await;
    let (_, page) = b.page(&format!("/conversations/{conv}")).await;
    assert!(page.contains("您好 &lt;b&gt;hi&lt;/b&gt;"));
    assert!(sandbox(&app).fake.violations().is_empty());
}

#[tokio::test]
async fn stickers_photos_and_follows_arrive_too() {
    let app = TestApp::spawn_sandbox().await;
    let b = app.signed_in("amy").await;
    let u = add_customer(&b, "Amy Customer").await;
    for fields in [
        [("kind", "follow"), ("text", "")],
        [("kind", "sticker"), ("sticker", "446/1988")],
        [("kind", "photo"), ("text", "")],
    ] {
        assert_eq!(send(&b, &u, &fields).await.status(), 303, "{fields:?}");
    }
    let conv = conversation_of(&app, &u).await;
    eventually(
        "the photo was downloaded",
        Duration::from_secs(10),
        || async {
            app.count(
                "SELECT COUNT(*) FROM messages WHERE kind = 'image' AND media_state = 'ready'",
            )
            .await
                == 1
        },
    )
    .await;
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM messages WHERE conversation_id = ? AND direction = 'in' ORDER BY id",
    )
    .bind(conv)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert!(kinds.contains(&"sticker".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"image".to_owned()), "{kinds:?}");
    // An unknown sticker is refused.
    let r = send(&b, &u, &[("kind", "sticker"), ("sticker", "1/1")]).await;
    assert_eq!(r.status(), 400);
    assert!(sandbox(&app).fake.violations().is_empty());
}

#[tokio::test]
async fn an_agents_reply_reaches_the_simulated_customer() {
    let app = TestApp::spawn_sandbox().await;
    let b = app.signed_in("amy").await;
    let u = add_customer(&b, "Bob").await;
    send(&b, &u, &[("kind", "text"), ("text", "where is my order?")]).await;
    let conv = conversation_of(&app, &u).await;

    let (_, page) = b.page(&format!("/conversations/{conv}")).await;
    let nonce = field_value(&page, "nonce").unwrap();
    let csrf = b.csrf();
    let reply = [
        ("csrf", csrf.as_str()),
        ("text", "on its way <i>today</i>"),
        ("nonce", &nonce),
    ];
    let r = b
        .post_form(&format!("/conversations/{conv}/messages"), &reply)
        .await;
    assert_eq!(r.status(), 200);

    let chat = format!("/sandbox/chat?customer={u}");
    eventually(
        "the customer sees the reply",
        Duration::from_secs(10),
        || async {
            b.page(&chat)
                .await
                .1
                .contains("on its way &lt;i&gt;today&lt;/i&gt;")
        },
    )
    .await;
    let (status, view) = b.page(&chat).await;
    assert_eq!(status, 200);
    let mine = view.find("where is my order?").expect("their own message");
    let theirs = view.find("on its way").unwrap();
    assert!(mine < theirs, "in order: {view}");
    // The simulator page shows the same view, polled.
    let (_, page) = b.page(&format!("/sandbox?customer={u}")).await;
    assert!(page.contains("on its way &lt;i&gt;today&lt;/i&gt;"));
    assert!(page.contains(&format!("hx-get=\"{chat}\"")));
}

#[tokio::test]
async fn the_simulator_checks_what_it_is_given() {
    let app = TestApp::spawn_sandbox().await;
    let b = app.signed_in("amy").await;
    let u = add_customer(&b, "Carol").await;
    let csrf = b.csrf();
    for name in ["   ", &"x".repeat(51)] {
        let form = [("csrf", csrf.as_str()), ("display_name", name)];
        let r = b.post_form("/sandbox/customers", &form).await;
        assert_eq!(r.status(), 422, "{name:?}");
    }
    let long = "a".repeat(5001);
    for text in ["", " ", long.as_str()] {
        let r = send(&b, &u, &[("kind", "text"), ("text", text)]).await;
        assert_eq!(r.status(), 422);
    }
    let unknown = user_id_for("nobody");
    let r = send(&b, &unknown, &[("kind", "text"), ("text", "hi")]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_inbox").await, 0);
}

#[tokio::test]
async fn a_simulator_post_without_csrf_is_403() {
    let app = TestApp::spawn_sandbox().await;
    let b = app.signed_in("amy").await;
    let u = add_customer(&b, "Dave").await;
    let form = [("customer", u.as_str()), ("kind", "text"), ("text", "hi")];
    let r = b
        .send(b.request(Method::POST, "/sandbox/send").form_body(&form))
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .send(
            b.request(Method::POST, "/sandbox/customers")
                .form_body(&[("display_name", "Eve")]),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_inbox").await, 0);
    assert!(sandbox(&app).customer(&user_id_for("Eve")).is_none());
}

#[tokio::test]
async fn the_simulator_does_not_exist_with_live_credentials() {
    let app = TestApp::spawn(Bus::Local).await;
    assert!(app.state.sandbox.is_none());
    let b = app.signed_in("amy").await;
    let csrf = b.csrf();
    let u = user_id_for("Amy");
    for path in [
        "/sandbox",
        &format!("/sandbox?customer={u}"),
        &format!("/sandbox/chat?customer={u}"),
    ] {
        assert_eq!(b.page(path).await.0, 404, "{path}");
    }
    let r = b
        .post_form(
            "/sandbox/customers",
            &[("csrf", &csrf), ("display_name", "Amy")],
        )
        .await;
    assert_eq!(r.status(), 404);
    let form = [
        ("csrf", csrf.as_str()),
        ("customer", &u),
        ("kind", "follow"),
    ];
    assert_eq!(b.post_form("/sandbox/send", &form).await.status(), 404);
    // Signed out, too: 404, not a redirect to the login page.
    assert_eq!(app.browser().page("/sandbox").await.0, 404);
}

#[tokio::test]
async fn the_banner_shows_in_sandbox_mode_only() {
    let sandboxed = TestApp::spawn_sandbox().await;
    let b = sandboxed.signed_in("amy").await;
    let (_, inbox) = b.page("/").await;
    assert!(inbox.contains("id=\"sandbox-banner\""), "{inbox}");
    assert!(inbox.contains("no LINE channel connected"));
    assert!(inbox.contains("href=\"/sandbox\""));
    let zh = b
        .send(
            b.request(Method::GET, "/")
                .header("accept-language", "zh-TW"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(zh.contains("沙盒模式"), "{zh}");
    let (_, login) = sandboxed.browser().page("/login").await;
    assert!(login.contains("id=\"sandbox-banner\""));

    let live = TestApp::spawn(Bus::Local).await;
    let b = live.signed_in("amy").await;
    let (_, inbox) = b.page("/").await;
    assert!(!inbox.contains("sandbox-banner"));
    assert!(!inbox.contains("/sandbox"));
}
