//! Working together: assignment and status (validated, CSRF-checked, logged live), a customer
//! message reopening a conversation, the list's filters and search, and unread counts kept
//! per agent.

use std::time::Duration;

use linechat::store::{agents, conversations, events};

use crate::{
    both_buses,
    helpers::{Browser, TestApp, eventually},
    line_events::{body, text, user},
};

async fn agent_id(app: &TestApp, name: &str) -> i64 {
    agents::by_username(app.pool(), name)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn conv(app: &TestApp, id: i64) -> linechat::store::contacts::Conversation {
    linechat::store::contacts::conversation(app.pool(), id)
        .await
        .unwrap()
        .unwrap()
}

/// POSTs a form the way htmx does: the session's token in `x-csrf-token`.
async fn htmx_post(b: &Browser, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    use crate::helpers::FormBody;
    let r = b
        .request(reqwest::Method::POST, path)
        .header("hx-request", "true")
        .header("x-csrf-token", b.csrf())
        .form_body(form);
    b.send(r).await
}

/// A customer's text message, waited for until stored.
async fn customer_says(app: &TestApp, line_user: &str, words: &str) {
    let before: i64 = app.count("SELECT COUNT(*) FROM messages").await;
    let id = uuid::Uuid::new_v4().as_u64_pair().0 >> 12;
    let r = app
        .webhook(&body(vec![text(line_user, &id.to_string(), words)]))
        .await;
    assert_eq!(r.status(), 200);
    eventually("the message is stored", Duration::from_secs(10), || async {
        app.count("SELECT COUNT(*) FROM messages").await > before
    })
    .await;
}

/// The unread badge of conversation `id` in a rendered list.
fn badge(page: &str, id: i64) -> i64 {
    let row = page
        .find(&format!("id=\"conv-{id}\""))
        .unwrap_or_else(|| panic!("conversation {id} is listed: {page}"));
    let at = row + page[row..].find("class=\"badge\"").expect("a badge");
    let start = at + page[at..].find('>').unwrap() + 1;
    let end = start + page[start..].find('<').unwrap();
    page[start..end].parse().unwrap()
}

fn listed(page: &str, id: i64) -> bool {
    page.contains(&format!("id=\"conv-{id}\""))
}

/// Which of `ids` the list at `path` shows.
async fn which<const N: usize>(b: &Browser, path: &str, ids: [i64; N]) -> [bool; N] {
    let (status, page) = b.page(path).await;
    assert_eq!(status, 200, "{path}");
    ids.map(|c| listed(&page, c))
}

#[tokio::test]
async fn assign_and_status_are_validated_and_stored() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let c = app.conversation(&user(301)).await;
    let amy = app.signed_in("amy").await;
    let bob_id = app.add_agent("bob").await;
    let amy_id = agent_id(&app, "amy").await;
    let assign = format!("/conversations/{c}/assign");
    let status = format!("/conversations/{c}/status");

    let r = htmx_post(&amy, &assign, &[("assignee", "me")]).await;
    assert_eq!(r.status(), 200);
    let head = r.text().await.unwrap();
    assert!(head.contains(&format!("id=\"thread-head-{c}\"")), "{head}");
    assert!(
        head.contains(&format!("<option value=\"{amy_id}\" selected>amy</option>")),
        "{head}"
    );
    assert_eq!(conv(&app, c).await.assignee_id, Some(amy_id));

    let r = htmx_post(&amy, &assign, &[("assignee", &bob_id.to_string())]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(conv(&app, c).await.assignee_id, Some(bob_id));

    // Unknown, malformed, deactivated: 400 and nothing changes.
    sqlx::query("INSERT INTO agents (username, display_name, password_hash, role, active, created_at) VALUES ('gone', 'gone', 'x', 'agent', 0, 0)")
        .execute(app.pool())
        .await
        .unwrap();
    let gone = agent_id(&app, "gone").await.to_string();
    for bad in ["999999", "bob", "-1", "1.5", gone.as_str()] {
        let r = htmx_post(&amy, &assign, &[("assignee", bad)]).await;
        assert_eq!(r.status(), 400, "assignee {bad:?}");
    }
    assert_eq!(htmx_post(&amy, &assign, &[]).await.status(), 400);
    assert_eq!(conv(&app, c).await.assignee_id, Some(bob_id));

    let r = htmx_post(&amy, &assign, &[("assignee", "")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(conv(&app, c).await.assignee_id, None);

    for s in ["pending", "resolved", "open"] {
        let r = htmx_post(&amy, &status, &[("status", s)]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(conv(&app, c).await.status, s);
    }
    for bad in ["closed", "", "OPEN", "open;"] {
        let r = htmx_post(&amy, &status, &[("status", bad)]).await;
        assert_eq!(r.status(), 400, "status {bad:?}");
    }
    assert_eq!(conv(&app, c).await.status, "open");

    // Unknown conversation: 404.
    let r = htmx_post(&amy, "/conversations/987654/status", &[("status", "open")]).await;
    assert_eq!(r.status(), 404);
    let r = htmx_post(&amy, "/conversations/987654/assign", &[("assignee", "me")]).await;
    assert_eq!(r.status(), 404);

    // No CSRF token (or a wrong one): 403, nothing changes.
    let r = amy.post_form(&status, &[("status", "resolved")]).await;
    assert_eq!(r.status(), 403);
    let r = amy
        .send(
            amy.request(reqwest::Method::POST, &assign)
                .header("x-csrf-token", "forged")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("assignee=me"),
        )
        .await;
    assert_eq!(r.status(), 403);
    let now = conv(&app, c).await;
    assert_eq!((now.status.as_str(), now.assignee_id), ("open", None));

    // Signed out: refused.
    let stranger = app.browser();
    let r = stranger
        .send(
            stranger
                .request(reqwest::Method::POST, &status)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("status=resolved"),
        )
        .await;
    assert!(r.status().is_client_error());
    assert_eq!(conv(&app, c).await.status, "open");
}

both_buses!(
    an_assignment_is_live_and_the_same_for_every_agent,
    |bus| async move {
        let app = TestApp::spawn(bus).await;
        let c = app.conversation(&user(302)).await;
        let amy = app.signed_in("amy").await;
        let bob = std::sync::Arc::new(app.signed_in("bob").await);
        let bob_id = agent_id(&app, "bob").await;
        let cursor = events::latest_id(app.pool()).await.unwrap();
        app.state.hub.catch_up().await.unwrap();
        let poll = format!("/live/poll?after={cursor}");
        // Bob's long-poll is usually already holding when Amy assigns (the change then wakes it);
        // if not, it answers at once from the log. Either way it must carry the change.
        let waiting = tokio::spawn({
            let (bob, poll) = (bob.clone(), poll.clone());
            async move { bob.page(&poll).await }
        });

        let r = htmx_post(
            &amy,
            &format!("/conversations/{c}/assign"),
            &[("assignee", &bob_id.to_string())],
        )
        .await;
        assert_eq!(r.status(), 200);
        let logged: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT kind, conversation_id FROM events WHERE id > ?")
                .bind(cursor)
                .fetch_all(app.pool())
                .await
                .unwrap();
        assert_eq!(logged, vec![("conversation.updated".to_owned(), Some(c))]);

        let (status, for_bob) = waiting.await.unwrap();
        assert_eq!(status, 200);
        assert!(for_bob.contains(&format!("id=\"conv-{c}\"")), "{for_bob}");
        assert!(
            for_bob.contains(&format!("data-assignee=\"{bob_id}\"")),
            "{for_bob}"
        );
        assert!(
            for_bob.contains(&format!("id=\"thread-head-{c}\"")),
            "{for_bob}"
        );
        assert!(
            for_bob.contains(&format!("id=\"contact-{c}\"")),
            "{for_bob}"
        );
        // Rendered once for all: no session token, no per-agent count in a live fragment.
        let (_, for_amy) = amy.page(&poll).await;
        assert_eq!(for_amy, for_bob);
        assert!(!for_bob.contains(&amy.csrf()) && !for_bob.contains(&bob.csrf()));

        // Assigning to whom it already is changes nothing and logs nothing.
        let latest = events::latest_id(app.pool()).await.unwrap();
        let r = htmx_post(
            &bob,
            &format!("/conversations/{c}/assign"),
            &[("assignee", "me")],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(events::latest_id(app.pool()).await.unwrap(), latest);
    }
);

#[tokio::test]
async fn a_customer_message_reopens_a_resolved_or_pending_conversation() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let u = user(303);
    let c = app.conversation(&u).await;
    let amy = app.signed_in("amy").await;
    for s in ["resolved", "pending"] {
        let r = htmx_post(
            &amy,
            &format!("/conversations/{c}/status"),
            &[("status", s)],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(conv(&app, c).await.status, s);
        let cursor = events::latest_id(app.pool()).await.unwrap();
        customer_says(&app, &u, "are you there?").await;
        eventually("reopened", Duration::from_secs(10), || async {
            conv(&app, c).await.status == "open"
        })
        .await;
        let (_, live) = amy.page(&format!("/live/poll?after={cursor}")).await;
        assert!(live.contains("data-status=\"open\""), "{live}");
    }
}

#[tokio::test]
async fn the_list_filters_by_assignee_and_status_newest_first() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let mine = app.conversation(&user(311)).await;
    let bobs = app.conversation(&user(312)).await;
    let nobody = app.conversation(&user(313)).await;
    let done = app.conversation(&user(314)).await;
    let amy = app.signed_in("amy").await;
    let bob_id = app.add_agent("bob").await;
    htmx_post(
        &amy,
        &format!("/conversations/{mine}/assign"),
        &[("assignee", "me")],
    )
    .await;
    htmx_post(
        &amy,
        &format!("/conversations/{bobs}/assign"),
        &[("assignee", &bob_id.to_string())],
    )
    .await;
    htmx_post(
        &amy,
        &format!("/conversations/{done}/status"),
        &[("status", "resolved")],
    )
    .await;

    let all = [mine, bobs, nobody, done];
    // Default: everyone's, open.
    assert_eq!(which(&amy, "/", all).await, [true, true, true, false]);
    assert_eq!(
        which(&amy, "/?who=mine", all).await,
        [true, false, false, false]
    );
    assert_eq!(
        which(&amy, "/?who=unassigned", all).await,
        [false, false, true, false]
    );
    assert_eq!(
        which(&amy, "/?status=resolved", all).await,
        [false, false, false, true]
    );
    assert_eq!(
        which(&amy, "/?status=pending", all).await,
        [false, false, false, false]
    );
    assert_eq!(
        which(&amy, "/?who=all&status=any", all).await,
        [true, true, true, true]
    );
    assert_eq!(
        which(&amy, &format!("/conversations/{mine}?who=mine"), all).await,
        [true, false, false, false]
    );

    // Newest activity first.
    let (_, page) = amy.page("/?status=any").await;
    let at = |c: i64| page.find(&format!("id=\"conv-{c}\"")).unwrap();
    assert!(at(done) < at(nobody) && at(nobody) < at(bobs) && at(bobs) < at(mine));

    // Bad filters: 400.
    for q in ["/?who=theirs", "/?status=closed", "/?status=OPEN"] {
        let (status, _) = amy.page(q).await;
        assert_eq!(status, 400, "{q}");
    }

    // The filter bar asks for just the list.
    let r = amy
        .send(
            amy.request(reqwest::Method::GET, "/?who=mine")
                .header("hx-request", "true")
                .header("hx-target", "list-results"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let part = r.text().await.unwrap();
    assert!(
        part.starts_with("<ul id=\"conversation-list\" data-who=\"mine\""),
        "{part}"
    );
    assert!(listed(&part, mine) && !listed(&part, nobody));
}

#[tokio::test]
async fn search_finds_names_and_words_with_wildcards_taken_literally() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let percent = app.conversation(&user(321)).await;
    let plain = app.conversation(&user(322)).await;
    let under = app.conversation(&user(323)).await;
    let named = app.conversation(&user(324)).await;
    customer_says(&app, &user(321), "Is it 50% off?").await;
    customer_says(&app, &user(322), "Is it 500 off? axb").await;
    customer_says(&app, &user(323), "my code is a_b").await;
    sqlx::query("UPDATE contacts SET display_name = '王小明 Ming' WHERE line_id = ?")
        .bind(user(324))
        .execute(app.pool())
        .await
        .unwrap();
    let amy = app.signed_in("amy").await;
    let all = [percent, plain, under, named];
    let find = |q: &str| format!("/?status=any&q={}", urlencode(q));
    assert_eq!(
        which(&amy, &find("50%"), all).await,
        [true, false, false, false]
    );
    assert_eq!(
        which(&amy, &find("a_b"), all).await,
        [false, false, true, false]
    );
    assert_eq!(
        which(&amy, &find("IS IT"), all).await,
        [true, true, false, false]
    );
    assert_eq!(
        which(&amy, &find("小明"), all).await,
        [false, false, false, true]
    );
    assert_eq!(
        which(&amy, &find("hello"), all).await,
        [true, true, true, true]
    );
    assert_eq!(
        which(&amy, &find("  "), all).await,
        [true, true, true, true]
    );
    let (_, page) = amy
        .page(&format!("/?q={}", urlencode("nothing like this")))
        .await;
    assert!(page.contains("No conversation matches."), "{page}");
    let (status, _) = amy.page(&format!("/?q={}", "x".repeat(101))).await;
    assert_eq!(status, 400);
    let found = conversations::list(
        app.pool(),
        &conversations::Filter {
            search: Some("%".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    assert_eq!(
        found.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![percent]
    );
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()
}

#[tokio::test]
async fn unread_counts_are_per_agent() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let u = user(331);
    let c = app.conversation(&u).await;
    let amy = app.signed_in("amy").await;
    let bob = app.signed_in("bob").await;
    let amy_id = agent_id(&app, "amy").await;
    let bob_id = agent_id(&app, "bob").await;

    assert_eq!(badge(&amy.page("/").await.1, c), 1);
    assert_eq!(badge(&bob.page("/").await.1, c), 1);

    // Amy opens it: read, for her only.
    let (status, page) = amy.page(&format!("/conversations/{c}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("data-read=\"1\""), "{page}");
    assert_eq!(badge(&amy.page("/").await.1, c), 0);
    assert_eq!(badge(&bob.page("/").await.1, c), 1);

    customer_says(&app, &u, "second").await;
    customer_says(&app, &u, "third").await;
    let (_, amy_page) = amy.page("/").await;
    assert!(amy_page.contains("data-in-count=\"3\""), "{amy_page}");
    assert_eq!(badge(&amy_page, c), 2);
    assert_eq!(badge(&bob.page("/").await.1, c), 3);
    assert!(
        amy_page.contains(&format!("data-reads=\"{{&quot;{c}&quot;:1}}\"")),
        "{amy_page}"
    );

    // An agent's own replies are not unread.
    app.queue_text(c, "we are on it").await;
    assert_eq!(badge(&bob.page("/").await.1, c), 3);

    // The browser says what it has shown: never past what exists, never backwards.
    let read = format!("/conversations/{c}/read");
    let r = htmx_post(&bob, &read, &[("in_count", "2")]).await;
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, "2".into())
    );
    let r = htmx_post(&bob, &read, &[("in_count", "99")]).await;
    assert_eq!(r.text().await.unwrap(), "3");
    let r = htmx_post(&bob, &read, &[("in_count", "1")]).await;
    assert_eq!(r.text().await.unwrap(), "3");
    for bad in ["-1", "x", ""] {
        let r = htmx_post(&bob, &read, &[("in_count", bad)]).await;
        assert!(r.status().is_client_error(), "{bad:?}");
    }
    assert_eq!(
        htmx_post(&bob, "/conversations/987654/read", &[("in_count", "1")])
            .await
            .status(),
        404
    );
    assert_eq!(badge(&bob.page("/").await.1, c), 0);
    assert_eq!(
        conversations::read_count(app.pool(), amy_id, c)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        conversations::read_count(app.pool(), bob_id, c)
            .await
            .unwrap(),
        3
    );
    // What the browser asks for a row older than the page's read counts.
    assert_eq!(amy.page(&read).await, (reqwest::StatusCode::OK, "1".into()));
    assert_eq!(bob.page(&read).await.1, "3");
    // The page's read counts cover the most recently active conversations; beyond the
    // limit, it says from when on a missing one means "nothing read".
    let other = app.conversation(&user(332)).await;
    amy.page(&format!("/conversations/{other}")).await;
    let (all, after) = conversations::reads(app.pool(), amy_id, 10).await.unwrap();
    assert_eq!((all.len(), after), (2, None));
    let (newest, after) = conversations::reads(app.pool(), amy_id, 1).await.unwrap();
    assert_eq!(newest.keys().copied().collect::<Vec<_>>(), vec![other]);
    assert_eq!(after, Some(conv(&app, other).await.last_activity_at));
}

#[tokio::test]
async fn the_contact_panel_shows_the_profile_escaped() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let u = user(341);
    let c = app.conversation(&u).await;
    sqlx::query(
        "UPDATE contacts SET display_name = '<b>Mia</b>', status_message = '<script>x()</script>',
             picture_url = 'https://profile.line-scdn.net/abc', language = 'zh-TW',
             follow_state = 'following' WHERE line_id = ?",
    )
    .bind(&u)
    .execute(app.pool())
    .await
    .unwrap();
    let amy = app.signed_in("amy").await;
    let (_, page) = amy.page(&format!("/conversations/{c}")).await;
    assert!(page.contains(&format!("id=\"contact-{c}\"")), "{page}");
    assert!(page.contains("&lt;script&gt;x()&lt;/script&gt;"));
    assert!(!page.contains("<script>x()"));
    assert!(page.contains("&lt;b&gt;Mia&lt;/b&gt;"));
    assert!(page.contains("src=\"https://profile.line-scdn.net/abc\""));
    assert!(page.contains(&u) && page.contains("zh-TW") && page.contains(">friend<"));
    assert!(
        page.contains("data-full=\"1\""),
        "first and last seen as <time>"
    );
    // A picture that is not https is not shown.
    sqlx::query("UPDATE contacts SET picture_url = 'javascript:alert(1)' WHERE line_id = ?")
        .bind(&u)
        .execute(app.pool())
        .await
        .unwrap();
    let (_, page) = amy.page(&format!("/conversations/{c}")).await;
    assert!(!page.contains("javascript:alert"));
}

#[tokio::test]
async fn the_desk_speaks_traditional_chinese_too() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let c = app.conversation(&user(351)).await;
    let amy = app.signed_in("amy").await;
    let zh = |path: String| {
        let amy = &amy;
        async move {
            let r = amy
                .send(
                    amy.request(reqwest::Method::GET, &path)
                        .header("accept-language", "zh-TW"),
                )
                .await;
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let page = zh(format!("/conversations/{c}")).await;
    for words in [
        "我的",
        "未指派",
        "處理中",
        "已解決",
        "指派給我",
        "聯絡人",
        "首次聯繫",
        "搜尋名稱與訊息",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    let cursor = events::latest_id(app.pool()).await.unwrap();
    htmx_post(
        &amy,
        &format!("/conversations/{c}/status"),
        &[("status", "pending")],
    )
    .await;
    let live = zh(format!("/live/poll?after={cursor}")).await;
    assert!(live.contains("等待回覆"), "{live}");
}
