//! Playback positions: `PUT /api/v1/progress/{media_id}` with
//! `{"position_s": 95.0}` stores where the caller stopped, `GET` reads it
//! ([`crate::library::progress`]). A client resumes with
//! `/api/v1/stream/{id}?start=95`.

use super::error::ApiError;
use super::filters::{respond, with_state, Principal, Route};
use super::request;
use crate::app::AppState;
use crate::library::catalogue::Unavailable;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Put {
    position_s: f64,
}

/// `PUT /api/v1/progress/{media_id}` with `{"position_s": 95.0}`: stores
/// where the caller stopped: 204.
pub fn put(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "progress" / String)
        .and(warp::put())
        .and(auth)
        .and(warp::body::content_length_limit(1024))
        .and(warp::body::bytes())
        .and(with_state(state))
        .then(
            |id: String, p: Principal, body: Bytes, state: Arc<AppState>| async move {
                respond(put_progress(&state, &p, &id, &body).await)
            },
        )
        .boxed()
}

/// `GET /api/v1/progress/{media_id}`: where the caller stopped.
pub fn get(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "progress" / String)
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .then(
            |id: String, p: Principal, state: Arc<AppState>| async move {
                respond(get_progress(&state, &p, &id).await)
            },
        )
        .boxed()
}

/// Stores the caller's position: 204.
///
/// # Errors
/// 400 for bad JSON or a position that is negative, not a number, or past
/// the item's end; 404 for an unknown item; 503 `database_unavailable`
/// when the database does not answer.
async fn put_progress(
    state: &AppState,
    p: &Principal,
    id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let item = request::media(state, id).await?;
    let put: Put = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let past_end = item.duration_s.is_some_and(|d| put.position_s > d + 1.0);
    if !put.position_s.is_finite() || put.position_s < 0.0 || past_end {
        return Err(ApiError::BadRequest(format!(
            "position_s must be between 0 and the item's duration ({:?} s), not {}",
            item.duration_s, put.position_s
        )));
    }
    let catalogue = state.library.catalogue();
    let user = p.user.clone();
    let now = crate::token::now_unix_s() as i64;
    tokio::task::spawn_blocking(move || {
        catalogue.put_progress(&user, &item.id, put.position_s, now)
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(Unavailable::from)?;
    Ok(super::responses::no_content())
}

/// The caller's position: 200 `{media_id, position_s, updated_unix_s}`.
///
/// # Errors
/// 404 for an unknown item or no stored position; 503
/// `database_unavailable` when the database does not answer.
async fn get_progress(state: &AppState, p: &Principal, id: &str) -> Result<Response, ApiError> {
    let item = request::media(state, id).await?;
    let catalogue = state.library.catalogue();
    let user = p.user.clone();
    let found = tokio::task::spawn_blocking(move || catalogue.progress(&user, &item.id))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(Unavailable::from)?;
    let progress =
        found.ok_or_else(|| ApiError::NotFound(format!("no position stored for {id}")))?;
    Ok(warp::reply::json(&progress).into_response())
}
