//! The routes that carry a signed playback token instead of the account's:
//! the master playlist at `/api/v1/hls/media/{media_id}/master.m3u8?token=`,
//! media playlists, segments (`.ts`, `.m4s`), fMP4 init segments and WebVTT
//! segments at `/api/v1/hls/media/{media_id}/{rendition}/{file}?token=...`,
//! and the token check a cache in front asks (`/api/v1/hls/authorize`). A
//! token whose session this node does not have (timed out, deleted, or
//! opened on another node) makes the session again.

use super::error::ApiError;
use super::filters::{raw_query, respond, with_state, Route};
use super::range::RangeOutcome;
use super::request;
use super::responses::{self, FMP4_TYPE, SEGMENT_TYPE};
use super::sessions::master_playlist;
use super::urls::grant_for;
use crate::app::AppState;
use crate::container::iframe::{fmp4_iframe, ts_iframe};
use crate::hls::SegmentFormat;
use crate::packaging::Packaging;
use crate::session::{OpenAs, Session};
use crate::session::{IFRAME_PLAYLIST, MEDIA_PLAYLIST, THUMBNAILS};
use crate::store::SegmentBytes;
use crate::supervisor::{Player, SegmentOutcome};
use crate::timeline::{
    fmp4_segment_index, iframe_index, segment_index, subtitle_segment_index, INIT_SEGMENT_NAME,
};
use crate::token::Grant;
use std::path::PathBuf;
use std::sync::Arc;
use warp::http::HeaderMap;
use warp::reply::Response;
use warp::Filter;

/// `GET /api/v1/hls/media/{media_id}/master.m3u8?token=`: the master
/// playlist at its signed URL ([`super::urls::master_url`]), on any node
/// sharing `--secret`.
pub fn signed_master(state: Arc<AppState>) -> Route {
    warp::path!("api" / "v1" / "hls" / "media" / String / "master.m3u8")
        .and(warp::get())
        .and(raw_query())
        .and(with_state(state))
        .then(
            |media_id: String, query: String, state: Arc<AppState>| async move {
                respond(signed_master_handler(&state, &media_id, &query).await)
            },
        )
        .boxed()
}

/// `GET /api/v1/hls/media/{media_id}/{rendition}/{playlist.m3u8 | init.mp4
/// | segment_N.ts | segment_N.m4s | segment_N.vtt | iframes.m3u8 |
/// iframe_N.ts | iframe_N.m4s}?token=`: a rendition's media playlist, init
/// segment or segments; a video rendition's I-frame playlist and I-frames
/// (each segment's first picture, cut out of the stored segment).
pub fn rendition_file(state: Arc<AppState>) -> Route {
    warp::path!("api" / "v1" / "hls" / "media" / String / String / String)
        .and(warp::get())
        .and(raw_query())
        .and(warp::header::optional::<String>("range"))
        .and(with_state(state))
        .then(
            |media_id: String,
             rendition: String,
             file: String,
             query: String,
             range: Option<String>,
             state: Arc<AppState>| async move {
                let asked = Asked {
                    media_id: &media_id,
                    rendition: &rendition,
                    file: &file,
                    query: &query,
                    range: range.as_deref(),
                };
                respond(rendition_handler(&state, asked).await)
            },
        )
        .boxed()
}

/// `GET /api/v1/hls/authorize`: 204 when the URI in `X-Original-URI` (as
/// `deploy/nginx.conf` sends it to nginx's `auth_request`; or the URL in
/// `X-Original-URL`, as ingress-nginx's `auth-url` sends it) is a plain
/// rendition or master URI whose `token` is good for its item, so that a
/// cache in front of hlsd serves a cached segment only to a request that
/// could have fetched it. Cheap: no session, no file. 401 without a
/// token; 403 with a bad, expired or another item's token, for any other
/// URI, or when both headers are sent and disagree; 400 without either.
pub fn authorize(state: Arc<AppState>) -> Route {
    warp::path!("api" / "v1" / "hls" / "authorize")
        .and(warp::get())
        .and(warp::header::optional::<String>("x-original-uri"))
        .and(warp::header::optional::<String>("x-original-url"))
        .and(with_state(state))
        .map(
            |uri: Option<String>, url: Option<String>, state: Arc<AppState>| {
                let checked = original_uri(uri, url).and_then(|uri| check_uri(&state, &uri));
                respond(checked.map(|()| responses::no_content()))
            },
        )
        .boxed()
}

