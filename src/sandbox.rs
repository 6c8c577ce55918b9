//! Sandbox mode's customer simulator: pretend to be LINE users writing to the desk.
//!
//! With no LINE credentials, `app::build` starts an in-process fake LINE ([`FakeLine`]) and
//! wraps it in a [`Sandbox`]. The simulator builds the webhook bodies LINE would send (shape of
//! `shared/line-openapi/webhook.yml`), signs them with the sandbox's made-up channel secret and
//! POSTs them over HTTP to this same server's `/line/webhook`, so a simulated message takes
//! exactly the path a real one does (signature check, durable inbox, ingest worker).
//!
//! What the customer "sees" is what the fake LINE accepted for them (pushes to their id,
//! replies with their reply tokens), interleaved with what they sent. The list of simulated
//! customers and what they sent lives in memory only: the fake LINE forgets everything at
//! restart too. The HTTP side is `http::sandbox`, the page `views::sandbox`.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
};

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::line::{
    fake::{Delivered, FakeLine, Profile},
    webhook::sign,
};

/// The official account's own user id, as `destination` of every simulated webhook.
const BOT_USER_ID: &str = "U5a4db0c5a4db0c5a4db0c5a4db0c5a4d";
/// The longest display name the simulator takes (LINE's own limit is similar).
pub const MAX_NAME_CHARS: usize = 50;
/// A small PNG every simulated photo sends (also served as `/assets/sandbox-photo.png`).
pub const PHOTO_PNG: &[u8] = include_bytes!("../assets/sandbox-photo.png");
/// A few stickers from LINE's free default packages: (packageId, stickerId).
pub const STICKERS: &[(&str, &str)] = &[("446", "1988"), ("446", "1989"), ("789", "10855")];

/// The sandbox: the fake LINE plus the simulator's memory. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    pub fake: FakeLine,
    /// This server's own address, set by `app::run` once the listener is bound.
    addr: Arc<OnceLock<SocketAddr>>,
    http: reqwest::Client,
    // A std Mutex, never held across an .await.
    customers: Arc<Mutex<Vec<Customer>>>,
}

/// One simulated LINE user.
#[derive(Clone, Debug)]
pub struct Customer {
    pub user_id: String,
    pub display_name: String,
    /// Reply tokens handed out with this customer's events (replies to them are theirs).
    reply_tokens: HashSet<String>,
    /// What they sent, oldest first.
    sent: Vec<Sent>,
}

/// Something a customer did, and how many deliveries the fake LINE had seen by then (so the
/// agents' replies can be put in order around it: `delivered()` only ever grows).
#[derive(Clone, Debug)]
struct Sent {
    action: Action,
    delivered_before: usize,
}

/// What a simulated customer can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Text(String),
    Sticker {
        package_id: String,
        sticker_id: String,
    },
    Photo,
    Follow,
}

/// One line of what a customer sees in their LINE app.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatLine {
    /// Sent by the customer.
    Mine(Action),
    /// Sent by the account (an agent, or the welcome message): LINE's message object.
    Theirs(Value),
}

/// A display name the simulator accepts: trimmed, 1 to 50 characters, no control characters.
pub fn parse_display_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(char::is_control);
    ok.then_some(name)
}

