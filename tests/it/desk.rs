//! The desk's pages: inbox, thread, reply, retry, and escaping of what customers write.

use std::time::Duration;

use linechat::line::fake::Fault;

use crate::{
    helpers::{Bus, TestApp, eventually, field_value},
    line_events::{body, text, user},
};

#[tokio::test]
async fn a_reply_is_queued_shown_and_reaches_line_once() {
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(70);
    let conv = app.conversation(&u).await;
    let b = app.signed_in("amy").await;
    let (status, page) = b.page(&format!("/conversations/{conv}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("hello"),
        "the customer's message is in the thread"
    );
    let nonce = field_value(&page, "nonce").unwrap();
    let csrf = b.csrf();
    let path = format!("/conversations/{conv}/messages");
    let form = [
        ("csrf", csrf.as_str()),
        ("text", "您好 <b>hi</b>"),
        ("nonce", &nonce),
    ];

    let r = b.post_form(&path, &form).await;
    assert_eq!(r.status(), 200);
    let fragment = r.text().await.unwrap();
    assert!(
        fragment.contains("您好 &lt;b&gt;hi&lt;/b&gt;"),
        "{fragment}"
    );
    assert!(fragment.contains("class=\"status queued\""), "{fragment}");
    let next_nonce = field_value(&fragment, "nonce").expect("a fresh nonce comes back");
    assert_ne!(next_nonce, nonce);

    // A double submit of the same form stores nothing more.
    assert_eq!(b.post_form(&path, &form).await.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out'")
            .await,
        1
    );

    eventually(
        "LINE received the reply",
        Duration::from_secs(10),
        || async { !app.fake.delivered().is_empty() },
    )
    .await;
    let delivered = app.fake.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].to.as_deref(), Some(u.as_str()));
    assert_eq!(delivered[0].message["text"], "您好 <b>hi</b>");
    let id: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE direction = 'out'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    app.wait_status(id, "sent").await;
    let (_, page) = b.page(&format!("/conversations/{conv}")).await;
    assert!(page.contains("class=\"status sent\""));
}

#[tokio::test]
async fn an_empty_or_too_long_reply_is_refused() {
    let app = TestApp::spawn(Bus::Local).await;
    let conv = app.conversation(&user(71)).await;
    let b = app.signed_in("amy").await;
    let (_, page) = b.page(&format!("/conversations/{conv}")).await;
    let nonce = field_value(&page, "nonce").unwrap();
    let csrf = b.csrf();
    let path = format!("/conversations/{conv}/messages");
    let long = "a".repeat(5001);
    for (text, reason) in [
        ("  ", "Write something first."),
        (long.as_str(), "5,000-character limit"),
    ] {
        let r = b
            .post_form(&path, &[("csrf", &csrf), ("text", text), ("nonce", &nonce)])
            .await;
        assert_eq!(r.status(), 422);
        assert_eq!(r.headers()["hx-retarget"], "#composer-error");
        assert!(r.text().await.unwrap().contains(reason));
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_failed_reply_shows_the_reason_and_retry_sends_it() {
    let app = TestApp::spawn(Bus::Local).await;
    let conv = app.conversation(&user(72)).await;
    let b = app.signed_in("amy").await;
    app.fake.inject(
        "/v2/bot/message/push",
        Fault::Status {
            status: 400,
            message: "The request body has 1 error(s)".into(),
            retry_after: None,
        },
    );
    let id = app.queue_text(conv, "will fail once").await;
    app.wait_status(id, "failed").await;
    let (_, page) = b.page(&format!("/conversations/{conv}")).await;
    assert!(page.contains("The request body has 1 error(s)"), "{page}");
    assert!(page.contains(&format!("/messages/{id}/retry")));
    let csrf = b.csrf();
    let r = b
        .post_form(&format!("/messages/{id}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("class=\"status queued\""));
    app.wait_status(id, "sent").await;
    assert_eq!(app.fake.delivered().len(), 1);
}

#[tokio::test]
async fn the_list_shows_newest_activity_first_with_a_preview() {
    let app = TestApp::spawn(Bus::Local).await;
    let older = app.conversation(&user(73)).await;
    let newer = app.conversation(&user(74)).await;
    let b = app.signed_in("amy").await;
    let (_, page) = b.page("/").await;
    let pos = |id: i64| page.find(&format!("id=\"conv-{id}\"")).unwrap();
    assert!(pos(newer) < pos(older));
    assert!(
        page.contains(&user(73)),
        "no display name yet: the LINE id is shown"
    );
    assert!(page.contains(">hello<"), "last-message preview");
}

#[tokio::test]
async fn customer_text_and_names_are_escaped() {
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(75);
    let conv = app.conversation(&u).await;
    app.webhook(&body(vec![text(&u, "97501", "<script>alert(1)</script>")]))
        .await;
    eventually("the message is stored", Duration::from_secs(10), || async {
        app.count("SELECT COUNT(*) FROM messages WHERE text LIKE '<script>%'")
            .await
            == 1
    })
    .await;
    sqlx::query("UPDATE contacts SET display_name = '<img src=x onerror=alert(2)>'")
        .execute(app.pool())
        .await
        .unwrap();
    let b = app.signed_in("amy").await;
    for path in ["/".to_owned(), format!("/conversations/{conv}")] {
        let (_, page) = b.page(&path).await;
        assert!(!page.contains("<script>alert"), "{path}");
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(
            page.contains("&lt;img src=x onerror=alert(2)&gt;"),
            "{path}"
        );
    }
    let (_, page) = b.page(&format!("/conversations/{conv}")).await;
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // And in live fragments.
    let r = b
        .send(b.request(reqwest::Method::GET, "/live/poll?after=0"))
        .await;
    let live = r.text().await.unwrap();
    assert!(
        live.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{live}"
    );
    assert!(!live.contains("<script>alert"));
    assert!(!live.contains("<img src=x"));
}

#[tokio::test]
async fn the_shell_loads_vendored_assets_without_inline_script() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("amy").await;
    let (_, page) = b.page("/").await;
    for src in [
        "/assets/htmx.min.js",
        "/assets/htmx-ext-sse.js",
        "/assets/app.js",
    ] {
        assert!(page.contains(&format!("<script src=\"{src}\"")), "{src}");
        let r = b.send(b.request(reqwest::Method::GET, src)).await;
        assert_eq!(r.status(), 200, "{src}");
    }
    assert_eq!(page.matches("<script").count(), 3, "no inline script");
    assert!(page.contains("hx-headers="), "htmx sends the CSRF token");
}

#[tokio::test]
async fn english_or_traditional_chinese_by_accept_language() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.browser();
    let zh = b
        .send(
            b.request(reqwest::Method::GET, "/login")
                .header("accept-language", "zh-TW,zh;q=0.9"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(zh.contains("登入") && zh.contains("密碼"), "{zh}");
    let en = b
        .send(
            b.request(reqwest::Method::GET, "/login")
                .header("accept-language", "en-US"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(en.contains("Sign in") && !en.contains("登入"));
}
