//! One line of a thread: a customer's message, an agent's reply with its delivery status, or
//! a quiet system line. What is inside a bubble, kind by kind, is `content.rs`.

use maud::{Markup, Render, html};

use super::ids;
use crate::{
    i18n::{Lang, Msg},
    store::messages::Message,
};

/// A time as `<time>`: UTC in the markup, turned into the agent's local time by `app.js`.
pub struct Timestamp(pub i64);

/// A time with its date (`data-full`: `app.js` shows the agent's local date and time).
pub struct DateTime(pub i64);

fn utc(ms: i64) -> (time::OffsetDateTime, String) {
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let iso = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        when.year(),
        u8::from(when.month()),
        when.day(),
        when.hour(),
        when.minute(),
        when.second()
    );
    (when, iso)
}

impl Render for Timestamp {
    fn render(&self) -> Markup {
        let (when, iso) = utc(self.0);
        html! { time datetime=(iso) { (format!("{:02}:{:02}", when.hour(), when.minute())) } }
    }
}

impl Render for DateTime {
    fn render(&self) -> Markup {
        let (_, iso) = utc(self.0);
        // Until app.js localises it: "YYYY-MM-DD HH:MM UTC".
        html! { time datetime=(iso) data-full="1" { (iso[..16].replace('T', " ")) " UTC" } }
    }
}

/// The label of a non-text kind (system lines included).
fn kind_label(kind: &str) -> Msg {
    match kind {
        "sticker" => Msg::Sticker,
        "image" => Msg::Image,
        "video" => Msg::Video,
        "audio" => Msg::Audio,
        "file" => Msg::File,
        "location" => Msg::Location,
        "postback" => Msg::Postback,
        "follow" => Msg::Followed,
        "unfollow" => Msg::Unfollowed,
        "join" => Msg::BotJoined,
        "leave" => Msg::BotLeft,
        "member_joined" => Msg::MemberJoined,
        "member_left" => Msg::MemberLeft,
        _ => Msg::OtherKind,
    }
}

/// The preview of a message for the conversation list.
pub fn preview(lang: Lang, kind: &str, text: Option<&str>) -> String {
    match (kind, text) {
        ("text", Some(t)) => t.chars().take(80).collect(),
        (_, _) => lang.t(kind_label(kind)).to_owned(),
    }
}

/// A message row; `oob` adds `hx-swap-oob` (a live update replacing the row in place).
pub fn message_row(lang: Lang, m: &Message, oob: Option<&str>) -> Markup {
    let id = ids::message(m.id);
    html! {
        div id=(id) class={ "msg " (m.direction) } hx-swap-oob=[oob] {
            @if m.direction == "system" {
                span.system { (lang.t(kind_label(&m.kind))) " · " (Timestamp(m.created_at)) }
            } @else {
                @if m.from_member {
                    div.sender { (m.sender_name.as_deref().unwrap_or(lang.t(Msg::GroupMember))) }
                }
                div class={ "bubble " (m.kind) } { (content(lang, m)) }
                div.meta {
                    (Timestamp(m.created_at))
                    @if m.direction == "out" { " " (status(lang, m)) }
                }
            }
        }
    }
}

fn content(lang: Lang, m: &Message) -> Markup {
    if m.status == "unsent" {
        return html! { em { (lang.t(Msg::Unsent)) } };
    }
    super::content::content(lang, m, kind_label(&m.kind))
}

fn status(lang: Lang, m: &Message) -> Markup {
    let label = match m.status.as_str() {
        "queued" => Msg::Queued,
        "sending" => Msg::Sending,
        "sent" => Msg::Sent,
        _ => Msg::Failed,
    };
    html! {
        span class={ "status " (m.status) } { (lang.t(label)) }
        @if m.status == "failed" {
            @if let Some(e) = &m.last_error { " " span.error { (e) } }
            form.retry hx-post={ "/messages/" (m.id) "/retry" } hx-target={ "#" (ids::message(m.id)) }
                hx-swap="outerHTML" method="post" action={ "/messages/" (m.id) "/retry" } {
                // No token field: live fragments are the same bytes for every agent, and htmx
                // sends the session's token as `x-csrf-token` (from `<body hx-headers>`).
                button type="submit" { (lang.t(Msg::Retry)) }
            }
        }
    }
}
