//! The customer simulator's routes (sandbox mode only; `http::router` leaves them out when
//! LINE credentials are set, and the `Sim` extractor answers 404 should one be reached then):
//!
//! - `GET /sandbox[?customer=U…]`: the page; `GET /sandbox/chat?customer=U…`: what that
//!   customer sees (the polled fragment);
//! - `POST /sandbox/customers`: add a simulated customer by display name;
//! - `POST /sandbox/send`: the customer sends text, a sticker, a photo, or follows; this goes
//!   out as a signed webhook to our own `/line/webhook` (`sandbox::Sandbox::act`).
//!
//! Every route needs a signed-in agent, and the POSTs pass the CSRF check like any form.

use axum::{
    Form, Router,
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, StatusCode, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::html;
use serde::Deserialize;

use super::auth::Agent;
use crate::{
    app::AppState,
    domain::{OutgoingText, TextError},
    error::{AppError, Result},
    i18n::{Lang, Msg},
    sandbox::{self, Action, STICKERS, Sandbox},
    views::{ids, layout::Shell, sandbox as view},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sandbox", get(show_simulator))
        .route("/sandbox/chat", get(show_chat))
        .route("/sandbox/customers", post(add_customer))
        .route("/sandbox/send", post(send_as_customer))
}

/// The sandbox, or 404: with real credentials there is no simulator to reach.
pub struct Sim(Sandbox);

impl FromRequestParts<AppState> for Sim {
    type Rejection = AppError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self> {
        state.sandbox.clone().map(Sim).ok_or(AppError::NotFound)
    }
}

#[derive(Deserialize)]
struct Chosen {
    customer: Option<String>,
}

async fn show_simulator(
    Sim(sim): Sim,
    agent: Agent,
    lang: Lang,
    Query(q): Query<Chosen>,
) -> Result<Response> {
    let customers = sim.customers();
    let open = match q.customer.as_deref() {
        Some(id) => Some(chosen(&sim, id)?),
        None => None,
    };
    let shell = Shell {
        lang,
        title: lang.t(Msg::SimTitle),
        csrf: &agent.csrf,
        agent: Some(&agent.agent.display_name),
        live_cursor: None,
        sandbox: true,
        admin: agent.agent.is_admin(),
    };
    let open = open.as_ref().map(|(c, lines)| (c, lines.as_slice()));
    Ok(view::simulator_page(&shell, &customers, open).into_response())
}

async fn show_chat(
    Sim(sim): Sim,
    _: Agent,
    lang: Lang,
    Query(q): Query<Chosen>,
) -> Result<Response> {
    let (_, lines) = chosen(&sim, q.customer.as_deref().unwrap_or_default())?;
    Ok(view::chat(lang, &lines).into_response())
}

/// A known simulated customer and their transcript, else 404.
fn chosen(sim: &Sandbox, user_id: &str) -> Result<(sandbox::Customer, Vec<sandbox::ChatLine>)> {
    let customer = sim.customer(user_id).ok_or(AppError::NotFound)?;
    let lines = sim.transcript(user_id).ok_or(AppError::NotFound)?;
    Ok((customer, lines))
}

#[derive(Deserialize)]
struct NewCustomer {
    display_name: String,
}

async fn add_customer(
    Sim(sim): Sim,
    _: Agent,
    lang: Lang,
    Form(form): Form<NewCustomer>,
) -> Result<Response> {
    let Some(name) = sandbox::parse_display_name(&form.display_name) else {
        return Ok(refused(lang.t(Msg::SimBadName)));
    };
    let user_id = sim.add_customer(name);
    Ok(Redirect::to(&format!("/sandbox?customer={user_id}")).into_response())
}

#[derive(Deserialize)]
struct SendForm {
    customer: String,
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    sticker: String,
}

async fn send_as_customer(
    State(state): State<AppState>,
    Sim(sim): Sim,
    _: Agent,
    lang: Lang,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
) -> Result<Response> {
    sim.customer(&form.customer).ok_or(AppError::NotFound)?;
    let action = match form.kind.as_str() {
        "text" => match OutgoingText::parse(&form.text) {
            Ok(text) => Action::Text(text.as_str().to_owned()),
            Err(TextError::Empty) => return Ok(refused(lang.t(Msg::ReplyEmpty))),
            Err(TextError::TooLong(_)) => return Ok(refused(lang.t(Msg::ReplyTooLong))),
        },
        "sticker" => sticker(&form.sticker)?,
        "photo" => Action::Photo,
        "follow" => Action::Follow,
        _ => return Err(AppError::Invalid("unknown action".into())),
    };
    let secret = state.webhook_secret.0.expose();
    sim.act(secret, &form.customer, action).await?;
    if !super::pages::is_htmx(&headers) {
        let back = format!("/sandbox?customer={}", form.customer);
        return Ok(Redirect::to(&back).into_response());
    }
    let (_, lines) = chosen(&sim, &form.customer)?;
    Ok(view::chat(lang, &lines).into_response())
}

/// One of the default stickers, given as `packageId/stickerId`.
fn sticker(value: &str) -> Result<Action> {
    let known = STICKERS
        .iter()
        .find(|(p, s)| value.split_once('/') == Some((p, s)));
    let (package_id, sticker_id) = known.ok_or(AppError::Invalid("unknown sticker".into()))?;
    Ok(Action::Sticker {
        package_id: (*package_id).to_owned(),
        sticker_id: (*sticker_id).to_owned(),
    })
}

/// A simulator input that is refused: 422 with the reason, shown above the composer.
fn refused(reason: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        [
            ("hx-retarget", format!("#{}", ids::SIM_ERROR)),
            ("hx-reswap", "innerHTML".to_owned()),
        ],
        html! { (reason) },
    )
        .into_response()
}
