//! The ingest worker: every kind of event LINE sends becomes the right rows.

use std::time::Duration;

use linechat::{
    line::fake::{Profile, Via},
    store::{contacts, messages},
};
use serde_json::{Value, json};

use crate::{
    both_buses,
    helpers::{Bus, TestApp, eventually},
    line_events::{self as ev, body, event, from_group, from_user, group, message, text, user},
};

const WAIT: Duration = Duration::from_secs(10);

async fn message_by_line_id(app: &TestApp, id: &str) -> Option<messages::Message> {
    sqlx::query_as("SELECT * FROM messages WHERE line_message_id = ?")
        .bind(id)
        .fetch_optional(app.pool())
        .await
        .unwrap()
}

async fn wait_message(app: &TestApp, id: &str) -> messages::Message {
    eventually(&format!("message {id}"), WAIT, || async {
        message_by_line_id(app, id).await.is_some()
    })
    .await;
    message_by_line_id(app, id).await.unwrap()
}

both_buses!(text_message_with_profile, |bus| async move {
    let app = TestApp::spawn(bus).await;
    let u = user(1);
    app.fake.set_profile(Profile {
        user_id: u.clone(),
        display_name: "王小明".into(),
        picture_url: Some("https://profile.line-scdn.net/abc".into()),
        status_message: Some("hello".into()),
        language: Some("zh-TW".into()),
    });
    let mut e = text(&u, "5001", "你好 (hello)");
    e["message"]["emojis"] = json!([{ "index": 3, "length": 7, "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "001" }]);
    assert_eq!(app.webhook(&body(vec![e])).await.status(), 200);
    let m = wait_message(&app, "5001").await;
    assert_eq!(m.direction, "in");
    assert_eq!(m.kind, "text");
    assert_eq!(m.text.as_deref(), Some("你好 (hello)"));
    assert_eq!(m.mark_as_read_token.as_deref(), Some("r-5001"));
    assert_eq!(m.quote_token.as_deref(), Some("q-5001"));
    assert_eq!(m.reply_token_state.as_deref(), Some("fresh"));
    let body: Value = serde_json::from_str(&m.body).unwrap();
    assert_eq!(body["emojis"][0]["emojiId"], "001");
    eventually("profile fetched", WAIT, || async {
        contacts::by_line_id(app.pool(), &u)
            .await
            .unwrap()
            .unwrap()
            .display_name
            .as_deref()
            == Some("王小明")
    })
    .await;
    let c = contacts::by_line_id(app.pool(), &u).await.unwrap().unwrap();
    assert_eq!(c.language.as_deref(), Some("zh-TW"));
    // The change was announced for live views.
    assert!(
        app.count("SELECT COUNT(*) FROM events WHERE kind = 'contact.updated'")
            .await
            >= 1
    );
    assert!(
        app.count("SELECT COUNT(*) FROM events WHERE kind = 'message.new'")
            .await
            >= 1
    );
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
});

both_buses!(
    media_is_downloaded_and_not_ready_is_retried,
    |bus| async move {
        let app = TestApp::spawn(bus).await;
        let u = user(2);
        app.fake
            .set_content("6001", "image/jpeg", b"\xff\xd8jpegbytes".to_vec(), 0);
        app.fake
            .set_content("6002", "video/mp4", b"mp4bytes".to_vec(), 2);
        let image = message(
            from_user(&u),
            "6001",
            json!({ "type": "image", "contentProvider": { "type": "line" } }),
            "rt1",
        );
        let video = message(
            from_user(&u),
            "6002",
            json!({ "type": "video", "duration": 1000, "contentProvider": { "type": "line" } }),
            "rt2",
        );
        let external = message(
            from_user(&u),
            "6003",
            json!({ "type": "image", "contentProvider": { "type": "external", "originalContentUrl": "https://example.com/a.jpg", "previewImageUrl": "https://example.com/p.jpg" } }),
            "rt3",
        );
        app.webhook(&body(vec![image, video, external])).await;
        for (id, bytes) in [
            ("6001", &b"\xff\xd8jpegbytes"[..]),
            ("6002", &b"mp4bytes"[..]),
        ] {
            eventually(
                &format!("media {id} ready"),
                Duration::from_secs(20),
                || async {
                    message_by_line_id(&app, id)
                        .await
                        .and_then(|m| m.media_state)
                        .as_deref()
                        == Some("ready")
                },
            )
            .await;
            let m = message_by_line_id(&app, id).await.unwrap();
            let saved = std::fs::read(app.dir.path().join(m.media_path.unwrap())).unwrap();
            assert_eq!(saved, bytes);
        }
        let video = message_by_line_id(&app, "6002").await.unwrap();
        assert_eq!(video.media_mime.as_deref(), Some("video/mp4"));
        assert_eq!(
            video.media_attempts, 3,
            "two not-ready answers, then the content"
        );
        let ext = wait_message(&app, "6003").await;
        assert_eq!(ext.media_state.as_deref(), Some("external"));
        assert!(ext.body.contains("https://example.com/a.jpg"));
    }
);

#[tokio::test]
async fn every_message_type_is_stored() {
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(3);
    let s = || from_user(&u);
    app.fake
        .set_content("7004", "audio/m4a", b"m4a".to_vec(), 0);
    app.fake
        .set_content("7005", "application/pdf", b"%PDF".to_vec(), 0);
    let events = vec![
        message(
            s(),
            "7001",
            json!({ "type": "sticker", "packageId": "446", "stickerId": "1988", "stickerResourceType": "STATIC", "keywords": ["happy"] }),
            "a",
        ),
        message(
            s(),
            "7002",
            json!({ "type": "location", "title": "台北101", "address": "台北市信義區", "latitude": 25.0339, "longitude": 121.5645 }),
            "b",
        ),
        message(
            s(),
            "7003",
            json!({ "type": "image", "contentProvider": { "type": "external", "originalContentUrl": "https://example.com/x.jpg" }, "imageSet": { "id": "set1", "index": 1, "total": 2 } }),
            "c",
        ),
        message(
            s(),
            "7004",
            json!({ "type": "audio", "duration": 2000, "contentProvider": { "type": "line" } }),
            "d",
        ),
        message(
            s(),
            "7005",
            json!({ "type": "file", "fileName": "報價單.pdf", "fileSize": 4 }),
            "e",
        ),
        message(s(), "7006", json!({ "type": "hologram", "depth": 3 }), "f"),
    ];
    assert_eq!(app.webhook(&body(events)).await.status(), 200);
    let sticker = wait_message(&app, "7001").await;
    assert_eq!(
        (sticker.kind.as_str(), sticker.text.as_deref()),
        ("sticker", Some("happy"))
    );
    let location = wait_message(&app, "7002").await;
    assert_eq!(location.text.as_deref(), Some("台北101 台北市信義區"));
    assert!(location.body.contains("121.5645"));
    let set = wait_message(&app, "7003").await;
    assert!(set.body.contains("set1"));
    let file = wait_message(&app, "7005").await;
    assert_eq!(file.text.as_deref(), Some("報價單.pdf"));
    let unknown = wait_message(&app, "7006").await;
    assert_eq!(unknown.kind, "hologram");
    eventually("audio and file downloaded", WAIT, || async {
        app.count("SELECT COUNT(*) FROM messages WHERE media_state = 'ready'")
            .await
            == 2
    })
    .await;
}

both_buses!(follow_sends_the_welcome_once_by_reply, |bus| async move {
    let app = TestApp::spawn(bus).await;
    let u = user(4);
    app.fake.add_reply_token("follow-token");
    let follow = event(
        "follow",
        from_user(&u),
        json!({ "replyToken": "follow-token", "follow": { "isUnblocked": false } }),
    );
    app.webhook(&body(vec![follow.clone()])).await;
    app.webhook(&body(vec![follow])).await; // redelivered
    eventually("welcome delivered", WAIT, || async {
        !app.fake.delivered().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = app.fake.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].via, Via::Reply);
    assert_eq!(
        delivered[0].message["text"],
        linechat::config::DEFAULT_WELCOME
    );
    let contact = contacts::by_line_id(app.pool(), &u).await.unwrap().unwrap();
    assert_eq!(contact.follow_state, "following");
    eventually("welcome marked sent", WAIT, || async {
        app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'sent' AND via = 'reply'").await == 1
    })
    .await;

    let unfollow = event("unfollow", from_user(&u), json!({}));
    app.webhook(&body(vec![unfollow])).await;
    eventually("unfollowed", WAIT, || async {
        contacts::by_line_id(app.pool(), &u)
            .await
            .unwrap()
            .unwrap()
            .follow_state
            == "unfollowed"
    })
    .await;
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
});

#[tokio::test]
async fn welcome_can_be_turned_off_and_standby_sends_nothing() {
    let app = TestApp::spawn_with(Bus::Local, |c| c.welcome_message = String::new()).await;
    let follow = event(
        "follow",
        from_user(&user(5)),
        json!({ "replyToken": "t1", "follow": { "isUnblocked": true } }),
    );
    let mut standby = event(
        "follow",
        from_user(&user(6)),
        json!({ "follow": { "isUnblocked": false } }),
    );
    standby["mode"] = json!("standby");
    app.webhook(&body(vec![follow])).await;
    eventually("follow stored", WAIT, || async {
        app.count("SELECT COUNT(*) FROM messages WHERE kind = 'follow'")
            .await
            == 1
    })
    .await;
    let app2 = TestApp::spawn(Bus::Local).await;
    app2.webhook(&body(vec![standby])).await;
    eventually("standby follow stored", WAIT, || async {
        app2.count("SELECT COUNT(*) FROM messages WHERE kind = 'follow'")
            .await
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for a in [&app, &app2] {
        assert_eq!(
            a.count("SELECT COUNT(*) FROM messages WHERE direction = 'out'")
                .await,
            0
        );
        assert!(a.fake.delivered().is_empty());
    }
    let standby_row = app2
        .count("SELECT COUNT(*) FROM messages WHERE reply_token IS NOT NULL")
        .await;
    assert_eq!(
        standby_row, 0,
        "a standby event's reply token is never kept"
    );
}

#[tokio::test]
async fn unsend_marks_the_message_and_keeps_the_row() {
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(8);
    app.webhook(&body(vec![text(&u, "8001", "oops")])).await;
    wait_message(&app, "8001").await;
    let unsend = event(
        "unsend",
        from_user(&u),
        json!({ "unsend": { "messageId": "8001" } }),
    );
    app.webhook(&body(vec![unsend])).await;
    eventually("unsent", WAIT, || async {
        message_by_line_id(&app, "8001").await.unwrap().status == "unsent"
    })
    .await;
    let m = message_by_line_id(&app, "8001").await.unwrap();
    assert_eq!(m.text.as_deref(), Some("oops"), "the record is kept");
    assert!(m.unsent_at.is_some());
}

#[tokio::test]
async fn groups_are_one_conversation_with_identified_members() {
    let app = TestApp::spawn(Bus::Local).await;
    let g = group(1);
    let (a, b, c) = (user(10), user(11), user(12));
    let events = vec![
        event(
            "join",
            json!({ "type": "group", "groupId": g }),
            json!({ "replyToken": "j" }),
        ),
        message(
            from_group(&g, &a),
            "9001",
            json!({ "type": "text", "text": "from a" }),
            "x",
        ),
        message(
            from_group(&g, &b),
            "9002",
            json!({ "type": "text", "text": "from b" }),
            "y",
        ),
        event(
            "memberJoined",
            json!({ "type": "group", "groupId": g }),
            json!({ "replyToken": "z", "joined": { "members": [{ "type": "user", "userId": c }] } }),
        ),
        event(
            "memberLeft",
            json!({ "type": "group", "groupId": g }),
            json!({ "left": { "members": [{ "type": "user", "userId": a }] } }),
        ),
        event(
            "postback",
            from_group(&g, &b),
            json!({ "replyToken": "p", "postback": { "data": "action=buy", "params": { "date": "2026-12-24" } } }),
        ),
    ];
    app.webhook(&body(events)).await;
    eventually("all lines stored", WAIT, || async {
        app.count("SELECT COUNT(*) FROM messages").await == 6
    })
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM conversations").await, 1);
    let m1 = message_by_line_id(&app, "9001").await.unwrap();
    let m2 = message_by_line_id(&app, "9002").await.unwrap();
    assert_ne!(m1.sender_contact_id, m2.sender_contact_id);
    let conv = contacts::conversation_by_line_id(app.pool(), &g)
        .await
        .unwrap()
        .unwrap();
    let members: Vec<String> = contacts::members(app.pool(), conv.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(members, vec![b.clone(), c.clone()]);
    assert_eq!(
        contacts::by_line_id(app.pool(), &g)
            .await
            .unwrap()
            .unwrap()
            .follow_state,
        "joined"
    );
    let postback = app
        .count("SELECT COUNT(*) FROM messages WHERE kind = 'postback' AND text = 'action=buy'")
        .await;
    assert_eq!(postback, 1);
}

#[tokio::test]
async fn unknown_event_types_are_recorded_and_skipped() {
    let app = TestApp::spawn(Bus::Local).await;
    let odd = event(
        "somethingNew",
        from_user(&user(13)),
        json!({ "somethingNew": { "x": 1 } }),
    );
    let beacon = event(
        "beacon",
        from_user(&user(13)),
        json!({ "replyToken": "b", "beacon": { "hwid": "d41d8cd98f", "type": "enter" } }),
    );
    assert_eq!(app.webhook(&body(vec![odd, beacon])).await.status(), 200);
    eventually("inbox rows processed", WAIT, || async {
        app.count("SELECT COUNT(*) FROM webhook_inbox WHERE state = 'done'")
            .await
            == 2
    })
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 0);
    let _ = ev::BOT;
}

#[tokio::test]
async fn a_customer_message_reopens_a_resolved_conversation() {
    let app = TestApp::spawn(Bus::Local).await;
    let u = user(14);
    app.webhook(&body(vec![text(&u, "9101", "first")])).await;
    wait_message(&app, "9101").await;
    sqlx::query("UPDATE conversations SET status = 'resolved'")
        .execute(app.pool())
        .await
        .unwrap();
    app.webhook(&body(vec![text(&u, "9102", "again")])).await;
    wait_message(&app, "9102").await;
    let conv = contacts::conversation_by_line_id(app.pool(), &u)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.status, "open");
}
