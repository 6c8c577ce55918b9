//! LINE webhook intake: signature verification and parsing of the request body.
//!
//! Owns everything between "raw bytes arrived with an `x-line-signature` header" and
//! "typed events": [`verify_signature`] / [`sign`] (HMAC-SHA256, base64) and
//! [`parse_body`] / [`parse_event`], which turn the body into [`Event`]s while keeping
//! each event's exact JSON text so it can be stored byte-for-byte and re-parsed later.
//! It does no I/O, deduplication or ordering; those belong to the caller.
//!
//! Sources: `LINE_API_NOTES.md` §2–§5 and `line-openapi/webhook.yml`.
//!
//! Strictness policy. A body is rejected (caller answers 400) when it is not JSON, lacks
//! `destination`/`events`, has more than [`MAX_EVENTS`] events, or an event lacks a common
//! field or a field this module needs to build the public types of a *known* event or
//! message type. Unknown event, message and source types are accepted, because LINE adds
//! types over time and one 400 would drop every other event in the batch. For the same
//! reason fields the inbox can live without are read leniently even where the spec marks
//! them required: `replyToken`, `quoteToken`, `stickerResourceType`, a user source's
//! `userId`, and the bodies of the known-but-ignored event types (beacon, module, ...).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;

/// Upper bound on events per request; a larger body is rejected before any event is parsed.
pub const MAX_EVENTS: usize = 1000;

// ---------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------

type HmacSha256 = Hmac<Sha256>;

fn mac(channel_secret: &str, body: &[u8]) -> HmacSha256 {
    // The key is the secret's UTF-8 bytes, not its hex decoding (§2).
    let mut mac = HmacSha256::new_from_slice(channel_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    mac
}

/// HMAC-SHA256 over the raw body with the channel secret (UTF-8 bytes, NOT hex-decoded),
/// base64 standard padded; compared in constant time. False for a header that is not valid
/// base64. Call it on the bytes as received: re-serialised JSON does not verify.
pub fn verify_signature(channel_secret: &str, body: &[u8], signature_header: &str) -> bool {
    // A padded base64 SHA-256 tag is always 44 chars; anything else cannot match, and
    // rejecting it here keeps junk headers from costing an HMAC. Length is not secret.
    if signature_header.len() != 44 {
        return false;
    }
    let mut tag = [0u8; 48];
    match BASE64.decode_slice(signature_header, &mut tag) {
        Ok(n) => mac(channel_secret, body).verify_slice(&tag[..n]).is_ok(),
        Err(_) => false,
    }
}

/// The signature LINE would send for `body` (used by the customer simulator and tests).
pub fn sign(channel_secret: &str, body: &[u8]) -> String {
    BASE64.encode(mac(channel_secret, body).finalize().into_bytes())
}

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------
//
// Serialized ("normalized") JSON shapes, camelCase throughout, `null` for absent options:
//   Event         {"webhookEventId","timestamp","mode","isRedelivery","replyToken","source","kind"}
//   Mode          "active" | "standby" | "<other>"
//   Source        {"type":"user","userId"} | {"type":"group"|"room","groupId"|"roomId","userId"}
//   EventKind     {"type":"message", <Message fields>} | {"type":"messageEdited", ...}
//                 | {"type":"unsend","messageId"} | {"type":"follow","isUnblocked"}
//                 | {"type":"unfollow"|"join"|"leave"} | {"type":"memberJoined"|"memberLeft","userIds"}
//                 | {"type":"postback","data","params":{..}} | {"type":"other","eventType"}
//   Message       {"id","quoteToken","markAsReadToken","quotedMessageId","content"}
//   MessageContent: see its doc comment.

/// A parsed request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookBody {
    /// The bot's own user ID (`U` + 32 hex), not validated here.
    pub destination: String,
    pub events: Vec<ParsedEvent>,
}

