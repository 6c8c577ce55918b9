//! The thread as agents see it: every message kind rendered, customers' media served through
//! the authenticated `/media/{id}` route with safe headers, older history paging, and the
//! sticker picker's messages reaching LINE.

use std::time::Duration;

use linechat::store::messages;
use serde_json::{Value, json};

use crate::{
    helpers::{Browser, Bus, TestApp, eventually, field_value},
    line_events::{body, event, from_group, from_user, group, message, user},
};

const WAIT: Duration = Duration::from_secs(10);

async fn by_line_id(app: &TestApp, id: &str) -> Option<messages::Message> {
    sqlx::query_as("SELECT * FROM messages WHERE line_message_id = ?")
        .bind(id)
        .fetch_optional(app.pool())
        .await
        .unwrap()
}

/// Waits for the message LINE knows as `id` to be stored, with its media in `media_state`
/// (`None`: any).
async fn wait_for(app: &TestApp, id: &str, media_state: Option<&str>) -> messages::Message {
    eventually(&format!("message {id} {media_state:?}"), WAIT, || async {
        by_line_id(app, id)
            .await
            .is_some_and(|m| media_state.is_none() || m.media_state.as_deref() == media_state)
    })
    .await;
    by_line_id(app, id).await.unwrap()
}

/// A customer sends one message (content object without id) as LINE message `id`.
async fn customer_sends(app: &TestApp, user_id: &str, id: &str, content: Value) {
    let e = message(from_user(user_id), id, content, &format!("rt-{id}"));
    assert_eq!(app.webhook(&body(vec![e])).await.status(), 200);
}

async fn wait_until_unsent(app: &TestApp, id: &str) {
    eventually(&format!("message {id} unsent"), WAIT, || async {
        by_line_id(app, id)
            .await
            .is_some_and(|m| m.status == "unsent")
    })
    .await;
}

/// A customer sends an image LINE holds as `bytes` of type `mime`; waits until downloaded.
async fn image_downloaded(
    app: &TestApp,
    user_id: &str,
    id: &str,
    mime: &str,
    bytes: &[u8],
) -> messages::Message {
    app.fake.set_content(id, mime, bytes.to_vec(), 0);
    let image = json!({ "type": "image", "contentProvider": { "type": "line" } });
    customer_sends(app, user_id, id, image).await;
    wait_for(app, id, Some("ready")).await
}

async fn get(b: &Browser, path: &str) -> reqwest::Response {
    b.send(b.request(reqwest::Method::GET, path)).await
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn media_is_served_to_signed_in_agents_only_with_safe_headers() {
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(41);
    let jpeg = b"\xff\xd8\xff\xe0 a tiny jpeg".to_vec();
    let image = image_downloaded(&app, &u, "8001", "image/jpeg", &jpeg).await;
    let path = format!("/media/{}", image.id);

    // Signed out: sent to sign in, never the bytes.
    let anon = app.browser();
    let r = get(&anon, &path).await;
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, "location"), "/login");

    let b = app.signed_in("mei").await;
    let r = get(&b, &path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "image/jpeg");
    assert_eq!(header(&r, "content-disposition"), "inline");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert_eq!(header(&r, "cache-control"), "private, no-cache");
    let modified = header(&r, "last-modified").to_owned();
    assert_eq!(r.bytes().await.unwrap().to_vec(), jpeg);
    // Revalidation is cheap (and still needs the session).
    let again = b
        .request(reqwest::Method::GET, &path)
        .header("if-modified-since", &modified);
    assert_eq!(b.send(again).await.status(), 304);

    // Seeking (video players ask for ranges).
    let r = b
        .send(
            b.request(reqwest::Method::GET, &path)
                .header("range", "bytes=0-3"),
        )
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().to_vec(), jpeg[..4].to_vec());

    // Once the customer unsends it, it is gone from the thread and from this route.
    let other = image_downloaded(&app, &u, "8002", "image/jpeg", &jpeg).await;
    assert_eq!(get(&b, &format!("/media/{}", other.id)).await.status(), 200);
    let unsend = event(
        "unsend",
        from_user(&u),
        json!({ "unsend": { "messageId": "8002" } }),
    );
    assert_eq!(app.webhook(&body(vec![unsend])).await.status(), 200);
    wait_until_unsent(&app, "8002").await;
    assert_eq!(get(&b, &format!("/media/{}", other.id)).await.status(), 404);
    let (_, html) = b
        .page(&format!("/conversations/{}", other.conversation_id))
        .await;
    assert!(
        !html.contains(&format!("src=\"/media/{}\"", other.id)),
        "{html}"
    );
    assert!(
        html.contains(&format!("src=\"/media/{}\"", image.id)),
        "{html}"
    );

    // Junk and unknown ids.
    assert_eq!(get(&b, "/media/abc").await.status(), 400);
    assert_eq!(get(&b, "/media/1.5").await.status(), 400);
    assert_eq!(get(&b, "/media/99999999").await.status(), 404);
    assert_eq!(get(&b, "/media/-1").await.status(), 404);
    assert_eq!(get(&b, "/media/..%2F..%2Fetc%2Fpasswd").await.status(), 400);
    // A message without media (the conversation's first text has none).
    let text_id: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE kind = 'text' LIMIT 1")
        .fetch_optional(app.pool())
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(get(&b, &format!("/media/{text_id}")).await.status(), 404);
}

