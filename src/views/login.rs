//! The sign-in page and the first-run setup page.

use maud::{Markup, html};

use super::layout::{Shell, page};
use crate::i18n::{Lang, Msg};

/// The login form; `error` is shown above it.
pub fn login(lang: Lang, sandbox: bool, csrf: &str, username: &str, error: Option<Msg>) -> Markup {
    let shell = Shell::signed_out(lang, lang.t(Msg::SignIn), csrf, sandbox);
    page(
        &shell,
        html! {
            main.card {
                h1 { (lang.t(Msg::SignIn)) }
                @if let Some(e) = error { p.error role="alert" { (lang.t(e)) } }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    (credentials(lang, username))
                    button type="submit" { (lang.t(Msg::SignIn)) }
                }
            }
        },
    )
}

/// The setup form behind the one-time link; `error` is a password rule or a taken name.
pub fn setup(lang: Lang, sandbox: bool, csrf: &str, token: &str, error: Option<&str>) -> Markup {
    let shell = Shell::signed_out(lang, lang.t(Msg::SetupTitle), csrf, sandbox);
    page(
        &shell,
        html! {
            main.card {
                h1 { (lang.t(Msg::SetupTitle)) }
                p { (lang.t(Msg::SetupIntro)) }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action={ "/setup/" (token) } {
                    input type="hidden" name="csrf" value=(csrf);
                    (credentials(lang, ""))
                    button type="submit" { (lang.t(Msg::SetupCreate)) }
                }
            }
        },
    )
}

/// The setup link was used (or never existed).
pub fn setup_gone(lang: Lang, sandbox: bool, csrf: &str) -> Markup {
    let shell = Shell::signed_out(lang, lang.t(Msg::SetupTitle), csrf, sandbox);
    page(
        &shell,
        html! {
            main.card {
                p { (lang.t(Msg::SetupGone)) }
                a href="/login" { (lang.t(Msg::SignIn)) }
            }
        },
    )
}

fn credentials(lang: Lang, username: &str) -> Markup {
    html! {
        label { (lang.t(Msg::Username))
            input type="text" name="username" value=(username) autocomplete="username" required autofocus;
        }
        label { (lang.t(Msg::Password))
            input type="password" name="password" autocomplete="current-password" required;
        }
    }
}
