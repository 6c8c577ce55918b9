//! Fake LINE Messaging API server: in-process, stateful and strict. linechat's integration
//! tests and sandbox mode (no real LINE credentials) point their LINE client at it.
//!
//! Built from `LINE_API_NOTES.md` and `line-openapi/messaging-api.yml`. One router serves the
//! paths of both hosts (`api.line.me`, `api-data.line.me`), so one base URL stands in for both.
//!
//! What it checks. Each failure is recorded in [`FakeLine::violations`] (tests assert that it
//! is empty) and answered as LINE would, usually 400 with LINE's error body
//! `{"message", "details":[{"message","property"}]}`:
//! - `Authorization: Bearer <token>` on every request (else 401);
//! - POST bodies are JSON objects sent as `application/json`, at most 2 MB (else 413);
//! - request bodies and message objects against the rule tables below (spec schemas plus the
//!   documented limits: text ≤ 5000 UTF-16 units, https URLs ≤ 2000 chars, ≤ 5 messages...);
//! - `X-Line-Retry-Key` only on push, and only as a hyphenated hex UUID. Reusing an accepted
//!   key gets 409 with the first `sentMessages` and `x-line-accepted-request-id`; nothing is
//!   ever sent twice;
//! - reply tokens: issued by the test ([`FakeLine::add_reply_token`]), one use, 60 s TTL;
//! - user/group/room ids in paths; any endpoint not implemented here gets 404.
//!
//! Not violations, because a correct client can meet them: an expired reply token, unknown
//! profile or content (404), 409 for a reused retry key, and injected faults.
//!
//! Every response carries a fresh `x-line-request-id`. [`Fault`]s simulate 429/5xx, slow
//! answers, and answers lost after LINE executed the request.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

const AUTH_FAILED: &str =
    "Authentication failed. Confirm that the access token in the authorization header is valid.";

/// One request as received. `status` stays 0 until the answer is decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub retry_key: Option<String>,
    pub authorized: bool,
    pub status: u16,
    /// The parsed JSON body, or `Null` when the body is not JSON.
    pub body: Value,
    pub at: Instant,
}

/// One message object LINE accepted for sending.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    pub via: Via,
    pub to: Option<String>,
    pub reply_token: Option<String>,
    pub retry_key: Option<String>,
    pub message: Value,
    pub line_message_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Push,
    Reply,
}

/// A one-shot fault, queued with [`FakeLine::inject`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with LINE's error body `{"message": ...}` and an optional
    /// `Retry-After` header (seconds). The request is not executed.
    Status {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// Sleep, then process normally. Processing goes on even if the client has hung up, as
    /// LINE's would, so the client's retry with the same key may get 409.
    Delay(Duration),
    /// Execute the request, then sleep before answering: LINE sent the messages, but the
    /// answer is lost to the client's timeout.
    DelayAfterExecute(Duration),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub user_id: String,
    pub display_name: String,
    pub picture_url: Option<String>,
    pub status_message: Option<String>,
    pub language: Option<String>,
}

// Field rules are `key:kind` words (`?` = optional; dotted keys reach into objects); the
// kinds are defined in `problem`. Each table line is `name = rules`.
/// Request bodies (spec: PushMessageRequest, ReplyMessageRequest,
/// ShowLoadingAnimationRequest, MarkMessagesAsReadByTokenRequest).
const BODIES: &str = "
    push = to:to messages:messages notificationDisabled:bool? customAggregationUnits:strs?
    reply = replyToken:str messages:messages notificationDisabled:bool?
    loading = chatId:user loadingSeconds:seconds?
    markAsRead = markAsReadToken:str";
/// Message objects by `type` (spec schemas; limits from the docs, notes §7). imagemap,
/// template, flex and coupon are in the spec but never sent by linechat: not checked.
const MESSAGES: &str = "
    text = text:text quoteToken:str? emojis:emojis?
    textV2 = text:text quoteToken:str?
    sticker = packageId:str stickerId:str quoteToken:str?
    image = originalContentUrl:url previewImageUrl:url
    video = originalContentUrl:url previewImageUrl:url trackingId:str?
    audio = originalContentUrl:url duration:int
    location = title:str address:str latitude:lat longitude:lng
    imagemap =
    template =
    flex =
    coupon =";
/// Properties any message may carry (spec: Message, Sender, QuickReply), and Emoji.
const COMMON: &str = "sender.name:name? sender.iconUrl:url? quickReply.items:items?";
const EMOJI: &str = "index:int productId:str emojiId:str";
/// Message types whose `sentMessages` entry gets a `quoteToken` (the quotable ones).
const QUOTABLE: &[&str] = &["text", "textV2", "sticker", "image", "video"];
const NON_EMPTY: &str = "is required and must be a non-empty string";
const HTTPS: &str = "must be an https URL of at most 2000 characters";
const ID: &str = "must be a user, group or room id";
const SECONDS: &str = "must be 5 to 60 in steps of 5";
const NAME: &str = "must be ≤ 20 chars, without the word LINE";
const COUNT: &str = "must be an array of 1 to 5 messages";
const STRINGS: &str = "must be an array of strings";
const NOT_JSON: &str = "must be a JSON object, sent as application/json";

