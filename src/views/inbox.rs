//! The inbox: the conversation list (with its filters) beside the open thread, its composer
//! and the contact panel.

use std::collections::HashMap;

use maud::{Markup, html};

use super::{
    ids,
    layout::{Shell, page},
    messages::{DateTime, Timestamp, preview},
};
use crate::{
    domain::MAX_TEXT_UTF16,
    i18n::{Lang, Msg},
    store::{
        agents::Agent,
        contacts::Contact,
        conversations::{ConversationRow, Filter, Status, Who},
        messages::Message,
    },
};

/// The open conversation: its list row (for the header) and its messages, oldest first.
pub struct Thread<'a> {
    pub row: &'a ConversationRow,
    pub messages: &'a [Message],
    /// Older messages exist: the thread starts with the sentinel that loads them.
    pub has_older: bool,
    /// A fresh one-use key for the composer (stops a double submit from sending twice).
    pub nonce: &'a str,
    /// Who it can be assigned to.
    pub agents: &'a [Agent],
    pub contact: &'a Contact,
    /// The customer messages this agent has now read (the conversation's `in_count`).
    pub read: i64,
}

/// The list as this agent sees it: its filter, rows and what the agent has read.
pub struct ListView<'a> {
    pub filter: &'a Filter,
    pub rows: &'a [ConversationRow],
    /// Conversation id → customer messages read by this agent (missing = none)...
    pub reads: &'a HashMap<i64, i64>,
    /// ...for conversations active after this time; older ones the browser asks about.
    pub reads_after: Option<i64>,
    /// The signed-in agent's id (the browser's "Mine" filter for live rows).
    pub me: i64,
}

