//! The API's error type and its mapping to the contract's JSON errors:
//! `{"error":{"code":"snake_case_code","message":"..."}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::Invalid;
use crate::store::StoreError;

/// Everything a request can fail with. Each variant is one status code of
/// the contract; internal causes are logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read.
    #[error("{0}")]
    Malformed(String),
    /// 401: no or bad credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: known, but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: not there, or not yours.
    #[error("not found")]
    NotFound,
    /// 404 with a reason: a route this server's settings leave off (the
    /// message says which setting turns it on).
    #[error("{0}")]
    NotServed(&'static str),
    /// 405: the route exists with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: would break a uniqueness rule.
    #[error("{0}")]
    Conflict(String),
    /// 413: body too large.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 415: not JSON.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// 422: a field broke a rule.
    #[error("{}", .0.message)]
    Invalid(Invalid),
    /// 429: slow down, try again after this many seconds.
    #[error("too many requests; try again in {0} seconds")]
    TooManyRequests(u64),
    /// 507: the disk is full; writes wait until space returns.
    #[error("the server's disk is full; try again later")]
    InsufficientStorage,
    /// 503: the store could not make the write durable.
    #[error("the server could not store this right now; try again")]
    Unavailable,
    /// 500: a bug or a corrupt database; details only in the log.
    #[error("internal error")]
    Internal,
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The contract's snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound | Self::NotServed(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::TooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Invalid(_) => "invalid_field",
            Self::TooManyRequests(_) => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Internal => "internal_error",
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(i: Invalid) -> Self {
        Self::Invalid(i)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Invalid(i) => Self::Invalid(i),
            StoreError::DiskFull => {
                tracing::warn!("write refused: the disk is full");
                Self::InsufficientStorage
            }
            StoreError::Flush(_) | StoreError::Sled(_) => {
                tracing::error!(error = %e, "store write failed");
                Self::Unavailable
            }
            other => {
                tracing::error!(error = %other, "bad_database");
                Self::Internal
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NotServed(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        if let Self::Invalid(i) = self {
            body["error"]["field"] = json!(i.field);
        }
        let mut res = HttpResponse::build(self.status_code());
        if let Self::TooManyRequests(secs) = self {
            res.insert_header((header::RETRY_AFTER, secs.max(&1).to_string()));
        }
        if let Self::Unauthorized(_) = self {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.json(body)
    }
}
