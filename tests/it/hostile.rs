//! Hostile input (issue 6, part 5): what an attacker or a broken client can send, each answered
//! with a clear 4xx, nothing half-stored, and the server still serving afterwards. The webhook
//! cases complement tests/it/webhook.rs (signature, size, content type, malformed events);
//! sign-in, CSRF and session cases are in tests/it/auth.rs.

use linechat::line::{fake::Profile, webhook::sign};

use crate::{
    helpers::{Bus, SECRET, TestApp, eventually},
    line_events::{body, text, user},
};

async fn signed(app: &TestApp, payload: Vec<u8>) -> reqwest::Response {
    app.http
        .post(app.url("/line/webhook"))
        .header("content-type", "application/json")
        .header("x-line-signature", sign(SECRET, &payload))
        .body(payload)
        .send()
        .await
        .expect("webhook request")
}

async fn still_serving(app: &TestApp) {
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the server survived");
}

#[tokio::test]
async fn deep_json_non_utf8_and_duplicate_keys_are_400_and_store_nothing() {
    let app = TestApp::spawn(Bus::Local).await;
    let deep = format!(
        r#"{{"destination":"U1","events":[{}{}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut non_utf8 = body(vec![text(&user(1), "8001", "hi")]).into_bytes();
    let at = non_utf8.len() / 2;
    non_utf8.splice(at..at, [0xff, 0xfe, 0xc3]);
    let good = text(&user(1), "8002", "hi");
    let duplicate_keys = format!(r#"{{"destination":"U1","events":[],"events":[{good}]}}"#);
    let mut duplicate_in_event = good.to_string();
    duplicate_in_event.insert_str(1, r#""type":"unfollow","#);
    let duplicate_in_event = format!(r#"{{"destination":"U1","events":[{duplicate_in_event}]}}"#);
    for (what, payload) in [
        ("deep nesting", deep.into_bytes()),
        ("non-UTF-8", non_utf8),
        ("duplicate top-level key", duplicate_keys.into_bytes()),
        ("duplicate key in an event", duplicate_in_event.into_bytes()),
        (
            "a NUL byte",
            b"{\"destination\":\"U1\",\0\"events\":[]}".to_vec(),
        ),
        (
            "truncated",
            b"{\"destination\":\"U1\",\"events\":[{\"type\":".to_vec(),
        ),
    ] {
        let r = signed(&app, payload).await;
        assert_eq!(r.status(), 400, "{what}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_inbox").await, 0);
    still_serving(&app).await;
}

#[tokio::test]
async fn a_signature_header_of_any_shape_is_401() {
    let app = TestApp::spawn(Bus::Local).await;
    let payload = body(vec![text(&user(2), "8101", "hi")]);
    let long = "A".repeat(10_000);
    let values = ["", "=", "not base64!", long.as_str()]
        .map(|s| reqwest::header::HeaderValue::from_str(s).unwrap())
        .into_iter()
        // Bytes that are not UTF-8 at all (allowed on the wire as obs-text).
        .chain([reqwest::header::HeaderValue::from_bytes(b"\xff\xfe=").unwrap()]);
    for signature in values {
        let r = app
            .http
            .post(app.url("/line/webhook"))
            .header("content-type", "application/json")
            .header("x-line-signature", signature)
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_inbox").await, 0);
}

#[tokio::test]
async fn control_characters_and_markup_in_a_profile_stay_text() {
    // A display name with CR/LF (header injection), markup (XSS) and a status message with a
    // script: stored as given, shown escaped, never reaching a response header.
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(3);
    let name = "Eve\r\nSet-Cookie: pwned=1\r\n<img src=x onerror=alert(1)>";
    app.fake.set_profile(Profile {
        user_id: u.clone(),
        display_name: name.to_owned(),
        status_message: Some("<script>alert(2)</script>".to_owned()),
        ..Profile::default()
    });
    let conv = app.conversation(&u).await;
    eventually(
        "profile stored",
        std::time::Duration::from_secs(10),
        || async {
            app.count("SELECT COUNT(*) FROM contacts WHERE display_name LIKE 'Eve%'")
                .await
                == 1
        },
    )
    .await;
    let b = app.signed_in("amy").await;
    for path in ["/".to_owned(), format!("/conversations/{conv}")] {
        let r = b.send(b.request(reqwest::Method::GET, &path)).await;
        assert!(
            r.headers()
                .get_all("set-cookie")
                .iter()
                .all(|v| !v.to_str().unwrap_or("").contains("pwned")),
            "{path}"
        );
        let html = r.text().await.unwrap();
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn ids_in_paths_and_queries_are_validated() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("amy").await;
    for path in [
        "/conversations/abc",
        "/conversations/-1",
        "/conversations/99999999999999999999999",
        "/conversations/1%00",
        "/conversations/..%2F..%2Fetc%2Fpasswd",
        "/live/poll?after=abc",
        "/live/poll?after=1e99",
    ] {
        let r = b.send(b.request(reqwest::Method::GET, path)).await;
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    still_serving(&app).await;
}
