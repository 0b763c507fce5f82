//! The routes that carry a signed playback token instead of the account's:
//! the master playlist at `/api/v1/hls/media/{media_id}/master.m3u8?token=`,
//! media playlists, segments (`.ts`, `.m4s`), fMP4 init segments and WebVTT
//! segments at `/api/v1/hls/media/{media_id}/{rendition}/{file}?token=...`,
//! and the token check a cache in front asks (`/api/v1/hls/authorize`). A
//! token whose session this node does not have (timed out, deleted, or
//! opened on another node) makes the session again.

use super::hls::{failed, find_session, master_playlist, playlist_response};
use super::media::{current_media, hls_mode};
use super::tracks::{start_session, TrackRequest};
use super::{
    query_value, raw_query, respond, with_state, ApiError, Principal, Route, BODY_CHUNK_BYTES,
    FMP4_TYPE, RETRY_AFTER_S, SEGMENT_TYPE, VTT_TYPE,
};
use crate::hls::{self, SegmentFormat};
use crate::packaging::Packaging;
use crate::rendition::Presentation;
use crate::session::Session;
use crate::supervisor::SegmentOutcome;
use crate::timeline::{
    fmp4_segment_index, segment_index, subtitle_segment_index, INIT_SEGMENT_NAME,
};
use crate::token::{now_unix_s, Grant};
use crate::AppState;
use std::sync::Arc;
use tokio_util::io::ReaderStream;
use uuid::Uuid;
use warp::http::{header, HeaderMap, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

/// `GET /api/v1/hls/media/{media_id}/master.m3u8?token=`,
/// `GET /api/v1/hls/media/{media_id}/{rendition}/{playlist.m3u8|init.mp4|segment_N.ts|.m4s|.vtt}?token=`,
/// and `GET /api/v1/hls/authorize`.
pub(super) fn route(state: Arc<AppState>) -> Route {
    let master = warp::path!("api" / "v1" / "hls" / "media" / String / "master.m3u8")
        .and(warp::get())
        .and(raw_query())
        .and(with_state(state.clone()))
        .then(master_handler)
        .map(respond);
    warp::path!("api" / "v1" / "hls" / "media" / String / String / String)
        .and(warp::get())
        .and(raw_query())
        .and(with_state(state.clone()))
        .then(rendition_handler)
        .map(respond)
        .or(master)
        .unify()
        .or(authorize_route(state))
        .unify()
        .boxed()
}

/// The master playlist at its signed URL ([`super::hls::master_url`]):
/// on any node sharing `--secret`, from the live session asked with the
/// tracks, start and profile in the rest of the query, else from that
/// session opened (again) with the token's id and user.
///
/// # Errors
/// As [`grant_for`], then as `POST /api/v1/hls/start`.
async fn master_handler(
    media_id: String,
    query: String,
    state: Arc<AppState>,
) -> Result<Response, ApiError> {
    let grant = grant_for(&state, &media_id, &query)?;
    let tracks = TrackRequest::from_query(&query)?;
    let profile = super::profile::from_request(&query, &HeaderMap::new())?;
    // A session opened here from a rendition URL has the default tracks:
    // the master URL says which it was asked with.
    let session = match live_session(&state, &grant) {
        Some(s) if s.request == tracks.query(&profile) => s,
        _ => {
            let item = current_media(&state, &media_id).await?;
            let principal = Principal { user: grant.user };
            start_session(
                &state,
                &principal,
                item,
                &tracks,
                false,
                &profile,
                Some(grant.session_id),
            )
            .await?
        }
    };
    master_playlist(&state, &session, "")
}

/// The live session a playback token names, if this node has it.
fn live_session(state: &AppState, grant: &Grant) -> Option<Arc<Session>> {
    let principal = Principal {
        user: grant.user.clone(),
    };
    find_session(state, &principal, &grant.session_id.to_string())
        .ok()
        .filter(|s| s.media_id == grant.media_id)
}

/// `GET /api/v1/hls/authorize`: 204 when the URI in `X-Original-URI` (as
/// `deploy/nginx.conf` sends it to nginx's `auth_request`; or the URL in
/// `X-Original-URL`, as ingress-nginx's `auth-url` sends it) is a plain
/// rendition or master URI whose `token` is good for its item, so that a
/// cache in front of hlsd serves a cached segment only to a request that
/// could have fetched it. Cheap: no session, no file. 401 without a
/// token; 403 with a bad, expired or another item's token, for any other
/// URI, or when both headers are sent and disagree; 400 without either.
fn authorize_route(state: Arc<AppState>) -> Route {
    warp::path!("api" / "v1" / "hls" / "authorize")
        .and(warp::get())
        .and(warp::header::optional::<String>("x-original-uri"))
        .and(warp::header::optional::<String>("x-original-url"))
        .and(with_state(state))
        .map(
            |uri: Option<String>, url: Option<String>, state: Arc<AppState>| {
                let checked = original_uri(uri, url).and_then(|uri| authorize(&state, &uri));
                respond(checked.map(|()| {
                    warp::reply::with_status(warp::reply(), warp::http::StatusCode::NO_CONTENT)
                        .into_response()
                }))
            },
        )
        .boxed()
}

/// The URI a cache asks about: `uri` (`X-Original-URI`), or the path and
/// query of `url` (`X-Original-URL`). When both come they must agree: a
/// proxy that sets one passes the other through from the client.
///
/// # Errors
/// 400 with neither; 403 when they disagree.
fn original_uri(uri: Option<String>, url: Option<String>) -> Result<String, ApiError> {
    let from_url = url.map(|u| match u.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None => u,
    });
    match (uri, from_url) {
        (Some(a), Some(b)) if a != b => Err(ApiError::Forbidden(
            "X-Original-URI and X-Original-URL name different URIs".into(),
        )),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(ApiError::BadRequest(
            "X-Original-URI (or X-Original-URL) is missing".into(),
        )),
    }
}

