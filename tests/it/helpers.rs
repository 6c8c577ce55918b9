//! `TestApp`: a linechat on 127.0.0.1:0 with a temporary data dir, a fake LINE, and the
//! chosen bus; plus small helpers to sign webhooks and wait for eventual outcomes.

use std::{future::Future, net::SocketAddr, time::Duration};

use linechat::{
    app::{self, AppState},
    config::Config,
    line::{fake::FakeLine, webhook::sign},
};
use tempfile::TempDir;

pub const SECRET: &str = "test-channel-secret";
pub const TOKEN: &str = "test-access-token";

/// Which bus a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    Local,
    Redis,
}

/// The Redis to test against, or `None` (and a loud note) when `REDIS_URL` is unset.
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED (Redis variant of {test}): REDIS_URL is not set");
            None
        }
    }
}

/// Declares a test that runs once per bus: `both_buses!(name, |bus| async move { … })`.
#[macro_export]
macro_rules! both_buses {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                ($body)($crate::helpers::Bus::Local).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                if $crate::helpers::redis_url(stringify!($name)).is_some() {
                    ($body)($crate::helpers::Bus::Redis).await;
                }
            }
        }
    };
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub fake: FakeLine,
    pub http: reqwest::Client,
    pub dir: TempDir,
}

impl TestApp {
    pub async fn spawn(bus: Bus) -> Self {
        Self::spawn_with(bus, |_| {}).await
    }

    /// A linechat in sandbox mode (no LINE credentials): it runs its own fake LINE, which is
    /// `state.sandbox`'s; `fake` is then an unused spare.
    pub async fn spawn_sandbox() -> Self {
        Self::spawn_with(Bus::Local, |c| c.line = linechat::config::LineMode::Sandbox).await
    }

