//! The HLS session routes: sessions (start, preload, stop, list), the
//! master playlist they hand out (its signed URL, its text) and the master
//! playlist by session id (account token). The routes with a playback
//! token (the master at its signed URL, media playlists, segments) are
//! [`super::renditions`].
//!
//! Media playlist and segment URLs name the media item and the rendition,
//! `/api/v1/hls/media/{media_id}/{rendition}/segment_00042.ts?token=...`,
//! and their token ([`crate::token`]) names the user, the item, the
//! session and the player, so the account's token never travels in a
//! playlist and an HTTP cache can key segments on the path alone.

use super::media::{current_media, hls_mode};
use super::tracks::{start_session, TrackRequest};
use super::{
    optional_body, query_value, raw_query, respond, with_state, ApiError, Principal, Route,
    PLAYLIST_TYPE,
};
use crate::hls::{self, Listed, ListedSubtitles};
use crate::library::Playback;
use crate::profile::ClientProfile;
use crate::session::{Session, SessionState};
use crate::token::{now_unix_s, Grant};
use crate::AppState;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// The session, playlist and segment routes.
pub(super) fn routes(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    // POST /api/v1/hls/start
    let start = warp::path!("api" / "v1" / "hls" / "start")
        .and(warp::post())
        .and(auth.clone())
        .and(optional_body(16 * 1024))
        .and(raw_query())
        .and(with_state(state.clone()))
        .then(
            |p: Principal, body: Bytes, query: String, state: Arc<AppState>| async move {
                // Parsed here rather than by warp::body::json, whose rejection
                // would lose to the other routes' 405 when the JSON is bad.
                let request = match body.is_empty() {
                    true => StartRequest::default(),
                    false => serde_json::from_slice::<StartRequest>(&body)
                        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?,
                };
                let media_id =
                    media_id_of(request.media_id.clone(), query_value(&query, "media_id"))?;
                start_handler(&state, &p, &media_id, request).await
            },
        )
        .map(respond);

    // POST /api/v1/hls/preload/{media_id}
    let preload = warp::path!("api" / "v1" / "hls" / "preload" / String)
        .and(warp::post())
        .and(auth.clone())
        .and(super::profile::requested())
        .and(with_state(state.clone()))
        .then(
            |id: String, p: Principal, profile: ClientProfile, state: Arc<AppState>| async move {
                preload_handler(&state, &p, &id, &profile).await
            },
        )
        .map(respond);

    // GET /api/v1/hls/{sid}/master.m3u8
    let master = warp::path!("api" / "v1" / "hls" / String / "master.m3u8")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .map(|sid: String, p: Principal, state: Arc<AppState>| {
            respond(master_handler(&state, &p, &sid))
        });

    let media = super::renditions::route(state.clone());

    // DELETE /api/v1/hls/{sid}
    let delete = warp::path!("api" / "v1" / "hls" / String)
        .and(warp::delete())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .map(|sid: String, p: Principal, state: Arc<AppState>| {
            respond(parse_session_id(&sid).and_then(|id| {
                if state.sessions.stop(&id, &p.user) {
                    Ok(
                        warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT)
                            .into_response(),
                    )
                } else {
                    Err(ApiError::NotFound(format!("no session {sid}")))
                }
            }))
        });

    // GET /api/v1/sessions
    let sessions = warp::path!("api" / "v1" / "sessions")
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .map(|p: Principal, state: Arc<AppState>| {
            let ahead = state.sessions.supervisor().relocate_ahead();
            let list: Vec<SessionView> = state
                .sessions
                .for_user(&p.user)
                .iter()
                .map(|s| SessionView::of(&state, s, ahead))
                .collect();
            warp::reply::json(&list).into_response()
        });

    start
        .boxed()
        .or(preload.boxed())
        .unify()
        .or(master.boxed())
        .unify()
        .or(media.boxed())
        .unify()
        .or(delete.boxed())
        .unify()
        .or(sessions.boxed())
        .unify()
        .boxed()
}

fn parse_session_id(sid: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(sid).map_err(|_| ApiError::NotFound(format!("no session {sid}")))
}

/// `p`'s session `sid`.
///
/// # Errors
/// 404 for a malformed id, another user's or an unknown session.
pub(super) fn find_session(
    state: &AppState,
    p: &Principal,
    sid: &str,
) -> Result<Arc<Session>, ApiError> {
    let id = parse_session_id(sid)?;
    state
        .sessions
        .get(&id, &p.user)
        .ok_or_else(|| ApiError::NotFound(format!("no session {sid}")))
}

