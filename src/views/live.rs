//! Live fragments: what an event from the log redraws, as out-of-band swaps (the live
//! transports swap them into a hidden sink, so only the OOB parts land).

use maud::{Markup, html};

use super::{ids, inbox::conversation_row, messages::message_row};
use crate::{
    i18n::Lang,
    store::{conversations::ConversationRow, events::Event, messages::Message},
};

/// What an event needs from the store to be drawn (looked up by the handler).
pub struct LiveItem<'a> {
    pub event: &'a Event,
    pub message: Option<&'a Message>,
    pub row: Option<&'a ConversationRow>,
}

pub fn live_fragment(lang: Lang, csrf: &str, item: &LiveItem<'_>) -> Markup {
    html! {
        @if let Some(m) = item.message {
            @if item.event.kind == "message.new" {
                // Appended to the thread if it is open; `app.js` drops a row already there
                // (the sender's own reply arrives both in the POST answer and here).
                div hx-swap-oob={ "beforeend:#" (ids::thread(m.conversation_id)) } {
                    (message_row(lang, m, csrf, None))
                }
            } @else {
                (message_row(lang, m, csrf, Some("outerHTML")))
            }
        }
        @if let Some(row) = item.row {
            @if item.event.kind == "message.new" {
                // New activity moves the row to the top: remove it, then insert it first.
                li id=(ids::conversation_row(row.id)) hx-swap-oob="delete" {}
                div hx-swap-oob={ "afterbegin:#" (ids::CONVERSATION_LIST) } {
                    (conversation_row(lang, row, None))
                }
            } @else {
                (conversation_row(lang, row, Some("outerHTML")))
            }
        }
    }
}