/// Whether `uri` is a plain `/api/v1/hls/media/{id}/{rendition}/{file}`
/// or `/api/v1/hls/media/{id}/master.m3u8` (no empty, `.` or `..` path
/// segment, no escapes: the URI a cache keys on is the one checked) and
/// carries a good token for its item.
///
/// # Errors
/// 403 for any other URI; as [`grant_for`].
fn authorize(state: &AppState, uri: &str) -> Result<(), ApiError> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let parts: Vec<&str> = path
        .strip_prefix("/api/v1/hls/media/")
        .map(|rest| rest.split('/').collect())
        .unwrap_or_default();
    let plain = |p: &&str| {
        !p.is_empty()
            && *p != "."
            && *p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let shaped = match parts.as_slice() {
        [_, "master.m3u8"] | [_, _, _] => parts.iter().all(plain),
        _ => false,
    };
    if !shaped {
        return Err(ApiError::Forbidden(format!(
            "{path} is not a rendition URI"
        )));
    }
    grant_for(state, parts[0], query).map(|_| ())
}

/// The grant of the playback token in `query`, if it is good for item
/// `media_id`.
///
/// # Errors
/// 401 without a token; 403 for a bad or expired one, or one for another
/// item.
fn grant_for(state: &AppState, media_id: &str, query: &str) -> Result<Grant, ApiError> {
    let token = query_value(query, "token").ok_or(ApiError::Unauthorized)?;
    let grant = state
        .signer
        .verify(&token, now_unix_s())
        .map_err(ApiError::Token)?;
    if Uuid::parse_str(media_id).ok() != Some(grant.media_id) {
        return Err(ApiError::Token(crate::token::TokenError::Invalid));
    }
    Ok(grant)
}

/// The session a playback token names: the live one, or one rebuilt from
/// the token when it has timed out (a player that was paused long), as
/// long as the item is still there. A rebuilt session plays the
/// presentation `rendition` belongs to: fMP4 copies for a `-cmaf` name,
/// else the `generic` decision's.
async fn session_of(
    state: &AppState,
    grant: &Grant,
    rendition: &str,
) -> Result<Arc<Session>, ApiError> {
    if let Some(s) = live_session(state, grant) {
        return Ok(s);
    }
    let item = current_media(state, &grant.media_id.to_string()).await?;
    let mode = hls_mode(&item, &item.decision)?;
    let presentation = if rendition.ends_with("-cmaf") {
        Presentation {
            packaging: Packaging::Fmp4,
            copy_video: item.video.is_some(),
        }
    } else {
        Presentation::of(&item.decision)
    };
    state
        .sessions
        .resume(grant.session_id, item, mode, presentation, &grant.user)
        .map_err(ApiError::from)
}

