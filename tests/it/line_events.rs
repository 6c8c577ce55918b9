//! Webhook bodies shaped like LINE's (see shared/line-openapi/webhook.yml), each event with a
//! fresh `webhookEventId` unless a test reuses one on purpose.

use serde_json::{Value, json};

pub const BOT: &str = "Ubbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A LINE user id (U + 32 hex) derived from a number.
pub fn user(n: u32) -> String {
    format!("U{n:032x}")
}

pub fn group(n: u32) -> String {
    format!("C{n:032x}")
}

/// A ULID-shaped unique id.
pub fn event_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..26].to_uppercase()
}

pub fn now_ms() -> i64 {
    linechat::domain::now_ms()
}

/// One event with the common fields filled in.
pub fn event(kind: &str, source: Value, extra: Value) -> Value {
    let mut e = json!({
        "type": kind,
        "mode": "active",
        "timestamp": now_ms(),
        "source": source,
        "webhookEventId": event_id(),
        "deliveryContext": { "isRedelivery": false },
    });
    if let (Some(obj), Some(more)) = (e.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    e
}

pub fn from_user(user_id: &str) -> Value {
    json!({ "type": "user", "userId": user_id })
}

pub fn from_group(group_id: &str, user_id: &str) -> Value {
    json!({ "type": "group", "groupId": group_id, "userId": user_id })
}

/// A message event; `message` is the content object without `id`.
pub fn message(source: Value, message_id: &str, mut content: Value, reply_token: &str) -> Value {
    content["id"] = json!(message_id);
    if content.get("quoteToken").is_none()
        && content["type"] != "audio"
        && content["type"] != "file"
        && content["type"] != "location"
    {
        content["quoteToken"] = json!(format!("q-{message_id}"));
    }
    content["markAsReadToken"] = json!(format!("r-{message_id}"));
    event(
        "message",
        source,
        json!({ "replyToken": reply_token, "message": content }),
    )
}

pub fn text(user_id: &str, message_id: &str, text: &str) -> Value {
    message(
        from_user(user_id),
        message_id,
        json!({ "type": "text", "text": text }),
        &format!("rt-{message_id}"),
    )
}

pub fn body(events: Vec<Value>) -> String {
    json!({ "destination": BOT, "events": events }).to_string()
}
