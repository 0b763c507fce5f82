//! The warp filters every route group builds on: the state, the caller
//! (`auth`), the raw query, a small optional body; and [`respond`], which
//! turns a handler's result into a response.

use super::error::ApiError;
use crate::app::AppState;
use std::sync::Arc;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// A boxed route, as every route function returns them: the nested filter
/// types are otherwise too deep for the compiler's recursion limit in
/// release builds.
pub type Route = warp::filters::BoxedFilter<(Response,)>;

/// Who is asking, and how they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user the token belongs to.
    pub user: String,
}

/// The shared state, for every request.
pub fn with_state(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The raw query string, or empty.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// A small body (at most `limit` bytes, with a `Content-Length`), or none
/// at all (a POST with no body and no `Content-Length`, as some clients
/// send it, is an empty body, not a 411).
pub fn optional_body(
    limit: u64,
) -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    let sized = warp::header::<u64>("content-length")
        .and(warp::body::content_length_limit(limit))
        .and(warp::body::bytes())
        .map(|_: u64, b: bytes::Bytes| b);
    let none = warp::header::optional::<String>("content-length")
        .and(warp::header::optional::<String>("transfer-encoding"))
        .and_then(
            move |length: Option<String>, chunked: Option<String>| async move {
                if length.is_none() && chunked.is_none() {
                    Ok(bytes::Bytes::new())
                } else {
                    Err(warp::reject::custom(ApiError::BadRequest(format!(
                        "the body must be at most {limit} bytes, with a Content-Length"
                    ))))
                }
            },
        );
    sized.or(none).unify()
}

/// The decoded value of `key` in a query string.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Authenticates by `Authorization: Bearer TOKEN` or `?api_key=TOKEN`;
/// rejects with 401 otherwise.
pub fn auth(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(raw_query())
        .and_then(move |authorization: Option<String>, query: String| {
            let state = state.clone();
            async move {
                let bearer = authorization.as_deref().and_then(bearer_token);
                let token = bearer
                    .map(str::to_string)
                    .or_else(|| query_value(&query, "api_key"));
                token
                    .and_then(|t| state.user_for(&t))
                    .map(|user| Principal { user })
                    .ok_or_else(|| warp::reject::custom(ApiError::Unauthorized))
            }
        })
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A response from a handler's result, logging server errors.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(code = e.code(), message = %e, "request failed");
            }
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for h in ["Bearer abc", "bearer abc", "BEARER  abc ", " Bearer abc"] {
            assert_eq!(bearer_token(h), Some("abc"), "{h:?}");
        }
        for h in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer_token(h), None, "{h:?}");
        }
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value("a=1&api_key=x%20y", "api_key").as_deref(),
            Some("x y")
        );
        assert_eq!(query_value("", "api_key"), None);
    }
}
