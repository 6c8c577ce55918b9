//! Error answers dressed for people. Handlers and extractors answer errors as short plain
//! text (right for LINE, probes and scripts); when the request came from the desk — a browser
//! asking for HTML, or htmx — this layer replaces that text with words the agent can act on, in
//! their language: a full page for a navigation, a one-line message for htmx, which `app.js`
//! shows as a toast. Answers that are already HTML (a form re-rendered with its error, 422)
//! pass untouched, and so does every success.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    app::AppState,
    i18n::{Lang, Msg},
    views::error::error_page,
};

/// The most of a plain-text error body kept as its detail line.
const DETAIL_LIMIT: usize = 300;

pub async fn dress(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let audience = if request.uri().path().starts_with("/live/") {
        // The live transports handle their own failures (reconnect, fall back).
        Audience::Other
    } else {
        Audience::of(request.headers())
    };
    let lang = Lang::of_request(request.extensions(), request.headers());
    let response = next.run(request).await;
    let status = response.status();
    if audience == Audience::Other
        || !(status.is_client_error() || status.is_server_error())
        || is_html(response.headers())
        // A redirect to sign in travels in a header, not the body.
        || response.headers().contains_key("hx-redirect")
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Server errors keep their (generic) text to themselves; a client error's text says what
    // was wrong with the request and is worth showing under the title.
    let detail = if status.is_client_error() {
        axum::body::to_bytes(body, DETAIL_LIMIT * 4)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .filter(|d| !d.is_empty())
            .map(|d| d.chars().take(DETAIL_LIMIT).collect::<String>())
    } else {
        None
    };
    let title = lang.t(title(status));
    let mut dressed = match audience {
        Audience::Htmx => {
            let line = match &detail {
                Some(d) => format!("{title} ({d})"),
                None => title.to_owned(),
            };
            // htmx swaps a 422 (that is how a form comes back with its error); an
            // extractor's plain-text 422 is not such a form, so it goes out as a 400 and
            // becomes a toast instead of text pasted where the answer would go.
            let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
                StatusCode::BAD_REQUEST
            } else {
                status
            };
            (status, line).into_response()
        }
        _ => {
            let page = error_page(
                lang,
                state.sandbox.is_some(),
                status,
                title,
                detail.as_deref(),
            );
            (status, page).into_response()
        }
    };
    // Keep what the original answer said about retrying or where to go.
    for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            dressed.headers_mut().insert(name, v.clone());
        }
    }
    dressed
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    dressed
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Audience {
    /// An htmx request: the toast shows the body as text.
    Htmx,
    /// A browser navigation or form post: a whole page.
    Page,
    /// Anything else (LINE, probes, scripts, the live transports): plain text as it was.
    Other,
}

impl Audience {
    fn of(headers: &HeaderMap) -> Self {
        if headers.contains_key("hx-request") {
            return Audience::Htmx;
        }
        let accepts_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        if accepts_html {
            Audience::Page
        } else {
            Audience::Other
        }
    }
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// What an agent is told for each status.
fn title(status: StatusCode) -> Msg {
    match status {
        StatusCode::UNAUTHORIZED => Msg::ErrSignedOut,
        StatusCode::FORBIDDEN => Msg::ErrForbidden,
        StatusCode::NOT_FOUND => Msg::ErrNotFound,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Msg::ErrTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => Msg::ErrTooLarge,
        StatusCode::TOO_MANY_REQUESTS => Msg::ErrTooMany,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => Msg::ErrUnavailable,
        s if s.is_server_error() => Msg::ErrServer,
        _ => Msg::ErrBadRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn who_gets_what() {
        assert_eq!(
            Audience::of(&headers(&[("hx-request", "true")])),
            Audience::Htmx
        );
        assert_eq!(
            Audience::of(&headers(&[("accept", "text/html,application/xhtml+xml")])),
            Audience::Page
        );
        assert_eq!(Audience::of(&headers(&[])), Audience::Other);
        assert_eq!(
            Audience::of(&headers(&[("accept", "application/json")])),
            Audience::Other
        );
    }

    #[test]
    fn every_error_status_has_words() {
        assert_eq!(title(StatusCode::FORBIDDEN), Msg::ErrForbidden);
        assert_eq!(title(StatusCode::BAD_GATEWAY), Msg::ErrUnavailable);
        assert_eq!(title(StatusCode::INTERNAL_SERVER_ERROR), Msg::ErrServer);
        assert_eq!(title(StatusCode::UNPROCESSABLE_ENTITY), Msg::ErrBadRequest);
    }
}
