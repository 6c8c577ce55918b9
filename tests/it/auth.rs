//! Sign-in, sessions, the throttle, first-run setup, CSRF and security headers (promises 5–6).

use crate::helpers::{Bus, FormBody, PASSWORD, TestApp, field_value};

#[tokio::test]
async fn sign_in_with_the_right_password_and_out_again() {
    let app = TestApp::spawn(Bus::Local).await;
    app.add_agent("amy").await;
    let b = app.browser();
    let (_, page) = b.page("/login").await;
    assert!(page.contains("name=\"username\"") && page.contains("name=\"password\""));
    let before = b
        .get_cookie()
        .expect("the login page starts a session for its CSRF token");

    let r = b.sign_in("amy", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(!set.contains("Secure"), "Secure is off in tests: {set}");
    assert!(set.contains("Max-Age=43200"), "12 h idle expiry: {set}");
    let after = b.get_cookie().unwrap();
    assert_ne!(before, after, "the session id is cycled at sign-in");

    let (status, inbox) = b.page("/").await;
    assert_eq!(status, 200);
    assert!(inbox.contains("amy"));
    // The old (pre-sign-in) session id is worth nothing.
    b.set_cookie(Some(before));
    let (status, _) = b.page("/").await;
    assert_eq!(status, 303);
    b.set_cookie(Some(after));

    // The session is a row in the store (so it outlives the process).
    assert!(app.count("SELECT COUNT(*) FROM sessions").await >= 1);

    let csrf = b.csrf();
    let r = b.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let (status, _) = b.page("/").await;
    assert_eq!(status, 303, "signed out");
}

#[tokio::test]
async fn a_deactivated_agent_is_signed_out_at_once() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("amy").await;
    assert_eq!(b.page("/").await.0, 200);
    // As the admin page does it (the signed-in check above left amy in the agents cache).
    let amy = linechat::store::agents::by_username(app.pool(), "amy")
        .await
        .unwrap()
        .unwrap();
    linechat::store::agents::set_active(&app.state.store, amy.id, false)
        .await
        .unwrap();
    let (status, _) = b.page("/").await;
    assert_eq!(status, 303);
    assert_eq!(b.sign_in("amy", PASSWORD).await.status(), 401);
}

#[tokio::test]
async fn a_wrong_password_or_unknown_name_is_refused() {
    let app = TestApp::spawn(Bus::Local).await;
    app.add_agent("amy").await;
    let b = app.browser();
    for (name, password) in [("amy", "wrong password"), ("nobody", PASSWORD)] {
        let r = b.sign_in(name, password).await;
        assert_eq!(r.status(), 401);
        let body = r.text().await.unwrap();
        assert!(body.contains("Wrong username or password."), "{body}");
        let (status, _) = b.page("/").await;
        assert_eq!(status, 303, "still signed out");
    }
}

