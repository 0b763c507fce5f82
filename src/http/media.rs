//! One item, its whole-file subtitles, and the one entry point for playback:
//! `GET /api/v1/stream/{id}` answers with the file's bytes (direct play,
//! with HTTP Range) or a 302 to the caller's HLS session.

use super::{query_value, range, raw_query, respond, with_state, ApiError, Principal, Route};
use crate::library::{Decision, MediaItem, Playback, Unavailable};
use crate::profile::ClientProfile;
use crate::AppState;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use uuid::Uuid;
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// The library routes and `/api/v1/stream/{id}`.
pub(super) fn routes(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    // GET /api/v1/media/{id}
    let get = warp::path!("api" / "v1" / "media" / String)
        .and(warp::get())
        .and(auth.clone())
        .and(super::profile::requested())
        .and(with_state(state.clone()))
        .then(
            |id: String, _: Principal, profile: ClientProfile, state: Arc<AppState>| async move {
                respond(
                    current_media(&state, &id)
                        .await
                        .map(|item| warp::reply::json(&item_for(&item, &profile)).into_response()),
                )
            },
        );

    // GET|HEAD /api/v1/stream/{id}
    let stream = warp::path!("api" / "v1" / "stream" / String)
        .and(warp::get().or(warp::head()).unify())
        .and(auth.clone())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(with_state(state.clone()))
        .then(stream_handler)
        .map(respond);

    // GET /api/v1/media/{id}/subtitles/{index}.vtt
    let vtt = warp::path!("api" / "v1" / "media" / String / "subtitles" / String)
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .then(
            |id: String, file: String, _: Principal, state: Arc<AppState>| async move {
                whole_file_vtt(&state, &id, &file).await
            },
        )
        .map(respond);

    get.boxed()
        .or(vtt.boxed())
        .unify()
        .or(stream.boxed())
        .unify()
        .boxed()
}

/// The library item `id` as its file is now: probed first if it was not
/// yet, or if its file changed since.
///
/// # Errors
/// 404 `not_found` for an unknown or malformed id, 404 `media_gone` for a
/// file deleted since it was listed.
pub(super) async fn current_media(state: &AppState, id: &str) -> Result<Arc<MediaItem>, ApiError> {
    let uuid = Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("no media {id}")))?;
    state.library.current(&uuid).await.map_err(|e| match e {
        Unavailable::NotFound(_) => ApiError::NotFound(e.to_string()),
        Unavailable::Gone(_) => ApiError::MediaGone(e.to_string()),
    })
}

/// The HLS mode of `decision` (made for `item`): its own, or
/// remux/transcode for a direct-play file that is asked for as HLS.
///
/// # Errors
/// 422 for an unplayable item, with its reasons.
pub(super) fn hls_mode(item: &MediaItem, decision: &Decision) -> Result<Playback, ApiError> {
    match decision.playback {
        None => Err(ApiError::Unplayable(format!(
            "{} cannot be played: {}",
            item.path,
            decision.reasons.join(", ")
        ))),
        Some(Playback::DirectPlay) => Ok(decision.hls_mode()),
        Some(mode) => Ok(mode),
    }
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
    let profile = super::profile::from_request(&query, &headers)?;
    let item = current_media(&state, &id).await?;
    let decision = item.decision_for(&profile);
    hls_mode(&item, &decision)?;
    let tracks = super::tracks::TrackRequest::from_query(&query)?;
    // Another audio track than the default, or burned subtitles, need HLS.
    let wants_other =
        query_value(&query, "audio").is_some() || query_value(&query, "burn").is_some();
    if decision.playback == Some(Playback::DirectPlay) && !force_hls && !wants_other {
        return direct_play(&item, &method, &headers).await;
    }
    let session =
        super::tracks::start_session(&state, &p, item, &tracks, false, &profile, None).await?;
    let mut res = Response::new(Default::default());
    *res.status_mut() = StatusCode::FOUND;
    let location = super::hls::master_url(&state, &session);
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|_| ApiError::Internal)?,
    );
    Ok(res)
}

/// `GET /api/v1/media/{id}/subtitles/{index}.vtt`: every cue of text
/// subtitle track `index` as one WebVTT file, for a `<track>` element
/// beside a direct play.
async fn whole_file_vtt(state: &AppState, id: &str, file: &str) -> Result<Response, ApiError> {
    let item = current_media(state, id).await?;
    let not_found = || ApiError::NotFound(format!("no text subtitle track {file} in media {id}"));
    let index: usize = file
        .strip_suffix(".vtt")
        .and_then(|i| i.parse().ok())
        .ok_or_else(not_found)?;
    let track = item
        .subtitles
        .get(index)
        .filter(|s| s.kind == crate::library::SubtitleKind::Text)
        .ok_or_else(not_found)?;
    tracing::debug!(media_id = %item.id, track = track.index, "whole-file subtitles");
    let cues = crate::supervisor::whole_file_cues(item.clone(), index, state.config.index_timeout)
        .await
        .map_err(|e| {
            ApiError::SessionFailed(format!("subtitle track {index} cannot be read: {e}"))
        })?;
    let mut res = Response::new(crate::subtitle::document(&cues).into());
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::VTT_TYPE),
    );
    Ok(res)
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
        let body =
            tokio_util::io::ReaderStream::with_capacity(file.take(len), super::BODY_CHUNK_BYTES);
        warp::reply::stream(body).into_response()
    };
    *res.status_mut() = status;
    let h = res.headers_mut();
    let mime = mime_guess::from_path(&item.abs_path).first_or_octet_stream();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime.essence_str()).map_err(|_| ApiError::Internal)?,
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