/// The fake LINE user id of a display name: `U` + 32 hex digits of its SHA-256, so the same
/// name is the same customer across restarts.
pub fn user_id_for(display_name: &str) -> String {
    let digest = Sha256::digest(display_name.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("U{hex}")
}

impl Sandbox {
    pub fn new(fake: FakeLine) -> Self {
        Sandbox {
            fake,
            addr: Arc::default(),
            // Our own webhook answers after one store write; 10 s means something is wrong.
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            customers: Arc::default(),
        }
    }

    /// Records where this server listens; an unspecified address (0.0.0.0) is reached on
    /// loopback.
    pub fn set_addr(&self, mut addr: SocketAddr) {
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = self.addr.set(addr);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Customer>> {
        self.customers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or finds) the customer with this display name and registers their profile with
    /// the fake LINE, so the ingest worker's profile fetch finds it. Returns their user id.
    pub fn add_customer(&self, display_name: &str) -> String {
        let user_id = user_id_for(display_name);
        self.fake.set_profile(Profile {
            user_id: user_id.clone(),
            display_name: display_name.to_owned(),
            language: Some("zh-TW".to_owned()),
            ..Profile::default()
        });
        let mut customers = self.lock();
        if !customers.iter().any(|c| c.user_id == user_id) {
            customers.push(Customer {
                user_id: user_id.clone(),
                display_name: display_name.to_owned(),
                reply_tokens: HashSet::new(),
                sent: Vec::new(),
            });
        }
        user_id
    }

    /// Every simulated customer, in order of creation.
    pub fn customers(&self) -> Vec<Customer> {
        self.lock().clone()
    }

    pub fn customer(&self, user_id: &str) -> Option<Customer> {
        self.lock().iter().find(|c| c.user_id == user_id).cloned()
    }

    /// Sends `action` as `user_id` through a signed webhook to this server. Only a 200 from
    /// the webhook counts: then the action is in the customer's transcript.
    pub async fn act(&self, secret: &str, user_id: &str, action: Action) -> anyhow::Result<()> {
        let addr = *self
            .addr
            .get()
            .context("the server's address is not known yet")?;
        let reply_token = crate::app::random_token();
        let message_id = line_message_id();
        self.fake.add_reply_token(&reply_token);
        if action == Action::Photo {
            self.fake
                .set_content(&message_id, "image/png", PHOTO_PNG.to_vec(), 0);
        }
        let event = event(user_id, &action, &reply_token, &message_id);
        let body = json!({ "destination": BOT_USER_ID, "events": [event] }).to_string();
        // Counted before sending: a reply to this action can only come after it.
        let delivered_before = self.fake.delivered().len();
        let response = self
            .http
            .post(format!("http://{addr}/line/webhook"))
            .header("content-type", "application/json")
            .header("x-line-signature", sign(secret, body.as_bytes()))
            .body(body)
            .send()
            .await
            .context("posting the simulated webhook")?;
        anyhow::ensure!(
            response.status().is_success(),
            "the webhook answered {}",
            response.status()
        );
        let mut customers = self.lock();
        let customer = customers
            .iter_mut()
            .find(|c| c.user_id == user_id)
            .context("unknown simulated customer")?;
        customer.reply_tokens.insert(reply_token);
        customer.sent.push(Sent {
            action,
            delivered_before,
        });
        Ok(())
    }

    /// What `user_id` sees: their own actions and the account's messages to them, in order.
    pub fn transcript(&self, user_id: &str) -> Option<Vec<ChatLine>> {
        let customer = self.customer(user_id)?;
        let delivered = self.fake.delivered();
        let theirs = |d: &Delivered| {
            d.to.as_deref() == Some(user_id)
                || d.reply_token
                    .as_ref()
                    .is_some_and(|t| customer.reply_tokens.contains(t))
        };
        let mut lines = Vec::new();
        let mut next = 0;
        for sent in &customer.sent {
            let upto = sent.delivered_before.min(delivered.len());
            for d in delivered[next.min(upto)..upto].iter().filter(|d| theirs(d)) {
                lines.push(ChatLine::Theirs(d.message.clone()));
            }
            next = next.max(upto);
            lines.push(ChatLine::Mine(sent.action.clone()));
        }
        for d in delivered[next..].iter().filter(|d| theirs(d)) {
            lines.push(ChatLine::Theirs(d.message.clone()));
        }
        Some(lines)
    }
}

/// A LINE-shaped message id: an 18-digit number.
fn line_message_id() -> String {
    let n = uuid::Uuid::new_v4().as_u64_pair().0 % 900_000_000_000_000_000;
    (100_000_000_000_000_000 + n).to_string()
}

/// One webhook event as LINE would send it for `action`.
fn event(user_id: &str, action: &Action, reply_token: &str, message_id: &str) -> Value {
    let mut e = json!({
        "mode": "active",
        "timestamp": crate::domain::now_ms(),
        "source": { "type": "user", "userId": user_id },
        "webhookEventId": uuid::Uuid::new_v4().simple().to_string()[..26].to_uppercase(),
        "deliveryContext": { "isRedelivery": false },
        "replyToken": reply_token,
    });
    let quote = format!("q-{message_id}");
    let read = format!("r-{message_id}");
    let (kind, extra) = match action {
        Action::Follow => ("follow", json!({ "follow": { "isUnblocked": false } })),
        Action::Text(text) => (
            "message",
            json!({ "message": { "id": message_id, "type": "text", "text": text,
                "quoteToken": quote, "markAsReadToken": read } }),
        ),
        Action::Sticker {
            package_id,
            sticker_id,
        } => (
            "message",
            json!({ "message": { "id": message_id, "type": "sticker", "packageId": package_id,
                "stickerId": sticker_id, "stickerResourceType": "STATIC", "keywords": [],
                "quoteToken": quote, "markAsReadToken": read } }),
        ),
        Action::Photo => (
            "message",
            json!({ "message": { "id": message_id, "type": "image",
                "contentProvider": { "type": "line" }, "quoteToken": quote,
                "markAsReadToken": read } }),
        ),
    };
    e["type"] = json!(kind);
    if let (Some(obj), Some(more)) = (e.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::webhook::parse_body;

    #[test]
    fn user_ids_are_stable_and_line_shaped() {
        let id = user_id_for("王小明");
        assert_eq!(id, user_id_for("王小明"));
        assert_ne!(id, user_id_for("Amy"));
        assert_eq!(id.len(), 33);
        assert!(id.starts_with('U'));
        assert!(id[1..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn display_names_are_checked() {
        assert_eq!(parse_display_name("  Amy "), Some("Amy"));
        assert_eq!(parse_display_name("   "), None);
        assert_eq!(parse_display_name("a\u{7}b"), None);
        assert!(parse_display_name(&"字".repeat(50)).is_some());
        assert!(parse_display_name(&"字".repeat(51)).is_none());
    }

    #[test]
    fn every_action_makes_a_body_linechat_parses() {
        let user = user_id_for("Amy");
        let sticker = Action::Sticker {
            package_id: "446".into(),
            sticker_id: "1988".into(),
        };
        for action in [
            Action::Text("hi".into()),
            sticker,
            Action::Photo,
            Action::Follow,
        ] {
            let e = event(&user, &action, "token", &line_message_id());
            let body = json!({ "destination": BOT_USER_ID, "events": [e] }).to_string();
            let parsed = parse_body(body.as_bytes()).expect("parses");
            assert_eq!(parsed.events.len(), 1, "{action:?}");
        }
    }
}
