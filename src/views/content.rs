//! The inside of a message bubble, by kind: text with LINE emojis, stickers, media through the
//! authenticated `/media/{id}` route, files, locations, postbacks.
//!
//! The body is the normalized JSON the ingest worker stored (see `MessageContent` in
//! `src/line/webhook.rs`) or the LINE message object an agent sent. It is read leniently: a
//! missing or odd field falls back to the kind's label, never to an error page. Ids that go
//! into a CDN URL are checked to be plain ASCII alphanumerics first, so a hostile body cannot
//! point an `<img>` anywhere else.

use maud::{Markup, html};
use serde_json::Value;

use crate::{
    i18n::{Lang, Msg},
    store::messages::Message,
};

/// A LINE emoji image (product id, emoji id).
pub fn emoji_url(product_id: &str, emoji_id: &str) -> String {
    format!(
        "https://stickershop.line-scdn.net/sticonshop/v1/sticon/{product_id}/iPhone/{emoji_id}.png"
    )
}

/// A sticker's still image.
pub fn sticker_url(sticker_id: &str) -> String {
    format!(
        "https://stickershop.line-scdn.net/stickershop/v1/sticker/{sticker_id}/android/sticker.png"
    )
}

/// Where a message's downloaded content is served (to signed-in agents only).
pub fn media_url(message_id: i64) -> String {
    format!("/media/{message_id}")
}

/// Whether an id is safe to put in a CDN path.
fn plain_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// A size as people read it: bytes, KB or MB (1024-based, one decimal).
pub fn human_size(bytes: i64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes.max(0) as f64;
    if b < KB {
        format!("{bytes} B")
    } else if b < KB * KB {
        format!("{:.1} KB", b / KB)
    } else if b < KB * KB * KB {
        format!("{:.1} MB", b / (KB * KB))
    } else {
        format!("{:.1} GB", b / (KB * KB * KB))
    }
}

/// The bubble's content for a non-unsent message.
pub fn content(lang: Lang, m: &Message, label: Msg) -> Markup {
    let body: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
    match m.kind.as_str() {
        "text" => text(&body, m.text.as_deref().unwrap_or("")),
        "sticker" => sticker(lang, &body),
        "image" | "video" | "audio" => media(lang, m, &body, label),
        "file" => file(lang, m, &body),
        "location" => location(lang, &body),
        _ => html! {
            span.kind { (lang.t(label)) }
            @if let Some(t) = &m.text { " " (t) }
        },
    }
}

/// Text with LINE emojis: each `{index, length, productId, emojiId}` (UTF-16 units into the
/// text) becomes the emoji's image, its placeholder text (e.g. `(smile)`) the alt text.
fn text(body: &Value, text: &str) -> Markup {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut emojis: Vec<(usize, usize, &str, &str)> = body
        .get("emojis")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let index = usize::try_from(e.get("index")?.as_u64()?).ok()?;
            let length = usize::try_from(e.get("length")?.as_u64()?).ok()?;
            let product = str_field(e, "productId").filter(|s| plain_id(s))?;
            let emoji = str_field(e, "emojiId").filter(|s| plain_id(s))?;
            Some((index, length, product, emoji))
        })
        .collect();
    emojis.sort_by_key(|e| e.0);
    let mut parts: Vec<Markup> = Vec::new();
    let mut at = 0;
    for (index, length, product, emoji) in emojis {
        // Overlapping or out-of-range entries are ignored: the text stays as it is.
        let Some(end) = index.checked_add(length).filter(|&end| end <= units.len()) else {
            continue;
        };
        if index < at || length == 0 {
            continue;
        }
        let before = String::from_utf16_lossy(&units[at..index]);
        let alt = String::from_utf16_lossy(&units[index..end]);
        parts.push(html! {
            (before)
            img.emoji src=(emoji_url(product, emoji)) alt=(alt) title=(alt) loading="lazy";
        });
        at = end;
    }
    let rest = String::from_utf16_lossy(&units[at.min(units.len())..]);
    html! { @for p in parts { (p) } (rest) }
}

fn sticker(lang: Lang, body: &Value) -> Markup {
    let keywords: Vec<&str> = body
        .get("keywords")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .take(3)
        .collect();
    let alt = match (str_field(body, "text"), keywords.is_empty()) {
        (Some(t), _) if !t.is_empty() => t.to_owned(),
        (_, false) => keywords.join(", "),
        _ => lang.t(Msg::StickerAlt).to_owned(),
    };
    match str_field(body, "stickerId").filter(|s| plain_id(s)) {
        Some(id) => html! {
            img.sticker src=(sticker_url(id)) alt=(alt) title=(alt) loading="lazy";
        },
        None => html! { span.kind { (lang.t(Msg::Sticker)) } },
    }
}

