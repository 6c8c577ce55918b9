//! Live fragments: what an event from the log redraws, as out-of-band swaps (the live
//! transports swap them into a hidden sink, so only the OOB parts land).
//!
//! A fragment is the same bytes for every agent of a language (no CSRF token, no per-agent
//! count), so it can be rendered once and shared; `app.js` adds what is per agent (unread
//! badges, dropping rows outside the agent's list filter).

use maud::{Markup, html};

use super::{
    ids,
    inbox::{contact_card, conversation_row, thread_head},
    messages::message_row,
};
use crate::{
    i18n::Lang,
    store::{
        agents::Agent, contacts::Contact, conversations::ConversationRow, events::Event,
        messages::Message,
    },
};

/// What an event needs from the store to be drawn (looked up by the handler).
pub struct LiveItem<'a> {
    pub event: &'a Event,
    pub message: Option<&'a Message>,
    pub row: Option<&'a ConversationRow>,
    /// For a conversation change: who it can be assigned to (the open thread's header).
    pub agents: Option<&'a [Agent]>,
    /// For a conversation or contact change: the contact (the open thread's contact panel).
    pub contact: Option<&'a Contact>,
}

pub fn live_fragment(lang: Lang, item: &LiveItem<'_>) -> Markup {
    html! {
        @if let Some(m) = item.message {
            @if item.event.kind == "message.new" {
                // Appended to the thread if it is open; `app.js` drops a row already there
                // (the sender's own reply arrives both in the POST answer and here).
                div hx-swap-oob={ "beforeend:#" (ids::thread(m.conversation_id)) } {
                    (message_row(lang, m, None))
                }
            } @else {
                (message_row(lang, m, Some("outerHTML")))
            }
        }
        @if let Some(row) = item.row {
            @if item.event.kind == "message.new" {
                // New activity moves the row to the top: remove it, then insert it first.
                li id=(ids::conversation_row(row.id)) hx-swap-oob="delete" {}
                div hx-swap-oob={ "afterbegin:#" (ids::CONVERSATION_LIST) } {
                    (conversation_row(lang, row, None, None))
                }
            } @else {
                (conversation_row(lang, row, Some("outerHTML"), None))
            }
            @if let Some(agents) = item.agents {
                (thread_head(lang, row, agents, Some("outerHTML")))
            }
            @if let Some(contact) = item.contact {
                (contact_card(lang, row, contact, Some("outerHTML")))
            }
        }
    }
}
