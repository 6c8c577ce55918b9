//! The error type at the HTTP edge. Expected cases have their own variants and status codes;
//! everything else is `Internal`, logged once with its cause and answered with a generic text,
//! so internal details never reach a client.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// A dependency is down; the client should try again (LINE redelivers webhooks).
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::unavailable(&e) {
            tracing::error!(error = %e, "the store is not taking requests");
            return AppError::Unavailable("the store is not taking writes; try again");
        }
        AppError::Internal(e.into())
    }
}

impl AppError {
    /// A failed store job: 503 when the store cannot take writes right now, else internal.
    pub fn store(e: anyhow::Error) -> Self {
        if crate::store::unavailable_in(&e) {
            tracing::error!(error = format!("{e:#}"), "the store is not taking requests");
            return AppError::Unavailable("the store is not taking writes; try again");
        }
        AppError::Internal(e)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let text = match &self {
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        (status, text).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_inside() {
        let e = AppError::Internal(anyhow::anyhow!("secret path /var/lib/x"));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn statuses() {
        assert_eq!(
            AppError::Unauthorized("x").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            AppError::Invalid("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            AppError::Unavailable("x").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
