//! Sign-in, sign-out, first-run setup, and the `Agent` extractor.
//!
//! A session (tower-sessions, kept in the store) holds the signed-in agent's id and the CSRF
//! token. The id is cycled at sign-in so a session id planted before it is worthless after
//! (session fixation), and the CSRF token rotates with it. Failed sign-ins are throttled per
//! account and per client address (`auth::LoginThrottle`).

use std::sync::LazyLock;

use axum::{
    Form, Router,
    extract::{FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use tower_sessions::{Expiry, Session};

use super::{
    client_addr::ClientAddr,
    csrf::{self, session_error},
};
use crate::{
    app::AppState,
    auth::throttle_keys,
    error::{AppError, Result},
    i18n::{Lang, Msg},
    password,
    store::agents::{self, Role},
    views::login,
};

/// Session key of the signed-in agent's id.
const AGENT_KEY: &str = "agent_id";
/// Session key of the agent's session epoch at sign-in (a password reset moves it on).
const EPOCH_KEY: &str = "epoch";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(sign_in))
        .route("/logout", post(sign_out))
        .route("/setup/{token}", get(setup_page).post(create_first_admin))
}

/// A signed-in, active agent, with the session's CSRF token for the forms it will render.
/// Pages redirect to /login without one; htmx requests get `HX-Redirect` instead (a redirect
/// would be followed by the XHR and swapped into the page).
pub struct Agent {
    pub agent: agents::Agent,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let id: Option<i64> = session
            .get(AGENT_KEY)
            .await
            .map_err(|e| session_error(e).into_response())?;
        let Some(id) = id else {
            return Err(to_login(parts));
        };
        let agent = agents::active_by_id(&state.store, id)
            .await
            .map_err(|e| AppError::from(e).into_response())?;
        let epoch: i64 = session
            .get(EPOCH_KEY)
            .await
            .map_err(|e| session_error(e).into_response())?
            .unwrap_or(0);
        let Some(agent) = agent.filter(|a| a.session_epoch == epoch) else {
            // Deactivated (or deleted, or the password was reset) since signing in: the
            // session ends here.
            let _ = session.flush().await;
            return Err(to_login(parts));
        };
        let csrf = csrf::token(&session)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Agent { agent, csrf })
    }
}

/// Whether `agent` may still see the desk: still active, password not reset since. Long-held
/// requests (the live stream, a long-poll) ask before each answer, so a deactivated agent
/// gets nothing more even on a connection opened before.
pub async fn still_signed_in(state: &AppState, agent: &agents::Agent) -> bool {
    matches!(
        agents::active_by_id(&state.store, agent.id).await,
        Ok(Some(now)) if now.session_epoch == agent.session_epoch
    )
}

/// A signed-in, active admin; any other agent gets 403.
pub struct Admin(pub Agent);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let agent = Agent::from_request_parts(parts, state).await?;
        if !agent.agent.is_admin() {
            return Err(AppError::Forbidden("admins only").into_response());
        }
        Ok(Admin(agent))
    }
}

/// Middleware: puts the signed-in agent's own language choice on the request (as
/// `i18n::Chosen`), so every `Lang` — error pages included — follows it.
pub async fn agent_language(
    State(state): State<AppState>,
    session: Session,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Static files have no words to translate: no session lookup.
    let wordless = request.uri().path().starts_with("/assets/");
    if !wordless
        && let Ok(Some(id)) = session.get::<i64>(AGENT_KEY).await
        && let Ok(Some(code)) = agents::language(&state.store, id).await
        && let Some(lang) = Lang::from_code(&code)
    {
        request.extensions_mut().insert(crate::i18n::Chosen(lang));
    }
    next.run(request).await
}

/// Moves this session to the agent's new epoch (after the agent reset their own password,
/// so the reset ends their other sessions but not this one).
pub async fn restamp(session: &Session, epoch: i64) -> Result<()> {
    session
        .insert(EPOCH_KEY, epoch)
        .await
        .map_err(session_error)
}