/// An image, video or audio: inline once downloaded, else a label saying where it stands.
fn media(lang: Lang, m: &Message, body: &Value, label: Msg) -> Markup {
    let src = media_url(m.id);
    match m.media_state.as_deref() {
        Some("ready") => match m.kind.as_str() {
            "image" => html! {
                a.media href=(src) target="_blank" rel="noopener" {
                    img.media src=(src) alt=(lang.t(Msg::ImageAlt)) loading="lazy";
                }
            },
            "video" => html! {
                video.media controls preload="metadata" src=(src) {
                    a href=(src) { (lang.t(label)) }
                }
            },
            _ => html! {
                audio controls preload="metadata" src=(src) {
                    a href=(src) { (lang.t(label)) }
                }
            },
        },
        Some("external") => external(lang, body, label),
        state => not_ready(lang, state, label, None),
    }
}

/// A placeholder while the content is downloading, or the reason it is not there.
fn not_ready(lang: Lang, state: Option<&str>, label: Msg, name: Option<&str>) -> Markup {
    let (class, note) = match state {
        Some("pending") => ("media-note pending", Msg::MediaDownloading),
        _ => ("media-note failed", Msg::MediaFailed),
    };
    html! {
        span.kind { (lang.t(label)) }
        @if let Some(n) = name { " " (n) }
        " " span class=(class) { (lang.t(note)) }
    }
}

/// Content held by the sender's own provider: a link to it, but only over https.
fn external(lang: Lang, body: &Value, label: Msg) -> Markup {
    let url = body
        .get("contentProvider")
        .and_then(|p| str_field(p, "originalContentUrl"))
        .filter(|u| {
            u.starts_with("https://") && u.len() <= 2000 && !u.contains(char::is_whitespace)
        });
    html! {
        span.kind { (lang.t(label)) }
        " "
        @match url {
            Some(u) => a.external href=(u) target="_blank" rel="noopener noreferrer" { (lang.t(Msg::MediaExternal)) },
            None => span.media-note { (lang.t(Msg::MediaExternalNoLink)) },
        }
    }
}

fn file(lang: Lang, m: &Message, body: &Value) -> Markup {
    let name: String = str_field(body, "fileName")
        .filter(|n| !n.is_empty())
        .or(m.text.as_deref())
        .unwrap_or_else(|| lang.t(Msg::File))
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let name = name.as_str();
    let size = m
        .media_size
        .or_else(|| body.get("fileSize").and_then(Value::as_i64))
        .map(human_size);
    if m.media_state.as_deref() != Some("ready") {
        return not_ready(lang, m.media_state.as_deref(), Msg::File, Some(name));
    }
    html! {
        a.file href=(media_url(m.id)) download=(name) {
            span.file-name { (name) }
            @if let Some(s) = size { " " span.file-size { "(" (s) ")" } }
        }
    }
}

/// A location: its title and address, and a map link to the exact point.
fn location(lang: Lang, body: &Value) -> Markup {
    let title = str_field(body, "title").filter(|s| !s.is_empty());
    let address = str_field(body, "address").filter(|s| !s.is_empty());
    let lat = body.get("latitude").and_then(Value::as_f64);
    let lng = body.get("longitude").and_then(Value::as_f64);
    let point = match (lat, lng) {
        (Some(lat), Some(lng))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng) =>
        {
            Some(format!(
                "https://www.google.com/maps/search/?api=1&query={lat},{lng}"
            ))
        }
        _ => None,
    };
    html! {
        span.location {
            span.kind { (lang.t(Msg::Location)) }
            @if let Some(t) = title { " " strong { (t) } }
            @if let Some(a) = address { br; span.address { (a) } }
            @if let Some(url) = point {
                br;
                a.map href=(url) target="_blank" rel="noopener noreferrer" { (lang.t(Msg::OpenMap)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_read_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 * 1024 * 1024 + 1024 * 102), "5.1 MB");
    }

    #[test]
    fn emojis_replace_their_placeholders_and_junk_is_ignored() {
        let body = serde_json::json!({ "emojis": [
            { "index": 3, "length": 5, "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "001" },
            // Out of range, overlapping and hostile ids: left as text.
            { "index": 99, "length": 6, "productId": "a", "emojiId": "b" },
            { "index": 4, "length": 2, "productId": "a", "emojiId": "b" },
            { "index": 0, "length": 1, "productId": "../x", "emojiId": "b" },
        ]});
        let html = text(&body, "Hi (hey) <b>").into_string();
        assert!(html.starts_with("Hi <img class=\"emoji\" src=\"https://stickershop.line-scdn.net/sticonshop/v1/sticon/5ac1bfd5040ab15980c9b435/iPhone/001.png\" alt=\"(hey)\""), "{html}");
        assert!(html.ends_with("> &lt;b&gt;"), "{html}");
        assert!(!html.contains("../x"));
    }
}
