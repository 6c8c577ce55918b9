//! `POST /me/language`: an agent's own language for the desk, from the header's menu.

use axum::{
    Form, Router,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Redirect, Response},
    routing::post,
};
use serde::Deserialize;

use crate::{
    app::AppState,
    error::{AppError, Result},
    http::auth::Agent,
    i18n::Lang,
    store::agents,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/me/language", post(set_language))
}

#[derive(Deserialize)]
struct LanguageForm {
    /// A language code, or empty for "follow the browser".
    #[serde(default)]
    language: String,
}

async fn set_language(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Form(form): Form<LanguageForm>,
) -> Result<Response> {
    let choice = match form.language.as_str() {
        "" => None,
        code => Some(Lang::from_code(code).ok_or(AppError::Invalid("unknown language".into()))?),
    };
    agents::set_language(&state.store, agent.agent.id, choice.map(Lang::code)).await?;
    Ok(Redirect::to(&back_to(&headers)).into_response())
}

/// Where the menu was used: the Referer's path when it is this very site, else the inbox.
fn back_to(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| reqwest::Url::parse(r).ok());
    match (host, referer) {
        (Some(host), Some(url)) if url.host_str().is_some() && url.authority() == host => {
            let mut back = url.path().to_owned();
            if let Some(q) = url.query() {
                back.push('?');
                back.push_str(q);
            }
            if back.starts_with('/') && !back.starts_with("//") {
                back
            } else {
                "/".to_owned()
            }
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, referer: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        h.insert(header::REFERER, referer.parse().unwrap());
        h
    }

    #[test]
    fn goes_back_only_within_the_site() {
        let h = headers(
            "desk.test:8080",
            "http://desk.test:8080/conversations/3?x=1",
        );
        assert_eq!(back_to(&h), "/conversations/3?x=1");
        assert_eq!(back_to(&headers("desk.test", "https://evil.test/a")), "/");
        assert_eq!(back_to(&headers("desk.test", "not a url")), "/");
    }
}