/// The rules for `name` in a table.
fn rules<'t>(table: &'t str, name: &str) -> Option<&'t str> {
    let line = |l: &'t str| l.trim().strip_prefix(name)?.strip_prefix(" =");
    table.lines().find_map(line).map(str::trim)
}

/// What is wrong with `v` (`Null` when absent) as a field of this kind, if anything.
fn problem(kind: &str, v: &Value) -> Option<&'static str> {
    let (kind, optional) = kind.strip_suffix('?').map_or((kind, false), |k| (k, true));
    if optional && v.is_null() {
        return None;
    }
    let (s, n, f, list) = (v.as_str(), v.as_u64(), v.as_f64(), v.as_array());
    let len = list.map_or(usize::MAX, Vec::len);
    let (ok, why) = match kind {
        "str" => (s.is_some_and(|s| !s.is_empty()), NON_EMPTY),
        // Docs: the limit counts UTF-16 code units, so most emoji count as 2.
        "text" if s.is_some_and(|t| t.encode_utf16().count() > 5000) => {
            (false, "longer than 5000 UTF-16 units")
        }
        "text" => (s.is_some_and(|s| !s.is_empty()), NON_EMPTY),
        "url" => (s.is_some_and(is_https), HTTPS),
        "int" => (n.is_some(), "must be a non-negative integer"),
        "lat" => (f.is_some_and(|x| x.abs() <= 90.0), "must be within ±90"),
        "lng" => (f.is_some_and(|x| x.abs() <= 180.0), "must be within ±180"),
        "bool" => (v.is_boolean(), "must be a boolean"),
        "strs" => (
            list.is_some_and(|l| l.iter().all(Value::is_string)),
            STRINGS,
        ),
        "to" => (s.is_some_and(|s| is_line_id(s, "UCR")), ID),
        "user" => (s.is_some_and(|s| is_line_id(s, "U")), "must be a user id"),
        "seconds" => (
            n.is_some_and(|n| n % 5 == 0 && (5..=60).contains(&n)),
            SECONDS,
        ),
        "name" => (s.is_some_and(sender_name), NAME),
        "items" => (len <= 13, "must be an array of at most 13 items"),
        "messages" => ((1..=5).contains(&len), COUNT),
        "emojis" => (list.is_some(), "must be an array"),
        _ => unreachable!("unknown field kind {kind}"),
    };
    (!ok).then_some(why)
}

/// Problems found in one request, as (property, what is wrong). They become LINE's
/// `details[]` and the violation strings.
type Problems = Vec<(String, String)>;

/// Checks `v` against `rules`; properties are named `{at}{key}`.
fn check(at: &str, v: &Value, rules: &str, p: &mut Problems) {
    for rule in rules.split_whitespace() {
        let (key, kind) = rule.split_once(':').expect("rules are key:kind");
        let field = v.pointer(&format!("/{}", key.replace('.', "/")));
        let field = field.unwrap_or(&Value::Null);
        if let Some(why) = problem(kind, field) {
            p.push((format!("{at}{key}"), why.to_owned()));
        }
        for (i, item) in field.as_array().into_iter().flatten().enumerate() {
            match kind.trim_end_matches('?') {
                "messages" => check_message(&format!("messages[{i}]."), item, p),
                "emojis" => check(&format!("{at}emojis[{i}]."), item, EMOJI, p),
                _ => {}
            }
        }
    }
}

fn check_message(at: &str, m: &Value, p: &mut Problems) {
    match rules(MESSAGES, m["type"].as_str().unwrap_or("?")) {
        Some(rules) => check(at, m, &format!("{rules} {COMMON}"), p),
        None => {
            let why = format!("{} is not a known message type", m["type"]);
            p.push((format!("{at}type"), why));
        }
    }
}

#[derive(Debug)]
struct Content {
    content_type: String,
    bytes: Vec<u8>,
    not_ready: u32,
}

#[derive(Debug, Default)]
struct FakeState {
    requests: Vec<Recorded>,
    delivered: Vec<Delivered>,
    violations: Vec<String>,
    faults: VecDeque<(String, Fault)>,
    /// token -> (issued at, used)
    reply_tokens: HashMap<String, (Instant, bool)>,
    reply_ttl: Duration,
    profiles: HashMap<String, Profile>,
    content: HashMap<String, Content>,
    /// retry key -> (request id of the accepted request, its `sentMessages`)
    accepted_keys: HashMap<String, (HeaderValue, Vec<Value>)>,
    executed_keys: HashMap<String, usize>,
    next_message_id: u64,
}

impl FakeState {
    fn violate(&mut self, what: String) {
        tracing::warn!(violation = %what, "fake LINE: spec violation");
        self.violations.push(what);
    }