async fn rendition_handler(
    media_id: String,
    rendition: String,
    file: String,
    query: String,
    state: Arc<AppState>,
) -> Result<Response, ApiError> {
    let grant = grant_for(&state, &media_id, &query)?;
    let token = query_value(&query, "token").unwrap_or_default();
    let not_found = || ApiError::NotFound(format!("no {rendition}/{file} in media {media_id}"));
    let session = session_of(&state, &grant, &rendition).await?;
    if let Some(sub) = session.title.subtitle_index(&rendition) {
        session.touch();
        if file == "playlist.m3u8" {
            return media_playlist(&state, &session, &token, SegmentFormat::WebVtt).await;
        }
        let n = subtitle_segment_index(&file).ok_or_else(not_found)?;
        return subtitle_segment(&state, &session, sub, n).await;
    }
    let r = session
        .title
        .rendition_index(&rendition)
        .ok_or_else(not_found)?;
    session.touch();
    let packaging = session.title.renditions[r].packaging;
    if file == "playlist.m3u8" {
        return media_playlist(&state, &session, &token, SegmentFormat::of(packaging)).await;
    }
    if file == INIT_SEGMENT_NAME && packaging == Packaging::Fmp4 {
        return init_segment(&state, &session, grant.player, r).await;
    }
    let n = match packaging {
        Packaging::Ts => segment_index(&file),
        Packaging::Fmp4 => fmp4_segment_index(&file),
    }
    .ok_or_else(not_found)?;
    let path = match made_segment(&state, &session, grant.player, r, n).await? {
        SegmentOutcome::Ready(path) => path,
        SegmentOutcome::Missing => return Err(not_found()),
        SegmentOutcome::Failed(message) => return Err(ApiError::SessionFailed(message)),
        SegmentOutcome::AtCapacity(e) => return Err(e.into()),
        SegmentOutcome::NotYet(message) => {
            return Err(ApiError::NotReady {
                message,
                retry_after_s: RETRY_AFTER_S,
            })
        }
    };
    // Evicted between the look-up and the open: the player retries. Once
    // open, eviction unlinks the name only and the body is sent whole;
    // it streams from the file, never held in memory.
    let again = || ApiError::NotReady {
        message: format!("segment {n} is being made again"),
        retry_after_s: RETRY_AFTER_S,
    };
    let file = tokio::fs::File::open(&path).await.map_err(|_| again())?;
    let len = file.metadata().await.map_err(|_| again())?.len();
    let mut res =
        warp::reply::stream(ReaderStream::with_capacity(file, BODY_CHUNK_BYTES)).into_response();
    res.headers_mut().insert(header::CONTENT_LENGTH, len.into());
    let h = res.headers_mut();
    let content_type = match packaging {
        Packaging::Ts => SEGMENT_TYPE,
        Packaging::Fmp4 => FMP4_TYPE,
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(res)
}

/// The init segment (`EXT-X-MAP`) of fMP4 rendition `r`: written by the
/// first producer of the rendition from its stream's caps, so a request
/// that finds none has the segment its player stands at made (which
/// starts a producer) and then serves it.
async fn init_segment(
    state: &AppState,
    session: &Session,
    player: u32,
    r: usize,
) -> Result<Response, ApiError> {
    let title = &session.title;
    let path = title
        .store()
        .init_path(&title.key, &title.renditions[r].key);
    if !path.exists() {
        let n = title
            .playheads(session.id)
            .into_iter()
            .min()
            .unwrap_or(session.start);
        match made_segment(state, session, player, r, n).await? {
            SegmentOutcome::Failed(message) => return Err(ApiError::SessionFailed(message)),
            SegmentOutcome::AtCapacity(e) => return Err(e.into()),
            _ => {}
        }
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::NotReady {
            message: "the init segment is not ready yet".into(),
            retry_after_s: RETRY_AFTER_S,
        })?;
    let mut res = Response::new(bytes.into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(FMP4_TYPE));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(res)
}

/// Segment `n` of rendition `r` as `player` of `session` asks for it: from
/// the store, or made by a producer and waited for (`--segment-wait`).
///
/// # Errors
/// 503 `at_capacity` when `max_waiting_requests` requests wait already.
async fn made_segment(
    state: &AppState,
    session: &Session,
    player: u32,
    r: usize,
    n: usize,
) -> Result<SegmentOutcome, ApiError> {
    let _permit = waiting_permit(state)?;
    Ok(state
        .sessions
        .supervisor()
        .segment(
            &session.title,
            session.player_for(player, r),
            r,
            n,
            state.config.segment_wait,
        )
        .await)
}

/// A permit to wait for a segment being made.
///
/// # Errors
/// 503 `at_capacity` with `Retry-After` when `max_waiting_requests`
/// requests are waiting already.
fn waiting_permit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state
        .segment_waiters
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            crate::supervisor::AtCapacity::Waiting {
                limit: state.config.max_waiting_requests,
            }
            .into()
        })
}