/// The master playlist's URL: signed and scoped to the item,
/// `/api/v1/hls/media/{media_id}/master.m3u8?token=...&audio=...` (player
/// 0 of `session`, then the tracks, start and profile it was asked with),
/// so a player needs no account token to fetch it, a load balancer can
/// route it by media id, and any node sharing `--secret` can answer it,
/// opening the same session if it has none (the 302 of `/api/v1/stream`
/// and the start response).
pub(super) fn master_url(state: &AppState, session: &Session) -> String {
    let token = player_token(state, session, 0);
    let request = match session.request.as_str() {
        "" => String::new(),
        q => format!("&{q}"),
    };
    format!(
        "/api/v1/hls/media/{}/master.m3u8?token={token}{request}",
        session.media_id
    )
}

/// The playback token of `player` of `session`, expiring `--token-ttl`
/// plus twice the item's duration from now, so a viewer who pauses can
/// still finish.
fn player_token(state: &AppState, session: &Session, player: u32) -> String {
    let duration_s = session.duration().map_or(0, |d| d.as_secs());
    state.signer.sign(&Grant {
        user: session.user.clone(),
        media_id: session.media_id,
        session_id: session.id,
        player,
        expires_unix_s: now_unix_s() + state.config.token_ttl.as_secs() + 2 * duration_s,
    })
}

/// The item a start names: in its body, or in `?media_id=` (which a load
/// balancer can route on; see README, "Scaling out").
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

#[derive(Debug, Default, Deserialize)]
struct StartRequest {
    /// The item; or `?media_id=`.
    #[serde(default)]
    media_id: Option<String>,
    /// Preferred audio track: its index or a language.
    #[serde(default)]
    audio: Option<serde_json::Value>,
    /// Preferred subtitle track: its index, a language, or `"off"`.
    #[serde(default)]
    subtitle: Option<serde_json::Value>,
    /// An image subtitle track to burn into the video.
    #[serde(default)]
    burn: Option<usize>,
    /// The client's profile: a built-in name or a profile object.
    #[serde(default)]
    profile: Option<serde_json::Value>,
    /// Where to start, in seconds (a resume).
    #[serde(default)]
    start: Option<f64>,
}

#[derive(Debug, Serialize)]
struct StartResponse {
    session_id: Uuid,
    mode: Playback,
    master_url: String,
}

async fn start_handler(
    state: &Arc<AppState>,
    p: &Principal,
    media_id: &str,
    body: StartRequest,
) -> Result<Response, ApiError> {
    let profile = super::profile::from_body(body.profile.as_ref())?;
    let item = current_media(state, media_id).await?;
    let tracks = TrackRequest::from_body(&body.audio, &body.subtitle, body.burn, body.start)?;
    let session = start_session(state, p, item, &tracks, false, &profile, None).await?;
    Ok(warp::reply::json(&StartResponse {
        session_id: session.id,
        mode: session.mode,
        master_url: master_url(state, &session),
    })
    .into_response())
}

/// `POST /api/v1/hls/preload/{media_id}`: starts the caller's session in
/// the background so that a later play finds its first segment made.
async fn preload_handler(
    state: &Arc<AppState>,
    p: &Principal,
    id: &str,
    profile: &ClientProfile,
) -> Result<Response, ApiError> {
    let item = current_media(state, id).await?;
    let decision = item.decision_for(profile);
    hls_mode(&item, &decision)?;
    let json = |status: StatusCode, body: serde_json::Value| {
        warp::reply::with_status(warp::reply::json(&body), status).into_response()
    };
    if !state.config.preload {
        return Ok(json(
            StatusCode::OK,
            serde_json::json!({"status": "disabled"}),
        ));
    }
    if decision.playback == Some(Playback::DirectPlay) {
        return Ok(json(
            StatusCode::OK,
            serde_json::json!({"status": "direct_play"}),
        ));
    }
    let session = start_session(
        state,
        p,
        item,
        &TrackRequest::default(),
        true,
        profile,
        None,
    )
    .await?;
    Ok(json(
        StatusCode::ACCEPTED,
        serde_json::json!({"status": "warming", "session_id": session.id}),
    ))
}

/// The error of `session` when it failed.
pub(super) fn failed(session: &Session, state: &AppState) -> Option<String> {
    let status = session.status(state.sessions.supervisor().relocate_ahead());
    (status.state == SessionState::Failed)
        .then(|| status.error.unwrap_or_else(|| "the session failed".into()))
}

/// `GET /api/v1/hls/{sid}/master.m3u8` (account token): the master
/// playlist of the caller's session `sid`, as at its signed URL.
fn master_handler(state: &AppState, p: &Principal, sid: &str) -> Result<Response, ApiError> {
    let session = find_session(state, p, sid)?;
    master_playlist(state, &session, &format!("../media/{}/", session.media_id))
}