    /// Records one `Delivered` per message and returns the `sentMessages` entries.
    /// `target` is the push `to` or the reply token.
    fn deliver(&mut self, via: Via, target: &str, key: Option<&str>, body: &Value) -> Vec<Value> {
        let mut sent = Vec::new();
        for message in body["messages"].as_array().into_iter().flatten() {
            self.next_message_id += 1;
            let id = self.next_message_id.to_string();
            let target = Some(target.to_owned());
            let (to, reply_token) = if via == Via::Push {
                (target, None)
            } else {
                (None, target)
            };
            self.delivered.push(Delivered {
                via,
                to,
                reply_token,
                retry_key: key.map(str::to_owned),
                message: message.clone(),
                line_message_id: id.clone(),
            });
            let mut entry = json!({ "id": id });
            if QUOTABLE.contains(&message["type"].as_str().unwrap_or_default()) {
                entry["quoteToken"] = json!(uuid::Uuid::new_v4().simple().to_string());
            }
            sent.push(entry);
        }
        sent
    }
}

/// The fake server. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct FakeLine {
    token: Arc<str>,
    // A std Mutex, never held across an .await: every use is a short synchronous section.
    state: Arc<Mutex<FakeState>>,
}

impl FakeLine {
    /// `access_token`: the bearer token every request must carry.
    pub fn new(access_token: &str) -> Self {
        let state = FakeState {
            reply_ttl: Duration::from_secs(60),
            // LINE message ids are 18-digit numeric strings.
            next_message_id: 600_000_000_000_000_000,
            ..FakeState::default()
        };
        let (token, state) = (access_token.into(), Arc::new(Mutex::new(state)));
        FakeLine { token, state }
    }