#[tokio::test]
async fn a_path_outside_the_media_directory_is_never_served() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("mei").await;
    let u = user(42);
    let m = image_downloaded(&app, &u, "8101", "image/png", b"\x89PNG real").await;
    let path = format!("/media/{}", m.id);
    assert_eq!(get(&b, &path).await.status(), 200);

    let secret = app.dir.path().join("secret.txt");
    std::fs::write(&secret, b"the store's neighbour").unwrap();
    // A stored path pointing elsewhere, relative or absolute.
    for stored in [
        "secret.txt",
        "media/../secret.txt",
        secret.to_str().unwrap(),
    ] {
        sqlx::query("UPDATE messages SET media_path = ? WHERE id = ?")
            .bind(stored)
            .bind(m.id)
            .execute(app.pool())
            .await
            .unwrap();
        let r = get(&b, &path).await;
        assert_eq!(r.status(), 404, "{stored}");
        assert!(!r.text().await.unwrap().contains("neighbour"));
    }
    // The right path, but the file there is a symlink out of the media directory.
    let right = m.media_path.clone().unwrap();
    sqlx::query("UPDATE messages SET media_path = ? WHERE id = ?")
        .bind(&right)
        .bind(m.id)
        .execute(app.pool())
        .await
        .unwrap();
    let file = app.dir.path().join(&right);
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&secret, &file).unwrap();
    let r = get(&b, &path).await;
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("neighbour"));
}

#[tokio::test]
async fn files_download_as_attachments_under_a_safe_name() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("mei").await;
    let u = user(43);
    // 1.5 MB, as the size shown is what was downloaded.
    let pdf = [b"%PDF-1.7".as_slice(), &vec![b'x'; 1_572_864 - 8]].concat();
    app.fake.set_content("8201", "application/pdf", pdf, 0);
    let hostile = "報價\"單\r\nSet-Cookie: owned=1; x.pdf";
    customer_sends(
        &app,
        &u,
        "8201",
        json!({ "type": "file", "fileName": hostile, "fileSize": 1_572_864 }),
    )
    .await;
    let m = wait_for(&app, "8201", Some("ready")).await;
    let r = get(&b, &format!("/media/{}", m.id)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/pdf");
    assert!(
        r.headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().contains("owned"))
    );
    assert_eq!(
        header(&r, "content-disposition"),
        "attachment; filename=\"____Set-Cookie: owned=1_ x.pdf\"; \
         filename*=UTF-8''%E5%A0%B1%E5%83%B9%22%E5%96%AESet-Cookie%3A%20owned%3D1%3B%20x.pdf"
    );

    // A type that could run in the page (HTML, SVG) is never shown inline.
    let svg = image_downloaded(&app, &u, "8202", "image/svg+xml", b"<svg onload=alert(1)>").await;
    let r = get(&b, &format!("/media/{}", svg.id)).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-disposition").starts_with("attachment;"));

    // The thread shows the file as a download link with its size; CR/LF and markup escaped.
    let (_, html) = b
        .page(&format!("/conversations/{}", m.conversation_id))
        .await;
    assert!(
        html.contains(&format!("href=\"/media/{}\"", m.id)),
        "{html}"
    );
    assert!(html.contains("(1.5 MB)"), "{html}");
    assert!(
        html.contains("報價&quot;單  Set-Cookie: owned=1; x.pdf</span>"),
        "{html}"
    );
}