/// The master playlist at its signed URL: from the live session asked
/// with the tracks, start and profile in the rest of the query, else from
/// that session opened (again) with the token's id and user.
///
/// # Errors
/// As [`grant_for`], then as `POST /api/v1/hls/start`.
async fn signed_master_handler(
    state: &AppState,
    media_id: &str,
    query: &str,
) -> Result<Response, ApiError> {
    let grant = grant_for(state, media_id, query)?;
    let mut play = request::from_request(query, &HeaderMap::new())?;
    play.profile = request::for_user(state, &grant.user, play.profile);
    // A session opened here from a rendition URL has the default tracks:
    // the master URL says which it was asked with.
    let live = state
        .sessions
        .get(&grant.session_id, &grant.user)
        .filter(|s| s.media_id == grant.media_id && s.request == play.query());
    let session = match live {
        Some(s) => s,
        None => {
            let item = request::media(state, media_id).await?;
            let opening = OpenAs {
                preload: false,
                id: Some(grant.session_id),
            };
            state
                .sessions
                .open(item, &grant.user, &play, opening, *state.http.playlist_wait)
                .await?
        }
    };
    master_playlist(state, &session, "").await
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
fn check_uri(state: &AppState, uri: &str) -> Result<(), ApiError> {
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

/// The session a playback token names, made again if this node does not
/// have it, for a request of `rendition`.
async fn session_of(
    state: &AppState,
    grant: &Grant,
    rendition: &str,
) -> Result<Arc<Session>, ApiError> {
    if let Some(s) = state
        .sessions
        .get(&grant.session_id, &grant.user)
        .filter(|s| s.media_id == grant.media_id)
    {
        return Ok(s);
    }
    let item = request::media(state, &grant.media_id.to_string()).await?;
    Ok(state
        .sessions
        .for_token(grant.session_id, item, &grant.user, rendition)?)
}

/// What a rendition request asks for: its path's parts, its query and
/// its `Range` header.
struct Asked<'a> {
    media_id: &'a str,
    rendition: &'a str,
    file: &'a str,
    query: &'a str,
    range: Option<&'a str>,
}

async fn rendition_handler(state: &AppState, asked: Asked<'_>) -> Result<Response, ApiError> {
    let Asked {
        media_id,
        rendition,
        file,
        query,
        range,
    } = asked;
    let grant = grant_for(state, media_id, query)?;
    let token_query = format!(
        "?token={}",
        super::filters::query_value(query, "token").unwrap_or_default()
    );
    let not_found = || ApiError::NotFound(format!("no {rendition}/{file} in media {media_id}"));
    if rendition == THUMBNAILS {
        let item = request::media(state, media_id).await?;
        return super::thumbnails::beside_renditions(state, &item, file, &token_query).await;
    }
    let session = session_of(state, &grant, rendition).await?;
    let wait = *state.http.playlist_wait;
    if let Some(sub) = session.title.subtitle_index(rendition) {
        session.touch();
        if file == MEDIA_PLAYLIST {
            let text = session
                .media_playlist(SegmentFormat::WebVtt, &token_query, wait)
                .await?;
            return Ok(responses::playlist(text));
        }
        let n = subtitle_segment_index(file).ok_or_else(not_found)?;
        return subtitle_segment(state, &session, sub, n).await;
    }
    let r = session
        .title
        .rendition_index(rendition)
        .ok_or_else(not_found)?;
    session.touch();
    let packaging = session.title.renditions[r].packaging;
    let video = session.title.renditions[r].plan.is_video();
    let format = match file {
        MEDIA_PLAYLIST => Some(SegmentFormat::of(packaging)),
        IFRAME_PLAYLIST if video => Some(SegmentFormat::iframes_of(packaging)),
        _ => None,
    };
    if let Some(format) = format {
        let text = session.media_playlist(format, &token_query, wait).await?;
        return Ok(responses::playlist(text));
    }
    if let Some(n) = iframe_index(file, packaging).filter(|_| video) {
        return iframe(state, &session, grant.player, r, n).await;
    }
    if file == INIT_SEGMENT_NAME && packaging == Packaging::Fmp4 {
        return init_segment(state, &session, grant.player, r).await;
    }
    let n = match packaging {
        Packaging::Ts => segment_index(file),
        Packaging::Fmp4 => fmp4_segment_index(file),
    }
    .ok_or_else(not_found)?;
    let path =
        match made_segment(state, &session, session.player_for(grant.player, r), r, n).await? {
            SegmentOutcome::Ready(path) => path,
            SegmentOutcome::Missing => return Err(not_found()),
            other => return Err(other.into()),
        };
    let content_type = match packaging {
        Packaging::Ts => SEGMENT_TYPE,
        Packaging::Fmp4 => FMP4_TYPE,
    };
    segment_body(&session, path, n, content_type, range).await
}

/// The segment at `path` as a body: from the store's memory, else read
/// from its file. Evicted between the look-up and the read: the player
/// retries. A segment too large for the memory cache streams from its
/// file; once open, eviction unlinks the name only and it is sent whole.
/// With one byte range in `range` (RFC 9110 §14) that is not the whole
/// segment, those bytes (206).
///
/// # Errors
/// 503 when it was evicted meanwhile; 416 for a range outside it.
async fn segment_body(
    session: &Session,
    path: PathBuf,
    n: usize,
    content_type: &'static str,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let again = || ApiError::not_ready(format!("segment {n} is being made again"));
    let body = session
        .title
        .store()
        .read(&path)
        .await
        .map_err(|_| again())?;
    let len = match &body {
        SegmentBytes::Memory(bytes) => bytes.len() as u64,
        SegmentBytes::File(_, len) => *len,
    };
    // A segment's bytes never change for its URL: no validator to match.
    // A range of the whole segment (ffmpeg asks `bytes=0-` of every
    // URL) is answered 200, as a cache in front stores it.
    let part = match super::range::evaluate(range, None, "", "", len) {
        RangeOutcome::Full => None,
        RangeOutcome::Partial(r) if *r.start() == 0 && *r.end() + 1 == len => None,
        RangeOutcome::Partial(r) => Some(r),
        RangeOutcome::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable(len)),
    };
    match (body, part) {
        (SegmentBytes::Memory(bytes), None) => Ok(responses::immutable_bytes(bytes, content_type)),
        (SegmentBytes::File(file, len), None) => {
            Ok(responses::immutable_file(file, len, content_type))
        }
        (SegmentBytes::Memory(bytes), Some(r)) => {
            let slice = bytes.slice(*r.start() as usize..=*r.end() as usize);
            Ok(responses::immutable_part(slice, r, len, content_type))
        }
        (SegmentBytes::File(mut file, _), Some(r)) => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut slice = vec![0u8; (r.end() - r.start() + 1) as usize];
            file.seek(std::io::SeekFrom::Start(*r.start()))
                .await
                .map_err(|_| again())?;
            file.read_exact(&mut slice).await.map_err(|_| again())?;
            Ok(responses::immutable_part(
                slice.into(),
                r,
                len,
                content_type,
            ))
        }
    }
}

