//! The browser tests' driver: a real linechat (`TestApp`) with one agent, plus a small
//! control server the tests in `e2e/*.test.mjs` call to play LINE's part (post a customer's
//! message, make the next push fail, read what LINE received). It then runs `node --test`
//! on them against headless Chromium and fails if they fail.
//!
//! Without node, `/usr/bin/chromium` or `e2e/node_modules/playwright-core` the test says
//! `SKIPPED e2e: …` and passes, unless `CI` is set: CI must run them, so there it fails.

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use linechat::line::fake::{Fault, Profile};
use serde_json::{Value, json};

use crate::{
    helpers::{Bus, PASSWORD, TestApp},
    line_events::{body, text},
};

const AGENT: &str = "e2e-agent";
/// A second agent, for the tests of working together (same password).
const AGENT2: &str = "e2e-agent2";
/// An admin for `e2e/admin.test.mjs`.
const ADMIN: &str = "e2e-admin";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run; a hung browser fails the test instead of hanging CI.
const RUN_LIMIT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_tests() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("e2e");
    if let Some(missing) = missing_tools(&e2e).await {
        if std::env::var_os("CI").is_some() {
            panic!(
                "e2e: {missing}. CI must run the browser tests: install chromium and run \
                 `npm ci --prefix e2e` (see .ci/run)"
            );
        }
        eprintln!("SKIPPED e2e: {missing}");
        return;
    }

    let app = Arc::new(TestApp::spawn(Bus::Local).await);
    app.add_agent(AGENT).await;
    app.add_agent(AGENT2).await;
    app.add_agent_as(ADMIN, linechat::store::agents::Role::Admin)
        .await;
    let control = spawn_control(app.clone()).await;

    let mut files: Vec<PathBuf> = std::fs::read_dir(&e2e)
        .expect("read e2e/")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no e2e/*.test.mjs files");

    let mut node = tokio::process::Command::new("node");
    node.arg("--test")
        .args(&files)
        .current_dir(&root)
        .env("LINECHAT_URL", app.url(""))
        .env("CONTROL_URL", format!("http://{control}"))
        .env("AGENT_USER", AGENT)
        .env("AGENT2_USER", AGENT2)
        .env("ADMIN_USER", ADMIN)
        .env("AGENT_PASSWORD", PASSWORD)
        .env("ARTIFACTS", e2e.join("artifacts"))
        .env("CHROMIUM", CHROMIUM)
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_LIMIT, node.output())
        .await
        .expect("the browser tests finish in time")
        .expect("node starts");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "browser tests failed ({}); their output is above",
        output.status
    );
}

/// What the browser tests need but this machine lacks, if anything.
async fn missing_tools(e2e: &std::path::Path) -> Option<String> {
    let mut missing = Vec::new();
    let node = tokio::process::Command::new("node")
        .arg("--version")
        .output()
        .await;
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("`node` is not on PATH".to_owned());
    }
    if !std::path::Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    if !e2e.join("node_modules/playwright-core").exists() {
        missing.push("e2e/node_modules/playwright-core is missing (npm ci --prefix e2e)".into());
    }
    (!missing.is_empty()).then(|| missing.join("; "))
}

/// Starts the control server on 127.0.0.1:0; returns its address.
async fn spawn_control(app: Arc<TestApp>) -> std::net::SocketAddr {
    let router = Router::new()
        .route("/webhook-text", post(webhook_text))
        .route("/webhook-message", post(webhook_message))
        .route("/inject-push-failure", post(inject_push_failure))
        .route("/delivered", get(delivered))
        .route("/marked-read", post(marked_read))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind control");
    let addr = listener.local_addr().expect("control addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, (StatusCode, String)> {
    v[name].as_str().ok_or((
        StatusCode::BAD_REQUEST,
        format!("`{name}` (a string) is required"),
    ))
}

/// `{user, name?, text}`: a customer's text message, as LINE would post it. With `name`, LINE
/// knows the customer's profile by that display name. Answers the webhook's status.
async fn webhook_text(
    State(app): State<Arc<TestApp>>,
    Json(v): Json<Value>,
) -> Result<StatusCode, (StatusCode, String)> {
    let user = field(&v, "user")?;
    if let Some(name) = v["name"].as_str() {
        app.fake.set_profile(Profile {
            user_id: user.to_owned(),
            display_name: name.to_owned(),
            ..Profile::default()
        });
    }
    let message_id = (uuid::Uuid::new_v4().as_u64_pair().0 >> 12).to_string();
    let r = app
        .webhook(&body(vec![text(user, &message_id, field(&v, "text")?)]))
        .await;
    Ok(StatusCode::from_u16(r.status().as_u16()).expect("a status"))
}

/// `{user, message}`: a customer's message of any kind (`message` is LINE's content object
/// without `id`). An image's content at LINE is the sandbox photo, so it can be downloaded.
async fn webhook_message(
    State(app): State<Arc<TestApp>>,
    Json(v): Json<Value>,
) -> Result<StatusCode, (StatusCode, String)> {
    let user = field(&v, "user")?;
    let message_id = (uuid::Uuid::new_v4().as_u64_pair().0 >> 12).to_string();
    if v["message"]["type"] == "image" {
        app.fake.set_content(
            &message_id,
            "image/png",
            linechat::sandbox::PHOTO_PNG.to_vec(),
            0,
        );
    }
    let event = crate::line_events::message(
        crate::line_events::from_user(user),
        &message_id,
        v["message"].clone(),
        &format!("rt-{message_id}"),
    );
    let r = app.webhook(&body(vec![event])).await;
    Ok(StatusCode::from_u16(r.status().as_u16()).expect("a status"))
}

/// `{status, message}`: the next push to LINE fails with this status and error message.
async fn inject_push_failure(
    State(app): State<Arc<TestApp>>,
    Json(v): Json<Value>,
) -> Result<StatusCode, (StatusCode, String)> {
    let status = v["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or((StatusCode::BAD_REQUEST, "`status` is required".to_owned()))?;
    app.fake.inject(
        "/v2/bot/message/push",
        Fault::Status {
            status,
            message: field(&v, "message")?.to_owned(),
            retry_after: None,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `{user}`: the mark-as-read tokens LINE received for that customer's messages, in order.
async fn marked_read(
    State(app): State<Arc<TestApp>>,
    Json(v): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT m.line_message_id FROM messages m
         JOIN conversations c ON c.id = m.conversation_id
         JOIN contacts ct ON ct.id = c.contact_id
         WHERE ct.line_id = ? AND m.line_message_id IS NOT NULL",
    )
    .bind(field(&v, "user")?)
    .fetch_all(app.pool())
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let tokens: Vec<String> = ids.iter().map(|id| format!("r-{id}")).collect();
    let marked: Vec<Value> = app
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/bot/chat/markAsRead")
        .map(|r| r.body["markAsReadToken"].clone())
        .filter(|t| t.as_str().is_some_and(|t| tokens.iter().any(|x| x == t)))
        .collect();
    Ok(Json(Value::Array(marked)))
}

/// What LINE accepted for sending: `[{to, via, text, message}]`, oldest first.
async fn delivered(State(app): State<Arc<TestApp>>) -> Json<Value> {
    let list: Vec<Value> = app
        .fake
        .delivered()
        .into_iter()
        .map(|d| json!({ "to": d.to, "via": format!("{:?}", d.via), "text": d.message["text"], "message": d.message }))
        .collect();
    Json(Value::Array(list))
}
