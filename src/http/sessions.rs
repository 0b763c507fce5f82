//! The session routes (account token): start, preload, stop and list the
//! caller's sessions, and a session's master playlist by its id. The
//! routes with a playback token are [`super::renditions`].

use super::error::ApiError;
use super::filters::{
    optional_body, query_value, raw_query, respond, with_state, Principal, Route,
};
use super::request::{self, StartBody};
use super::responses;
use super::urls::{master_url, player_token};
use crate::app::AppState;
use crate::library::Playback;
use crate::profile::ClientProfile;
use crate::session::{hls_playback, OpenAs, PlayRequest, Session, SessionView};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// `POST /api/v1/hls/start` (`?media_id=` or a JSON body with the item,
/// tracks, start and profile): starts or reuses the caller's session;
/// answers its id, mode and master URL.
pub fn start(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "hls" / "start")
        .and(warp::post())
        .and(auth)
        .and(optional_body(16 * 1024))
        .and(raw_query())
        .and(with_state(state))
        .then(
            |p: Principal, body: Bytes, query: String, state: Arc<AppState>| async move {
                respond(start_handler(&state, &p, &body, &query).await)
            },
        )
        .boxed()
}

/// `POST /api/v1/hls/preload/{media_id}`: starts the caller's session in
/// the background so that a later play finds its first segment made.
pub fn preload(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "hls" / "preload" / String)
        .and(warp::post())
        .and(auth)
        .and(super::profile::requested())
        .and(with_state(state))
        .then(
            |id: String, p: Principal, profile: ClientProfile, state: Arc<AppState>| async move {
                respond(preload_handler(&state, &p, &id, profile).await)
            },
        )
        .boxed()
}

/// `GET /api/v1/hls/{sid}/master.m3u8` (account token): the master
/// playlist of the caller's session `sid`, as at its signed URL.
pub fn master(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "hls" / String / "master.m3u8")
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .then(
            |sid: String, p: Principal, state: Arc<AppState>| async move {
                let session = match find_session(&state, &p, &sid) {
                    Ok(s) => s,
                    Err(e) => return respond(Err(e)),
                };
                let prefix = format!("../media/{}/", session.media_id);
                respond(master_playlist(&state, &session, &prefix).await)
            },
        )
        .boxed()
}

/// `DELETE /api/v1/hls/{sid}`: stops the caller's session: 204.
pub fn stop(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "hls" / String)
        .and(warp::delete())
        .and(auth)
        .and(with_state(state))
        .map(|sid: String, p: Principal, state: Arc<AppState>| {
            respond(parse_session_id(&sid).and_then(|id| {
                if state.sessions.stop(&id, &p.user) {
                    Ok(responses::no_content())
                } else {
                    Err(ApiError::NotFound(format!("no session {sid}")))
                }
            }))
        })
        .boxed()
}

/// `GET /api/v1/sessions`: the caller's sessions and how far each is,
/// each naming the node that holds it; with a shared database, those
/// other live nodes hold too ([`crate::cluster`]; this node's alone while
/// the database does not answer).
pub fn list(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "sessions")
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .then(|p: Principal, state: Arc<AppState>| async move {
            let node = &state.http.node_name;
            let mut list: Vec<SessionView> = state
                .sessions
                .views(Some(&p.user), node)
                .into_iter()
                .map(|(_, view)| view)
                .collect();
            let catalogue = state.library.catalogue();
            if catalogue.is_shared() {
                match crate::cluster::sessions_elsewhere(&catalogue, node, &p.user).await {
                    Ok(more) => list.extend(more),
                    Err(e) => tracing::warn!(error = %e, "other nodes' sessions are not known"),
                }
            }
            warp::reply::json(&list).into_response()
        })
        .boxed()
}

fn parse_session_id(sid: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(sid).map_err(|_| ApiError::NotFound(format!("no session {sid}")))
}

/// `p`'s session `sid`.
///
/// # Errors
/// 404 for a malformed id, another user's or an unknown session.
fn find_session(state: &AppState, p: &Principal, sid: &str) -> Result<Arc<Session>, ApiError> {
    let id = parse_session_id(sid)?;
    state
        .sessions
        .get(&id, &p.user)
        .ok_or_else(|| ApiError::NotFound(format!("no session {sid}")))
}