/// The I-frame of segment `n` of video rendition `r` (an I-frame
/// playlist's resource): the segment made as for any request, then its
/// first picture cut out of its bytes ([`crate::container::iframe`]).
///
/// # Errors
/// As a segment request; 500 `session_failed` when the segment holds no
/// picture.
async fn iframe(
    state: &AppState,
    session: &Session,
    player: u32,
    r: usize,
    n: usize,
) -> Result<Response, ApiError> {
    let iframe_player = session.iframe_player(player, r);
    let path = match made_segment(state, session, iframe_player, r, n).await? {
        SegmentOutcome::Ready(path) => path,
        SegmentOutcome::Missing => {
            return Err(ApiError::NotFound(format!(
                "no segment {n} in this rendition"
            )))
        }
        other => return Err(other.into()),
    };
    let again = || ApiError::not_ready(format!("segment {n} is being made again"));
    let bytes = match session
        .title
        .store()
        .read(&path)
        .await
        .map_err(|_| again())?
    {
        SegmentBytes::Memory(bytes) => bytes.to_vec(),
        SegmentBytes::File(mut file, _) => {
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut file, &mut bytes)
                .await
                .map_err(|_| again())?;
            bytes
        }
    };
    let (cut, content_type) = match session.title.renditions[r].packaging {
        Packaging::Ts => (ts_iframe(&bytes), SEGMENT_TYPE),
        Packaging::Fmp4 => (fmp4_iframe(&bytes), FMP4_TYPE),
    };
    let cut =
        cut.ok_or_else(|| ApiError::SessionFailed(format!("segment {n} holds no picture")))?;
    Ok(responses::immutable_bytes(cut.into(), content_type))
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
    let read = |path: PathBuf| async move { tokio::fs::read(&path).await };
    let bytes = match read(path.clone()).await {
        Ok(b) => b,
        Err(_) => {
            let n = title
                .playheads(session.id)
                .into_iter()
                .min()
                .unwrap_or(session.start);
            if let o @ (SegmentOutcome::Failed(_) | SegmentOutcome::AtCapacity(_)) =
                made_segment(state, session, session.player_for(player, r), r, n).await?
            {
                return Err(o.into());
            }
            read(path)
                .await
                .map_err(|_| ApiError::not_ready("the init segment is not ready yet"))?
        }
    };
    Ok(responses::immutable_bytes(bytes.into(), FMP4_TYPE))
}

/// Segment `n` of rendition `r` as `player` of `session` asks for it: from
/// the store, or made by a producer and waited for (`--segment-wait`).
///
/// # Errors
/// 503 `at_capacity` when `--max-waiting-requests` requests wait already.
async fn made_segment(
    state: &AppState,
    session: &Session,
    player: Player,
    r: usize,
    n: usize,
) -> Result<SegmentOutcome, ApiError> {
    let _permit = waiting_permit(state)?;
    Ok(state
        .sessions
        .supervisor()
        .segment(&session.title, player, r, n, *state.http.segment_wait)
        .await)
}

/// A permit to wait for a segment being made.
///
/// # Errors
/// 503 `at_capacity` with `Retry-After` when `--max-waiting-requests`
/// requests are waiting already.
fn waiting_permit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state
        .segment_waiters
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            crate::supervisor::AtCapacity::Waiting {
                limit: state.http.max_waiting_requests,
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
        .subtitle_segment(&session.title, sub, n, *state.http.segment_wait)
        .await
        .map_err(|o| match o {
            SegmentOutcome::Missing => {
                ApiError::NotFound(format!("no subtitle segment {n} in this item"))
            }
            other => other.into(),
        })?;
    Ok(responses::vtt(text))
}