    /// Like `spawn`, letting the test adjust the configuration first.
    pub async fn spawn_with(bus: Bus, adjust: impl FnOnce(&mut Config)) -> Self {
        init_test_logging();
        let fake = FakeLine::new(TOKEN);
        let base = fake.spawn().await.expect("fake LINE starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = match bus {
            Bus::Local => None,
            Bus::Redis => Some(std::env::var("REDIS_URL").expect("REDIS_URL for a Redis test")),
        };
        let mut config = Config::for_test(dir.path().to_path_buf(), &base, redis.as_deref());
        adjust(&mut config);
        let state = app::build(config).await.expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(app::run(state.clone(), listener));
        Self {
            addr,
            state,
            fake,
            http: reqwest::Client::new(),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a correctly signed webhook body.
    pub async fn webhook(&self, body: &str) -> reqwest::Response {
        self.http
            .post(self.url("/line/webhook"))
            .header("content-type", "application/json")
            .header("x-line-signature", sign(SECRET, body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .expect("webhook request")
    }

    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.state.store.pool
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .expect(sql)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.state.workers.shutdown.cancel();
    }
}

/// Polls `check` until it is true; panics with `what` after `limit`. This waits for eventual
/// outcomes (a worker's job); it never asserts on speed.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

impl TestApp {
    /// Makes a 1:1 conversation by a customer message, with its reply token already used so
    /// deliveries go by push; returns the conversation id.
    pub async fn conversation(&self, user_id: &str) -> i64 {
        use crate::line_events::{body, text};
        let message_id = format!("{}", rand_id());
        self.webhook(&body(vec![text(user_id, &message_id, "hello")]))
            .await;
        eventually(
            "customer message stored",
            Duration::from_secs(10),
            || async {
                linechat::store::contacts::conversation_by_line_id(self.pool(), user_id)
                    .await
                    .unwrap()
                    .is_some()
            },
        )
        .await;
        sqlx::query("UPDATE messages SET reply_token_state = 'used'")
            .execute(self.pool())
            .await
            .unwrap();
        linechat::store::contacts::conversation_by_line_id(self.pool(), user_id)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    pub async fn message(&self, id: i64) -> linechat::store::messages::Message {
        linechat::store::messages::get(self.pool(), id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits until message `id` reaches `status`.
    pub async fn wait_status(&self, id: i64, status: &str) -> linechat::store::messages::Message {
        eventually(
            &format!("message {id} {status}"),
            Duration::from_secs(20),
            || async { self.message(id).await.status == status },
        )
        .await;
        self.message(id).await
    }
}

fn rand_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 >> 12
}

impl TestApp {
    /// Queues an outgoing text the way the desk does. An enqueue failure (bus down) is
    /// tolerated as there: the row is durable and the sweeper delivers it.
    pub async fn queue_text(&self, conversation_id: i64, text: &str) -> i64 {
        let id = self.store_text(conversation_id, text).await;
        let _ = self
            .state
            .bus
            .enqueue(linechat::bus::Queue::Delivery, vec![id])
            .await;
        id
    }

    /// Stores an outgoing text without enqueueing it (as if its queue entry were lost).
    pub async fn store_text(&self, conversation_id: i64, text: &str) -> i64 {
        let body = serde_json::json!({ "type": "text", "text": text }).to_string();
        let mut tx = self.state.store.write().await.unwrap();
        let (id, _) = linechat::store::direct(&mut tx, |db| {
            linechat::worker::delivery::queue_message(
                db,
                &linechat::store::messages::NewOutgoing {
                    conversation_id,
                    kind: "text",
                    body: &body,
                    text: Some(text),
                    agent_id: None,
                    client_key: None,
                },
            )
        })
        .await
        .unwrap()
        .unwrap();
        tx.commit().await.unwrap();
        let _ = self
            .state
            .bus
            .enqueue(linechat::bus::Queue::Delivery, vec![id])
            .await;
        id
    }
}

/// A browser stand-in for the agent desk: keeps the session cookie, remembers the last CSRF
/// token it saw in a page, never follows redirects (tests look at them).
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
    cookie: std::sync::Mutex<Option<String>>,
    pub csrf: std::sync::Mutex<Option<String>>,
}

impl Browser {
    pub fn get_cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    pub fn set_cookie(&self, value: Option<String>) {
        *self.cookie.lock().unwrap() = value;
    }

    pub fn csrf(&self) -> String {
        self.csrf
            .lock()
            .unwrap()
            .clone()
            .expect("a page with a CSRF token was loaded")
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(c) = self.get_cookie() {
            r = r.header(
                "cookie",
                format!("{}={}", linechat::http::SESSION_COOKIE, c),
            );
        }
        r
    }

    /// Sends and keeps what the response says about the session cookie.
    pub async fn send(&self, r: reqwest::RequestBuilder) -> reqwest::Response {
        let response = r.send().await.expect("request");
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let (pair, attrs) = value.split_once(';').unwrap_or((value, ""));
            let (name, v) = pair.split_once('=').unwrap();
            if name == linechat::http::SESSION_COOKIE {
                let removed = attrs.contains("Max-Age=0") || v.is_empty();
                self.set_cookie((!removed).then(|| v.to_owned()));
            }
        }
        response
    }

    /// GETs a page; returns status and body, remembering its CSRF token.
    pub async fn page(&self, path: &str) -> (reqwest::StatusCode, String) {
        let response = self.send(self.request(reqwest::Method::GET, path)).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        if let Some(token) = field_value(&body, "csrf") {
            *self.csrf.lock().unwrap() = Some(token);
        }
        (status, body)
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(self.request(reqwest::Method::POST, path).form_body(form))
            .await
    }

    /// Signs in through the login form; returns the POST's response.
    pub async fn sign_in(&self, username: &str, password: &str) -> reqwest::Response {
        let (status, _) = self.page("/login").await;
        assert_eq!(status, 200);
        let csrf = self.csrf();
        self.post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

/// The `value` of the first `<input name="NAME" …>` in `html`.
pub fn field_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + 7;
    Some(tag[v..v + tag[v..].find('"')?].to_owned())
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{}", self.addr),
            cookie: Default::default(),
            csrf: Default::default(),
        }
    }

    /// Adds an agent with `PASSWORD`.
    pub async fn add_agent(&self, username: &str) -> i64 {
        self.add_agent_as(username, linechat::store::agents::Role::Agent)
            .await
    }

    /// Adds an agent with `PASSWORD` and the given role.
    pub async fn add_agent_as(&self, username: &str, role: linechat::store::agents::Role) -> i64 {
        let hash = linechat::password::hash(PASSWORD).unwrap();
        linechat::store::agents::create(self.pool(), username, &hash, role)
            .await
            .unwrap()
    }

    /// A browser signed in as a new agent `username`.
    pub async fn signed_in(&self, username: &str) -> Browser {
        self.add_agent(username).await;
        let b = self.browser();
        let r = b.sign_in(username, PASSWORD).await;
        assert_eq!(r.status(), 303, "sign-in redirects");
        let (status, _) = b.page("/").await;
        assert_eq!(status, 200);
        b
    }
}

/// `RequestBuilder::form` needs reqwest's `form` feature, which the crate does not use.
pub trait FormBody {
    fn form_body(self, form: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, form: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("a form encodes"))
    }
}
