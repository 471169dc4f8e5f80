//! API errors, answered as Kubernetes `Status` objects.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request the API could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such object or resource.
    #[error("{0}")]
    NotFound(String),
    /// The request makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// Writes go through git.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A change refused (invalid, or not allowed).
    #[error("{0}")]
    Invalid(String),
    /// The change lost a race.
    #[error("{0}")]
    Conflict(String),
    /// The object exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A body in a format the API does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The answer exists only in encodings the client did not accept.
    #[error("{0}")]
    NotAcceptable(String),
    /// The request's body is over the bound.
    #[error("{0}")]
    TooLarge(String),
    /// No or wrong bearer token.
    #[error("Unauthorized")]
    Unauthorized,
    /// The caller may not do this (a read-only token writing).
    #[error("{0}")]
    Forbidden(String),
    /// The daemon failed.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            ApiError::AlreadyExists(_) => (StatusCode::CONFLICT, "AlreadyExists"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
            ApiError::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "NotAcceptable"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, reason) = self.code();
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.to_string(), "reason": reason, "code": code.as_u16(),
        });
        (code, [("content-type", "application/json")], body.to_string()).into_response()
    }
}
