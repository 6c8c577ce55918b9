//! The admin page: the agents (add, deactivate/reactivate, change role, reset password) and
//! the desk's settings. Plain forms that post and come back: a success redirects here with a
//! notice, a refusal re-renders the page with the error beside the form that caused it.

use maud::{Markup, html};

use super::{
    ids,
    layout::{Shell, page},
};
use crate::{
    domain::MAX_TEXT_UTF16,
    i18n::{Lang, Msg},
    store::{
        agents::{Agent, Role},
        settings::DeskSettings,
    },
};

/// Which form a refusal belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    AddAgent,
    /// One agent's row.
    Agent(i64),
    Settings,
}

/// What the add-agent form had in it (kept when it is refused; never the password).
#[derive(Clone, Debug, Default)]
pub struct AgentDraft {
    pub username: String,
    pub display_name: String,
    pub role: String,
}

pub struct AdminView<'a> {
    /// The signed-in admin (their own row has no deactivate/demote buttons).
    pub me: i64,
    pub agents: &'a [Agent],
    pub settings: &'a DeskSettings,
    pub webhook_url: &'a str,
    pub notice: Option<Msg>,
    pub error: Option<(Place, Msg)>,
    pub draft: &'a AgentDraft,
}

pub fn admin_page(shell: &Shell<'_>, view: &AdminView<'_>) -> Markup {
    let lang = shell.lang;
    let csrf = shell.csrf;
    page(
        shell,
        html! {
            main.admin {
                h1 { (lang.t(Msg::AdminTitle)) }
                @if let Some(notice) = view.notice {
                    p.notice role="status" { (lang.t(notice)) }
                }
                section.admin-agents {
                    h2 { (lang.t(Msg::AdminAgents)) }
                    table {
                        thead { tr {
                            th { (lang.t(Msg::Username)) }
                            th { (lang.t(Msg::DisplayName)) }
                            th { (lang.t(Msg::Role)) }
                            th { (lang.t(Msg::AgentState)) }
                            th {}
                        } }
                        tbody {
                            @for agent in view.agents { (agent_row(lang, csrf, view, agent)) }
                        }
                    }
                }
                (add_agent_form(lang, csrf, view))
                (settings_form(lang, csrf, view))
            }
        },
    )
}

fn error_at(lang: Lang, view: &AdminView<'_>, place: Place) -> Markup {
    html! {
        @if let Some((at, msg)) = view.error && at == place {
            p.error role="alert" { (lang.t(msg)) }
        }
    }
}

fn role_name(role: &str) -> Msg {
    match Role::parse(role) {
        Some(Role::Admin) => Msg::RoleAdmin,
        _ => Msg::RoleAgent,
    }
}

fn role_select(lang: Lang, current: &str) -> Markup {
    html! {
        select name="role" {
            @for role in [Role::Agent, Role::Admin] {
                option value=(role.as_str()) selected[role.as_str() == current] {
                    (lang.t(role_name(role.as_str())))
                }
            }
        }
    }
}

fn agent_row(lang: Lang, csrf: &str, view: &AdminView<'_>, agent: &Agent) -> Markup {
    let base = format!("/admin/agents/{}", agent.id);
    let active = agent.active == 1;
    let me = agent.id == view.me;
    html! {
        tr id={ "agent-" (agent.id) } class=[(!active).then_some("inactive")] {
            td.username { (agent.username) @if me { " " span.you { (lang.t(Msg::You)) } } }
            td { (agent.display_name) }
            td.role { (lang.t(role_name(&agent.role))) }
            td.state {
                (lang.t(if active { Msg::AgentActive } else { Msg::AgentInactive }))
            }
            td.actions {
                (error_at(lang, view, Place::Agent(agent.id)))
                @if !me {
                    form method="post" action={ (base) "/active" }
                        data-confirm=[active.then(|| lang.t(Msg::ConfirmDeactivate))] {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="active" value=(if active { "0" } else { "1" });
                        button.plain type="submit" {
                            (lang.t(if active { Msg::Deactivate } else { Msg::Reactivate }))
                        }
                    }
                    form method="post" action={ (base) "/role" } {
                        input type="hidden" name="csrf" value=(csrf);
                        (role_select(lang, &agent.role))
                        button.plain type="submit" { (lang.t(Msg::ChangeRole)) }
                    }
                }
                form method="post" action={ (base) "/password" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="password" name="password" autocomplete="new-password" required
                        minlength=(crate::password::MIN_LENGTH)
                        aria-label=(lang.t(Msg::NewPassword)) placeholder=(lang.t(Msg::NewPassword));
                    button.plain type="submit" { (lang.t(Msg::ResetPassword)) }
                }
            }
        }
    }
}

fn add_agent_form(lang: Lang, csrf: &str, view: &AdminView<'_>) -> Markup {
    let d = view.draft;
    let role = if d.role.is_empty() { "agent" } else { &d.role };
    html! {
        section.admin-add {
            h2 { (lang.t(Msg::AdminAddAgent)) }
            (error_at(lang, view, Place::AddAgent))
            form method="post" action="/admin/agents" {
                input type="hidden" name="csrf" value=(csrf);
                label { (lang.t(Msg::Username))
                    input type="text" name="username" value=(d.username) required
                        autocomplete="off" maxlength="32";
                    small { (lang.t(Msg::UsernameRule)) }
                }
                label { (lang.t(Msg::DisplayName))
                    input type="text" name="display_name" value=(d.display_name) required maxlength="50";
                }
                label { (lang.t(Msg::Password))
                    input type="password" name="password" required autocomplete="new-password"
                        minlength=(crate::password::MIN_LENGTH);
                    small { (lang.t(Msg::PasswordRule)) }
                }
                label { (lang.t(Msg::Role)) (role_select(lang, role)) }
                button type="submit" { (lang.t(Msg::AdminAddAgent)) }
            }
        }
    }
}

fn settings_form(lang: Lang, csrf: &str, view: &AdminView<'_>) -> Markup {
    let s = view.settings;
    html! {
        section.admin-settings {
            h2 { (lang.t(Msg::SettingsTitle)) }
            (error_at(lang, view, Place::Settings))
            form method="post" action="/admin/settings" {
                input type="hidden" name="csrf" value=(csrf);
                label { (lang.t(Msg::WelcomeMessage))
                    textarea name="welcome_message" rows="4" maxlength=(MAX_TEXT_UTF16) {
                        (s.welcome_message)
                    }
                    small { (lang.t(Msg::WelcomeHint)) }
                }
                label.switch {
                    input type="checkbox" name="mark_as_read" value="1" checked[s.mark_as_read];
                    (lang.t(Msg::MarkAsReadSwitch))
                }
                label.switch {
                    input type="checkbox" name="loading_animation" value="1" checked[s.loading_animation];
                    (lang.t(Msg::LoadingSwitch))
                }
                button type="submit" { (lang.t(Msg::Save)) }
            }
            div.webhook-url {
                label for=(ids::WEBHOOK_URL) { (lang.t(Msg::WebhookUrl)) }
                div.copy-row {
                    input type="text" id=(ids::WEBHOOK_URL) value=(view.webhook_url) readonly;
                    button.plain type="button" data-copy=(ids::WEBHOOK_URL)
                        data-copied=(lang.t(Msg::Copied)) { (lang.t(Msg::Copy)) }
                }
                small { (lang.t(Msg::WebhookUrlHint)) }
            }
        }
    }
}