#[tokio::test]
async fn five_failures_lock_the_account_out_even_with_the_right_password() {
    let app = TestApp::spawn(Bus::Local).await;
    app.add_agent("amy").await;
    let b = app.browser();
    for _ in 0..5 {
        assert_eq!(b.sign_in("amy", "guess").await.status(), 401);
    }
    let r = b.sign_in("amy", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let (status, _) = b.page("/").await;
    assert_eq!(status, 303, "a locked-out sign-in does not sign in");
    // The address is locked out too, for other accounts.
    app.add_agent("bob").await;
    assert_eq!(b.sign_in("bob", PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn pages_send_signed_out_visitors_to_login() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.browser();
    for path in ["/", "/conversations/1"] {
        let r = b.send(b.request(reqwest::Method::GET, path)).await;
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login");
        let r = b
            .send(
                b.request(reqwest::Method::GET, path)
                    .header("hx-request", "true"),
            )
            .await;
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["hx-redirect"], "/login");
    }
    for path in ["/live/poll?after=0", "/live/sse"] {
        let r = b.send(b.request(reqwest::Method::GET, path)).await;
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_once() {
    let app = TestApp::spawn(Bus::Local).await;
    let token = app
        .state
        .auth
        .setup
        .token()
        .expect("no agent: a setup link");
    let b = app.browser();
    let (status, _) = b.page("/setup/not-the-token").await;
    assert_eq!(status, 404);
    let path = format!("/setup/{token}");
    let (status, page) = b.page(&path).await;
    assert_eq!(status, 200);
    let csrf = field_value(&page, "csrf").unwrap();
    let short = b
        .post_form(
            &path,
            &[("csrf", &csrf), ("username", "boss"), ("password", "short")],
        )
        .await;
    assert_eq!(
        short.status(),
        422,
        "a too-short password is refused, the link kept"
    );
    let r = b
        .post_form(
            &path,
            &[
                ("csrf", &csrf),
                ("username", "boss"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (status, _) = b.page("/").await;
    assert_eq!(status, 200, "the new admin is signed in");
    let role: String = sqlx::query_scalar("SELECT role FROM agents WHERE username = 'boss'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(role, "admin");
    let (status, _) = b.page(&path).await;
    assert_eq!(status, 404, "the link is used up");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_stores_nothing() {
    let app = TestApp::spawn(Bus::Local).await;
    let conv = app.conversation(&crate::line_events::user(60)).await;
    let b = app.signed_in("amy").await;
    let path = format!("/conversations/{conv}/messages");
    let (_, page) = b.page(&format!("/conversations/{conv}")).await;
    let nonce = field_value(&page, "nonce").unwrap();
    let outgoing = "SELECT COUNT(*) FROM messages WHERE direction = 'out'";

    let r = b
        .post_form(&path, &[("text", "forged"), ("nonce", &nonce)])
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .post_form(
            &path,
            &[("csrf", "wrong"), ("text", "forged"), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .send(
            b.request(reqwest::Method::POST, &path)
                .header("x-csrf-token", "wrong")
                .form_body(&[("text", "forged"), ("nonce", &nonce)]),
        )
        .await;
    assert_eq!(r.status(), 403);
    // Another session's token is wrong here too.
    let other = app.browser();
    other.page("/login").await;
    let r = b
        .post_form(
            &path,
            &[
                ("csrf", &other.csrf()),
                ("text", "forged"),
                ("nonce", &nonce),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.count(outgoing).await, 0, "nothing stored");

    // The same request with the session's token (as htmx sends it) goes through.
    let r = b
        .send(
            b.request(reqwest::Method::POST, &path)
                .header("x-csrf-token", b.csrf())
                .form_body(&[("text", "real"), ("nonce", &nonce)]),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.count(outgoing).await, 1);

    // Sign-in is protected too (login CSRF).
    let r = app
        .browser()
        .post_form("/login", &[("username", "amy"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.browser();
    for path in ["/login", "/", "/assets/app.js", "/healthz"] {
        let r = b.send(b.request(reqwest::Method::GET, path)).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_throttled() {
    let app = TestApp::spawn_with(Bus::Local, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.add_agent("amy").await;
    app.add_agent("bob").await;
    let b = app.browser();
    let sign_in_from = |from, user, password| sign_in_via(&b, from, user, password);
    for _ in 0..5 {
        assert_eq!(sign_in_from("198.51.100.7", "amy", "guess").await, 401);
    }
    // That client is locked out, for other accounts too...
    assert_eq!(sign_in_from("198.51.100.7", "bob", PASSWORD).await, 429);
    // ...but everyone else behind the same proxy is not.
    assert_eq!(sign_in_from("203.0.113.5", "bob", PASSWORD).await, 303);
    // A client cannot escape by writing its own X-Forwarded-For hop: the proxy appends the
    // real address, and only the rightmost untrusted hop counts.
    assert_eq!(
        sign_in_from("10.9.9.9, 198.51.100.7", "bob", PASSWORD).await,
        429
    );
}

/// Signs in through the form, the request claiming to come through a proxy for `from`.
async fn sign_in_via(
    b: &crate::helpers::Browser,
    from: &str,
    user: &str,
    password: &str,
) -> reqwest::StatusCode {
    let _ = b.page("/login").await;
    let csrf = b.csrf();
    b.send(
        b.request(reqwest::Method::POST, "/login")
            .header("x-forwarded-for", from)
            .form_body(&[("csrf", &csrf), ("username", user), ("password", password)]),
    )
    .await
    .status()
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_ignored() {
    let app = TestApp::spawn(Bus::Local).await;
    app.add_agent("amy").await;
    let b = app.browser();
    for i in 0..5 {
        let from = format!("198.51.100.{i}");
        assert_eq!(sign_in_via(&b, &from, "amy", "guess").await, 401);
    }
    // Five failures from the socket's one address, whatever the header claimed.
    assert_eq!(b.sign_in("amy", PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn errors_are_worded_for_people_and_left_plain_for_programs() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("amy").await;

    // A browser navigation gets a page in its language.
    let r = b
        .send(
            b.request(reqwest::Method::GET, "/conversations/999999")
                .header("accept", "text/html")
                .header("accept-language", "zh-TW"),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("找不到"), "{body}");
    assert!(body.contains("href=\"/\""), "a way back: {body}");

    // htmx gets one line for its toast; a form without its CSRF token says what to do.
    let r = b
        .send(
            b.request(reqwest::Method::POST, "/conversations/1/messages")
                .header("hx-request", "true")
                .header("accept-language", "en")
                .form_body(&[("text", "hi"), ("nonce", "abc")]),
        )
        .await;
    assert_eq!(r.status(), 403);
    let line = r.text().await.unwrap();
    assert!(line.starts_with("Not allowed."), "{line}");
    assert!(!line.contains('<'), "plain text for the toast: {line}");

    // An unknown path, as a page.
    let r = b
        .send(
            b.request(reqwest::Method::GET, "/no/such/page")
                .header("accept", "text/html,*/*"),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Not found"));

    // Programs (LINE, probes, scripts) keep the short plain text.
    let r = reqwest::Client::new()
        .post(app.url("/line/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn a_sign_in_form_session_is_short_lived_a_signed_in_one_is_not() {
    let app = TestApp::spawn(Bus::Local).await;
    app.add_agent("amy").await;
    let b = app.browser();
    let r = b.send(b.request(reqwest::Method::GET, "/login")).await;
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("Max-Age=3600"),
        "an hour for an anonymous form: {set}"
    );
    let r = b.sign_in("amy", PASSWORD).await;
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("Max-Age=43200"),
        "a working day once signed in: {set}"
    );
}
