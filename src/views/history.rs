//! Older history: the sentinel at the top of a thread that loads the page before it when it
//! scrolls into view (`app.js` keeps the scroll position while it is prepended).

use maud::{Markup, html};

use super::messages::message_row;
use crate::{
    i18n::{Lang, Msg},
    store::messages::Message,
};

/// The sentinel's id (one per thread; the answer replaces it).
pub fn sentinel_id(conversation_id: i64) -> String {
    format!("older-{conversation_id}")
}

/// Loads the messages before `oldest_id` once it becomes visible.
pub fn older_sentinel(lang: Lang, conversation_id: i64, oldest_id: i64) -> Markup {
    let url = format!("/conversations/{conversation_id}/messages?before={oldest_id}");
    html! {
        div.older id=(sentinel_id(conversation_id)) hx-get=(url) hx-trigger="intersect once"
            hx-swap="outerHTML" role="status" {
            (lang.t(Msg::LoadingOlder))
        }
    }
}

/// One older page, oldest first, with the next sentinel above it when there is more.
pub fn older_page(
    lang: Lang,
    conversation_id: i64,
    messages: &[Message],
    has_older: bool,
) -> Markup {
    html! {
        @if let (true, Some(first)) = (has_older, messages.first()) {
            (older_sentinel(lang, conversation_id, first.id))
        }
        @for m in messages { (message_row(lang, m, None)) }
    }
}
