//! The page shell: head (assets, CSP-friendly htmx config), header bar, and the body's
//! CSRF header for every htmx request.

use maud::{DOCTYPE, Markup, html};

use crate::i18n::{Lang, Msg};

/// What the shell needs besides the page's own markup.
pub struct Shell<'a> {
    pub lang: Lang,
    pub title: &'a str,
    /// The session's CSRF token; htmx sends it as `x-csrf-token` on every request.
    pub csrf: &'a str,
    /// The signed-in agent's display name, if any.
    pub agent: Option<&'a str>,
    /// The live cursor (event id) the page was rendered at; `None` = no live updates.
    pub live_cursor: Option<i64>,
    /// Sandbox mode (no LINE channel): every page says so and links to the simulator.
    pub sandbox: bool,
    /// The signed-in agent is an admin (the header links to /admin).
    pub admin: bool,
}

impl<'a> Shell<'a> {
    /// The shell of a page seen before signing in (login, setup): no agent, no live updates.
    pub fn signed_out(lang: Lang, title: &'a str, csrf: &'a str, sandbox: bool) -> Self {
        Self {
            lang,
            title,
            csrf,
            agent: None,
            live_cursor: None,
            sandbox,
            admin: false,
        }
    }
}

/// htmx settings: no injected `<style>` (our CSP has no inline styles), no `eval` (no
/// inline script either), and 422 answers are swapped (a refused form says why, retargeted
/// by the server with `HX-Retarget`); other errors are not.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true},{"code":"[45]..","swap":false,"error":true}]}"#;

pub fn page(shell: &Shell<'_>, body: Markup) -> Markup {
    let lang = shell.lang;
    let headers = serde_json::json!({ "x-csrf-token": shell.csrf }).to_string();
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (shell.title) " · " (lang.t(Msg::AppName)) }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/htmx.min.js" defer {}
                script src="/assets/htmx-ext-sse.js" defer {}
                script src="/assets/app.js" defer {}
            }
            body hx-headers=(headers) data-live-cursor=[shell.live_cursor]
                data-msg-network=(lang.t(Msg::ErrNetwork)) {
                header.topbar {
                    span.brand { (lang.t(Msg::AppName)) }
                    @if let Some(name) = shell.agent {
                        @if shell.admin {
                            a.admin-link href="/admin" { (lang.t(Msg::AdminLink)) }
                        }
                        (language_menu(lang, shell.csrf))
                        span.who { (name) }
                        form.signout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(shell.csrf);
                            button type="submit" { (lang.t(Msg::SignOut)) }
                        }
                    }
                    @if shell.live_cursor.is_some() {
                        span id="live-status" hidden { (lang.t(Msg::LiveOffline)) }
                    }
                }
                @if shell.sandbox { (sandbox_banner(lang)) }
                (body)
                @if shell.live_cursor.is_some() {
                    div id=(super::ids::LIVE_SINK) hidden {}
                }
            }
        }
    }
}

/// The agent's language menu: the browser's choice, or one of ours (stored per agent).
fn language_menu(lang: Lang, csrf: &str) -> Markup {
    let options = [
        ("", Msg::LangBrowser),
        (Lang::En.code(), Msg::LangEnglish),
        (Lang::ZhTw.code(), Msg::LangChinese),
    ];
    html! {
        form.lang-menu method="post" action="/me/language" {
            input type="hidden" name="csrf" value=(csrf);
            label {
                span.visually-hidden { (lang.t(Msg::Language)) }
                select name="language" data-autosubmit {
                    @for (code, label) in options {
                        option value=(code) selected[code == lang.code()] { (lang.t(label)) }
                    }
                }
            }
            button type="submit" { (lang.t(Msg::Apply)) }
        }
    }
}

/// The sandbox notice at the top of every page.
fn sandbox_banner(lang: Lang) -> Markup {
    html! {
        div.sandbox-banner id=(super::ids::SANDBOX_BANNER) role="status" {
            (lang.t(Msg::SandboxBanner)) " "
            a href="/sandbox" { (lang.t(Msg::SandboxOpen)) }
        }
    }
}