/// One event: its exact JSON text as received (for storage) plus the parsed form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedEvent {
    pub raw: String,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// ULID; stable across redeliveries, hence the dedupe key.
    pub webhook_event_id: String,
    /// Epoch milliseconds. Batches are not in chronological order: sort by this.
    pub timestamp: i64,
    pub mode: Mode,
    pub is_redelivery: bool,
    pub reply_token: Option<String>,
    /// Absent on module/suspension events, and `None` for an unknown source type or a
    /// user source without `userId` (the spec leaves it optional).
    pub source: Option<Source>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Active,
    /// Another channel has chat control: store, but send nothing.
    Standby,
    #[serde(untagged)]
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[serde(rename_all_fields = "camelCase")]
pub enum Source {
    User {
        user_id: String,
    },
    /// `user_id` is present only on message events from LINE's mobile apps.
    Group {
        group_id: String,
        user_id: Option<String>,
    },
    Room {
        room_id: String,
        user_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[serde(rename_all_fields = "camelCase")]
pub enum EventKind {
    Message(Message),
    /// Not in the copied spec (notes §3). Edits can arrive out of order: keep the newest
    /// `timestamp`.
    MessageEdited(Message),
    Unsend {
        message_id: String,
    },
    /// `is_unblocked`: false = new friend, true = unblocked.
    Follow {
        is_unblocked: bool,
    },
    Unfollow,
    Join,
    Leave,
    MemberJoined {
        user_ids: Vec<String>,
    },
    MemberLeft {
        user_ids: Vec<String>,
    },
    Postback {
        data: String,
        params: BTreeMap<String, String>,
    },
    /// videoPlayComplete, beacon, accountLink, membership, module, activated, deactivated,
    /// botSuspended, botResumed, delivery, things and anything unknown: recorded, not acted
    /// on. Their bodies are not validated; the raw text keeps them.
    Other {
        event_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Numeric string; the key for the content endpoint and for `unsend`.
    pub id: String,
    pub quote_token: Option<String>,
    pub mark_as_read_token: Option<String>,
    pub quoted_message_id: Option<String>,
    pub content: MessageContent,
}

/// Message content. Serialized JSON (the normalized form to store), by `type`:
/// - `{"type":"text","text","emojis":[Emoji],"mentionees":[Mentionee]}`
/// - `{"type":"image","contentProvider":ContentProvider,"imageSet":ImageSet|null}`
/// - `{"type":"video"|"audio","durationMs":int|null,"contentProvider":ContentProvider}`
/// - `{"type":"file","fileName","fileSize"}`
/// - `{"type":"location","title","address","latitude","longitude"}`
/// - `{"type":"sticker","packageId","stickerId","stickerResourceType","keywords":[..],"text"}`
/// - `{"type":"other","messageType":"<wire type>"}`
///
/// with `Emoji` = `{"index","length","productId","emojiId"}`, `Mentionee` =
/// `{"index","length","type","userId","isSelf"}`, `ContentProvider` = `{"type":"line"}` |
/// `{"type":"external","originalContentUrl","previewImageUrl"}`, `ImageSet` =
/// `{"id","index","total"}`. These four leaf shapes equal the wire shapes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[serde(rename_all_fields = "camelCase")]
pub enum MessageContent {
    /// Emoji and mention `index`/`length` point into `text` (LINE counts UTF-16 units).
    Text {
        text: String,
        emojis: Vec<Emoji>,
        mentionees: Vec<Mentionee>,
    },
    Image {
        #[serde(rename = "contentProvider")]
        provider: ContentProvider,
        image_set: Option<ImageSet>,
    },
    Video {
        duration_ms: Option<i64>,
        #[serde(rename = "contentProvider")]
        provider: ContentProvider,
    },
    Audio {
        duration_ms: Option<i64>,
        #[serde(rename = "contentProvider")]
        provider: ContentProvider,
    },
    File {
        file_name: String,
        file_size: i64,
    },
    Location {
        title: Option<String>,
        address: Option<String>,
        latitude: f64,
        longitude: f64,
    },
    Sticker {
        package_id: String,
        sticker_id: String,
        #[serde(rename = "stickerResourceType")]
        resource_type: Option<String>,
        /// Experimental, random selection each time: do not key on it.
        keywords: Vec<String>,
        text: Option<String>,
    },
    Other {
        message_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Emoji {
    pub index: usize,
    pub length: usize,
    pub product_id: String,
    pub emoji_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mentionee {
    pub index: usize,
    pub length: usize,
    /// "user" | "all"
    #[serde(rename = "type")]
    pub kind: String,
    /// Only when the mentioned user consented to profile access.
    pub user_id: Option<String>,
    #[serde(default)]
    pub is_self: bool,
}

/// `External`: LINE holds no binary, use the URLs. `Line`: download via the content API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentProvider {
    Line,
    External {
        #[serde(rename = "originalContentUrl")]
        original_url: Option<String>,
        #[serde(rename = "previewImageUrl")]
        preview_url: Option<String>,
    },
}

/// Present when several images were sent together; `index` is 1-based and missing from old
/// Android clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSet {
    pub id: String,
    pub index: Option<u32>,
    pub total: Option<u32>,
}

impl Source {
    /// The conversation key: userId for 1:1, else groupId / roomId. Push `to` accepts it.
    pub fn chat_id(&self) -> &str {
        match self {
            Source::User { user_id } => user_id,
            Source::Group { group_id, .. } => group_id,
            Source::Room { room_id, .. } => room_id,
        }
    }

    pub fn sender_id(&self) -> Option<&str> {
        match self {
            Source::User { user_id } => Some(user_id),
            Source::Group { user_id, .. } | Source::Room { user_id, .. } => user_id.as_deref(),
        }
    }
}

impl Event {
    /// The wire `type`, e.g. "message", "follow", or the unknown name.
    pub fn type_name(&self) -> &str {
        match &self.kind {
            EventKind::Message(_) => "message",
            EventKind::MessageEdited(_) => "messageEdited",
            EventKind::Unsend { .. } => "unsend",
            EventKind::Follow { .. } => "follow",
            EventKind::Unfollow => "unfollow",
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::MemberJoined { .. } => "memberJoined",
            EventKind::MemberLeft { .. } => "memberLeft",
            EventKind::Postback { .. } => "postback",
            EventKind::Other { event_type } => event_type,
        }
    }
}

impl MessageContent {
    /// The wire `message.type`, e.g. "text", or the unknown name.
    pub fn type_name(&self) -> &str {
        match self {
            MessageContent::Text { .. } => "text",
            MessageContent::Image { .. } => "image",
            MessageContent::Video { .. } => "video",
            MessageContent::Audio { .. } => "audio",
            MessageContent::File { .. } => "file",
            MessageContent::Location { .. } => "location",
            MessageContent::Sticker { .. } => "sticker",
            MessageContent::Other { message_type } => message_type,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a body or stored event was rejected. Messages are meant for the sender, e.g.
/// "events[2]: missing field `webhookEventId`" or "events[0].message: missing field `id`".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("too many events: {count} (at most {MAX_EVENTS})")]
    TooManyEvents { count: usize },
    /// `path` is "body", "events[i]", "events[i].message", ... (or "event..." from
    /// [`parse_event`]).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// An error inside one event: the sub-object it is in ("" = the event itself) and the text.
type Located = (&'static str, String);

fn locate(prefix: &str, (path, message): Located) -> ParseError {
    let path = if path.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{path}")
    };
    ParseError::Invalid { path, message }
}

/// serde_json's message without the " at line L column C" suffix: positions inside one
/// event's text mean little to the sender; the path says where.
fn describe(e: &serde_json::Error) -> String {
    let mut s = e.to_string();
    if e.line() > 0
        && let Some(i) = s.rfind(" at line ")
    {
        s.truncate(i);
    }
    s
}

// ---------------------------------------------------------------------------------------
// Wire structs. Sub-objects of an event are held as borrowed `RawValue`s (a scan, no
// allocation) and decoded only for the event type that owns them, so an unknown type is
// never checked against a known type's fields and each error can name its sub-object.
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(expecting = "an object with `destination` and `events`")]
struct WireBody<'a> {
    destination: String,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an event object")]
struct WireEvent<'a> {
    #[serde(rename = "type")]
    event_type: String,
    timestamp: i64,
    mode: String,
    webhook_event_id: String,
    #[serde(borrow)]
    delivery_context: &'a RawValue,
    reply_token: Option<String>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    unsend: Option<&'a RawValue>,
    #[serde(borrow)]
    follow: Option<&'a RawValue>,
    #[serde(borrow)]
    joined: Option<&'a RawValue>,
    #[serde(borrow)]
    left: Option<&'a RawValue>,
    #[serde(borrow)]
    postback: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct WireDelivery {
    is_redelivery: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct WireUnsend {
    message_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct WireFollow {
    is_unblocked: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a source object")]
struct WireSource {
    #[serde(rename = "type")]
    source_type: String,
    user_id: Option<String>,
    group_id: Option<String>,
    room_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object with `members`")]
struct WireMembers {
    members: Vec<WireSource>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct WirePostback {
    data: String,
    params: Option<BTreeMap<String, String>>,
}

/// Every field any known message type has, read in one pass; which are required depends on
/// `type` and is checked by hand in [`message_from`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a message object")]
struct WireMessage {
    #[serde(rename = "type")]
    message_type: String,
    id: String,
    quote_token: Option<String>,
    mark_as_read_token: Option<String>,
    quoted_message_id: Option<String>,
    text: Option<String>,
    emojis: Option<Vec<Emoji>>,
    mention: Option<WireMention>,
    content_provider: Option<ContentProvider>,
    image_set: Option<ImageSet>,
    duration: Option<i64>,
    file_name: Option<String>,
    file_size: Option<i64>,
    title: Option<String>,
    address: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    package_id: Option<String>,
    sticker_id: Option<String>,
    sticker_resource_type: Option<String>,
    keywords: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WireMention {
    mentionees: Vec<Mentionee>,
}

/// What every message has; used only when [`WireMessage`] fails, to tell an unknown type
/// (whose fields may clash with ours) from a broken known one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a message object")]
struct WireMessageHead {
    #[serde(rename = "type")]
    message_type: String,
    id: String,
    quote_token: Option<String>,
    mark_as_read_token: Option<String>,
    quoted_message_id: Option<String>,
}

const KNOWN_MESSAGE_TYPES: [&str; 7] = [
    "text", "image", "video", "audio", "file", "location", "sticker",
];

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// Parse the whole body (the caller has already verified the signature on these bytes).
/// See the module doc for what is rejected. Duplicate `webhookEventId`s are kept.
pub fn parse_body(body: &[u8]) -> Result<WebhookBody, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| ParseError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let wire: WireBody = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ParseError::Invalid {
            path: "body".into(),
            message: describe(&e),
        },
        _ => ParseError::NotJson(e.to_string()),
    })?;
    if wire.events.len() > MAX_EVENTS {
        return Err(ParseError::TooManyEvents {
            count: wire.events.len(),
        });
    }
    let mut events = Vec::with_capacity(wire.events.len());
    for (i, raw) in wire.events.into_iter().enumerate() {
        let raw = raw.get();
        let event = event_from(raw).map_err(|l| locate(&format!("events[{i}]"), l))?;
        let raw = raw.to_owned();
        events.push(ParsedEvent { raw, event });
    }
    let destination = wire.destination;
    Ok(WebhookBody {
        destination,
        events,
    })
}

/// Parse one stored raw event again (same rules as in [`parse_body`]; errors are located
/// under "event").
pub fn parse_event(raw: &str) -> Result<Event, ParseError> {
    event_from(raw).map_err(|l| locate("event", l))
}

fn de<'a, T: Deserialize<'a>>(json: &'a str, path: &'static str) -> Result<T, Located> {
    serde_json::from_str(json).map_err(|e| (path, describe(&e)))
}

/// The required sub-object `field` of the event, decoded.
fn sub<'a, T: Deserialize<'a>>(v: Option<&'a RawValue>, field: &'static str) -> Result<T, Located> {
    let raw = v.ok_or_else(|| ("", format!("missing field `{field}`")))?;
    de(raw.get(), field)
}

fn need<T>(v: Option<T>, field: &str) -> Result<T, Located> {
    v.ok_or_else(|| ("message", format!("missing field `{field}`")))
}

fn event_from(raw: &str) -> Result<Event, Located> {
    let w: WireEvent = de(raw, "")?;
    let delivery: WireDelivery = sub(Some(w.delivery_context), "deliveryContext")?;
    let source = match w.source {
        Some(s) => source_from(de(s.get(), "source")?)?,
        None => None,
    };
    let members = |v, field| -> Result<Vec<String>, Located> {
        let m: WireMembers = sub(v, field)?;
        // A member is a user source; without `userId` there is nothing to record.
        Ok(m.members.into_iter().filter_map(|s| s.user_id).collect())
    };
    let kind = match w.event_type.as_str() {
        "message" => Some(EventKind::Message(message_from(w.message)?)),
        "messageEdited" => Some(EventKind::MessageEdited(message_from(w.message)?)),
        "unsend" => Some(EventKind::Unsend {
            message_id: sub::<WireUnsend>(w.unsend, "unsend")?.message_id,
        }),
        "follow" => Some(EventKind::Follow {
            is_unblocked: sub::<WireFollow>(w.follow, "follow")?.is_unblocked,
        }),
        "unfollow" => Some(EventKind::Unfollow),
        "join" => Some(EventKind::Join),
        "leave" => Some(EventKind::Leave),
        "memberJoined" => Some(EventKind::MemberJoined {
            user_ids: members(w.joined, "joined")?,
        }),
        "memberLeft" => Some(EventKind::MemberLeft {
            user_ids: members(w.left, "left")?,
        }),
        "postback" => {
            let p: WirePostback = sub(w.postback, "postback")?;
            let params = p.params.unwrap_or_default();
            Some(EventKind::Postback {
                data: p.data,
                params,
            })
        }
        _ => None,
    };
    let mode = match w.mode.as_str() {
        "active" => Mode::Active,
        "standby" => Mode::Standby,
        _ => Mode::Other(w.mode),
    };
    Ok(Event {
        webhook_event_id: w.webhook_event_id,
        timestamp: w.timestamp,
        mode,
        is_redelivery: delivery.is_redelivery,
        reply_token: w.reply_token,
        source,
        kind: kind.unwrap_or(EventKind::Other {
            event_type: w.event_type,
        }),
    })
}

fn source_from(s: WireSource) -> Result<Option<Source>, Located> {
    let missing = |f: &str| ("source", format!("missing field `{f}`"));
    Ok(match s.source_type.as_str() {
        "user" => s.user_id.map(|user_id| Source::User { user_id }),
        "group" => Some(Source::Group {
            group_id: s.group_id.ok_or_else(|| missing("groupId"))?,
            user_id: s.user_id,
        }),
        "room" => Some(Source::Room {
            room_id: s.room_id.ok_or_else(|| missing("roomId"))?,
            user_id: s.user_id,
        }),
        _ => None,
    })
}

fn message_from(raw: Option<&RawValue>) -> Result<Message, Located> {
    let json = raw
        .ok_or_else(|| ("", "missing field `message`".to_owned()))?
        .get();
    let m: WireMessage = match de(json, "message") {
        Ok(m) => m,
        Err(err) => {
            let h: WireMessageHead = de(json, "message")?;
            if KNOWN_MESSAGE_TYPES.contains(&h.message_type.as_str()) {
                return Err(err);
            }
            let content = MessageContent::Other {
                message_type: h.message_type,
            };
            let (quote_token, mark_as_read_token) = (h.quote_token, h.mark_as_read_token);
            let quoted_message_id = h.quoted_message_id;
            return Ok(Message {
                id: h.id,
                quote_token,
                mark_as_read_token,
                quoted_message_id,
                content,
            });
        }
    };
    let content = match m.message_type.as_str() {
        "text" => MessageContent::Text {
            text: need(m.text, "text")?,
            emojis: m.emojis.unwrap_or_default(),
            mentionees: m.mention.map(|m| m.mentionees).unwrap_or_default(),
        },
        "image" => MessageContent::Image {
            provider: need(m.content_provider, "contentProvider")?,
            image_set: m.image_set,
        },
        "video" => MessageContent::Video {
            duration_ms: m.duration,
            provider: need(m.content_provider, "contentProvider")?,
        },
        "audio" => MessageContent::Audio {
            duration_ms: m.duration,
            provider: need(m.content_provider, "contentProvider")?,
        },
        "file" => MessageContent::File {
            file_name: need(m.file_name, "fileName")?,
            file_size: need(m.file_size, "fileSize")?,
        },
        "location" => MessageContent::Location {
            title: m.title,
            address: m.address,
            latitude: need(m.latitude, "latitude")?,
            longitude: need(m.longitude, "longitude")?,
        },
        "sticker" => MessageContent::Sticker {
            package_id: need(m.package_id, "packageId")?,
            sticker_id: need(m.sticker_id, "stickerId")?,
            resource_type: m.sticker_resource_type,
            keywords: m.keywords.unwrap_or_default(),
            text: m.text,
        },
        _ => MessageContent::Other {
            message_type: m.message_type,
        },
    };
    Ok(Message {
        id: m.id,
        quote_token: m.quote_token,
        mark_as_read_token: m.mark_as_read_token,
        quoted_message_id: m.quoted_message_id,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = "U206d25c2ea6bd87c17655609a1c37cb8";
    const GROUP: &str = "Ca56f94637cc4347f90a25382909b24b9";
    const ROOM: &str = "Ra8dbf4673c4c812cd491258042226c99";

    /// One event per type, shaped after the webhook.yml schemas and the SDK fixture
    /// line/line-bot-sdk-python tests/v3/text/webhook.json, but with distinct IDs (the
    /// fixture reuses one). One event per line; whitespace must survive into `raw`.
    const FIXTURE: &str = r#"{"destination":"U0123456789abcdef0123456789abcdef","events":[
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0TEXT","deliveryContext":{"isRedelivery":false},"replyToken":"nHuyWiB7yP5Zw52FIkcQobQuGDXCTA","message":{"id":"468789577898262530","type":"text","quoteToken":"q1","markAsReadToken":"mr1","quotedMessageId":"468789532432007169","text":"@All @Brown (love)","emojis":[{"index":12,"length":6,"productId":"5ac1bfd5040ab15980c9b435","emojiId":"001"}],"mention":{"mentionees":[{"index":0,"length":4,"type":"all"},{"index":5,"length":6,"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8","isSelf":true}]}}},
{"type":"message","mode":"active","timestamp":1627356924722,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0IMAGE","deliveryContext":{"isRedelivery":false},"message":{"type":"image","id":"354718705033693861","contentProvider":{"type":"line"},"imageSet":{"id":"E005D41A7288F41B655","index":2,"total":2},"quoteToken":"q2"}},
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0VIDEO","deliveryContext":{"isRedelivery":false},"message":{"id":"325708","type":"video","duration":60000,"contentProvider":{"type":"external","originalContentUrl":"https://example.com/v.mp4","previewImageUrl":"https://example.com/p.jpg"},"quoteToken":"q3"}},
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0AUDIO","deliveryContext":{"isRedelivery":false},"message":{"id":"325709","type":"audio","duration":60000,"contentProvider":{"type":"line"}}},
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0FILE","deliveryContext":{"isRedelivery":false},"message":{"id":"325710","type":"file","fileName":"file.txt","fileSize":2138}},
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0LOCATION","deliveryContext":{"isRedelivery":false},"message":{"id":"325711","type":"location","title":"my location","address":"Tokyo","latitude":35.65910807942215,"longitude":139.70372892916203}},
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0STICKER","deliveryContext":{"isRedelivery":false},"message":{"id":"325712","type":"sticker","packageId":"1","stickerId":"2","stickerResourceType":"MESSAGE","keywords":["Love You","Love"],"text":"Just sticker","quoteToken":"q4","quotedMessageId":"325700"}},
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0POLL","deliveryContext":{"isRedelivery":false},"message":{"id":"325713","type":"poll","quoteToken":"q5","text":{"rich":true},"choices":[1,2]}},
{"type":"messageEdited","mode":"active","timestamp":1462629479900,"source":{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0EDITED","deliveryContext":{"isRedelivery":false},"message":{"id":"325714","type":"text","text":"fixed typo"}},
{"type":"unsend","mode":"active","timestamp":1547817848122,"source":{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0UNSEND","deliveryContext":{"isRedelivery":false},"unsend":{"messageId":"325708"}},
{"type":"follow","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0FOLLOWNEW","deliveryContext":{"isRedelivery":false},"replyToken":"r","follow":{"isUnblocked":false}},
{"type":"follow","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0FOLLOWUNBLOCK","deliveryContext":{"isRedelivery":false},"replyToken":"r","follow":{"isUnblocked":true}},
{"type":"unfollow","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0UNFOLLOW","deliveryContext":{"isRedelivery":false}},
{"type":"join","mode":"active","timestamp":1462629479859,"source":{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9"},"webhookEventId":"01J0JOIN","deliveryContext":{"isRedelivery":false},"replyToken":"r"},
{"type":"leave","mode":"active","timestamp":1462629479859,"source":{"type":"room","roomId":"Ra8dbf4673c4c812cd491258042226c99"},"webhookEventId":"01J0LEAVE","deliveryContext":{"isRedelivery":false}},
{"type":"message","mode":"active","timestamp":1462629479859,"source":{"type":"room","roomId":"Ra8dbf4673c4c812cd491258042226c99","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0ROOMMSG","deliveryContext":{"isRedelivery":false},"message":{"id":"325715","type":"text","text":"hi","quoteToken":"q6"}},
{"type":"memberJoined","mode":"active","timestamp":1462629479859,"source":{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9"},"webhookEventId":"01J0JOINED","deliveryContext":{"isRedelivery":false},"replyToken":"r","joined":{"members":[{"type":"user","userId":"U4af4980629"},{"type":"user","userId":"U91eeaf62d9"},{"type":"user","userId":"U0000000003"}]}},
{"type":"memberLeft","mode":"active","timestamp":1462629479960,"source":{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9"},"webhookEventId":"01J0LEFT","deliveryContext":{"isRedelivery":false},"left":{"members":[{"type":"user","userId":"U4af4980629"},{"type":"user","userId":"U91eeaf62d9"}]}},
{"type":"postback","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0POSTBACK","deliveryContext":{"isRedelivery":false},"replyToken":"r","postback":{"data":"action=buy&itemId=1","params":{"newRichMenuAliasId":"richmenu-alias-b","status":"SUCCESS"}}},
{"type":"postback","mode":"active","timestamp":1462629479859,"source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"webhookEventId":"01J0POSTBACKBARE","deliveryContext":{"isRedelivery":false},"postback":{"data":"x"}},
{"type":"message","mode":"standby","timestamp":1,"webhookEventId":"01J0STANDBY","deliveryContext":{"isRedelivery":true},"message":{"id":"325716","type":"text","text":"hi","quoteToken":"q7"}},
{"type":"videoPlayComplete","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1A","deliveryContext":{"isRedelivery":false},"replyToken":"r","videoPlayComplete":{"trackingId":"t"}},
{"type":"beacon","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1B","deliveryContext":{"isRedelivery":false},"replyToken":"r","beacon":{"hwid":"d41d8cd98f","type":"enter","dm":"12"}},
{"type":"accountLink","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1C","deliveryContext":{"isRedelivery":false},"link":{"result":"failed","nonce":"Vb771wDYtXuammLszK6h9A"}},
{"type":"membership","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1D","deliveryContext":{"isRedelivery":false},"replyToken":"r","membership":{"type":"joined","membershipId":3189}},
{"type":"module","mode":"active","timestamp":3,"webhookEventId":"01J1E","deliveryContext":{"isRedelivery":false},"module":{"type":"attached","botId":"U1","scopes":["message:send"]}},
{"type":"activated","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1F","deliveryContext":{"isRedelivery":false},"chatControl":{"expireAt":1462629479859}},
{"type":"deactivated","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1G","deliveryContext":{"isRedelivery":false}},
{"type":"botSuspended","mode":"active","timestamp":3,"webhookEventId":"01J1H","deliveryContext":{"isRedelivery":false}},
{"type":"botResumed","mode":"active","timestamp":3,"webhookEventId":"01J1I","deliveryContext":{"isRedelivery":false}},
{"type":"delivery","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1J","deliveryContext":{"isRedelivery":false},"delivery":{"data":"hashed"}},
{"type":"things","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1K","deliveryContext":{"isRedelivery":false},"things":{"deviceId":"t1","type":"link"}},
{"type":"brandNew","mode":"active","timestamp":3,"source":{"type":"user","userId":"U1"},"webhookEventId":"01J1L","deliveryContext":{"isRedelivery":false},"message":42,"follow":"not an object","undefinedField":{"1":1}},
{  "type" : "unfollow", "mode":"active","timestamp":2,"webhookEventId":"01J0SPACED","deliveryContext":{"isRedelivery":false}  }
]}"#;

    /// The fixture event with this ID; also checks `raw` is verbatim, re-parses equal, and
    /// the type names match the wire.
    fn get(id: &str) -> Event {
        let body = parse_body(FIXTURE.as_bytes()).unwrap();
        let p = body
            .events
            .into_iter()
            .find(|p| p.event.webhook_event_id == id)
            .unwrap();
        assert!(FIXTURE.contains(&p.raw) && p.raw.contains(id));
        assert_eq!(parse_event(&p.raw).unwrap(), p.event);
        let wire: serde_json::Value = serde_json::from_str(&p.raw).unwrap();
        assert_eq!(p.event.type_name(), wire["type"]);
        if let EventKind::Message(m) | EventKind::MessageEdited(m) = &p.event.kind {
            assert_eq!(m.content.type_name(), wire["message"]["type"]);
        }
        p.event
    }

    /// Every key of `expected` (and of its `kind`) must equal the event's normalized JSON.
    fn check(id: &str, expected: &str) {
        let got = to_json(&get(id));
        let want: serde_json::Value = serde_json::from_str(expected).unwrap();
        for (k, v) in want.as_object().unwrap() {
            match v.as_object().filter(|_| k == "kind") {
                Some(kind) => kind
                    .iter()
                    .for_each(|(k2, v2)| assert_eq!(&got[k][k2], v2, "{id} kind.{k2}")),
                None => assert_eq!(&got[k], v, "{id} {k}"),
            }
        }
    }

    fn ev(id: &str, ty: &str, source: &str, rest: &str) -> String {
        let common =
            r#""mode":"active","timestamp":1462629479859,"deliveryContext":{"isRedelivery":false}"#;
        format!(r#"{{"type":"{ty}","webhookEventId":"{id}",{common},"source":{source}{rest}}}"#)
    }

    fn body_of(events: &[String]) -> String {
        format!(r#"{{"destination":"U1","events":[{}]}}"#, events.join(","))
    }

    fn err(body: &str) -> String {
        parse_body(body.as_bytes()).unwrap_err().to_string()
    }

    fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    // --- signature -------------------------------------------------------------------

    #[test]
    fn signature_known_answers() {
        // line/line-bot-sdk-python tests/test_signature.py
        let sig = "/gg9a+LvFevTH1sd7XCQycD7tsWclCsInj7MhBHxN7k=";
        assert!(verify_signature("channel_secret", b"bodybodybodybody", sig));
        assert_eq!(sign("channel_secret", b"bodybodybodybody"), sig);
        let bad = "invalid_signature";
        assert!(!verify_signature(
            "channel_secret",
            b"bodybodybodybody",
            bad
        ));
        // line/line-bot-sdk-nodejs test/validate-signature.spec.ts (body = JSON.stringify)
        let body = br#"{"hello":"world"}"#;
        let sig = "t7Hn4ZDHqs6e+wdvI5TyQIvzie0DmMUmuXEBqyyE/tM=";
        assert!(verify_signature("test_secret", body, sig));
        let bad = "t7Hn4ZDHqs6e+wdvi5TyQivzie0DmMUmuXEBqyyE/tM=";
        assert!(!verify_signature("test_secret", body, bad));
    }

    #[test]
    fn signature_rejects_wrong_inputs() {
        let (secret, body) = ("channel_secret", &b"bodybodybodybody"[..]);
        let sig = sign(secret, body);
        assert!(verify_signature(secret, body, &sig));
        assert!(!verify_signature("channel_secreT", body, &sig));
        assert!(!verify_signature(secret, b"bodybodybodybodx", &sig));
        assert!(!verify_signature(secret, body, ""));
        assert!(!verify_signature(secret, body, &"!".repeat(44)));
        assert!(!verify_signature(secret, body, "AAAA"));
        assert!(!verify_signature(secret, body, &format!(" {}", &sig[1..])));
        assert!(!verify_signature(secret, body, &sig.to_lowercase()));
    }

    #[test]
    fn signature_is_over_raw_bytes_with_unicode_escapes() {
        // Independent vector: python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(
        //   hmac.new(b"8d3c1a6e5f2b4c7d9e0f1a2b3c4d5e6f", rb"""<body>""", hashlib.sha256)
        //   .digest()).decode())'   with <body> = the literal below
        let body = br#"{"destination":"U0123456789abcdef0123456789abcdef","events":[{"text":"\ud83d\ude00 \u3053\u3093"}]}"#;
        let (secret, sig) = (
            "8d3c1a6e5f2b4c7d9e0f1a2b3c4d5e6f",
            "qGAxc+MBxNrmYqjmmP9lMC9D+S3GikVDlqFJZM8C7U8=",
        );
        assert!(verify_signature(secret, body, sig));
        let reserialised = serde_json::from_slice::<serde_json::Value>(body)
            .unwrap()
            .to_string();
        assert_ne!(reserialised.as_bytes(), body);
        assert!(!verify_signature(secret, reserialised.as_bytes(), sig));
    }

    // --- one test per message type, event type and source shape ----------------------

    macro_rules! fixture_tests {
        ($($name:ident: $id:literal => $expected:literal,)*) => {$(
            #[test]
            fn $name() {
                check($id, $expected);
            }
        )*};
    }

    fixture_tests! {
        text: "01J0TEXT" => r#"{"replyToken":"nHuyWiB7yP5Zw52FIkcQobQuGDXCTA","kind":{"type":"message","id":"468789577898262530","quoteToken":"q1","markAsReadToken":"mr1","quotedMessageId":"468789532432007169","content":{"type":"text","text":"@All @Brown (love)","emojis":[{"index":12,"length":6,"productId":"5ac1bfd5040ab15980c9b435","emojiId":"001"}],"mentionees":[{"index":0,"length":4,"type":"all","userId":null,"isSelf":false},{"index":5,"length":6,"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8","isSelf":true}]}}}"#,
        image: "01J0IMAGE" => r#"{"timestamp":1627356924722,"replyToken":null,"kind":{"id":"354718705033693861","quoteToken":"q2","markAsReadToken":null,"content":{"type":"image","contentProvider":{"type":"line"},"imageSet":{"id":"E005D41A7288F41B655","index":2,"total":2}}}}"#,
        video_external: "01J0VIDEO" => r#"{"kind":{"quoteToken":"q3","content":{"type":"video","durationMs":60000,"contentProvider":{"type":"external","originalContentUrl":"https://example.com/v.mp4","previewImageUrl":"https://example.com/p.jpg"}}}}"#,
        audio: "01J0AUDIO" => r#"{"kind":{"quoteToken":null,"content":{"type":"audio","durationMs":60000,"contentProvider":{"type":"line"}}}}"#,
        file: "01J0FILE" => r#"{"kind":{"id":"325710","content":{"type":"file","fileName":"file.txt","fileSize":2138}}}"#,
        location: "01J0LOCATION" => r#"{"kind":{"content":{"type":"location","title":"my location","address":"Tokyo","latitude":35.65910807942215,"longitude":139.70372892916203}}}"#,
        sticker: "01J0STICKER" => r#"{"kind":{"quoteToken":"q4","quotedMessageId":"325700","content":{"type":"sticker","packageId":"1","stickerId":"2","stickerResourceType":"MESSAGE","keywords":["Love You","Love"],"text":"Just sticker"}}}"#,
        unknown_message_type_even_with_clashing_fields: "01J0POLL" => r#"{"kind":{"type":"message","id":"325713","quoteToken":"q5","content":{"type":"other","messageType":"poll"}}}"#,
        message_edited: "01J0EDITED" => r#"{"replyToken":null,"timestamp":1462629479900,"kind":{"type":"messageEdited","id":"325714","content":{"type":"text","text":"fixed typo","emojis":[],"mentionees":[]}}}"#,
        group_source_with_user: "01J0EDITED" => r#"{"source":{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9","userId":"U206d25c2ea6bd87c17655609a1c37cb8"}}"#,
        unsend: "01J0UNSEND" => r#"{"kind":{"type":"unsend","messageId":"325708"}}"#,
        follow_new_friend: "01J0FOLLOWNEW" => r#"{"replyToken":"r","source":{"type":"user","userId":"U206d25c2ea6bd87c17655609a1c37cb8"},"kind":{"type":"follow","isUnblocked":false}}"#,
        follow_unblocked: "01J0FOLLOWUNBLOCK" => r#"{"kind":{"type":"follow","isUnblocked":true}}"#,
        unfollow: "01J0UNFOLLOW" => r#"{"replyToken":null,"kind":{"type":"unfollow"}}"#,
        join_group_source_without_user: "01J0JOIN" => r#"{"replyToken":"r","source":{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9","userId":null},"kind":{"type":"join"}}"#,
        leave_room_source_without_user: "01J0LEAVE" => r#"{"source":{"type":"room","roomId":"Ra8dbf4673c4c812cd491258042226c99","userId":null},"kind":{"type":"leave"}}"#,
        room_source_with_user: "01J0ROOMMSG" => r#"{"source":{"type":"room","roomId":"Ra8dbf4673c4c812cd491258042226c99","userId":"U206d25c2ea6bd87c17655609a1c37cb8"}}"#,
        member_joined_several: "01J0JOINED" => r#"{"kind":{"type":"memberJoined","userIds":["U4af4980629","U91eeaf62d9","U0000000003"]}}"#,
        member_left: "01J0LEFT" => r#"{"kind":{"type":"memberLeft","userIds":["U4af4980629","U91eeaf62d9"]}}"#,
        postback_with_params: "01J0POSTBACK" => r#"{"kind":{"type":"postback","data":"action=buy&itemId=1","params":{"newRichMenuAliasId":"richmenu-alias-b","status":"SUCCESS"}}}"#,
        postback_without_params: "01J0POSTBACKBARE" => r#"{"replyToken":null,"kind":{"type":"postback","data":"x","params":{}}}"#,
        mode_standby_redelivered_without_source: "01J0STANDBY" => r#"{"mode":"standby","isRedelivery":true,"source":null,"replyToken":null}"#,
        video_play_complete: "01J1A" => r#"{"kind":{"type":"other","eventType":"videoPlayComplete"}}"#,
        beacon: "01J1B" => r#"{"replyToken":"r","kind":{"type":"other","eventType":"beacon"}}"#,
        account_link: "01J1C" => r#"{"kind":{"type":"other","eventType":"accountLink"}}"#,
        membership: "01J1D" => r#"{"kind":{"type":"other","eventType":"membership"}}"#,
        module: "01J1E" => r#"{"source":null,"kind":{"type":"other","eventType":"module"}}"#,
        activated: "01J1F" => r#"{"kind":{"type":"other","eventType":"activated"}}"#,
        deactivated: "01J1G" => r#"{"kind":{"type":"other","eventType":"deactivated"}}"#,
        bot_suspended: "01J1H" => r#"{"source":null,"kind":{"type":"other","eventType":"botSuspended"}}"#,
        bot_resumed: "01J1I" => r#"{"kind":{"type":"other","eventType":"botResumed"}}"#,
        delivery: "01J1J" => r#"{"kind":{"type":"other","eventType":"delivery"}}"#,
        things_is_gone: "01J1K" => r#"{"kind":{"type":"other","eventType":"things"}}"#,
        unknown_event_type_even_with_clashing_fields: "01J1L" => r#"{"kind":{"type":"other","eventType":"brandNew"}}"#,
        whitespace_inside_event: "01J0SPACED" => r#"{"mode":"active","timestamp":2,"kind":{"type":"unfollow"}}"#,
    }

    #[test]
    fn typed_accessors() {
        let EventKind::Message(m) = get("01J0TEXT").kind else {
            panic!()
        };
        let MessageContent::Text {
            emojis, mentionees, ..
        } = m.content
        else {
            panic!()
        };
        let emoji = Emoji {
            index: 12,
            length: 6,
            product_id: "5ac1bfd5040ab15980c9b435".into(),
            emoji_id: "001".into(),
        };
        assert_eq!(emojis, vec![emoji]);
        let me = Mentionee {
            index: 5,
            length: 6,
            kind: "user".into(),
            user_id: Some(USER.into()),
            is_self: true,
        };
        assert_eq!(mentionees[1], me);
        let chat = |id| {
            get(id)
                .source
                .map(|s| (s.chat_id().to_owned(), s.sender_id().map(str::to_owned)))
        };
        let own = |a: &str, b: Option<&str>| Some((a.to_owned(), b.map(str::to_owned)));
        assert_eq!(chat("01J0FOLLOWNEW"), own(USER, Some(USER)));
        assert_eq!(chat("01J0EDITED"), own(GROUP, Some(USER)));
        assert_eq!(chat("01J0JOIN"), own(GROUP, None));
        assert_eq!(chat("01J0ROOMMSG"), own(ROOM, Some(USER)));
        assert_eq!(chat("01J0LEAVE"), own(ROOM, None));
        assert_eq!(get("01J0STANDBY").mode, Mode::Standby);
        // Unknown mode and source types are kept / dropped rather than rejected.
        let e = parse_event(
            &ev("x", "leave", r#"{"type":"square","squareId":"S1"}"#, "").replace("active", "x"),
        )
        .unwrap();
        assert_eq!(
            (e.mode, e.source, to_json(&Mode::Other("x".into()))),
            (Mode::Other("x".into()), None, json!("x"))
        );
    }

    #[test]
    fn body_level_rules() {
        let b = parse_body(br#"{"destination":"U0123456789abcdef0123456789abcdef","events":[]}"#)
            .unwrap();
        assert_eq!(
            (b.destination.as_str(), b.events.len()),
            ("U0123456789abcdef0123456789abcdef", 0)
        );
        // Duplicate IDs are kept: dedupe is the caller's job.
        let dup = ev("01J0DUP", "leave", r#"{"type":"room","roomId":"R1"}"#, "");
        let many = vec![dup; MAX_EVENTS];
        assert_eq!(
            parse_body(body_of(&many).as_bytes()).unwrap().events.len(),
            MAX_EVENTS
        );
        let too_many = vec!["{}".to_owned(); MAX_EVENTS + 1];
        assert_eq!(
            err(&body_of(&too_many)),
            "too many events: 1001 (at most 1000)"
        );
    }

    // --- errors ----------------------------------------------------------------------

    #[test]
    fn malformed_bodies() {
        assert_eq!(
            err("<html>"),
            "body is not valid JSON: expected value at line 1 column 1"
        );
        assert!(err(r#"{"destination":"U","events":[}"#).starts_with("body is not valid JSON"));
        let e = parse_body(b"{\"destination\":\"\xff\"}").unwrap_err();
        assert_eq!(e, ParseError::NotUtf8 { valid_up_to: 16 });
        assert_eq!(
            err(r#"{"destination":"U","events":{}}"#),
            "body: invalid type: map, expected a sequence"
        );
        assert_eq!(err(r#"{"events":[]}"#), "body: missing field `destination`");
        assert_eq!(
            err(r#"{"destination":"U"}"#),
            "body: missing field `events`"
        );
        let want = "events[0]: invalid type: integer `1`, expected an event object";
        assert_eq!(err(r#"{"destination":"U","events":[1]}"#), want);
    }

    /// `<event JSON> => <error>`; each event is sent as events[1] after a valid one.
    const BAD_EVENTS: &str = r#"
{"type":"leave","mode":"active","timestamp":1,"deliveryContext":{"isRedelivery":false}} => events[1]: missing field `webhookEventId`
{"type":"leave","mode":"active","timestamp":"1","webhookEventId":"x","deliveryContext":{"isRedelivery":false}} => events[1]: invalid type: string "1", expected i64
{"type":"leave","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{}} => events[1].deliveryContext: missing field `isRedelivery`
{"type":"leave","mode":"active","timestamp":1,"webhookEventId":"x"} => events[1]: missing field `deliveryContext`
{"type":"leave","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false}} => events[1]: missing field `mode`
{"mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false}} => events[1]: missing field `type`
{"type":"leave","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":"no"}} => events[1].deliveryContext: invalid type: string "no", expected a boolean
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false}} => events[1]: missing field `message`
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"type":"text","text":"hi"}} => events[1].message: missing field `id`
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":"1","type":"text","text":7}} => events[1].message: invalid type: integer `7`, expected a string
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":"1","type":"text"}} => events[1].message: missing field `text`
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":"1","type":"sticker","stickerId":"2"}} => events[1].message: missing field `packageId`
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":"1","type":"image"}} => events[1].message: missing field `contentProvider`
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":"1","type":"image","contentProvider":{"type":"ftp"}}} => events[1].message: unknown variant `ftp`, expected `line` or `external`
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":"1","type":"file","fileName":"a","fileSize":"12"}} => events[1].message: invalid type: string "12", expected i64
{"type":"message","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":"1","type":"location","latitude":1.5}} => events[1].message: missing field `longitude`
{"type":"messageEdited","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"message":{"id":1,"type":"text","text":"a"}} => events[1].message: invalid type: integer `1`, expected a string
{"type":"unsend","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"unsend":{}} => events[1].unsend: missing field `messageId`
{"type":"follow","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"follow":{}} => events[1].follow: missing field `isUnblocked`
{"type":"join","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"source":{"type":"group"}} => events[1].source: missing field `groupId`
{"type":"join","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"source":{"type":"room","userId":"U1"}} => events[1].source: missing field `roomId`
{"type":"memberLeft","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"left":{"members":{}}} => events[1].left: invalid type: map, expected a sequence
{"type":"memberJoined","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false}} => events[1]: missing field `joined`
{"type":"postback","mode":"active","timestamp":1,"webhookEventId":"x","deliveryContext":{"isRedelivery":false},"postback":{"data":"d","params":{"n":1}}} => events[1].postback: invalid type: integer `1`, expected a string
"#;

    #[test]
    fn missing_or_mistyped_fields() {
        let ok = r#"{"type":"leave","mode":"active","timestamp":1,"webhookEventId":"ok","deliveryContext":{"isRedelivery":false}}"#;
        for line in BAD_EVENTS.lines().filter(|l| !l.is_empty()) {
            let (event, want) = line.split_once(" => ").unwrap();
            assert_eq!(err(&body_of(&[ok.into(), event.into()])), want, "{event}");
            let again = parse_event(event).unwrap_err().to_string();
            assert_eq!(again, want.replacen("events[1]", "event", 1));
        }
    }

    /// Any JSON value, nested a few levels, with keys LINE uses so the parser goes deep.
    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("type".to_owned()),
            Just("message".to_owned()),
            Just("source".to_owned()),
            Just("webhookEventId".to_owned()),
            Just("timestamp".to_owned()),
            Just("text".to_owned()),
            Just("emojis".to_owned()),
            Just("mention".to_owned()),
            Just("contentProvider".to_owned()),
            "[a-zA-Z]{1,12}",
        ];
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            prop_oneof![
                Just("message".to_owned()),
                Just("text".to_owned()),
                Just("user".to_owned()),
                Just("group".to_owned()),
                Just("sticker".to_owned()),
                Just("image".to_owned()),
                ".{0,20}",
            ]
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(key.clone(), inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        // Many cases by default; PROPTEST_CASES overrides for longer hunts.
        #![proptest_config(proptest::test_runner::Config::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2048)
        ))]

        #[test]
        fn arbitrary_json_events_never_panic(events in proptest::collection::vec(any_json(), 0..4)) {
            let body = serde_json::json!({ "destination": "U0", "events": events }).to_string();
            if let Ok(b) = parse_body(body.as_bytes()) {
                proptest::prop_assert!(b.events.iter().all(|p| parse_event(&p.raw).as_ref() == Ok(&p.event)));
            }
            for event in &events {
                let _ = parse_event(&event.to_string());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(0u8.., 0..300), header in ".{0,50}") {
            let _ = parse_body(&bytes);
            let _ = verify_signature("secret", &bytes, &header);
        }

        #[test]
        fn jsonish_strings_never_panic(s in r#"[{}\[\]":,0-9a-zA-Z \-.eE\\]{0,200}"#) {
            let _ = parse_body(s.as_bytes());
            let _ = parse_event(&s);
        }

        #[test]
        fn mutated_fixture_never_panics(at in 0..FIXTURE.len(), cut in 0usize..8, insert in r#"[{}\[\]":,0-9a-z\-]{0,6}"#) {
            let mut s = FIXTURE.as_bytes().to_vec();
            s.splice(at..(at + cut).min(s.len()), insert.bytes());
            if let Ok(b) = parse_body(&s) {
                proptest::prop_assert!(b.events.iter().all(|p| parse_event(&p.raw).as_ref() == Ok(&p.event)));
            }
        }
    }
}
