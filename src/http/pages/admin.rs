//! `/admin` (admins only): the agents and the desk's settings.
//!
//! Every change is a plain form post. A success redirects back with a notice (so a reload
//! does not post again); a refusal answers 4xx with the page re-rendered and the reason next
//! to the form, in the admin's language, having stored nothing.

use axum::{
    Form, Router,
    extract::{FromRequestParts, Path, Query},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{
    app::AppState,
    domain::OutgoingText,
    error::{AppError, Result},
    http::auth::{Admin, restamp},
    i18n::{Lang, Msg},
    password::{self, PasswordError},
    store::{
        agents::{self, ChangeError, CreateError, Role, valid_display_name, valid_username},
        settings::DeskSettings,
    },
    views::{
        admin::{AdminView, AgentDraft, Place, admin_page},
        layout::Shell,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(show_admin))
        .route("/admin/agents", post(add_agent))
        .route("/admin/agents/{id}/active", post(set_active))
        .route("/admin/agents/{id}/role", post(set_role))
        .route("/admin/agents/{id}/password", post(reset_password))
        .route("/admin/settings", post(save_settings))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

/// The notices a redirect back here can carry.
fn notice(code: Option<&str>) -> Option<Msg> {
    match code? {
        "added" => Some(Msg::AgentAdded),
        "updated" => Some(Msg::AgentUpdated),
        "reset" => Some(Msg::PasswordWasReset),
        "saved" => Some(Msg::SettingsSaved),
        _ => None,
    }
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("/admin?done={done}")).into_response()
}

/// How the page is drawn this time: a notice, or a refusal with what the form held.
#[derive(Default)]
struct Outcome {
    notice: Option<Msg>,
    error: Option<(Place, Msg)>,
    draft: AgentDraft,
    /// The settings as posted (a refused settings form keeps what was typed).
    settings: Option<DeskSettings>,
}

/// What every admin handler answers with: the admin, their language, and the request's
/// headers (the webhook URL is derived from its Host).
struct Ctx {
    state: AppState,
    admin: Admin,
    lang: Lang,
    headers: HeaderMap,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let admin = Admin::from_request_parts(parts, state).await?;
        let lang = Lang::of_request(&parts.extensions, &parts.headers);
        Ok(Ctx {
            state: state.clone(),
            admin,
            lang,
            headers: parts.headers.clone(),
        })
    }
}

impl Ctx {
    fn me(&self) -> &agents::Agent {
        &self.admin.0.agent
    }

    async fn render(&self, status: StatusCode, outcome: Outcome) -> Result<Response> {
        let (state, lang, me) = (&self.state, self.lang, &self.admin.0);
        let pool = &state.store.pool;
        let list = agents::list(pool).await?;
        let settings = match outcome.settings {
            Some(s) => s,
            None => DeskSettings::load(pool, &state.config.welcome_message).await?,
        };
        let webhook_url = webhook_url(state.config.public_url.as_deref(), &self.headers);
        let shell = Shell {
            lang,
            title: lang.t(Msg::AdminTitle),
            csrf: &me.csrf,
            agent: Some(&me.agent.display_name),
            live_cursor: None,
            sandbox: state.sandbox.is_some(),
            admin: true,
        };
        let view = AdminView {
            me: me.agent.id,
            agents: &list,
            settings: &settings,
            webhook_url: &webhook_url,
            notice: outcome.notice,
            error: outcome.error,
            draft: &outcome.draft,
        };
        Ok((status, admin_page(&shell, &view)).into_response())
    }

    /// The page again with `msg` beside the form at `place`.
    async fn refuse(&self, place: Place, status: StatusCode, msg: Msg) -> Result<Response> {
        let outcome = Outcome {
            error: Some((place, msg)),
            ..Outcome::default()
        };
        self.render(status, outcome).await
    }
}

