//! The page shown when a browser navigation ends in an error (see `http::errors`).

use axum::http::StatusCode;
use maud::{Markup, html};

use super::layout::{Shell, page};
use crate::i18n::{Lang, Msg};

pub fn error_page(
    lang: Lang,
    sandbox: bool,
    status: StatusCode,
    title: &str,
    detail: Option<&str>,
) -> Markup {
    let shell = Shell::signed_out(lang, title, "", sandbox);
    page(
        &shell,
        html! {
            main.card.error-page {
                h1 { (title) }
                @if let Some(d) = detail { p.detail { (d) } }
                p.status { "HTTP " (status.as_u16()) }
                p { a href="/" { (lang.t(Msg::ErrBackToInbox)) } }
            }
        },
    )
}