#[tokio::test]
async fn every_kind_renders_in_the_thread() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("mei").await;
    let u = user(44);
    app.fake
        .set_content("8303", "video/mp4", b"mp4".to_vec(), 0);
    app.fake
        .set_content("8304", "audio/m4a", b"m4a".to_vec(), 0);
    // 8305 has no content at LINE: its download fails. 8306 never becomes ready.
    app.fake
        .set_content("8306", "video/mp4", b"later".to_vec(), 1000);
    let s = || from_user(&u);
    let mut text = json!({ "type": "text", "text": "Hi $ <b>bold</b>" });
    text["emojis"] = json!([{ "index": 3, "length": 1, "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "009" }]);
    let events = vec![
        event(
            "follow",
            s(),
            json!({ "replyToken": "f", "follow": { "isUnblocked": false } }),
        ),
        message(s(), "8301", text, "a"),
        message(
            s(),
            "8302",
            json!({ "type": "sticker", "packageId": "446", "stickerId": "1988", "stickerResourceType": "STATIC", "keywords": ["Happy", "Hi"] }),
            "b",
        ),
        message(
            s(),
            "8303",
            json!({ "type": "video", "duration": 1000, "contentProvider": { "type": "line" } }),
            "c",
        ),
        message(
            s(),
            "8304",
            json!({ "type": "audio", "duration": 1000, "contentProvider": { "type": "line" } }),
            "d",
        ),
        message(
            s(),
            "8305",
            json!({ "type": "image", "contentProvider": { "type": "line" } }),
            "e",
        ),
        message(
            s(),
            "8306",
            json!({ "type": "video", "duration": 1000, "contentProvider": { "type": "line" } }),
            "g",
        ),
        message(
            s(),
            "8307",
            json!({ "type": "image", "contentProvider": { "type": "external", "originalContentUrl": "https://cdn.example.com/a.jpg", "previewImageUrl": "https://cdn.example.com/p.jpg" } }),
            "h",
        ),
        message(
            s(),
            "8308",
            json!({ "type": "image", "contentProvider": { "type": "external", "originalContentUrl": "http://plain.example.com/a.jpg" } }),
            "i",
        ),
        message(
            s(),
            "8309",
            json!({ "type": "location", "title": "台北101", "address": "台北市信義區 <script>", "latitude": 25.0339, "longitude": 121.5645 }),
            "j",
        ),
        event("unfollow", s(), json!({})),
    ];
    assert_eq!(app.webhook(&body(events)).await.status(), 200);
    let video = wait_for(&app, "8303", Some("ready")).await;
    let audio = wait_for(&app, "8304", Some("ready")).await;
    wait_for(&app, "8305", Some("failed")).await;
    wait_for(&app, "8309", None).await;
    eventually("unfollow stored", WAIT, || async {
        app.count("SELECT COUNT(*) FROM messages WHERE kind = 'unfollow'")
            .await
            == 1
    })
    .await;
    let (status, html) = b
        .page(&format!("/conversations/{}", video.conversation_id))
        .await;
    assert_eq!(status, 200);
    let has = |s: &str| assert!(html.contains(s), "missing {s} in {html}");
    // Text with a LINE emoji, the rest escaped.
    has(
        "Hi <img class=\"emoji\" src=\"https://stickershop.line-scdn.net/sticonshop/v1/sticon/5ac1bfd5040ab15980c9b435/iPhone/009.png\" alt=\"$\"",
    );
    has(" &lt;b&gt;bold&lt;/b&gt;");
    // Sticker image from LINE's CDN, keywords as alt text.
    has(
        "<img class=\"sticker\" src=\"https://stickershop.line-scdn.net/stickershop/v1/sticker/1988/android/sticker.png\" alt=\"Happy, Hi\"",
    );
    // Video and audio inline through the media route.
    has(&format!(
        "<video class=\"media\" controls preload=\"metadata\" src=\"/media/{}\"",
        video.id
    ));
    has(&format!(
        "<audio controls preload=\"metadata\" src=\"/media/{}\"",
        audio.id
    ));
    // Failed, still downloading, external over https (linked) and over http (not linked).
    has("could not be downloaded from LINE");
    has("downloading…");
    has("href=\"https://cdn.example.com/a.jpg\"");
    assert!(!html.contains("http://plain.example.com"), "{html}");
    has("kept outside LINE, no secure link");
    // Location with a map link; markup in the address escaped.
    has("<strong>台北101</strong>");
    has("台北市信義區 &lt;script&gt;");
    has("href=\"https://www.google.com/maps/search/?api=1&amp;query=25.0339,121.5645\"");
    // Quiet system lines.
    has("added the account as a friend");
    has("blocked the account");
    // In Traditional Chinese too.
    let r = b
        .send(
            b.request(
                reqwest::Method::GET,
                &format!("/conversations/{}", video.conversation_id),
            )
            .header("accept-language", "zh-TW"),
        )
        .await;
    let zh = r.text().await.unwrap();
    assert!(
        zh.contains("下載中…") && zh.contains("在 Google 地圖開啟"),
        "{zh}"
    );
}

#[tokio::test]
async fn group_messages_show_who_wrote_them() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("mei").await;
    let (g, alice, bob) = (group(5), user(51), user(52));
    let events = vec![
        message(
            from_group(&g, &alice),
            "8401",
            json!({ "type": "text", "text": "from alice" }),
            "a",
        ),
        message(
            from_group(&g, &bob),
            "8402",
            json!({ "type": "text", "text": "from bob" }),
            "b",
        ),
    ];
    assert_eq!(app.webhook(&body(events)).await.status(), 200);
    let m = wait_for(&app, "8402", None).await;
    wait_for(&app, "8401", None).await;
    sqlx::query("UPDATE contacts SET display_name = 'Alice <A>' WHERE line_id = ?")
        .bind(&alice)
        .execute(app.pool())
        .await
        .unwrap();
    // Bob's profile is not known (yet): he is "a member", never his raw LINE id.
    sqlx::query("UPDATE contacts SET display_name = NULL WHERE line_id = ?")
        .bind(&bob)
        .execute(app.pool())
        .await
        .unwrap();
    let (_, html) = b
        .page(&format!("/conversations/{}", m.conversation_id))
        .await;
    let alice_at = html
        .find("<div class=\"sender\">Alice &lt;A&gt;</div>")
        .expect(&html);
    let bob_at = html
        .find("<div class=\"sender\">a member</div>")
        .expect(&html);
    // (`rfind`: the list's preview shows the last text too.)
    assert!(alice_at < html.rfind("from alice").unwrap());
    assert!(bob_at < html.rfind("from bob").unwrap() && bob_at > alice_at);

    // A 1:1 chat names no sender.
    let u = user(53);
    customer_sends(
        &app,
        &u,
        "8403",
        json!({ "type": "text", "text": "just me" }),
    )
    .await;
    let one = wait_for(&app, "8403", None).await;
    let (_, html) = b
        .page(&format!("/conversations/{}", one.conversation_id))
        .await;
    assert!(!html.contains("class=\"sender\""), "{html}");
}

/// Stores `n` customer texts ("m1" … "mn") in a new conversation; returns it and their ids.
async fn long_history(app: &TestApp, n: usize) -> (i64, Vec<i64>) {
    let conv = app.conversation(&user(60)).await;
    let mut ids = Vec::new();
    for i in 1..=n {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (conversation_id, direction, kind, body, text, status, created_at)
             VALUES (?, 'in', 'text', '{}', ?, 'received', 0) RETURNING id",
        )
        .bind(conv)
        .bind(format!("m{i}."))
        .fetch_one(app.pool())
        .await
        .unwrap();
        ids.push(id);
    }
    (conv, ids)
}

