//! The one HTTP error type: each variant maps to a status code and a JSON
//! body `{"error":{"code","message"}}` here, in one place.

use serde_json::json;
use std::convert::Infallible;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Rejection, Reply};

/// Seconds a client is told to wait when the server is at capacity: about
/// a segment's worth, after which a session may have ended.
const CAPACITY_RETRY_AFTER_S: u32 = 10;

/// Seconds a client is told to wait when the catalogue database does not
/// answer: a restarted PostgreSQL accepts connections within seconds.
const DATABASE_RETRY_AFTER_S: u32 = 5;

/// Seconds a client is told to wait when a playlist or segment is not ready.
pub const RETRY_AFTER_S: u32 = 2;

/// An error a client sees.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 401: no token, or a wrong one.
    #[error("a valid token is required (Authorization: Bearer TOKEN or ?api_key=TOKEN)")]
    Unauthorized,
    /// 404: unknown id (or another user's session), or no such route.
    #[error("{0}")]
    NotFound(String),
    /// 400: a request the server cannot understand.
    #[error("{0}")]
    BadRequest(String),
    /// 405: the route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 416: the byte range lies outside the file; carries the file size.
    #[error("range not satisfiable for a file of {0} bytes")]
    RangeNotSatisfiable(u64),
    /// 422: the file has nothing that can be played.
    #[error("{0}")]
    Unplayable(String),
    /// 503: not ready yet; retry after the given seconds.
    #[error("{message}")]
    NotReady {
        /// What is not ready.
        message: String,
        /// Seconds for `Retry-After`.
        retry_after_s: u32,
    },
    /// 403: a valid token without the right (admin routes).
    #[error("{0}")]
    Forbidden(String),
    /// 429: the user has the most live sessions one user may have.
    #[error("{0}")]
    TooManySessions(String),
    /// 503: a new session would pass a cap; the message names it.
    #[error("{0}")]
    AtCapacity(String),
    /// 500: the session's pipeline failed; the message is plain.
    #[error("{0}")]
    SessionFailed(String),
    /// 404: the file was deleted since the library was scanned.
    #[error("{0}")]
    MediaGone(String),
    /// 403: a playback token that is invalid or expired.
    #[error("{0}")]
    Token(crate::token::TokenError),
    /// 503: the catalogue database (PostgreSQL, or a locked SQLite file)
    /// did not answer a read or write this request needs.
    #[error("{0}")]
    DatabaseUnavailable(String),
    /// 500: anything unexpected (details in the logs only).
    #[error("internal error")]
    Internal,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::MediaGone(_) => StatusCode::NOT_FOUND,
            ApiError::Token(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Unplayable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotReady { .. }
            | ApiError::AtCapacity(_)
            | ApiError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManySessions(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::SessionFailed(_) | ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RangeNotSatisfiable(_) => "range_not_satisfiable",
            ApiError::Unplayable(_) => "unplayable",
            ApiError::NotReady { .. } => "not_ready",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::AtCapacity(_) => "at_capacity",
            ApiError::TooManySessions(_) => "too_many_sessions",
            ApiError::SessionFailed(_) => "session_failed",
            ApiError::MediaGone(_) => "media_gone",
            ApiError::Token(crate::token::TokenError::Invalid) => "token_invalid",
            ApiError::Token(crate::token::TokenError::Expired) => "token_expired",
            ApiError::DatabaseUnavailable(_) => "database_unavailable",
            ApiError::Internal => "internal",
        }
    }
}

impl From<crate::supervisor::AtCapacity> for ApiError {
    fn from(e: crate::supervisor::AtCapacity) -> Self {
        match e {
            crate::supervisor::AtCapacity::UserSessions { .. } => {
                ApiError::TooManySessions(e.to_string())
            }
            _ => ApiError::AtCapacity(e.to_string()),
        }
    }
}

impl ApiError {
    /// 503 `not_ready` with [`RETRY_AFTER_S`].
    pub fn not_ready(message: impl Into<String>) -> ApiError {
        ApiError::NotReady {
            message: message.into(),
            retry_after_s: RETRY_AFTER_S,
        }
    }
}

