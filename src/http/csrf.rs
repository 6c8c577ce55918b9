//! CSRF protection and the security headers every response carries.
//!
//! Each session holds one random token. Forms carry it as the hidden field `csrf`; htmx sends
//! it as the `x-csrf-token` header (set once on `<body>` with `hx-headers`). Every
//! state-changing request must present it, or it is refused with 403 before any handler runs,
//! so nothing is stored. The LINE webhook is the one exception: it is authenticated by its
//! signature instead, and LINE has no session.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderName, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::Session;

use crate::error::{AppError, Result};

/// Session key of the token.
const SESSION_KEY: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";
/// Largest form body the check buffers to find the field (a 5,000-character reply, percent-
/// encoded, is at most ~60 KB).
const MAX_FORM: usize = 256 * 1024;
/// The session's token, created on first use.
pub async fn token(session: &Session) -> Result<String> {
    if let Some(t) = session
        .get::<String>(SESSION_KEY)
        .await
        .map_err(session_error)?
    {
        return Ok(t);
    }
    rotate(session).await
}

/// A new token (at sign-in, so a token seen before sign-in is worthless after).
pub async fn rotate(session: &Session) -> Result<String> {
    let t = crate::app::random_token();
    session
        .insert(SESSION_KEY, &t)
        .await
        .map_err(session_error)?;
    Ok(t)
}

pub fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("session store: {e}"))
}

/// Middleware: refuses an unsafe request without the session's token.
pub async fn require_token(session: Session, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe {
        return next.run(request).await;
    }
    match check(&session, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(session: &Session, request: Request) -> Result<Request> {
    const REFUSED: AppError = AppError::Forbidden("missing or wrong CSRF token");
    let expected: Option<String> = session.get(SESSION_KEY).await.map_err(session_error)?;
    let expected = expected.ok_or(REFUSED)?;
    let matches = |given: &str| bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
    if let Some(given) = request.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return if matches(given) {
            Ok(request)
        } else {
            Err(REFUSED)
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(REFUSED);
    }
    // Read the form to find the field, then hand the same bytes on to the handler.
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| AppError::Invalid("form too large".into()))?;
    let given = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| {
            fields
                .into_iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v)
        });
    match given {
        Some(given) if matches(&given) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(REFUSED),
    }
}

/// The Content-Security-Policy: our own scripts and styles only (no inline script, so an
/// injected `<script>` could not run even if escaping failed), images from LINE's CDN hosts
/// only (stickers and emojis: stickershop; profile pictures: profile and obs), video and
/// audio only through our own `/media/{id}`, and no framing (clickjacking).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: https://stickershop.line-scdn.net https://profile.line-scdn.net \
    https://obs.line-scdn.net; media-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The security headers, one layer each, set on every response.
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    let set = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::overriding(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    [
        set("content-security-policy", CSP),
        set("x-content-type-options", "nosniff"),
        set("referrer-policy", "same-origin"),
        set("x-frame-options", "DENY"),
    ]
}