/// WebVTT segment `n` of subtitle rendition `sub` of `session`'s title.
async fn subtitle_segment(
    state: &AppState,
    session: &Session,
    sub: usize,
    n: usize,
) -> Result<Response, ApiError> {
    let _permit = waiting_permit(state)?;
    let text = state
        .sessions
        .supervisor()
        .subtitle_segment(&session.title, sub, n, state.config.segment_wait)
        .await
        .map_err(|o| match o {
            SegmentOutcome::Missing => {
                ApiError::NotFound(format!("no subtitle segment {n} in this item"))
            }
            SegmentOutcome::Failed(message) => ApiError::SessionFailed(message),
            SegmentOutcome::AtCapacity(e) => e.into(),
            SegmentOutcome::NotYet(message) => ApiError::NotReady {
                message,
                retry_after_s: RETRY_AFTER_S,
            },
            SegmentOutcome::Ready(_) => ApiError::Internal,
        })?;
    let mut res = Response::new(text.into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(VTT_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// A media playlist of `session`'s title (every rendition shares the
/// timeline): VOD when the timeline's end was known at its first request
/// (every file whose duration can be believed, and every copy with a key
/// frame index), else a growing EVENT playlist of the segments made.
async fn media_playlist(
    state: &AppState,
    session: &Session,
    token: &str,
    format: SegmentFormat,
) -> Result<Response, ApiError> {
    let title = &session.title;
    let wait = state.config.playlist_wait;
    let timeline = match title.wait_timeline(wait).await {
        Some(Ok(t)) => t,
        Some(Err(e)) => return Err(ApiError::SessionFailed(e)),
        None => {
            return Err(ApiError::NotReady {
                message: "the file's key frames are being read".into(),
                retry_after_s: RETRY_AFTER_S,
            })
        }
    };
    if let Some(e) = failed(session, state) {
        return Err(ApiError::SessionFailed(e));
    }
    let query = format!("?token={token}");
    if !title.is_growing() {
        return Ok(playlist_response(hls::vod_playlist(
            &timeline.durations(),
            &query,
            format,
            session.start_at,
        )));
    }
    // The end was not known: list what is made, from the start, with the
    // lengths of the first rendition (every rendition shares its cuts).
    let mut changes = title.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = title.timeline();
        let closed = now.as_ref().is_some_and(|t| t.is_closed());
        // Key-frame cuts being found: every segment whose end is known;
        // a grid whose end is not: the segments made.
        let made = match now {
            Some(t) if t.has_cuts() => t.known_durations(),
            _ => title.made_prefix(),
        };
        if !made.is_empty() || closed {
            return Ok(playlist_response(hls::event_playlist(
                &made,
                closed,
                &query,
                format,
                session.start_at,
            )));
        }
        if let Some(e) = title.failure() {
            return Err(ApiError::SessionFailed(e));
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {
                return Err(ApiError::NotReady {
                    message: "the first segment is not ready yet".into(),
                    retry_after_s: RETRY_AFTER_S,
                })
            }
        }
    }
}
