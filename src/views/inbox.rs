//! The inbox: the conversation list beside the open thread and its composer.

use maud::{Markup, html};

use super::{
    ids,
    layout::{Shell, page},
    messages::{Timestamp, message_row, preview},
};
use crate::{
    domain::MAX_TEXT_UTF16,
    i18n::{Lang, Msg},
    store::{conversations::ConversationRow, messages::Message},
};

/// The open conversation: its list row (for the header) and its messages, oldest first.
pub struct Thread<'a> {
    pub row: &'a ConversationRow,
    pub messages: &'a [Message],
    /// A fresh one-use key for the composer (stops a double submit from sending twice).
    pub nonce: &'a str,
}

pub fn inbox_page(
    shell: &Shell<'_>,
    rows: &[ConversationRow],
    open: Option<&Thread<'_>>,
) -> Markup {
    let lang = shell.lang;
    page(
        shell,
        html! {
            main.inbox {
                nav.list {
                    h2 { (lang.t(Msg::Conversations)) }
                    ul id=(ids::CONVERSATION_LIST) {
                        @for row in rows { (conversation_row(lang, row, None)) }
                    }
                    @if rows.is_empty() { p.empty { (lang.t(Msg::NoConversations)) } }
                }
                section id=(ids::THREAD_PANE) {
                    @match open {
                        Some(thread) => { (thread_pane(lang, shell.csrf, thread)) }
                        None => { p.empty { (lang.t(Msg::PickConversation)) } }
                    }
                }
            }
        },
    )
}

/// The contact's name, else its LINE id.
pub fn contact_name(row: &ConversationRow) -> &str {
    row.display_name.as_deref().unwrap_or(&row.line_id)
}

pub fn conversation_row(lang: Lang, row: &ConversationRow, oob: Option<&str>) -> Markup {
    let href = format!("/conversations/{}", row.id);
    html! {
        li id=(ids::conversation_row(row.id)) hx-swap-oob=[oob] {
            a href=(href) hx-get=(href) hx-target={ "#" (ids::THREAD_PANE) } hx-push-url="true" {
                span.name { (contact_name(row)) }
                span.when { (Timestamp(row.last_activity_at)) }
                span.preview {
                    @if let Some(kind) = &row.last_kind {
                        (preview(lang, kind, row.last_text.as_deref()))
                    }
                }
            }
        }
    }
}

pub fn thread_pane(lang: Lang, csrf: &str, thread: &Thread<'_>) -> Markup {
    let id = thread.row.id;
    html! {
        header.thread-head { h2 { (contact_name(thread.row)) } }
        div.thread id=(ids::thread(id)) {
            @for m in thread.messages { (message_row(lang, m, csrf, None)) }
        }
        (composer(lang, csrf, id, thread.nonce))
    }
}

fn composer(lang: Lang, csrf: &str, conversation_id: i64, nonce: &str) -> Markup {
    let action = format!("/conversations/{conversation_id}/messages");
    html! {
        form.composer id="composer" method="post" action=(action) hx-post=(action)
            hx-target={ "#" (ids::thread(conversation_id)) } hx-swap="beforeend" {
            input type="hidden" name="csrf" value=(csrf);
            (nonce_field(nonce, false))
            p.error id=(ids::COMPOSER_ERROR) role="alert" {}
            // While the agent types, at most one ping per 5 s (the customer may see LINE's
            // loading animation; see http::pages::touches).
            textarea name="text" rows="3" maxlength=(MAX_TEXT_UTF16) required
                placeholder=(lang.t(Msg::ComposerPlaceholder))
                hx-post={ "/conversations/" (conversation_id) "/typing" }
                hx-trigger="keyup changed throttle:5s" hx-params="none" hx-swap="none" {}
            div.composer-foot {
                span.counter data-max=(MAX_TEXT_UTF16) title=(lang.t(Msg::ComposerHint)) { (MAX_TEXT_UTF16) }
                button type="submit" { (lang.t(Msg::Send)) }
            }
        }
    }
}

/// The composer's nonce input; `oob` when it replaces the old one after a send.
pub fn nonce_field(nonce: &str, oob: bool) -> Markup {
    html! {
        input type="hidden" id=(ids::COMPOSER_NONCE) name="nonce" value=(nonce)
            hx-swap-oob=[oob.then_some("true")];
    }
}