/// The master playlist of `session` for a new player: its variants and
/// renditions, each media playlist URI `{prefix}{rendition}/playlist.m3u8`
/// with a playback token of its own (the prefix makes it relative to
/// where the master was fetched).
///
/// # Errors
/// 500 with the session's error when it failed.
pub(super) fn master_playlist(
    state: &AppState,
    session: &Session,
    prefix: &str,
) -> Result<Response, ApiError> {
    session.touch();
    if let Some(e) = failed(session, state) {
        return Err(ApiError::SessionFailed(e));
    }
    // Each fetch of the master playlist is a player with its own playhead.
    let player = session.new_player();
    session.title.touch(
        (session.id, player),
        session.start,
        session.is_preload(),
        session.renditions,
    );
    // Player 0 held the session's place until a real player came.
    session.title.remove_player((session.id, 0));
    let token = player_token(state, session, player);
    let title = &session.title;
    let uri = |name: &str| format!("{prefix}{name}/playlist.m3u8?token={token}");
    let choice = session.choice;
    // The rung a player starts on first, then the others, richest first.
    let mut rungs: Vec<usize> = (0..title.renditions.len())
        .filter(|i| {
            title.renditions[*i].plan.is_video()
                && (choice.video_options.contains(*i) || choice.video == Some(*i))
        })
        .collect();
    rungs.sort_by_key(|i| {
        (
            choice.video != Some(*i),
            std::cmp::Reverse(title.renditions[*i].bandwidth_bps),
        )
    });
    // The video variants, then the audio renditions the client is offered.
    let uris: Vec<(usize, String)> =
        rungs
            .iter()
            .copied()
            .chain((0..title.renditions.len()).filter(|i| {
                !title.renditions[*i].plan.is_video() && choice.audio_options.contains(*i)
            }))
            .map(|i| (i, uri(&title.renditions[i].name)))
            .collect();
    // Honest AVERAGE-BANDWIDTH: once a rendition has made a few segments,
    // their mean rather than the estimate.
    let average = |i: usize| {
        title
            .store()
            .measured_bps(&title.key, &title.segment_key(i, 0).rendition, 3)
            .unwrap_or(title.renditions[i].average_bps)
    };
    let mut video: Vec<Listed<'_>> = uris
        .iter()
        .map(|(i, u)| Listed {
            rendition: &title.renditions[*i],
            uri: u,
            default: choice.video == Some(*i) || choice.audio == Some(*i),
            average_bps: average(*i),
        })
        .collect();
    let audio = video.split_off(rungs.len());
    let subtitle_uris: Vec<String> = title.subtitles.iter().map(|s| uri(&s.name)).collect();
    let subtitles: Vec<ListedSubtitles<'_>> = title
        .subtitles
        .iter()
        .zip(&subtitle_uris)
        .enumerate()
        .map(|(i, (rendition, uri))| ListedSubtitles {
            rendition,
            uri,
            default: choice.subtitle == Some(i),
        })
        .collect();
    Ok(playlist_response(hls::master_playlist(
        &video, &audio, &subtitles,
    )))
}

/// A playlist answer: its media type, never cached.
pub(super) fn playlist_response(body: String) -> Response {
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PLAYLIST_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// A session as `GET /api/v1/sessions` lists it.
#[derive(Debug, Serialize)]
struct SessionView {
    session_id: Uuid,
    media_id: Uuid,
    mode: Playback,
    state: SessionState,
    /// Media seconds reached by the producer serving its players.
    position_s: f64,
    /// Source duration in seconds, if known.
    duration_s: Option<f64>,
    /// 0–100, if the number of segments is known: of the segments made.
    percent: Option<f64>,
    /// Started by a preload and not played yet.
    preload: bool,
    /// Whether the media playlist is a complete VOD playlist (seek
    /// anywhere; segments are made on request) rather than a growing one.
    seekable: bool,
    /// Media seconds per wall-clock second.
    speed: f64,
    /// Segments of every one of its renditions in the store.
    segments_ready: usize,
    /// Players (master playlist fetches) it has handed out.
    players: usize,
    error: Option<String>,
}

impl SessionView {
    fn of(state: &AppState, s: &Session, ahead: usize) -> Self {
        let status = s.status(ahead);
        state.sessions.observe(s, status.state);
        let round = |x: f64| (x * 100.0).round() / 100.0;
        SessionView {
            session_id: s.id,
            media_id: s.media_id,
            mode: s.mode,
            state: status.state,
            position_s: round(status.position.as_secs_f64()),
            duration_s: s.duration().map(|d| round(d.as_secs_f64())),
            percent: s.percent(&status).map(round),
            seekable: s.title.timeline().is_some_and(|t| t.is_closed()),
            preload: s.is_preload(),
            speed: status.speed,
            segments_ready: status.segments_ready,
            players: s.title.playheads(s.id).len(),
            error: status.error.clone(),
        }
    }
}