fn to_login(parts: &Parts) -> Response {
    if parts.headers.contains_key("hx-request") {
        (StatusCode::UNAUTHORIZED, [("hx-redirect", "/login")]).into_response()
    } else if parts.uri.path().starts_with("/live/") {
        StatusCode::UNAUTHORIZED.into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn login_page(
    State(state): State<AppState>,
    session: Session,
    lang: Lang,
) -> Result<Response> {
    signed_out(&session);
    let csrf = csrf::token(&session).await?;
    let sandbox = state.sandbox.is_some();
    Ok(login::login(lang, sandbox, &csrf, "", None).into_response())
}

async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    lang: Lang,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<Credentials>,
) -> Result<Response> {
    let keys = throttle_keys(&form.username, &addr);
    let throttle = &state.auth.throttle;
    let sandbox = state.sandbox.is_some();
    let again = |status, msg| login_again(&session, (lang, sandbox), &form.username, status, msg);
    if throttle.locked(&keys) {
        tracing::warn!(%addr, "sign-in refused: too many failures");
        return again(StatusCode::TOO_MANY_REQUESTS, Msg::TooManyAttempts).await;
    }
    let Some(agent) = check_password(&state, &form.username, &form.password).await? else {
        throttle.failed(&keys);
        tracing::info!(%addr, "sign-in failed");
        return again(StatusCode::UNAUTHORIZED, Msg::BadCredentials).await;
    };
    throttle.succeeded(&keys[0]);
    start_session(&session, &agent, state.config.session_idle).await?;
    // A good moment to sweep: sign-ins are rare and the table is small.
    let _ = state.auth.sessions.delete_expired().await;
    tracing::info!(agent_id = agent.id, "signed in");
    Ok(Redirect::to("/").into_response())
}

/// The login form again, with what went wrong.
async fn login_again(
    session: &Session,
    (lang, sandbox): (Lang, bool),
    username: &str,
    status: StatusCode,
    msg: Msg,
) -> Result<Response> {
    let csrf = csrf::token(session).await?;
    Ok((
        status,
        login::login(lang, sandbox, &csrf, username, Some(msg)),
    )
        .into_response())
}

/// A hash to verify against when the username is unknown, so both cases cost the same
/// (an unknown name must not answer faster than a wrong password).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    password::hash(&crate::app::random_token()).expect("hashing a random password")
});

/// The active agent if the password is theirs; argon2id runs on the blocking pool.
async fn check_password(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Option<agents::Agent>> {
    let agent = agents::by_username(&state.store.pool, username)
        .await?
        .filter(|a| a.active == 1);
    let hash = agent.as_ref().map(|a| a.password_hash.clone());
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = hash.as_deref().unwrap_or(&DUMMY_HASH);
        password::verify(&password, hash)
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(agent.filter(|_| ok))
}

/// Signs `agent_id` in on this session: new session id, new CSRF token.
/// A session that only carries a CSRF token for the sign-in or setup form lives an hour
/// without use, not a working day: pages anyone can load must not fill the store for long.
fn signed_out(session: &Session) {
    session.set_expiry(Some(Expiry::OnInactivity(time::Duration::HOUR)));
}

async fn start_session(
    session: &Session,
    agent: &agents::Agent,
    idle: std::time::Duration,
) -> Result<()> {
    session.cycle_id().await.map_err(session_error)?;
    session.set_expiry(Some(Expiry::OnInactivity(
        time::Duration::try_from(idle).unwrap_or(time::Duration::HOUR),
    )));
    session
        .insert(AGENT_KEY, agent.id)
        .await
        .map_err(session_error)?;
    restamp(session, agent.session_epoch).await?;
    csrf::rotate(session).await?;
    Ok(())
}

async fn sign_out(session: Session) -> Result<Redirect> {
    session.flush().await.map_err(session_error)?;
    Ok(Redirect::to("/login"))
}

async fn setup_page(
    State(state): State<AppState>,
    session: Session,
    lang: Lang,
    Path(token): Path<String>,
) -> Result<Response> {
    signed_out(&session);
    let csrf = csrf::token(&session).await?;
    if !state.auth.setup.matches(&token) {
        return Ok((
            StatusCode::NOT_FOUND,
            login::setup_gone(lang, state.sandbox.is_some(), &csrf),
        )
            .into_response());
    }
    Ok(login::setup(lang, state.sandbox.is_some(), &csrf, &token, None).into_response())
}

/// Creates the first admin from the one-time link, and signs them in.
async fn create_first_admin(
    State(state): State<AppState>,
    session: Session,
    lang: Lang,
    Path(token): Path<String>,
    Form(form): Form<Credentials>,
) -> Result<Response> {
    let csrf = csrf::token(&session).await?;
    let setup = &state.auth.setup;
    if !setup.matches(&token) {
        return Ok((
            StatusCode::NOT_FOUND,
            login::setup_gone(lang, state.sandbox.is_some(), &csrf),
        )
            .into_response());
    }
    let username = form.username.trim();
    let invalid = |msg: String| {
        let page = login::setup(lang, state.sandbox.is_some(), &csrf, &token, Some(&msg));
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    if !agents::valid_username(username) {
        return invalid(lang.t(Msg::ErrUsernameRule).to_owned());
    }
    let hash = match password::hash_async(form.password).await {
        Ok(h) => h,
        Err(e) => return invalid(e.to_string()),
    };
    // Only one request can take the token, however many race here.
    if !setup.take(&token) {
        return Ok((
            StatusCode::NOT_FOUND,
            login::setup_gone(lang, state.sandbox.is_some(), &csrf),
        )
            .into_response());
    }
    let id = match agents::create(&state.store.pool, username, &hash, Role::Admin).await {
        Ok(id) => id,
        Err(e) => {
            setup.restore(token.clone());
            return match e {
                agents::CreateError::Taken(_) => invalid(e.to_string()),
                agents::CreateError::Db(db) => Err(db.into()),
            };
        }
    };
    let agent = agents::active_by_id(&state.store, id)
        .await?
        .ok_or(AppError::NotFound)?;
    start_session(&session, &agent, state.config.session_idle).await?;
    tracing::info!(agent_id = id, "first admin created through the setup link");
    Ok(Redirect::to("/").into_response())
}
