//! The admin page (agents, settings), the LINE touches (mark as read, loading animation)
//! and the per-agent language, through the real router, store file and fake LINE.

use std::time::Duration;

use linechat::store::agents::{self, ChangeError, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Browser, FormBody, PASSWORD, TestApp, eventually};
use crate::line_events::{body, event, from_group, from_user, group, message, text, user};

const WAIT: Duration = Duration::from_secs(10);

async fn agent_id(app: &TestApp, username: &str) -> i64 {
    agents::by_username(app.pool(), username)
        .await
        .unwrap()
        .expect("agent exists")
        .id
}

/// A browser signed in as a new admin `username`.
async fn admin(app: &TestApp, username: &str) -> Browser {
    app.add_agent_as(username, Role::Admin).await;
    sign_in(app, username, PASSWORD).await
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> Browser {
    let b = app.browser();
    let r = b.sign_in(username, password).await;
    assert_eq!(r.status(), 303, "{username} signs in");
    b
}

/// POSTs an admin form from the admin page (with its CSRF token).
async fn admin_post(b: &Browser, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let (status, _) = b.page("/admin").await;
    assert_eq!(status, 200);
    let csrf = b.csrf();
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let r = b.post_form(path, &fields).await;
    (r.status(), r.text().await.unwrap())
}

async fn still_signed_in(b: &Browser) -> bool {
    b.page("/").await.0 == 200
}

#[tokio::test]
async fn only_admins_reach_the_admin_page() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let (status, _) = app.browser().page("/admin").await;
    assert_eq!(status, 303, "signed out: to the sign-in page");

    let agent = app.signed_in("amy").await;
    let (_, inbox) = agent.page("/").await;
    assert!(
        !inbox.contains("href=\"/admin\""),
        "no admin link for agents"
    );
    assert_eq!(agent.page("/admin").await.0, 403);
    let csrf = agent.csrf();
    let r = agent
        .post_form(
            "/admin/agents",
            &[
                ("csrf", &csrf),
                ("username", "sneaky"),
                ("display_name", "Sneaky"),
                ("password", "long enough pass"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        agents::by_username(app.pool(), "sneaky")
            .await
            .unwrap()
            .is_none()
    );

    let boss = admin(&app, "boss").await;
    let (_, inbox) = boss.page("/").await;
    assert!(inbox.contains("href=\"/admin\""), "admins see the link");
    let (status, page) = boss.page("/admin").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("amy") && page.contains("boss"),
        "lists agents"
    );
    assert!(page.contains("/line/webhook"), "shows the webhook URL");
}

#[tokio::test]
async fn an_admin_adds_an_agent_who_can_then_sign_in() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let form = [
        ("username", "mei.lin"),
        ("display_name", "林小美 <b>"),
        ("password", "a fine password"),
        ("role", "agent"),
    ];
    let (status, _) = admin_post(&boss, "/admin/agents", &form).await;
    assert_eq!(status, 303);
    let mei = agents::by_username(app.pool(), "mei.lin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mei.display_name, "林小美 <b>");
    assert_eq!(mei.role, "agent");
    assert!(mei.password_hash.starts_with("$argon2id$"));
    let (_, page) = boss.page("/admin?done=added").await;
    assert!(page.contains("林小美 &lt;b&gt;"), "escaped");
    assert!(page.contains("Agent added."));
    let b = sign_in(&app, "mei.lin", "a fine password").await;
    assert!(still_signed_in(&b).await);
}

#[tokio::test]
async fn bad_new_agents_are_refused_with_the_reason_and_nothing_stored() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    app.add_agent("taken").await;
    let before = app.count("SELECT COUNT(*) FROM agents").await;
    let cases: [(&str, &str, &str, &str, u16, &str); 6] = [
        (
            "",
            "Name",
            "a fine password",
            "agent",
            422,
            "The username must be",
        ),
        (
            "Bad Name",
            "Name",
            "a fine password",
            "agent",
            422,
            "The username must be",
        ),
        (
            "okname",
            "",
            "a fine password",
            "agent",
            422,
            "The display name must be",
        ),
        (
            "okname",
            "Name",
            "short",
            "agent",
            422,
            "at least 8 characters",
        ),
        (
            "okname",
            "Name",
            "a fine password",
            "owner",
            422,
            "Pick a role",
        ),
        (
            "taken",
            "Name",
            "a fine password",
            "agent",
            409,
            "already taken",
        ),
    ];
    for (username, display_name, password, role, status, says) in cases {
        let form = [
            ("username", username),
            ("display_name", display_name),
            ("password", password),
            ("role", role),
        ];
        let (got, page) = admin_post(&boss, "/admin/agents", &form).await;
        assert_eq!(got.as_u16(), status, "{username}/{display_name}/{role}");
        assert!(page.contains(says), "{says} in {page}");
        assert!(
            page.contains(&format!("value=\"{display_name}\"")),
            "form kept"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM agents").await, before);

    // In the admin's own language (header menu), not the browser's.
    let (_, _) = boss.page("/").await;
    let csrf = boss.csrf();
    let r = boss
        .post_form("/me/language", &[("csrf", &csrf), ("language", "zh-TW")])
        .await;
    assert_eq!(r.status(), 303);
    let form = [
        ("username", "x"),
        ("display_name", "Name"),
        ("password", "a fine password"),
        ("role", "agent"),
    ];
    let (got, page) = admin_post(&boss, "/admin/agents", &form).await;
    assert_eq!(got, 422);
    assert!(page.contains("帳號須為 2 到 32 個"), "{page}");

    // Without the CSRF token nothing happens at all.
    let r = boss
        .post_form(
            "/admin/agents",
            &[
                ("username", "nocsrf"),
                ("display_name", "N"),
                ("password", "a fine password"),
                ("role", "agent"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM agents").await, before);
}

#[tokio::test]
async fn a_deactivated_agent_is_signed_out_at_once_and_cannot_sign_in() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let amy = app.signed_in("amy").await;
    let id = agent_id(&app, "amy").await;

    let path = format!("/admin/agents/{id}/active");
    let (status, _) = admin_post(&boss, &path, &[("active", "0")]).await;
    assert_eq!(status, 303);
    let (status, _) = amy.page("/").await;
    assert_eq!(status, 303, "the open session is refused");
    let r = app.browser().sign_in("amy", PASSWORD).await;
    assert_eq!(r.status(), 401, "and signing in again fails");
    let (_, page) = boss.page("/admin").await;
    assert!(page.contains("deactivated"));

    let (status, _) = admin_post(&boss, &path, &[("active", "1")]).await;
    assert_eq!(status, 303);
    let again = sign_in(&app, "amy", PASSWORD).await;
    assert!(still_signed_in(&again).await);

    let (status, _) = admin_post(&boss, &path, &[("active", "maybe")]).await;
    assert_eq!(status, 400);
    let (status, _) = admin_post(&boss, "/admin/agents/999999/active", &[("active", "0")]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn roles_change_but_the_desk_keeps_an_active_admin() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let boss_id = agent_id(&app, "boss").await;
    let amy = app.signed_in("amy").await;
    let amy_id = agent_id(&app, "amy").await;

    // An admin cannot deactivate or demote themselves.
    let (status, page) = admin_post(
        &boss,
        &format!("/admin/agents/{boss_id}/active"),
        &[("active", "0")],
    )
    .await;
    assert_eq!(status, 409);
    assert!(page.contains("cannot deactivate or demote yourself"));
    let (status, _) = admin_post(
        &boss,
        &format!("/admin/agents/{boss_id}/role"),
        &[("role", "agent")],
    )
    .await;
    assert_eq!(status, 409);

    // Promote amy: she reaches the admin page at once.
    let role_path = format!("/admin/agents/{amy_id}/role");
    let (status, _) = admin_post(&boss, &role_path, &[("role", "admin")]).await;
    assert_eq!(status, 303);
    assert_eq!(amy.page("/admin").await.0, 200);
    let (status, _) = admin_post(&boss, &role_path, &[("role", "owner")]).await;
    assert_eq!(status, 422);
    let (status, _) = admin_post(&boss, &role_path, &[("role", "agent")]).await;
    assert_eq!(status, 303);
    assert_eq!(amy.page("/admin").await.0, 403);

    // The last active admin can be neither demoted nor deactivated, by anyone.
    let store = &app.state.store;
    assert!(matches!(
        agents::set_role(store, boss_id, Role::Agent).await,
        Err(ChangeError::LastAdmin)
    ));
    assert!(matches!(
        agents::set_active(store, boss_id, false).await,
        Err(ChangeError::LastAdmin)
    ));
    assert!(still_signed_in(&boss).await);

    // Two admins demoting each other at the same moment: exactly one wins.
    agents::set_role(store, amy_id, Role::Admin).await.unwrap();
    let (a, b) = tokio::join!(
        agents::set_role(store, boss_id, Role::Agent),
        agents::set_role(store, amy_id, Role::Agent),
    );
    assert_eq!(usize::from(a.is_ok()) + usize::from(b.is_ok()), 1);
    let admins = app
        .count("SELECT COUNT(*) FROM agents WHERE role = 'admin' AND active = 1")
        .await;
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn a_password_reset_ends_the_agents_other_sessions() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let boss_elsewhere = sign_in(&app, "boss", PASSWORD).await;
    let amy = app.signed_in("amy").await;
    let amy_phone = sign_in(&app, "amy", PASSWORD).await;
    let amy_id = agent_id(&app, "amy").await;

    let path = format!("/admin/agents/{amy_id}/password");
    let (status, page) = admin_post(&boss, &path, &[("password", "short")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("at least 8 characters"));
    assert!(
        still_signed_in(&amy).await,
        "a refused reset changes nothing"
    );

    let (status, _) = admin_post(&boss, &path, &[("password", "brand new secret")]).await;
    assert_eq!(status, 303);
    assert_eq!(amy.page("/").await.0, 303);
    assert_eq!(amy_phone.page("/").await.0, 303);
    assert_eq!(app.browser().sign_in("amy", PASSWORD).await.status(), 401);
    sign_in(&app, "amy", "brand new secret").await;

    // Resetting one's own: this session carries on, the others end.
    let boss_id = agent_id(&app, "boss").await;
    let own = format!("/admin/agents/{boss_id}/password");
    let (status, _) = admin_post(&boss, &own, &[("password", "boss new secret")]).await;
    assert_eq!(status, 303);
    assert!(still_signed_in(&boss).await);
    assert_eq!(boss_elsewhere.page("/").await.0, 303);
}

#[tokio::test]
async fn the_welcome_message_setting_is_what_a_follow_gets() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let (_, page) = boss.page("/admin").await;
    assert!(
        page.contains("Thanks for adding us!"),
        "the configured default"
    );

    let too_long = "字".repeat(5001);
    let form = [
        ("welcome_message", too_long.as_str()),
        ("mark_as_read", "1"),
    ];
    let (status, page) = admin_post(&boss, "/admin/settings", &form).await;
    assert_eq!(status, 422);
    assert!(page.contains("longer than LINE"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM settings WHERE key <> 'probe'")
            .await,
        0
    );

    let form = [
        (
            "welcome_message",
            "Hello from the settings!\r\nWe reply within the hour.",
        ),
        ("mark_as_read", "1"),
    ];
    let (status, _) = admin_post(&boss, "/admin/settings", &form).await;
    assert_eq!(status, 303);
    let (_, page) = boss.page("/admin").await;
    assert!(!page.contains("name=\"loading_animation\" value=\"1\" checked"));

    let u = user(4242);
    app.fake.add_reply_token("follow-settings");
    let follow = event(
        "follow",
        from_user(&u),
        json!({ "replyToken": "follow-settings", "follow": { "isUnblocked": false } }),
    );
    app.webhook(&body(vec![follow])).await;
    eventually("the welcome reaches LINE", WAIT, || async {
        !app.fake.delivered().is_empty()
    })
    .await;
    let sent = app.fake.delivered();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].message["text"],
        "Hello from the settings!\nWe reply within the hour."
    );
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
}

fn calls(app: &TestApp, path: &str) -> Vec<serde_json::Value> {
    app.fake
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.body)
        .collect()
}

const MARK: &str = "/v2/bot/chat/markAsRead";
const LOADING: &str = "/v2/bot/chat/loading/start";

async fn say(app: &TestApp, user_id: &str, message_id: &str) {
    app.webhook(&body(vec![text(user_id, message_id, "hi")]))
        .await;
    eventually("message stored", WAIT, || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messages WHERE line_message_id = ?")
            .bind(message_id)
            .fetch_one(app.pool())
            .await
            .unwrap()
            == 1
    })
    .await;
}

#[tokio::test]
async fn opening_a_conversation_marks_it_read_once_per_token() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let amy = app.signed_in("amy").await;
    let u = user(7);
    let id = app.conversation(&u).await;
    let first = sqlx::query_scalar::<_, String>(
        "SELECT line_message_id FROM messages WHERE conversation_id = ?",
    )
    .bind(id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    say(&app, &u, "9000001").await;

    let path = format!("/conversations/{id}");
    assert_eq!(amy.page(&path).await.0, 200);
    eventually("mark as read", WAIT, || async {
        !calls(&app, MARK).is_empty()
    })
    .await;
    // The newest token marks the earlier message too; the older one is never sent.
    assert_eq!(
        calls(&app, MARK),
        vec![json!({ "markAsReadToken": "r-9000001" })]
    );
    assert!(!calls(&app, MARK).contains(&json!({ "markAsReadToken": format!("r-{first}") })));

    // Opening again sends nothing new; a new message brings one new call.
    assert_eq!(amy.page(&path).await.0, 200);
    say(&app, &u, "9000002").await;
    assert_eq!(amy.page(&path).await.0, 200);
    eventually("second mark as read", WAIT, || async {
        calls(&app, MARK).len() >= 2
    })
    .await;
    assert_eq!(
        calls(&app, MARK),
        vec![
            json!({ "markAsReadToken": "r-9000001" }),
            json!({ "markAsReadToken": "r-9000002" }),
        ]
    );
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
}

#[tokio::test]
async fn with_the_switch_off_opening_does_not_mark_as_read() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let form = [("welcome_message", ""), ("loading_animation", "1")];
    assert_eq!(admin_post(&boss, "/admin/settings", &form).await.0, 303);
    let u = user(8);
    let id = app.conversation(&u).await;
    assert_eq!(boss.page(&format!("/conversations/{id}")).await.0, 200);
    // The token is still unused: turning the switch on and opening sends exactly it.
    let form = [("welcome_message", ""), ("mark_as_read", "1")];
    assert_eq!(admin_post(&boss, "/admin/settings", &form).await.0, 303);
    assert_eq!(boss.page(&format!("/conversations/{id}")).await.0, 200);
    eventually("mark as read", WAIT, || async {
        !calls(&app, MARK).is_empty()
    })
    .await;
    assert_eq!(calls(&app, MARK).len(), 1);
}

/// POSTs a typing ping the way htmx does (CSRF token in the header).
async fn typing(b: &Browser, conversation_id: i64) -> StatusCode {
    let r = b
        .request(
            Method::POST,
            &format!("/conversations/{conversation_id}/typing"),
        )
        .header("x-csrf-token", b.csrf())
        .header("hx-request", "true");
    b.send(r).await.status()
}

#[tokio::test]
async fn typing_shows_the_loading_animation_in_one_to_one_chats_throttled() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let amy = app.signed_in("amy").await;

    // A group conversation: never.
    let g = group(3);
    app.webhook(&body(vec![message(
        from_group(&g, &user(31)),
        "9100001",
        json!({ "type": "text", "text": "hi all" }),
        "rt-g",
    )]))
    .await;
    eventually("group conversation", WAIT, || async {
        linechat::store::contacts::conversation_by_line_id(app.pool(), &g)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let group_conv = linechat::store::contacts::conversation_by_line_id(app.pool(), &g)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(typing(&amy, group_conv).await, 204);

    let u = user(9);
    let id = app.conversation(&u).await;
    assert_eq!(typing(&amy, id).await, 204);
    eventually("loading call", WAIT, || async {
        !calls(&app, LOADING).is_empty()
    })
    .await;
    // Within the window: answered, but LINE is not asked again.
    assert_eq!(typing(&amy, id).await, 204);
    assert_eq!(typing(&amy, id).await, 204);
    assert_eq!(
        calls(&app, LOADING),
        vec![json!({ "chatId": u, "loadingSeconds": 20 })]
    );
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );

    // Once the window has passed (moved back in the store rather than waited for), again.
    sqlx::query("UPDATE conversations SET loading_started_at = loading_started_at - 10000")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(typing(&amy, id).await, 204);
    eventually("second loading call", WAIT, || async {
        calls(&app, LOADING).len() == 2
    })
    .await;

    // Without the CSRF token: refused; unknown conversation: 404.
    let r = amy.request(Method::POST, &format!("/conversations/{id}/typing"));
    assert_eq!(amy.send(r).await.status(), 403);
    assert_eq!(typing(&amy, 987654).await, 404);
}

#[tokio::test]
async fn with_the_switch_off_typing_calls_nothing() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let form = [("welcome_message", ""), ("mark_as_read", "1")];
    assert_eq!(admin_post(&boss, "/admin/settings", &form).await.0, 303);
    let id = app.conversation(&user(10)).await;
    assert_eq!(typing(&boss, id).await, 204);
    // The handler claims the slot before answering; with the switch off it never does.
    let claimed: Option<i64> =
        sqlx::query_scalar("SELECT loading_started_at FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(claimed, None);
    assert!(calls(&app, LOADING).is_empty());
}

#[tokio::test]
async fn an_agents_language_choice_overrides_the_browser() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let amy = app.signed_in("amy").await;
    let (_, page) = amy.page("/").await;
    assert!(page.contains("<html lang=\"en\"") && page.contains("Conversations"));

    let csrf = amy.csrf();
    let r = amy
        .send(
            amy.request(Method::POST, "/me/language")
                .header("referer", app.url("/conversations/1?x=1"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("csrf={csrf}&language=zh-TW")),
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/conversations/1?x=1");
    let (_, page) = amy.page("/").await;
    assert!(
        page.contains("lang=\"zh-Hant-TW\"") && page.contains("對話"),
        "{page}"
    );
    // Error pages follow it too.
    let r = amy
        .send(
            amy.request(Method::GET, "/conversations/987654")
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("找不到"));

    let csrf = amy.csrf();
    let bad = amy
        .post_form("/me/language", &[("csrf", &csrf), ("language", "fr")])
        .await;
    assert_eq!(bad.status(), 400);
    let stored: Option<String> =
        sqlx::query_scalar("SELECT language FROM agents WHERE username = 'amy'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some("zh-TW"));

    // Back to the browser's choice.
    let r = amy
        .post_form("/me/language", &[("csrf", &csrf), ("language", "")])
        .await;
    assert_eq!(r.status(), 303);
    let (_, page) = amy.page("/").await;
    assert!(page.contains("<html lang=\"en\""));
    // Another agent is unaffected by amy's choice.
    let bob = app.signed_in("bob").await;
    assert!(bob.page("/").await.1.contains("<html lang=\"en\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_live_connections_of_a_deactivated_agent_get_nothing_more() {
    use futures::StreamExt;
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let boss = admin(&app, "boss").await;
    let amy = app.signed_in("amy").await;
    let id = agent_id(&app, "amy").await;
    let cursor = linechat::store::events::latest_id(app.pool())
        .await
        .unwrap();
    let sse = amy
        .send(amy.request(Method::GET, &format!("/live/sse?after={cursor}")))
        .await;
    assert_eq!(sse.status(), 200);
    let poll = tokio::spawn(
        amy.request(Method::GET, &format!("/live/poll?after={cursor}"))
            .send(),
    );

    let path = format!("/admin/agents/{id}/active");
    assert_eq!(admin_post(&boss, &path, &[("active", "0")]).await.0, 303);
    say(&app, &user(77), "9300001").await;

    let mut stream = sse.bytes_stream();
    let mut seen = String::new();
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the stream ends");
    assert!(
        !seen.contains("9300001") && !seen.contains("msg-"),
        "{seen}"
    );
    let answered = tokio::time::timeout(WAIT, poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answered.status(), 401);
}

#[tokio::test]
async fn a_message_read_live_in_the_open_thread_is_marked_read() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let amy = app.signed_in("amy").await;
    let u = user(12);
    let id = app.conversation(&u).await;
    assert_eq!(amy.page(&format!("/conversations/{id}")).await.0, 200);
    eventually("mark on open", WAIT, || async {
        calls(&app, MARK).len() == 1
    })
    .await;

    say(&app, &u, "9400001").await;
    let read = |conversation: i64| {
        let r = amy
            .request(Method::POST, &format!("/conversations/{conversation}/read"))
            .header("x-csrf-token", amy.csrf())
            .form_body(&[("in_count", "2")]);
        amy.send(r)
    };
    // What app.js sends for a customer message read live in the open thread.
    assert_eq!(read(id).await.status(), 200);
    eventually("mark the live message", WAIT, || async {
        calls(&app, MARK).len() == 2
    })
    .await;
    assert_eq!(
        calls(&app, MARK)[1],
        json!({ "markAsReadToken": "r-9400001" })
    );
    assert_eq!(read(987654).await.status(), 404);
    let no_csrf = amy.request(Method::POST, &format!("/conversations/{id}/read"));
    assert_eq!(amy.send(no_csrf).await.status(), 403);
}