/// A segment that could not be served: 404 when there is none, 503 while
/// it is coming or the server is at a cap, 500 when its producer failed.
/// `Ready` is not an error: a handler that lets it through has a bug.
impl From<crate::supervisor::SegmentOutcome> for ApiError {
    fn from(o: crate::supervisor::SegmentOutcome) -> Self {
        use crate::supervisor::SegmentOutcome;
        match o {
            SegmentOutcome::Missing => ApiError::NotFound("no such segment in this item".into()),
            SegmentOutcome::NotYet(message) => ApiError::not_ready(message),
            SegmentOutcome::Failed(message) => ApiError::SessionFailed(message),
            SegmentOutcome::AtCapacity(e) => e.into(),
            SegmentOutcome::Ready(_) => ApiError::Internal,
        }
    }
}

impl From<crate::session::OpenError> for ApiError {
    fn from(e: crate::session::OpenError) -> Self {
        use crate::session::OpenError;
        match e {
            OpenError::BadRequest(m) => ApiError::BadRequest(m),
            OpenError::Unplayable(m) => ApiError::Unplayable(m),
            OpenError::NotReady(m) => ApiError::not_ready(m),
            OpenError::Failed(m) => ApiError::SessionFailed(m),
            OpenError::AtCapacity(e) => e.into(),
        }
    }
}

impl From<crate::session::PlaylistError> for ApiError {
    fn from(e: crate::session::PlaylistError) -> Self {
        use crate::session::PlaylistError;
        match e {
            PlaylistError::Failed(m) => ApiError::SessionFailed(m),
            PlaylistError::NotReady(m) => ApiError::not_ready(m),
        }
    }
}

impl From<crate::thumbnails::PictureError> for ApiError {
    fn from(e: crate::thumbnails::PictureError) -> Self {
        use crate::thumbnails::PictureError;
        match e {
            PictureError::NoVideo(_) | PictureError::Failed { .. } => {
                ApiError::Unplayable(e.to_string())
            }
            PictureError::Busy => ApiError::not_ready(e.to_string()),
            PictureError::Off => ApiError::NotFound(e.to_string()),
        }
    }
}

impl From<crate::thumbnails::SheetError> for ApiError {
    fn from(e: crate::thumbnails::SheetError) -> Self {
        use crate::thumbnails::SheetError;
        match e {
            SheetError::NoVideo(_) | SheetError::Failed { .. } => {
                ApiError::Unplayable(e.to_string())
            }
            SheetError::NotReady(_) => ApiError::not_ready(e.to_string()),
            SheetError::Off | SheetError::NoSheet(_) => ApiError::NotFound(e.to_string()),
        }
    }
}

impl From<crate::library::catalogue::Unavailable> for ApiError {
    fn from(e: crate::library::catalogue::Unavailable) -> Self {
        tracing::warn!(error = %e, "a request needed the catalogue database");
        ApiError::DatabaseUnavailable(
            "the catalogue database is unavailable; try again shortly".into(),
        )
    }
}

impl From<crate::library::Unavailable> for ApiError {
    fn from(e: crate::library::Unavailable) -> Self {
        match e {
            crate::library::Unavailable::NotFound(_) => ApiError::NotFound(e.to_string()),
            crate::library::Unavailable::Gone(_) => ApiError::MediaGone(e.to_string()),
        }
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut res =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        let headers = res.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
            }
            ApiError::NotReady { retry_after_s, .. } => {
                headers.insert(header::RETRY_AFTER, (*retry_after_s).into());
            }
            ApiError::AtCapacity(_) => {
                headers.insert(header::RETRY_AFTER, CAPACITY_RETRY_AFTER_S.into());
            }
            ApiError::DatabaseUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, DATABASE_RETRY_AFTER_S.into());
            }
            ApiError::RangeNotSatisfiable(size) => {
                if let Ok(v) = format!("bytes */{size}").parse() {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
        res
    }
}

/// Turns every rejection into a JSON error; logs only the unexpected ones.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let err = if let Some(e) = rejection.find::<ApiError>() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::NotFound("no such route".into())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::BadRequest("invalid query string".into())
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::BadRequest("request body too large".into())
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::BadRequest("a request body needs a Content-Length".into())
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        ApiError::Internal
    };
    Ok(err.into_response())
}