fn row_count(html: &str) -> usize {
    html.matches("class=\"msg ").count()
}

#[tokio::test]
async fn older_history_pages_back_to_the_start() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("mei").await;
    // 120 + the conversation's first "hello": 50 shown, then 50, then 21.
    let (conv, ids) = long_history(&app, 120).await;
    let (_, html) = b.page(&format!("/conversations/{conv}")).await;
    assert_eq!(row_count(&html), 50);
    assert!(html.contains("m120.") && html.contains("m71.") && !html.contains("m70."));
    let next = format!("/conversations/{conv}/messages?before={}", ids[70]);
    assert!(
        html.contains(&format!("hx-get=\"{}\"", next.replace('&', "&amp;"))),
        "{html}"
    );
    assert!(html.contains("hx-trigger=\"intersect once\""));

    let r = get(&b, &next).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert_eq!(row_count(&page), 50);
    assert!(
        page.contains("m70.")
            && page.contains("m21.")
            && !page.contains("m20.")
            && !page.contains("m71.")
    );
    let first_of_page = page.find("m21.").unwrap();
    assert!(
        page.find(&format!("before={}", ids[20])).unwrap() < first_of_page,
        "sentinel on top"
    );

    let page = get(
        &b,
        &format!("/conversations/{conv}/messages?before={}", ids[20]),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(row_count(&page), 21);
    assert!(page.contains("m1.") && page.contains("hello"));
    assert!(!page.contains("hx-get"), "no sentinel at the start: {page}");

    // Junk `before`, unknown conversation, signed out.
    for junk in ["abc", "-5", "0", "", "1e3", "99999999999999999999"] {
        let r = get(&b, &format!("/conversations/{conv}/messages?before={junk}")).await;
        assert_eq!(r.status(), 400, "before={junk}");
    }
    assert_eq!(
        get(&b, &format!("/conversations/{conv}/messages"))
            .await
            .status(),
        400
    );
    assert_eq!(
        get(&b, "/conversations/9999999/messages?before=5")
            .await
            .status(),
        404
    );
    let anon = app.browser();
    let r = get(&anon, &format!("/conversations/{conv}/messages?before=5")).await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn the_sticker_picker_sends_a_sticker_line_accepts() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("mei").await;
    let u = user(70);
    let conv = app.conversation(&u).await;
    let (_, html) = b.page(&format!("/conversations/{conv}")).await;
    // The picker offers the default stickers, as images from LINE's CDN.
    assert!(html.contains("class=\"sticker-picker\""), "{html}");
    assert!(html.contains("sticker/52002734/android/sticker.png"));
    assert!(html.contains(&format!("hx-post=\"/conversations/{conv}/stickers\"")));
    let csrf = b.csrf();
    let nonce = field_value(&html, "nonce").unwrap();
    let path = format!("/conversations/{conv}/stickers");
    let form = [
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("package_id", "11537"),
        ("sticker_id", "52002734"),
        ("text", "a draft the agent keeps"),
    ];
    let r = b.post_form(&path, &form).await;
    assert_eq!(r.status(), 200);
    let row = r.text().await.unwrap();
    assert!(
        row.contains("sticker/52002734/android/sticker.png"),
        "{row}"
    );
    assert!(
        row.contains("id=\"composer-nonce\""),
        "a fresh nonce comes back: {row}"
    );
    // The same nonce again (a double click) stores nothing new.
    assert_eq!(b.post_form(&path, &form).await.status(), 200);
    let sent: Vec<messages::Message> =
        sqlx::query_as("SELECT * FROM messages WHERE kind = 'sticker' AND direction = 'out'")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(sent.len(), 1);
    let m = app.wait_status(sent[0].id, "sent").await;
    assert_eq!(m.text, None);
    let delivered = app.fake.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].message,
        json!({ "type": "sticker", "packageId": "11537", "stickerId": "52002734" })
    );
    assert_eq!(delivered[0].to.as_deref(), Some(u.as_str()));
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
    // The list previews it as a sticker.
    let (_, html) = b.page("/").await;
    assert!(html.contains("[sticker]"), "{html}");

    // Stickers not on offer, junk and missing fields: refused, nothing stored.
    for (package, sticker) in [("446", "52002734"), ("1", "1"), ("446", "1988 "), ("", "")] {
        let nonce = format!("n{}", sticker.len() + package.len());
        let form = [
            ("csrf", csrf.as_str()),
            ("nonce", nonce.as_str()),
            ("package_id", package),
            ("sticker_id", sticker),
        ];
        let r = b.post_form(&path, &form).await;
        assert_eq!(r.status(), 400, "{package}/{sticker}");
    }
    let r = b
        .post_form(&path, &[("csrf", &csrf), ("nonce", "x1")])
        .await;
    assert!(r.status().is_client_error());
    // Without the CSRF token, or for an unknown conversation.
    let r = b
        .post_form(
            &path,
            &[
                ("nonce", "x2"),
                ("package_id", "446"),
                ("sticker_id", "1988"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .post_form(
            "/conversations/999999/stickers",
            &[
                ("csrf", &csrf),
                ("nonce", "x3"),
                ("package_id", "446"),
                ("sticker_id", "1988"),
            ],
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out'")
            .await,
        1
    );
}