/// The URL LINE must post webhooks to: from the configured public URL, else from the Host
/// the admin reached us by (LINE only accepts https, so that is the scheme shown).
pub fn webhook_url(public_url: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(base) = public_url {
        return format!("{base}/line/webhook");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("your-domain.example");
    format!("https://{host}/line/webhook")
}

async fn show_admin(ctx: Ctx, Query(q): Query<Done>) -> Result<Response> {
    let outcome = Outcome {
        notice: notice(q.done.as_deref()),
        ..Outcome::default()
    };
    ctx.render(StatusCode::OK, outcome).await
}

#[derive(Deserialize)]
struct NewAgentForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

/// Hashes a new password: `Ok(Err(msg))` is the admin's mistake (too short, too long).
async fn new_hash(password: String) -> Result<Result<String, Msg>> {
    match password::hash_async(password).await {
        Ok(hash) => Ok(Ok(hash)),
        Err(PasswordError::TooShort) => Ok(Err(Msg::ErrPasswordShort)),
        Err(PasswordError::TooLong) => Ok(Err(Msg::ErrPasswordLong)),
        Err(e @ PasswordError::Hash(_)) => Err(AppError::Internal(e.into())),
    }
}

/// What is wrong with a new agent's fields, if anything (the password is checked apart).
fn new_agent_problem(username: &str, display_name: &str, role: Option<Role>) -> Option<Msg> {
    if !valid_username(username) {
        Some(Msg::ErrUsernameRule)
    } else if !valid_display_name(display_name) {
        Some(Msg::ErrDisplayNameRule)
    } else if role.is_none() {
        Some(Msg::ErrBadRole)
    } else {
        None
    }
}

async fn add_agent(ctx: Ctx, Form(form): Form<NewAgentForm>) -> Result<Response> {
    let draft = AgentDraft {
        username: form.username.trim().to_owned(),
        display_name: form.display_name.trim().to_owned(),
        role: form.role.clone(),
    };
    let refuse = |status: StatusCode, msg: Msg| {
        let outcome = Outcome {
            error: Some((Place::AddAgent, msg)),
            draft: draft.clone(),
            ..Outcome::default()
        };
        ctx.render(status, outcome)
    };
    let role = Role::parse(&form.role);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    if let Some(msg) = new_agent_problem(&draft.username, &draft.display_name, role) {
        return refuse(unprocessable, msg).await;
    }
    let hash = match new_hash(form.password).await? {
        Ok(hash) => hash,
        Err(msg) => return refuse(unprocessable, msg).await,
    };
    let role = role.unwrap_or(Role::Agent);
    let pool = &ctx.state.store.pool;
    match agents::create_named(pool, &draft.username, &draft.display_name, &hash, role).await {
        Ok(id) => {
            tracing::info!(agent_id = id, by = ctx.me().id, "agent added");
            Ok(back("added"))
        }
        Err(CreateError::Taken(_)) => refuse(StatusCode::CONFLICT, Msg::ErrUsernameTaken).await,
        Err(CreateError::Db(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct ActiveForm {
    #[serde(default)]
    active: String,
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// Maps a guarded change of agent `id` to the answer.
async fn changed(ctx: &Ctx, id: i64, result: Result<(), ChangeError>) -> Result<Response> {
    match result {
        Ok(()) => {
            tracing::info!(agent_id = id, by = ctx.me().id, "agent changed");
            Ok(back("updated"))
        }
        Err(ChangeError::LastAdmin) => {
            ctx.refuse(Place::Agent(id), StatusCode::CONFLICT, Msg::ErrLastAdmin)
                .await
        }
        Err(ChangeError::NotFound) => Err(AppError::NotFound),
        Err(ChangeError::Db(e)) => Err(e.into()),
    }
}

async fn set_active(
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<ActiveForm>,
) -> Result<Response> {
    let active = match form.active.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(AppError::Invalid("active must be 0 or 1".into())),
    };
    if id == ctx.me().id && !active {
        return ctx
            .refuse(Place::Agent(id), StatusCode::CONFLICT, Msg::ErrNotYourself)
            .await;
    }
    let result = agents::set_active(&ctx.state.store, id, active).await;
    // Open live connections re-check their agent (a deactivated one's end).
    ctx.state.hub.sessions_changed();
    changed(&ctx, id, result).await
}

async fn set_role(ctx: Ctx, Path(id): Path<i64>, Form(form): Form<RoleForm>) -> Result<Response> {
    let (place, status) = (Place::Agent(id), StatusCode::UNPROCESSABLE_ENTITY);
    let Some(role) = Role::parse(&form.role) else {
        return ctx.refuse(place, status, Msg::ErrBadRole).await;
    };
    if id == ctx.me().id && role != Role::Admin {
        return ctx
            .refuse(place, StatusCode::CONFLICT, Msg::ErrNotYourself)
            .await;
    }
    let result = agents::set_role(&ctx.state.store, id, role).await;
    changed(&ctx, id, result).await
}

async fn reset_password(
    ctx: Ctx,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let hash = match new_hash(form.password).await? {
        Ok(hash) => hash,
        Err(msg) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return ctx.refuse(Place::Agent(id), status, msg).await;
        }
    };
    let epoch = match agents::set_password(&ctx.state.store, id, &hash).await {
        Ok(epoch) => epoch,
        Err(ChangeError::NotFound) => return Err(AppError::NotFound),
        Err(e) => return Err(AppError::Internal(e.into())),
    };
    ctx.state.hub.sessions_changed();
    if id == ctx.me().id {
        // The admin's own other sessions end; this one carries on.
        restamp(&session, epoch).await?;
    }
    tracing::info!(agent_id = id, by = ctx.me().id, "password reset");
    Ok(back("reset"))
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    welcome_message: String,
    mark_as_read: Option<String>,
    loading_animation: Option<String>,
}

async fn save_settings(ctx: Ctx, Form(form): Form<SettingsForm>) -> Result<Response> {
    // Browsers send a textarea's line breaks as CRLF; LINE shows LF. Blank means "none".
    let welcome = form.welcome_message.replace("\r\n", "\n");
    let settings = DeskSettings {
        welcome_message: if welcome.trim().is_empty() {
            String::new()
        } else {
            welcome
        },
        mark_as_read: form.mark_as_read.is_some(),
        loading_animation: form.loading_animation.is_some(),
    };
    if !settings.welcome_message.is_empty()
        && OutgoingText::parse(&settings.welcome_message).is_err()
    {
        let outcome = Outcome {
            error: Some((Place::Settings, Msg::ErrWelcomeTooLong)),
            settings: Some(settings),
            ..Outcome::default()
        };
        return ctx.render(StatusCode::UNPROCESSABLE_ENTITY, outcome).await;
    }
    settings.save(&ctx.state.store).await?;
    tracing::info!(by = ctx.me().id, "settings saved");
    Ok(back("saved"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_display_names() {
        assert!(valid_username("amy.chen"));
        assert!(valid_username("a_1-b"));
        assert!(!valid_username("a"));
        assert!(!valid_username("Amy"));
        assert!(!valid_username("amy chen"));
        assert!(!valid_username(&"a".repeat(33)));
        assert!(valid_display_name("陳小美"));
        assert!(!valid_display_name(""));
        assert!(!valid_display_name("a\u{7}b"));
        assert!(!valid_display_name(&"字".repeat(51)));
    }

    #[test]
    fn the_webhook_url_prefers_the_public_url() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "desk.example.com".parse().unwrap());
        assert_eq!(
            webhook_url(Some("https://chat.example.com"), &headers),
            "https://chat.example.com/line/webhook"
        );
        assert_eq!(
            webhook_url(None, &headers),
            "https://desk.example.com/line/webhook"
        );
        headers.insert(header::HOST, "evil\"host".parse().unwrap());
        assert_eq!(
            webhook_url(None, &headers),
            "https://your-domain.example/line/webhook"
        );
    }
}