    /// Serves both hosts' paths. One fallback handler takes every request, so auth,
    /// recording, faults and the 404 rule apply uniformly. axum's body limit is off so that
    /// oversized bodies are recorded and answered by us.
    pub fn router(&self) -> Router {
        let router = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable());
        router.with_state(self.clone())
    }

    /// Binds 127.0.0.1:0, serves `router()` in a spawned task, returns `http://127.0.0.1:PORT`.
    pub async fn spawn(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "fake LINE server stopped");
            }
        });
        Ok(format!("http://{addr}"))
    }

    /// Every request received (accepted or rejected), in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }
    /// Messages accepted for sending (push + reply), one entry per message object.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.lock().delivered.clone()
    }
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Queue a one-shot fault for the next request whose path starts with `path_prefix`.
    /// The oldest matching fault is used first. Requests failing auth don't consume faults.
    pub fn inject(&self, path_prefix: &str, fault: Fault) {
        let fault = (path_prefix.to_owned(), fault);
        self.lock().faults.push_back(fault);
    }

    pub fn add_reply_token(&self, token: &str) {
        let issued = (Instant::now(), false);
        self.lock().reply_tokens.insert(token.to_owned(), issued);
    }
    pub fn set_reply_token_ttl(&self, ttl: Duration) {
        self.lock().reply_ttl = ttl;
    }

    pub fn set_profile(&self, profile: Profile) {
        let id = profile.user_id.clone();
        self.lock().profiles.insert(id, profile);
    }

    /// The first `not_ready_times` polls of the content or transcoding endpoint for this id
    /// answer "not ready" (202 / `processing`), so a client polling either one gets through.
    pub fn set_content(
        &self,
        message_id: &str,
        content_type: &str,
        bytes: Vec<u8>,
        not_ready_times: u32,
    ) {
        let content_type = content_type.to_owned();
        let content = Content {
            content_type,
            bytes,
            not_ready: not_ready_times,
        };
        self.lock().content.insert(message_id.to_owned(), content);
    }

    /// How many requests with this retry key were executed (must stay <= 1).
    pub fn accepted_by_retry_key(&self, key: &str) -> usize {
        self.lock().executed_keys.get(key).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread must not wedge the fake for everyone else.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `None` if there are no problems; else records them and builds LINE's 400.
    fn rejected(&self, name: &str, p: Problems) -> Option<Response> {
        if p.is_empty() {
            return None;
        }
        let mut st = self.lock();
        let mut details = Vec::new();
        for (property, message) in p {
            st.violate(format!("{name}: {property} {message}"));
            details.push(json!({ "message": message, "property": property }));
        }
        let message = format!("The request has {} error(s)", details.len());
        let body = json!({ "message": message, "details": details });
        Some(json_resp(400, body))
    }

    async fn process(&self, parts: Parts, raw: Bytes, rid: HeaderValue) -> Response {
        let bearer = format!("Bearer {}", self.token);
        let authorized = header_str(&parts.headers, "authorization").is_some_and(|h| h == bearer);
        let (method, path) = (parts.method.as_str(), parts.uri.path());
        let index = {
            let mut st = self.lock();
            st.requests.push(Recorded {
                method: method.to_owned(),
                path: path.to_owned(),
                retry_key: header_str(&parts.headers, "x-line-retry-key"),
                authorized,
                status: 0,
                body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                at: Instant::now(),
            });
            st.requests.len() - 1
        };
        let mut linger = None;
        let resp = if !authorized {
            let what = format!("auth: missing or wrong bearer token on {method} {path}");
            self.lock().violate(what);
            error(401, AUTH_FAILED)
        } else {
            let fault = {
                let mut st = self.lock();
                let pos = st
                    .faults
                    .iter()
                    .position(|(p, _)| path.starts_with(p.as_str()));
                pos.and_then(|i| st.faults.remove(i))
                    .map(|(_, fault)| fault)
            };
            match fault {
                Some(Fault::Status {
                    status,
                    message,
                    retry_after,
                }) => {
                    let mut resp = error(status, &message);
                    if let Some(secs) = retry_after {
                        resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
                    }
                    resp
                }
                Some(Fault::Delay(d)) => {
                    tokio::time::sleep(d).await;
                    self.route(&parts, &raw, &rid)
                }
                Some(Fault::DelayAfterExecute(d)) => {
                    linger = Some(d);
                    self.route(&parts, &raw, &rid)
                }
                None => self.route(&parts, &raw, &rid),
            }
        };
        self.lock().requests[index].status = resp.status().as_u16();
        if let Some(d) = linger {
            tokio::time::sleep(d).await;
        }
        resp
    }

    fn route(&self, parts: &Parts, raw: &[u8], rid: &HeaderValue) -> Response {
        let (method, path) = (parts.method.as_str(), parts.uri.path());
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        let name = match (method, &segs[..]) {
            ("POST", ["v2", "bot", "message", "push"]) => "push",
            ("POST", ["v2", "bot", "message", "reply"]) => "reply",
            ("POST", ["v2", "bot", "chat", "loading", "start"]) => "loading",
            ("POST", ["v2", "bot", "chat", "markAsRead"]) => "markAsRead",
            ("GET", ["v2", "bot", "info"]) => "info",
            ("GET", ["v2", "bot", "profile", _]) => "profile",
            ("GET", ["v2", "bot", "group" | "room", _, "member", _]) => "member",
            ("GET", ["v2", "bot", "group", _, "summary"]) => "summary",
            ("GET", ["v2", "bot", "message", _, "content"]) => "content",
            ("GET", ["v2", "bot", "message", _, "content", "transcoding"]) => "transcoding",
            _ => {
                let what = format!("unknown endpoint {method} {path}");
                self.lock().violate(what);
                return error(404, "Not found");
            }
        };
        let mut p = Problems::new();
        let key = header_str(&parts.headers, "x-line-retry-key");
        // Notes §8: of the endpoints here, only push takes a retry key.
        let key_problem = match &key {
            Some(_) if name != "push" => Some("is only allowed on push"),
            Some(k) if !is_hyphenated_uuid(k) => Some("must be a hex UUID with hyphens"),
            _ => None,
        };
        if let Some(why) = key_problem {
            p.push(("X-Line-Retry-Key".into(), why.into()));
        }
        // Ids in paths: after `profile`/`member` comes a user id, after `group` a group id...
        for w in segs.windows(2) {
            let (prefix, property) = match w[0] {
                "profile" | "member" => ("U", "userId"),
                "group" => ("C", "groupId"),
                "room" => ("R", "roomId"),
                _ => continue,
            };
            if !is_line_id(w[1], prefix) {
                let why = format!("must be {prefix} + 32 lowercase hex");
                p.push((property.into(), why));
            }
        }
        let mut body = Value::Null;
        if let Some(rules) = rules(BODIES, name) {
            if raw.len() > 2 * 1024 * 1024 {
                self.lock().violate(format!("{name}: body over 2 MB"));
                return error(413, "Request Entity Too Large");
            }
            let ct = header_str(&parts.headers, "content-type").unwrap_or_default();
            let mime = ct.split(';').next().unwrap_or_default().trim();
            let json_ct = mime.eq_ignore_ascii_case("application/json");
            match serde_json::from_slice::<Value>(raw) {
                Ok(v @ Value::Object(_)) if json_ct => body = v,
                _ => p.push(("body".into(), NOT_JSON.into())),
            }
            if body.is_object() {
                check("", &body, rules, &mut p);
            }
        }
        if let Some(bad) = self.rejected(name, p) {
            return bad;
        }
        match name {
            "push" => self.push(&body, key, rid),
            "reply" => self.reply(&body),
            "loading" => json_resp(202, json!({})),
            "markAsRead" => json_resp(200, json!({})),
            "info" => json_resp(
                200,
                json!({
                    "userId": "U00000000000000000000000000fa4e11", "basicId": "@fakeline",
                    "displayName": "Fake LINE OA", "chatMode": "chat", "markAsReadMode": "manual",
                }),
            ),
            "profile" => self.profile(segs[3], true),
            "member" => self.profile(segs[5], false),
            "summary" => {
                let group =
                    json!({ "groupId": segs[3], "groupName": format!("Group {:.6}", segs[3]) });
                json_resp(200, group)
            }
            _ => self.content(segs[3], name == "transcoding"),
        }
    }

    fn push(&self, body: &Value, key: Option<String>, rid: &HeaderValue) -> Response {
        // Key lookup and execution under one lock, so concurrent retries cannot both execute.
        let mut st = self.lock();
        if let Some((first_rid, sent)) = key.as_ref().and_then(|k| st.accepted_keys.get(k)) {
            let body =
                json!({ "message": "The retry key is already accepted", "sentMessages": sent });
            let mut resp = json_resp(409, body);
            resp.headers_mut()
                .insert("x-line-accepted-request-id", first_rid.clone());
            return resp;
        }
        let to = body["to"].as_str().unwrap_or_default();
        let sent = st.deliver(Via::Push, to, key.as_deref(), body);
        if let Some(k) = key {
            *st.executed_keys.entry(k.clone()).or_default() += 1;
            st.accepted_keys.insert(k, (rid.clone(), sent.clone()));
        }
        json_resp(200, json!({ "sentMessages": sent }))
    }

    fn reply(&self, body: &Value) -> Response {
        let token = body["replyToken"].as_str().unwrap_or_default();
        let mut st = self.lock();
        let ttl = st.reply_ttl;
        // Err(Some(why)): a client bug, so a violation. Err(None): expired, which a correct
        // client can race into (it then falls back to push), so not a violation.
        let verdict = match st.reply_tokens.get_mut(token) {
            None => Err(Some("was never issued (see add_reply_token)")),
            Some((_, true)) => Err(Some("was already used (replies cannot be retried)")),
            Some((issued, _)) if issued.elapsed() > ttl => Err(None),
            Some((_, used)) => {
                *used = true;
                Ok(())
            }
        };
        if let Err(why) = verdict {
            if let Some(why) = why {
                st.violate(format!("reply: replyToken {why}"));
            }
            return error(400, "Invalid reply token");
        }
        let sent = st.deliver(Via::Reply, token, None, body);
        json_resp(200, json!({ "sentMessages": sent }))
    }

    fn profile(&self, user: &str, full: bool) -> Response {
        let Some(pr) = self.lock().profiles.get(user).cloned() else {
            return error(404, "Not found");
        };
        let mut v = json!({
            "displayName": pr.display_name, "userId": pr.user_id, "pictureUrl": pr.picture_url,
        });
        if full {
            v["statusMessage"] = json!(pr.status_message);
            v["language"] = json!(pr.language);
        }
        // LINE omits absent optional fields rather than sending null.
        if let Some(obj) = v.as_object_mut() {
            obj.retain(|_, x| !x.is_null());
        }
        json_resp(200, v)
    }

    fn content(&self, id: &str, transcoding: bool) -> Response {
        let mut st = self.lock();
        let Some(c) = st.content.get_mut(id) else {
            return error(404, "Not found");
        };
        let ready = c.not_ready == 0;
        c.not_ready = c.not_ready.saturating_sub(1);
        if transcoding {
            let status = if ready { "succeeded" } else { "processing" };
            json_resp(200, json!({ "status": status }))
        } else if ready {
            let content_type = [(header::CONTENT_TYPE, c.content_type.clone())];
            (content_type, c.bytes.clone()).into_response()
        } else {
            StatusCode::ACCEPTED.into_response()
        }
    }
}