pub fn inbox_page(shell: &Shell<'_>, list: &ListView<'_>, open: Option<&Thread<'_>>) -> Markup {
    let lang = shell.lang;
    page(
        shell,
        html! {
            main.inbox {
                nav.list {
                    div.list-head {
                        h2 { (lang.t(Msg::Conversations)) }
                        button type="button" id=(ids::NOTIFY_TOGGLE) hidden
                            title=(lang.t(Msg::NotifyNewConversation))
                            data-on=(lang.t(Msg::NotifyOn)) data-off=(lang.t(Msg::NotifyOff))
                            data-title=(lang.t(Msg::NotifyNewConversation)) {
                            (lang.t(Msg::NotifyOn))
                        }
                    }
                    (filters(lang, list.filter))
                    div id=(ids::LIST_RESULTS) { (list_results(lang, list)) }
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

/// The filter bar: whose, which status, and a search (debounced). Each change asks for the
/// list again and keeps the filter in the address bar.
fn filters(lang: Lang, filter: &Filter) -> Markup {
    let target = format!("#{}", ids::LIST_RESULTS);
    let status = filter.status.map_or("any", Status::as_str);
    html! {
        form.filters method="get" action="/" hx-get="/" hx-target=(target) hx-push-url="true"
            hx-trigger="change, submit" hx-sync="this:replace" {
            input type="search" id=(ids::LIST_SEARCH) name="q" maxlength=(MAX_SEARCH_CHARS)
                value=[filter.search.as_deref()] aria-label=(lang.t(Msg::SearchLabel))
                placeholder=(lang.t(Msg::SearchPlaceholder)) autocomplete="off"
                hx-get="/" hx-target=(target) hx-push-url="true" hx-include="closest form"
                hx-trigger="input changed delay:300ms, search" hx-sync="closest form:replace";
            div.seg role="group" aria-label=(lang.t(Msg::FilterWho)) {
                @for (value, label) in [("all", Msg::FilterAll), ("mine", Msg::FilterMine), ("unassigned", Msg::FilterUnassigned)] {
                    label { input type="radio" name="who" value=(value) checked[filter.who.as_str() == value]; span { (lang.t(label)) } }
                }
            }
            div.seg role="group" aria-label=(lang.t(Msg::FilterStatus)) {
                @for s in Status::ALL {
                    label { input type="radio" name="status" value=(s.as_str()) checked[status == s.as_str()]; span { (lang.t(status_label(s.as_str()))) } }
                }
                label { input type="radio" name="status" value="any" checked[status == "any"]; span { (lang.t(Msg::FilterAnyStatus)) } }
            }
        }
    }
}

/// Longest search the list takes, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;

/// The list and its empty note. The `<ul>` carries the filter (so `app.js` drops live rows
/// that do not match) and this agent's read counts (so it can draw unread badges on rows
/// that arrive live, which are the same for every agent).
pub fn list_results(lang: Lang, list: &ListView<'_>) -> Markup {
    let reads = serde_json::to_string(list.reads).unwrap_or_else(|_| "{}".to_owned());
    let filtered =
        list.filter.search.is_some() || list.filter.who != Who::All || list.filter.status.is_some();
    html! {
        ul id=(ids::CONVERSATION_LIST) data-who=(list.filter.who.as_str())
            data-status=(list.filter.status.map_or("any", Status::as_str))
            data-searching=[list.filter.search.is_some().then_some("1")]
            data-me=(list.me) data-reads=(reads) data-reads-after=[list.reads_after]
            data-now=(crate::domain::now_ms()) {
            @for row in list.rows {
                @let read = list.reads.get(&row.id).copied().unwrap_or(0);
                (conversation_row(lang, row, None, Some(row.in_count - read)))
            }
        }
        @if list.rows.is_empty() {
            p.empty { (lang.t(if filtered { Msg::NoMatches } else { Msg::NoConversations })) }
        }
    }
}

/// The i18n label of a status.
pub fn status_label(status: &str) -> Msg {
    match status {
        "pending" => Msg::StatusPending,
        "resolved" => Msg::StatusResolved,
        _ => Msg::StatusOpen,
    }
}

/// The contact's name, else its LINE id.
pub fn contact_name(row: &ConversationRow) -> &str {
    row.display_name.as_deref().unwrap_or(&row.line_id)
}

/// A list row. `unread` is this agent's count, drawn only on full pages: live rows are the
/// same for every agent and carry `data-in-count`, from which `app.js` draws the badge.
pub fn conversation_row(
    lang: Lang,
    row: &ConversationRow,
    oob: Option<&str>,
    unread: Option<i64>,
) -> Markup {
    let href = format!("/conversations/{}", row.id);
    let unread = unread.unwrap_or(0).max(0);
    html! {
        li id=(ids::conversation_row(row.id)) hx-swap-oob=[oob] data-status=(row.status)
            data-assignee=(row.assignee_id.map(|a| a.to_string()).unwrap_or_default())
            data-in-count=(row.in_count) data-created=(row.created_at)
            data-activity=(row.last_activity_at) {
            a href=(href) hx-get=(href) hx-target={ "#" (ids::THREAD_PANE) } hx-push-url="true" {
                span.name { (contact_name(row)) }
                span.when { (Timestamp(row.last_activity_at)) }
                span.preview {
                    @if let Some(kind) = &row.last_kind {
                        (preview(lang, kind, row.last_text.as_deref()))
                    }
                }
                span.tags {
                    @if row.status != "open" {
                        span class={ "chip " (row.status) } { (lang.t(status_label(&row.status))) }
                    }
                    span.assignee {
                        (row.assignee_name.as_deref().unwrap_or(lang.t(Msg::Unassigned)))
                    }
                    span.badge title=(lang.t(Msg::UnreadTitle)) hidden[unread == 0] { (unread) }
                }
            }
        }
    }
}

pub fn thread_pane(lang: Lang, csrf: &str, thread: &Thread<'_>) -> Markup {
    let id = thread.row.id;
    html! {
        div.thread-main {
            (thread_head(lang, thread.row, thread.agents, None))
            div.thread id=(ids::thread(id)) data-conversation=(id) data-read=(thread.read) {
                (super::history::older_page(lang, id, thread.messages, thread.has_older))
            }
            (composer(lang, csrf, id, thread.nonce))
        }
        aside.contact-panel {
            details open {
                summary { (lang.t(Msg::Contact)) }
                (contact_card(lang, thread.row, thread.contact, None))
            }
        }
    }
}

/// The thread's header: who it is, who answers it, its status. The same for every agent (it
/// is redrawn live), so "Assign to me" says `me` and the server knows who asked.
pub fn thread_head(
    lang: Lang,
    row: &ConversationRow,
    agents: &[Agent],
    oob: Option<&str>,
) -> Markup {
    let assign = format!("/conversations/{}/assign", row.id);
    let status_url = format!("/conversations/{}/status", row.id);
    let target = format!("#{}", ids::thread_head(row.id));
    let former = row
        .assignee_id
        .filter(|a| !agents.iter().any(|x| x.id == *a));
    html! {
        header.thread-head id=(ids::thread_head(row.id)) hx-swap-oob=[oob]
            data-assignee=(row.assignee_id.map(|a| a.to_string()).unwrap_or_default()) {
            a.back href="/" { span aria-hidden="true" { "← " } (lang.t(Msg::Back)) }
            h2 { (contact_name(row)) }
            div.controls {
                form.assign hx-post=(assign) hx-trigger="change" hx-target=(target) hx-swap="outerHTML" {
                    label {
                        span { (lang.t(Msg::AssigneeLabel)) }
                        select name="assignee" {
                            option value="" selected[row.assignee_id.is_none()] { (lang.t(Msg::Unassigned)) }
                            @for a in agents {
                                option value=(a.id) selected[row.assignee_id == Some(a.id)] { (a.display_name) }
                            }
                            @if let Some(id) = former {
                                option value=(id) selected { (row.assignee_name.as_deref().unwrap_or_default()) }
                            }
                        }
                    }
                }
                button.assign-me type="button" hx-post=(assign) hx-vals=r#"{"assignee":"me"}"#
                    hx-target=(target) hx-swap="outerHTML" { (lang.t(Msg::AssignToMe)) }
                form.status hx-post=(status_url) hx-trigger="change" hx-target=(target) hx-swap="outerHTML" {
                    label {
                        span { (lang.t(Msg::StatusLabel)) }
                        select name="status" {
                            @for s in Status::ALL {
                                option value=(s.as_str()) selected[row.status == s.as_str()] {
                                    (lang.t(status_label(s.as_str())))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The contact panel: who the customer (or group) is, as LINE told us, and where the
/// conversation stands.
pub fn contact_card(
    lang: Lang,
    row: &ConversationRow,
    contact: &Contact,
    oob: Option<&str>,
) -> Markup {
    // Only an https picture is shown (LINE's are on profile.line-scdn.net).
    let picture = contact
        .picture_url
        .as_deref()
        .filter(|u| u.starts_with("https://"));
    let follow = match contact.follow_state.as_str() {
        "following" => Msg::FollowFollowing,
        "unfollowed" => Msg::FollowUnfollowed,
        "joined" => Msg::FollowJoined,
        "left" => Msg::FollowLeft,
        _ => Msg::FollowUnknown,
    };
    html! {
        div.contact-card id=(ids::contact_card(row.id)) hx-swap-oob=[oob] {
            @if let Some(url) = picture {
                img.avatar src=(url) alt=(lang.t(Msg::ContactPicture)) width="72" height="72"
                    loading="lazy" referrerpolicy="no-referrer";
            }
            h3 { (contact_name(row)) }
            @if let Some(m) = contact.status_message.as_deref().filter(|m| !m.is_empty()) {
                p.status-message { (m) }
            }
            dl {
                dt { (lang.t(Msg::ContactLineId)) } dd.line-id { (contact.line_id) }
                dt { (lang.t(Msg::ContactLanguage)) } dd { (contact.language.as_deref().unwrap_or("—")) }
                dt { (lang.t(Msg::ContactFollow)) } dd { (lang.t(follow)) }
                dt { (lang.t(Msg::FirstSeen)) } dd { (DateTime(contact.first_seen_at)) }
                dt { (lang.t(Msg::LastSeen)) } dd { (DateTime(contact.last_seen_at)) }
                dt { (lang.t(Msg::AssigneeLabel)) }
                dd.assignee { (row.assignee_name.as_deref().unwrap_or(lang.t(Msg::Unassigned))) }
                dt { (lang.t(Msg::StatusLabel)) } dd { (lang.t(status_label(&row.status))) }
            }
        }
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
                (super::stickers::sticker_picker(lang, conversation_id))
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
