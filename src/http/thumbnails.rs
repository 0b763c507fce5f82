//! Pictures of a title: its poster frame for a library page, and its
//! thumbnail sheets for a seek bar with the WebVTT track that places
//! them, under the account API (any item, direct play included) and
//! beside the renditions of a playback URL (`thumbs/`, with the image
//! playlist its master playlist lists).

use super::error::ApiError;
use super::filters::{query_value, raw_query, respond, with_state, Principal, Route};
use super::request;
use super::responses;
use crate::app::AppState;
use crate::library::MediaItem;
use crate::session::{IMAGE_PLAYLIST, THUMBNAILS_VTT};
use crate::thumbnails::{sheet_index, sheet_name};
use std::sync::Arc;
use warp::http::{header, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Rejection};

/// `Content-Type` of a JPEG.
const JPEG: &str = "image/jpeg";

/// `GET /api/v1/media/{id}/thumbnail?t=SECONDS`: the key frame nearest
/// `t` (default a tenth in, at most 5 minutes), 320 pixels wide, as a
/// JPEG: a library page's poster frame. `X-Hlsd-Picture-Time` says which
/// key frame's time it is, seconds.
pub fn poster(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "media" / String / "thumbnail")
        .and(warp::get())
        .and(auth)
        .and(raw_query())
        .and(with_state(state))
        .then(
            |id: String, _: Principal, query: String, state: Arc<AppState>| async move {
                respond(poster_of(&state, &id, &query).await)
            },
        )
        .boxed()
}

async fn poster_of(state: &AppState, id: &str, query: &str) -> Result<Response, ApiError> {
    let at = match query_value(query, "t") {
        None => None,
        Some(raw) => Some(
            raw.trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite() && *t >= 0.0 && *t < 1e9)
                .map(std::time::Duration::from_secs_f64)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("t must be seconds from 0, not {raw:?}"))
                })?,
        ),
    };
    let item = request::media(state, id).await?;
    let at = crate::thumbnails::Thumbnails::time_for(&item, at);
    let picture = state.thumbnails.poster(&item, at).await?;
    let mut r = Response::new(picture.jpeg.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JPEG));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", picture.at.as_secs_f64())) {
        h.insert("x-hlsd-picture-time", v);
    }
    Ok(r)
}

/// `GET /api/v1/media/{id}/thumbnails.vtt`: the WebVTT thumbnails track
/// of any item with video, each cue `thumbnails/sheet_N.jpg#xywh=...`
/// (relative: a page adds its `api_key` to the sheet it shows).
pub fn vtt(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "media" / String / "thumbnails.vtt")
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .then(
            |id: String, _: Principal, state: Arc<AppState>| async move {
                respond(track(&state, &id, "thumbnails/", "").await)
            },
        )
        .boxed()
}

/// `GET /api/v1/media/{id}/thumbnails/sheet_N.jpg`: thumbnail sheet N of
/// any item with video, made if it was not (waiting `--segment-wait`).
pub fn sheet(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "media" / String / "thumbnails" / String)
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .then(
            |id: String, file: String, _: Principal, state: Arc<AppState>| async move {
                let item = request::media(&state, &id).await;
                respond(match item {
                    Ok(item) => sheet_file(&state, &item, &file).await,
                    Err(e) => Err(e),
                })
            },
        )
        .boxed()
}

/// `{media}/thumbs/{images.m3u8 | thumbnails.vtt | sheet_N.jpg}` of a
/// playback URL (its token checked by the caller): the image playlist,
/// the WebVTT track or a sheet, each URI in them followed by
/// `token_query`.
///
/// # Errors
/// 404 for any other file or with `--no-thumbnails`; as [`sheet_file`].
pub async fn beside_renditions(
    state: &AppState,
    item: &MediaItem,
    file: &str,
    token_query: &str,
) -> Result<Response, ApiError> {
    match file {
        IMAGE_PLAYLIST => {
            let layout = state.sheets.layout(item)?;
            Ok(responses::playlist(layout.image_playlist(|s| {
                format!("{}{token_query}", sheet_name(s))
            })))
        }
        THUMBNAILS_VTT => track(state, &item.id.to_string(), "", token_query).await,
        _ => sheet_file(state, item, file).await,
    }
}

/// The WebVTT thumbnails track of item `id`, each sheet's URI
/// `{prefix}sheet_N.jpg{query}`.
async fn track(
    state: &AppState,
    id: &str,
    prefix: &str,
    query: &str,
) -> Result<Response, ApiError> {
    let item = request::media(state, id).await?;
    let layout = state.sheets.layout(&item)?;
    Ok(responses::vtt(
        layout.webvtt(|s| format!("{prefix}{}{query}", sheet_name(s))),
    ))
}

/// Sheet `file` (`sheet_N.jpg`) of `item`, cacheable for good: its bytes
/// depend only on the file (its name in the store has the file's size
/// and time).
///
/// # Errors
/// 404 for another name or a sheet past the last; 503 with
/// `Retry-After` while it is made; 422 when the file gives none.
async fn sheet_file(state: &AppState, item: &MediaItem, file: &str) -> Result<Response, ApiError> {
    let n = sheet_index(file)
        .ok_or_else(|| ApiError::NotFound(format!("no {file} among the thumbnails")))?;
    let jpeg = state
        .sheets
        .sheet(item, n, *state.http.segment_wait)
        .await?;
    Ok(responses::immutable_bytes(jpeg, JPEG))
}
