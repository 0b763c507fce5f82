//! The HTTP API: a thin edge over the domain. Every route is one function
//! (in its group's file, with a `///` line naming its method and path),
//! mounted here; handlers parse the request, call the library, the
//! sessions or the supervisor, and turn the answer or the error into a
//! response. One error type ([`ApiError`]) decides every status and JSON
//! body.
//!
//! | route | group |
//! |---|---|
//! | `GET /healthz` | [`health`]: liveness, no auth |
//! | `GET /api/v1/media` | [`library`]: the library, in pages |
//! | `POST /api/v1/library/scan` | [`library`]: rescan a folder now (admins) |
//! | `GET /api/v1/media/{id}` | [`media`]: one item, its decision for `?profile=` |
//! | `GET /api/v1/media/{id}/subtitles/{index}.vtt` | [`media`]: a whole text subtitle track |
//! | `GET /api/v1/media/{id}/thumbnail?t=` | [`thumbnails`]: a poster frame (JPEG) |
//! | `GET /api/v1/media/{id}/thumbnails.vtt`, `.../thumbnails/sheet_N.jpg` | [`thumbnails`]: the WebVTT thumbnails track and its sheets |
//! | `GET\|HEAD /api/v1/stream/{id}` | [`media`]: direct play (Range) or 302 to HLS |
//! | `POST /api/v1/hls/start`, `POST /api/v1/hls/preload/{id}` | [`sessions`]: start or reuse a session |
//! | `GET /api/v1/hls/{sid}/master.m3u8` | [`sessions`]: the master playlist by session id |
//! | `DELETE /api/v1/hls/{sid}`, `GET /api/v1/sessions` | [`sessions`]: stop, list |
//! | `GET /api/v1/hls/media/{id}/master.m3u8?token=` | [`renditions`]: the master playlist at its signed URL |
//! | `GET /api/v1/hls/media/{id}/{rendition}/{file}?token=` | [`renditions`]: media and I-frame playlists, init segment, segments, I-frames; `thumbs/` the image playlist, WebVTT track and sheets ([`thumbnails`]) |
//! | `GET /api/v1/hls/authorize` | [`renditions`]: whether `X-Original-URI` carries a good playback token |
//! | `GET\|PUT /api/v1/progress/{id}` | [`progress`]: the caller's position |
//! | `GET /api/v1/admin/streaming-stats`, `GET /metrics` | [`admin`]: statistics |
//! | `GET /`, `GET /static/...` | [`web`]: the web page |
//! | `OPTIONS *` with `--cors-origin` | [`cors`]: preflights; every answer gains CORS headers |
//!
//! Shared pieces: [`filters`] (state, auth, query, body), [`request`]
//! (the item and what a request asks to play), [`profile`], [`urls`]
//! (signed URLs and playback tokens), [`responses`], [`range`], [`error`].

mod admin;
pub mod cors;
mod error;
mod filters;
mod health;
mod library;
mod media;
mod profile;
mod progress;
pub mod range;
mod renditions;
mod request;
mod responses;
mod server;
mod sessions;
mod thumbnails;
mod urls;
mod web;

pub use error::{recover, ApiError};
pub use filters::Principal;
pub use profile::PROFILE_HEADER;
pub use server::serve;

use crate::app::AppState;
use std::sync::Arc;
use warp::{Filter, Reply};

/// Every route, with rejections turned into JSON errors, CORS where it is
/// configured, `X-Hlsd-Node` on every answer, and errors counted.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let auth = filters::auth(state.clone());
    let s = || state.clone();
    let api = health::healthz(s())
        .or(library::list(s(), auth.clone()))
        .unify()
        .or(library::scan(s(), auth.clone()))
        .unify()
        .or(media::item(s(), auth.clone()))
        .unify()
        .or(media::subtitles(s(), auth.clone()))
        .unify()
        .or(thumbnails::poster(s(), auth.clone()))
        .unify()
        .or(thumbnails::vtt(s(), auth.clone()))
        .unify()
        .or(thumbnails::sheet(s(), auth.clone()))
        .unify()
        .or(media::stream(s(), auth.clone()))
        .unify()
        .or(sessions::start(s(), auth.clone()))
        .unify()
        .or(sessions::preload(s(), auth.clone()))
        .unify()
        .or(sessions::master(s(), auth.clone()))
        .unify()
        .or(renditions::signed_master(s()))
        .unify()
        .or(renditions::rendition_file(s()))
        .unify()
        .or(renditions::authorize(s()))
        .unify()
        .or(sessions::stop(s(), auth.clone()))
        .unify()
        .or(sessions::list(s(), auth.clone()))
        .unify()
        .or(progress::put(s(), auth.clone()))
        .unify()
        .or(progress::get(s(), auth.clone()))
        .unify()
        .or(admin::streaming_stats(s(), auth.clone()))
        .unify()
        .or(admin::metrics(s(), auth))
        .unify()
        .or(web::page(&state))
        .unify()
        .recover(recover)
        .unify()
        .boxed();
    let counted = state.stats.clone();
    let node = warp::http::HeaderValue::from_str(&state.http.node_name)
        .unwrap_or_else(|_| warp::http::HeaderValue::from_static("hlsd"));
    // Boxing made the error type a Rejection again; none can occur.
    cors::wrap(
        api,
        cors::CorsOrigins::from_config(&state.http.cors_origins),
    )
    .recover(recover)
    .unify()
    .with(warp::reply::with::header("x-hlsd-node", node))
    .with(warp::log::custom(move |info| {
        let status = info.status().as_u16();
        if status >= 400 {
            counted.error(&format!("http_{status}"));
        }
    }))
    .with(warp::trace::request())
}