/// The master playlist of `session` for a new player, each media
/// playlist URI `{prefix}{rendition}/{playlist file}` with a playback token
/// of its own (the prefix makes it relative to where the master was
/// fetched). A copy's `BANDWIDTH` comes from its key frames' offsets: the
/// master waits for them (at most `--playlist-wait`; they are read in
/// milliseconds, or kept in the catalogue), so that every player of a
/// title is told the same.
///
/// # Errors
/// 500 with the session's error when it failed.
pub async fn master_playlist(
    state: &AppState,
    session: &Session,
    prefix: &str,
) -> Result<Response, ApiError> {
    session.master_ready(*state.http.playlist_wait).await;
    let player = session.join()?;
    let token = player_token(state, session, player);
    let thumbnails = state.sheets.layout(&session.title.item).ok();
    Ok(responses::playlist(session.master_playlist(
        |name, file| format!("{prefix}{name}/{file}?token={token}"),
        thumbnails,
    )))
}

/// The item a start names: in its body, or in `?media_id=` (which a load
/// balancer can route on; docs/deployment.md, "Scaling out").
///
/// # Errors
/// 400 with neither, or with two that differ.
fn media_id_of(body: Option<String>, query: Option<String>) -> Result<String, ApiError> {
    match (body, query) {
        (Some(b), Some(q)) if b != q => Err(ApiError::BadRequest(format!(
            "media_id {q:?} in the query and {b:?} in the body differ"
        ))),
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => Err(ApiError::BadRequest(
            "media_id is required, in the body or as ?media_id=".into(),
        )),
    }
}

#[derive(Debug, Serialize)]
struct StartResponse {
    session_id: Uuid,
    mode: Playback,
    master_url: String,
}

async fn start_handler(
    state: &AppState,
    p: &Principal,
    body: &[u8],
    query: &str,
) -> Result<Response, ApiError> {
    // Parsed here rather than by warp::body::json, whose rejection would
    // lose to the other routes' 405 when the JSON is bad.
    let body: StartBody = match body.is_empty() {
        true => StartBody::default(),
        false => serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?,
    };
    let media_id = media_id_of(body.media_id.clone(), query_value(query, "media_id"))?;
    let mut play = body.play_request()?;
    play.profile = request::for_user(
        state,
        &p.user,
        play.profile.limited_to(super::profile::max_bitrate(query)?),
    );
    let item = request::media(state, &media_id).await?;
    let session = state
        .sessions
        .open(
            item,
            &p.user,
            &play,
            OpenAs::default(),
            *state.http.playlist_wait,
        )
        .await?;
    Ok(warp::reply::json(&StartResponse {
        session_id: session.id,
        mode: session.mode,
        master_url: master_url(state, &session),
    })
    .into_response())
}

async fn preload_handler(
    state: &AppState,
    p: &Principal,
    id: &str,
    profile: ClientProfile,
) -> Result<Response, ApiError> {
    let profile = request::for_user(state, &p.user, profile);
    let item = request::media(state, id).await?;
    let decision = item.decision_for(&profile);
    hls_playback(&item, &decision)?;
    if !state.sessions.preloads() {
        let body = serde_json::json!({"status": "disabled"});
        return Ok(responses::json(StatusCode::OK, &body));
    }
    if decision.playback == Some(Playback::DirectPlay) {
        let body = serde_json::json!({"status": "direct_play"});
        return Ok(responses::json(StatusCode::OK, &body));
    }
    let play = PlayRequest {
        profile,
        ..PlayRequest::default()
    };
    let opening = OpenAs {
        preload: true,
        id: None,
    };
    let session = state
        .sessions
        .open(item, &p.user, &play, opening, *state.http.playlist_wait)
        .await?;
    let body = serde_json::json!({"status": "warming", "session_id": session.id});
    Ok(responses::json(StatusCode::ACCEPTED, &body))
}
