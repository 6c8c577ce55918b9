//! The customer simulator (sandbox mode): the simulated customers on the left, and on the
//! right what the chosen one sees in their LINE app, with the things they can do.

use maud::{Markup, html};
use serde_json::Value;

use super::{
    ids,
    layout::{Shell, page},
};
use crate::{
    domain::MAX_TEXT_UTF16,
    i18n::{Lang, Msg},
    sandbox::{Action, ChatLine, Customer, MAX_NAME_CHARS, STICKERS},
};

/// How often the customer's view asks for what arrived (a dev tool: polling is fine).
const POLL: &str = "every 1500ms";

/// The simulator page; `open` is the chosen customer and what they see.
pub fn simulator_page(
    shell: &Shell<'_>,
    customers: &[Customer],
    open: Option<(&Customer, &[ChatLine])>,
) -> Markup {
    let lang = shell.lang;
    page(
        shell,
        html! {
            main.inbox.simulator {
                nav.list {
                    h2 { (lang.t(Msg::SimCustomers)) }
                    ul {
                        @for c in customers {
                            li { a href={ "/sandbox?customer=" (c.user_id) } {
                                span.name { (c.display_name) }
                            } }
                        }
                    }
                    @if customers.is_empty() { p.empty { (lang.t(Msg::SimNoCustomers)) } }
                    (new_customer_form(lang, shell.csrf))
                }
                section id=(ids::THREAD_PANE) {
                    @match open {
                        Some((customer, lines)) => { (phone(lang, shell.csrf, customer, lines)) }
                        None => {
                            h1 { (lang.t(Msg::SimTitle)) }
                            p { (lang.t(Msg::SimIntro)) }
                            p.empty { (lang.t(Msg::SimPickCustomer)) }
                        }
                    }
                }
            }
        },
    )
}

fn new_customer_form(lang: Lang, csrf: &str) -> Markup {
    html! {
        form.sim-new method="post" action="/sandbox/customers" {
            input type="hidden" name="csrf" value=(csrf);
            label {
                (lang.t(Msg::SimDisplayName))
                input type="text" name="display_name" required maxlength=(MAX_NAME_CHARS);
            }
            button type="submit" { (lang.t(Msg::SimAddCustomer)) }
        }
    }
}

/// The customer's phone: header, the polled chat, and the action forms.
fn phone(lang: Lang, csrf: &str, customer: &Customer, lines: &[ChatLine]) -> Markup {
    let chat_url = format!("/sandbox/chat?customer={}", customer.user_id);
    html! {
        header.thread-head {
            h2 { (customer.display_name) }
            small.line-id { (customer.user_id) }
        }
        div.thread id=(ids::SIM_CHAT) hx-get=(chat_url) hx-trigger=(POLL) hx-swap="innerHTML" {
            (chat(lang, lines))
        }
        p.error id=(ids::SIM_ERROR) role="alert" {}
        form.composer.sim-compose method="post" action="/sandbox/send" hx-post="/sandbox/send"
            hx-target={ "#" (ids::SIM_CHAT) } hx-swap="innerHTML" {
            (hidden(csrf, customer, "text"))
            textarea name="text" rows="2" maxlength=(MAX_TEXT_UTF16) required
                placeholder=(lang.t(Msg::SimPlaceholder)) {}
            div.composer-foot { button type="submit" { (lang.t(Msg::Send)) } }
        }
        div.sim-actions {
            @for (package, sticker) in STICKERS {
                (action_form(csrf, customer, "sticker", html! {
                    input type="hidden" name="sticker" value={ (package) "/" (sticker) };
                    button type="submit" { (lang.t(Msg::Sticker)) " " (package) "/" (sticker) }
                }))
            }
            (action_form(csrf, customer, "photo", html! {
                button type="submit" { (lang.t(Msg::SimSendPhoto)) }
            }))
            (action_form(csrf, customer, "follow", html! {
                button type="submit" { (lang.t(Msg::SimFollow)) }
            }))
        }
    }
}

fn hidden(csrf: &str, customer: &Customer, kind: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="customer" value=(customer.user_id);
        input type="hidden" name="kind" value=(kind);
    }
}

fn action_form(csrf: &str, customer: &Customer, kind: &str, inner: Markup) -> Markup {
    html! {
        form method="post" action="/sandbox/send" hx-post="/sandbox/send"
            hx-target={ "#" (ids::SIM_CHAT) } hx-swap="innerHTML" {
            (hidden(csrf, customer, kind))
            (inner)
        }
    }
}

/// What the customer sees, oldest first: their own messages on the right, the account's on
/// the left, as in LINE's app. Polled, so it is the whole list each time.
pub fn chat(lang: Lang, lines: &[ChatLine]) -> Markup {
    html! {
        @if lines.is_empty() { p.empty { (lang.t(Msg::SimNothingYet)) } }
        @for line in lines {
            @match line {
                ChatLine::Mine(action) => {
                    div.msg.out.sim-mine { div.bubble { (mine(lang, action)) } }
                }
                ChatLine::Theirs(message) => {
                    div.msg.in.sim-theirs {
                        small.who { (lang.t(Msg::SimAccount)) }
                        div.bubble { (theirs(lang, message)) }
                    }
                }
            }
        }
    }
}

fn mine(lang: Lang, action: &Action) -> Markup {
    html! {
        @match action {
            Action::Text(text) => p.text { (text) },
            Action::Sticker { package_id, sticker_id } => {
                span.label { (lang.t(Msg::Sticker)) " " (package_id) "/" (sticker_id) }
            }
            Action::Photo => img.sim-photo src="/assets/sandbox-photo.png" alt=(lang.t(Msg::Image));
            Action::Follow => span.system { (lang.t(Msg::Followed)) },
        }
    }
}

/// One message object the account sent, as LINE's app would show it (roughly).
fn theirs(lang: Lang, message: &Value) -> Markup {
    let field = |k: &str| message[k].as_str().unwrap_or_default().to_owned();
    html! {
        @match message["type"].as_str().unwrap_or_default() {
            "text" | "textV2" => p.text { (field("text")) },
            "sticker" => span.label {
                (lang.t(Msg::Sticker)) " " (field("packageId")) "/" (field("stickerId"))
            },
            "image" => span.label { (lang.t(Msg::Image)) },
            "video" => span.label { (lang.t(Msg::Video)) },
            "audio" => span.label { (lang.t(Msg::Audio)) },
            "location" => span.label { (lang.t(Msg::Location)) " " (field("title")) },
            _ => span.label { (lang.t(Msg::OtherKind)) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_customers_and_agents_write_is_escaped() {
        let lines = [
            ChatLine::Mine(Action::Text("<script>x()</script>".into())),
            ChatLine::Theirs(json!({ "type": "text", "text": "<img src=x onerror=y>" })),
        ];
        let html = chat(Lang::En, &lines).into_string();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=y&gt;"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<img src=x"));
    }
}
