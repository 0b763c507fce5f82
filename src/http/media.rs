//! One item, its whole-file subtitles, and the one entry point for
//! playback: `GET /api/v1/stream/{id}` answers with the file's bytes
//! (direct play, with HTTP Range) or a 302 to the caller's HLS session.

use super::error::ApiError;
use super::filters::{query_value, raw_query, respond, with_state, Principal, Route};
use super::range;
use super::request;
use super::responses::{self, media_type_of, BODY_CHUNK_BYTES};
use super::urls::master_url;
use crate::app::AppState;
use crate::library::{MediaItem, Playback, SubtitleKind};
use crate::profile::ClientProfile;
use crate::session::{hls_playback, OpenAs};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// `GET /api/v1/media/{id}`: one item, with its decision for the profile
/// the request names (`?profile=`, `X-Hlsd-Profile`), within the request's
/// `max_bitrate` and the user's limit.
pub fn item(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "media" / String)
        .and(warp::get())
        .and(auth)
        .and(super::profile::requested())
        .and(with_state(state))
        .then(
            |id: String, p: Principal, profile: ClientProfile, state: Arc<AppState>| async move {
                let profile = request::for_user(&state, &p.user, profile);
                respond(
                    request::media(&state, &id)
                        .await
                        .map(|item| warp::reply::json(&item_for(&item, &profile)).into_response()),
                )
            },
        )
        .boxed()
}

/// `GET|HEAD /api/v1/stream/{id}`: direct play (Range) or a 302 to the
/// caller's HLS session, for the profile and tracks the query names.
pub fn stream(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "stream" / String)
        .and(warp::get().or(warp::head()).unify())
        .and(auth)
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(with_state(state))
        .then(stream_handler)
        .map(respond)
        .boxed()
}

/// `GET /api/v1/media/{id}/subtitles/{index}.vtt`: every cue of a text
/// subtitle track as one WebVTT file, for a `<track>` beside a direct play.
pub fn subtitles(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "media" / String / "subtitles" / String)
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .then(
            |id: String, file: String, _: Principal, state: Arc<AppState>| async move {
                respond(whole_file_vtt(&state, &id, &file).await)
            },
        )
        .boxed()
}

/// `item` as `GET /api/v1/media/{id}` shows it for a client with
/// `profile`: its playback, reasons and packaging for that profile.
fn item_for(item: &MediaItem, profile: &ClientProfile) -> serde_json::Value {
    let d = item.decision_for(profile);
    let mut json = serde_json::to_value(item).unwrap_or_default();
    if let Some(o) = json.as_object_mut() {
        o.insert("profile".into(), profile.name.clone().into());
        o.insert("playable".into(), d.playback.is_some().into());
        o.insert(
            "playback".into(),
            serde_json::to_value(d.playback).unwrap_or_default(),
        );
        o.insert("reasons".into(), d.reasons.clone().into());
        o.insert(
            "packaging".into(),
            d.playback.map(|_| d.packaging.as_str()).into(),
        );
    }
    json
}

async fn stream_handler(
    id: String,
    p: Principal,
    method: Method,
    headers: HeaderMap,
    query: String,
    state: Arc<AppState>,
) -> Result<Response, ApiError> {
    let force_hls = match query_value(&query, "mode").as_deref() {
        None | Some("auto") => false,
        Some("hls") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "mode must be auto or hls, not {other:?}"
            )))
        }
    };
    let mut play = request::from_request(&query, &headers)?;
    play.profile = request::for_user(&state, &p.user, play.profile);
    let item = request::media(&state, &id).await?;
    let decision = item.decision_for(&play.profile);
    hls_playback(&item, &decision)?;
    // Another audio track than the default, or burned subtitles, need HLS.
    let wants_other = play.audio.is_some() || play.burn.is_some();
    if decision.playback == Some(Playback::DirectPlay) && !force_hls && !wants_other {
        return direct_play(&item, &method, &headers).await;
    }
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
    let mut res = Response::new(Default::default());
    *res.status_mut() = StatusCode::FOUND;
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&master_url(&state, &session)).map_err(|_| ApiError::Internal)?,
    );
    Ok(res)
}

/// Every cue of text subtitle track `file` (`{index}.vtt`) of item `id`.
async fn whole_file_vtt(state: &AppState, id: &str, file: &str) -> Result<Response, ApiError> {
    let item = request::media(state, id).await?;
    let not_found = || ApiError::NotFound(format!("no text subtitle track {file} in media {id}"));
    let index: usize = file
        .strip_suffix(".vtt")
        .and_then(|i| i.parse().ok())
        .ok_or_else(not_found)?;
    item.subtitles
        .get(index)
        .filter(|s| s.kind == SubtitleKind::Text)
        .ok_or_else(not_found)?;
    tracing::debug!(media_id = %item.id, track = index, "whole-file subtitles");
    let cues = state
        .sessions
        .supervisor()
        .whole_file_cues(item.clone(), index)
        .await
        .map_err(|e| {
            ApiError::SessionFailed(format!("subtitle track {index} cannot be read: {e}"))
        })?;
    Ok(responses::vtt(crate::subtitle::document(&cues)))
}

/// Serves the file's bytes: 200, 206 for one range, 416 outside the file.
async fn direct_play(
    item: &MediaItem,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let gone = || ApiError::MediaGone(format!("{} is no longer on disk", item.path));
    // The file opened is the one that was probed (device, inode and size
    // of the open file), whatever its path points to now: a file swapped
    // for a symlink to something else since serves nothing.
    let mut file = tokio::fs::File::open(&item.abs_path)
        .await
        .map_err(|_| gone())?;
    let meta = file.metadata().await.map_err(|_| gone())?;
    let now = crate::library::FileStamp::of(&meta);
    if (now.device, now.inode, now.size_bytes)
        != (item.stamp.device, item.stamp.inode, item.stamp.size_bytes)
    {
        return Err(ApiError::MediaGone(format!(
            "{} changed since it was probed; ask again",
            item.path
        )));
    }
    let size = meta.len();
    let modified = meta.modified().unwrap_or(item.stamp.modified());
    let etag = range::etag(size, modified);
    let last_modified = httpdate::fmt_http_date(modified);
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let outcome = range::evaluate(
        header_str(header::RANGE),
        header_str(header::IF_RANGE),
        &etag,
        &last_modified,
        size,
    );
    let (status, start, len) = match outcome {
        range::RangeOutcome::Full => (StatusCode::OK, 0, size),
        range::RangeOutcome::Partial(r) => (
            StatusCode::PARTIAL_CONTENT,
            *r.start(),
            r.end() - r.start() + 1,
        ),
        range::RangeOutcome::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable(size)),
    };

    let mut res = if method == Method::HEAD {
        Response::new(Default::default())
    } else {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|_| ApiError::Internal)?;
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(len), BODY_CHUNK_BYTES);
        warp::reply::stream(body).into_response()
    };
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&media_type_of(&item.abs_path)).map_err(|_| ApiError::Internal)?,
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(|_| ApiError::Internal)?,
    );
    h.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&last_modified).map_err(|_| ApiError::Internal)?,
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", start, start + len - 1))
                .map_err(|_| ApiError::Internal)?,
        );
    }
    Ok(res)
}