async fn handle(State(fake): State<FakeLine>, parts: Parts, raw: Bytes) -> Response {
    let rid = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is ASCII");
    let task_rid = rid.clone();
    // Processing runs in its own task: if the client hangs up (timeout), this handler future
    // is dropped, but LINE would still execute the request, and `Fault::Delay` relies on that.
    let task = tokio::spawn(async move { fake.process(parts, raw, task_rid).await });
    let mut resp = task
        .await
        .unwrap_or_else(|_| error(500, "fake LINE panicked"));
    resp.headers_mut().insert("x-line-request-id", rid);
    resp
}

fn json_resp(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

fn error(status: u16, message: &str) -> Response {
    json_resp(status, json!({ "message": message }))
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// One of `prefixes` (U/C/R) followed by 32 lowercase hex digits.
fn is_line_id(s: &str, prefixes: &str) -> bool {
    let hex = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    let (first, rest) = s.as_bytes().split_first().unwrap_or((&0, &[]));
    prefixes.as_bytes().contains(first) && rest.len() == 32 && rest.iter().all(hex)
}

/// Strictly the 8-4-4-4-12 hex form. `Uuid::try_parse` alone would also take the simple,
/// braced and URN forms, but those are never 36 chars long.
fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// Docs: at most 20 chars, and words such as "LINE" are refused. Only the whole word is
/// flagged, so a name like "Caroline" passes.
fn sender_name(n: &str) -> bool {
    let mut words = n.split(|c: char| !c.is_alphanumeric());
    n.chars().count() <= 20 && !words.any(|w| w.eq_ignore_ascii_case("line"))
}

fn is_https(u: &str) -> bool {
    u.len() > 8 && u.starts_with("https://") && u.chars().count() <= 2000
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::RequestBuilder;

    const TOKEN: &str = "test-token";
    const USER: &str = "U0123456789abcdef0123456789abcdef";
    const GROUP: &str = "Cffffffffffffffffffffffffffffff01";
    const KEY: &str = "123e4567-e89b-12d3-a456-426614174000";
    const PUSH: &str = "/v2/bot/message/push";
    const REPLY: &str = "/v2/bot/message/reply";

    struct Fx {
        fake: FakeLine,
        base: String,
        c: reqwest::Client,
    }

    /// An answer: status, headers, JSON body (or Null).
    struct Ans {
        status: u16,
        h: reqwest::header::HeaderMap,
        v: Value,
    }

    /// A fake on a real port; `timeout_ms` > 0 gives the client a timeout.
    async fn fx(timeout_ms: u64) -> Fx {
        let fake = FakeLine::new(TOKEN);
        let base = fake.spawn().await.unwrap();
        let mut c = reqwest::Client::builder();
        if timeout_ms > 0 {
            c = c.timeout(Duration::from_millis(timeout_ms));
        }
        let c = c.build().unwrap();
        Fx { fake, base, c }
    }

    impl Fx {
        fn post(&self, path: &str, key: Option<&str>, body: Value) -> RequestBuilder {
            let rb = self.c.post(format!("{}{path}", self.base));
            let rb = rb.bearer_auth(TOKEN).json(&body);
            key.into_iter()
                .fold(rb, |rb, k| rb.header("X-Line-Retry-Key", k))
        }
        async fn push(&self, key: Option<&str>, messages: Value) -> Ans {
            let body = json!({ "to": USER, "messages": messages });
            send(self.post(PUSH, key, body)).await
        }
        async fn reply(&self, token: &str) -> Ans {
            let body = json!({ "replyToken": token, "messages": [text("hi")] });
            send(self.post(REPLY, None, body)).await
        }
        async fn get(&self, path: &str) -> Ans {
            send(
                self.c
                    .get(format!("{}{path}", self.base))
                    .bearer_auth(TOKEN),
            )
            .await
        }
        fn violations(&self) -> Vec<String> {
            self.fake.violations()
        }
        fn delivered(&self) -> Vec<Delivered> {
            self.fake.delivered()
        }
    }

    async fn send(rb: RequestBuilder) -> Ans {
        let r = rb.send().await.unwrap();
        let (status, h) = (r.status().as_u16(), r.headers().clone());
        let v = r.json().await.unwrap_or(Value::Null);
        Ans { status, h, v }
    }

    fn text(t: &str) -> Value {
        json!({ "type": "text", "text": t })
    }

    fn ids(a: &Ans) -> Vec<&str> {
        let sent = a.v["sentMessages"].as_array().unwrap();
        sent.iter().map(|m| m["id"].as_str().unwrap()).collect()
    }

    #[tokio::test]
    async fn push_ok() {
        let f = fx(0).await;
        let sticker = json!({ "type": "sticker", "packageId": "1", "stickerId": "2" });
        let a = f.push(None, json!([text("hi"), sticker])).await;
        assert_eq!((a.status, ids(&a).len()), (200, 2));
        let rid = a.h["x-line-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(rid).is_ok());
        assert!(ids(&a).iter().all(|id| id.parse::<u64>().is_ok()));
        assert!(a.v["sentMessages"][1]["quoteToken"].is_string());
        let d = f.delivered();
        assert_eq!((d.len(), d[0].via), (2, Via::Push));
        assert_eq!(d[0].to.as_deref(), Some(USER));
        assert_eq!(d[1].message["stickerId"], "2");
        assert_eq!(d[1].line_message_id, ids(&a)[1]);
        let r = &f.fake.requests()[0];
        assert_eq!((r.status, r.authorized), (200, true));
        assert_eq!(r.body["to"], USER);
        assert!(f.violations().is_empty(), "{:?}", f.violations());
    }

    #[tokio::test]
    async fn same_retry_key_twice_is_409_with_first_ids() {
        let f = fx(0).await;
        let first = f.push(Some(KEY), json!([text("once")])).await;
        let again = f.push(Some(KEY), json!([text("once")])).await;
        assert_eq!((first.status, again.status), (200, 409));
        assert_eq!(ids(&again), ids(&first));
        let first_rid = &first.h["x-line-request-id"];
        assert_eq!(&again.h["x-line-accepted-request-id"], first_rid);
        assert_ne!(&again.h["x-line-request-id"], first_rid);
        assert_eq!(again.v["message"], "The retry key is already accepted");
        assert_eq!(f.fake.accepted_by_retry_key(KEY), 1);
        assert_eq!(f.delivered().len(), 1);
        assert!(f.violations().is_empty());
    }

    #[tokio::test]
    async fn bad_retry_keys_are_rejected() {
        let f = fx(0).await;
        let simple = "123e4567e89b12d3a456426614174000";
        let misplaced = "123e4567e-89b-12d3-a456-42661417400";
        for key in ["not-a-uuid", simple, misplaced] {
            let a = f.push(Some(key), json!([text("x")])).await;
            assert_eq!(a.status, 400);
            assert_eq!(a.v["details"][0]["property"], "X-Line-Retry-Key");
        }
        // A retry key is refused on reply, even with a good token...
        f.fake.add_reply_token("tok");
        let body = json!({ "replyToken": "tok", "messages": [text("x")] });
        assert_eq!(send(f.post(REPLY, Some(KEY), body)).await.status, 400);
        assert_eq!((f.violations().len(), f.delivered().len()), (4, 0));
        // ...and that rejected reply did not use the token up.
        assert_eq!(f.reply("tok").await.status, 200);
    }

    #[tokio::test]
    async fn reply_tokens_are_one_use_and_expire() {
        let f = fx(0).await;
        f.fake.add_reply_token("tok1");
        assert_eq!(f.reply("tok1").await.status, 200);
        for token in ["tok1", "never-issued"] {
            let a = f.reply(token).await;
            assert_eq!(a.status, 400);
            assert_eq!(a.v, json!({ "message": "Invalid reply token" }));
        }
        assert_eq!(f.violations().len(), 2);
        // Expired: refused, but not a violation (a correct client can race the TTL).
        f.fake.set_reply_token_ttl(Duration::from_millis(20));
        f.fake.add_reply_token("tok2");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(f.reply("tok2").await.status, 400);
        assert_eq!(f.violations().len(), 2);
        let d = f.delivered();
        assert_eq!((d.len(), d[0].via), (1, Via::Reply));
        assert_eq!(d[0].reply_token.as_deref(), Some("tok1"));
    }

    #[tokio::test]
    async fn text_length_counts_utf16_units() {
        let f = fx(0).await;
        let ok = f.push(None, json!([text(&"😀".repeat(2500))])).await;
        assert_eq!(ok.status, 200);
        let long = f.push(None, json!([text(&"😀".repeat(2501))])).await;
        assert_eq!(long.status, 400);
        assert_eq!(long.v["details"][0]["property"], "messages[0].text");
        let want = "push: messages[0].text longer than 5000 UTF-16 units";
        assert_eq!(f.violations(), [want]);
        assert_eq!(f.delivered().len(), 1);
    }

    #[tokio::test]
    async fn bad_requests_are_violations() {
        let f = fx(0).await;
        let bad = [
            json!([{ "type": "image", "originalContentUrl": "http://x", "previewImageUrl": "https://x" }]),
            json!([{ "type": "text", "text": "$", "emojis": [{ "index": 0, "productId": "p" }] }]),
            json!([{ "type": "text", "text": "x", "sender": { "name": "LINE support" } }]),
            json!([{ "type": "carousel" }]),
            json!([]),
            json!([text("")]),
        ];
        for (i, messages) in bad.into_iter().enumerate() {
            assert_eq!(f.push(None, messages).await.status, 400, "case {i}");
        }
        let wrong_to = json!({ "to": "Uabc", "messages": [text("x")] });
        assert_eq!(send(f.post(PUSH, None, wrong_to)).await.status, 400);
        let form = f.c.post(format!("{}{PUSH}", f.base)).bearer_auth(TOKEN);
        assert_eq!(send(form.body("to=U1")).await.status, 400);
        let loading = "/v2/bot/chat/loading/start";
        let secs = |s: u64| json!({ "chatId": USER, "loadingSeconds": s });
        assert_eq!(send(f.post(loading, None, secs(7))).await.status, 400);
        assert_eq!(send(f.post(loading, None, secs(10))).await.v, json!({}));
        assert_eq!(f.get("/v2/bot/message/quota").await.status, 404);
        let v = f.violations();
        assert_eq!(v.len(), 10, "{v:?}");
        let emoji = "push: messages[0].emojis[0].emojiId is required";
        assert!(v[1].starts_with(emoji), "{}", v[1]);
        assert_eq!(v[9], "unknown endpoint GET /v2/bot/message/quota");
        assert!(f.delivered().is_empty());
    }

    #[tokio::test]
    async fn missing_or_wrong_auth_is_401() {
        let f = fx(0).await;
        let url = format!("{}/v2/bot/info", f.base);
        let a = send(f.c.get(&url)).await;
        assert_eq!((a.status, &a.v["message"]), (401, &json!(AUTH_FAILED)));
        assert!(a.h.contains_key("x-line-request-id"));
        assert_eq!(send(f.c.get(&url).bearer_auth("no")).await.status, 401);
        assert_eq!(f.violations().len(), 2);
        let reqs = f.fake.requests();
        assert!(reqs.iter().all(|r| !r.authorized && r.status == 401));
        assert_eq!(f.get("/v2/bot/info").await.status, 200);
    }

    #[tokio::test]
    async fn injected_429_then_success() {
        let f = fx(0).await;
        let message = "The API rate limit has been exceeded. Try again later.";
        let retry_after = Some(3);
        let fault = Fault::Status {
            status: 429,
            message: message.into(),
            retry_after,
        };
        f.fake.inject(PUSH, fault);
        let a = f.push(Some(KEY), json!([text("x")])).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.h["retry-after"], "3");
        assert_eq!(a.v, json!({ "message": message }));
        assert!(f.delivered().is_empty());
        assert_eq!(f.push(Some(KEY), json!([text("x")])).await.status, 200);
        assert_eq!(f.fake.accepted_by_retry_key(KEY), 1);
        assert!(f.violations().is_empty());
    }

    #[tokio::test]
    async fn delay_still_executes_after_client_timeout() {
        let f = fx(100).await;
        f.fake
            .inject(PUSH, Fault::Delay(Duration::from_millis(300)));
        let body = json!({ "to": USER, "messages": [text("slow")] });
        let lost = f.post(PUSH, Some(KEY), body.clone()).send().await;
        assert!(lost.unwrap_err().is_timeout());
        assert!(f.delivered().is_empty(), "Delay sleeps before executing");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(f.delivered().len(), 1);
        assert_eq!(send(f.post(PUSH, Some(KEY), body)).await.status, 409);
        assert_eq!(f.fake.accepted_by_retry_key(KEY), 1);
    }

    #[tokio::test]
    async fn delay_after_execute_loses_the_answer() {
        let f = fx(100).await;
        let fault = Fault::DelayAfterExecute(Duration::from_millis(500));
        f.fake.inject(PUSH, fault);
        let body = json!({ "to": USER, "messages": [text("lost")] });
        let lost = f.post(PUSH, Some(KEY), body.clone()).send().await;
        assert!(lost.unwrap_err().is_timeout());
        let d = f.delivered();
        assert_eq!(d.len(), 1, "executed before the delay");
        let retry = send(f.post(PUSH, Some(KEY), body)).await;
        assert_eq!(
            (retry.status, ids(&retry)),
            (409, vec![&*d[0].line_message_id])
        );
        assert_eq!(f.delivered().len(), 1);
        assert_eq!(f.fake.accepted_by_retry_key(KEY), 1);
    }

    #[tokio::test]
    async fn content_not_ready_then_ready() {
        let f = fx(0).await;
        f.fake.set_content("100", "image/jpeg", vec![0xff, 0xd8], 2);
        let url = format!("{}/v2/bot/message/100/content", f.base);
        for status in [202, 202, 200] {
            let r = f.c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(r.status().as_u16(), status);
            let ct = r.headers().get("content-type").cloned();
            assert_eq!(ct.is_some(), status == 200);
            let ready = (Some("image/jpeg".parse().unwrap()), vec![0xff, 0xd8]);
            let got = (ct, r.bytes().await.unwrap().to_vec());
            assert_eq!(got, if status == 200 { ready } else { (None, vec![]) });
        }
        f.fake.set_content("200", "video/mp4", vec![1], 1);
        let transcoding = "/v2/bot/message/200/content/transcoding";
        for want in ["processing", "succeeded"] {
            assert_eq!(f.get(transcoding).await.v["status"], want);
        }
        assert_eq!(f.get("/v2/bot/message/200/content").await.status, 200);
        assert_eq!(f.get("/v2/bot/message/999/content").await.status, 404);
        assert!(f.violations().is_empty());
    }

    #[tokio::test]
    async fn profiles() {
        let f = fx(0).await;
        let profile = format!("/v2/bot/profile/{USER}");
        let a = f.get(&profile).await;
        assert_eq!((a.status, a.v), (404, json!({ "message": "Not found" })));
        f.fake.set_profile(Profile {
            user_id: USER.into(),
            display_name: "Taro".into(),
            picture_url: Some("https://example.com/p.png".into()),
            language: Some("ja".into()),
            ..Profile::default()
        });
        let mut want = json!({ "displayName": "Taro", "userId": USER });
        want["pictureUrl"] = json!("https://example.com/p.png");
        let member = format!("/v2/bot/group/{GROUP}/member/{USER}");
        assert_eq!(f.get(&member).await.v, want);
        want["language"] = json!("ja"); // the full profile has it; no statusMessage was set
        assert_eq!(f.get(&profile).await.v, want);
        let summary = f.get(&format!("/v2/bot/group/{GROUP}/summary")).await;
        assert_eq!(
            summary.v,
            json!({ "groupId": GROUP, "groupName": "Group Cfffff" })
        );
        assert!(f.violations().is_empty());
        assert_eq!(f.get("/v2/bot/profile/not-a-user").await.status, 400);
    }
}
