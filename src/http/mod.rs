//! The HTTP API: one filter per route, handlers by route group, and the
//! JSON error edge.
//!
//! | route | handler |
//! |---|---|
//! | `GET /healthz` | liveness, no auth |
//! | `GET /api/v1/media` | [`library`]: the library, in pages |
//! | `POST /api/v1/library/scan` | [`library`]: rescan a folder now (admins) |
//! | `GET /api/v1/media/{id}` | [`media`]: one item, its decision for `?profile=` ([`profile`]) |
//! | `GET\|HEAD /api/v1/stream/{id}` | [`media`]: direct play (Range) or 302 to HLS, for `?profile=` |
//! | `POST /api/v1/hls/start`, `POST /api/v1/hls/preload/{id}` | [`hls`]: start or reuse a session |
//! | `GET /api/v1/hls/media/{id}/master.m3u8?token=` | [`renditions`]: master playlist at its signed URL (what `start` and `stream` hand out) |
//! | `GET /api/v1/hls/{sid}/master.m3u8` | [`hls`]: the same, by session id (account token) |
//! | `GET /api/v1/hls/media/{id}/{rendition}/playlist.m3u8?token=` | [`renditions`]: media playlist (playback token) |
//! | `GET /api/v1/hls/media/{id}/{rendition}/segment_N.ts\|.m4s?token=` | [`renditions`]: segment bytes (playback token) |
//! | `GET /api/v1/hls/media/{id}/{rendition}/init.mp4?token=` | [`renditions`]: fMP4 init segment (playback token) |
//! | `GET /api/v1/hls/authorize` | [`renditions`]: whether `X-Original-URI` carries a good playback token (nginx `auth_request`) |
//! | `DELETE /api/v1/hls/{sid}` | [`hls`]: stop a session |
//! | `GET /api/v1/sessions` | [`hls`]: the caller's sessions |
//! | `GET /api/v1/admin/streaming-stats`, `GET /metrics` | [`admin`]: statistics |
//! | `GET /`, `GET /static/...` | [`web`]: the web page |
//! | `OPTIONS *` with `--cors-origin` | [`cors`]: preflights; every answer gains CORS headers |

mod admin;
pub mod cors;
mod error;
mod hls;
mod library;
mod media;
mod profile;
mod progress;
pub mod range;
mod renditions;
mod tracks;
mod web;

pub use error::{recover, ApiError};

use crate::AppState;
use std::sync::Arc;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// Who is asking, and how they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user the token belongs to.
    pub user: String,
}

/// `Content-Type` of playlists (RFC 8216 §4).
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of MPEG-TS segments (RFC 8216 §3.2).
const SEGMENT_TYPE: &str = "video/mp2t";
/// `Content-Type` of fragmented-MP4 init and media segments (RFC 8216
/// §3.3; ISO/IEC 14496-12's `video/mp4`, which players take for audio
/// too).
const FMP4_TYPE: &str = "video/mp4";
/// WebVTT's media type (W3C WebVTT §7.1).
const VTT_TYPE: &str = "text/vtt; charset=utf-8";
/// Seconds a client is told to wait when a playlist or segment is not ready.
const RETRY_AFTER_S: u32 = 2;
/// Bytes read from a file per chunk of a streamed body (a segment, a
/// direct play): each read is a trip through tokio's blocking pool, so a
/// small chunk (`ReaderStream`'s 4 KiB default) made serving a 1.1 MB
/// segment 7× slower; 256 KiB is 5 trips for it, and 16 MB for 64
/// bodies in flight.
const BODY_CHUNK_BYTES: usize = 256 * 1024;

fn with_state(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The raw query string, or empty.
fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// A small body (at most `limit` bytes, with a `Content-Length`), or none
/// at all (a POST with no body and no `Content-Length`, as some clients
/// send it, is an empty body, not a 411).
fn optional_body(limit: u64) -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
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

fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Authenticates by `Authorization: Bearer TOKEN` or `?api_key=TOKEN`;
/// rejects with 401 otherwise.
fn auth(state: Arc<AppState>) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
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
fn respond(result: Result<Response, ApiError>) -> Response {
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

/// Every route, with rejections turned into JSON errors. Each route is
/// boxed: the nested filter types are otherwise too deep for the compiler's
/// recursion limit in release builds.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let auth = auth(state.clone());
    let counted = state.stats.clone();
    let node = warp::http::HeaderValue::from_str(&state.config.node_name)
        .unwrap_or_else(|_| warp::http::HeaderValue::from_static("hlsd"));

    // GET /healthz: up, and how far the library is.
    let health_state = state.clone();
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(move || {
            let f = health_state.library.figures();
            warp::reply::json(&serde_json::json!({
                "status": "ok",
                "library": {
                    "items": f.items,
                    "pending": f.pending,
                    "settling": f.settling,
                    "reconciled": f.reconciled,
                    "watch": f.watch,
                },
            }))
            .into_response()
        })
        .boxed();

    let api = library::routes(state.clone(), auth.clone())
        .or(media::routes(state.clone(), auth.clone()))
        .unify()
        .or(hls::routes(state.clone(), auth.clone()))
        .unify()
        .or(progress::routes(state.clone(), auth.clone()))
        .unify()
        .or(admin::routes(state.clone(), auth))
        .unify()
        .or(web::routes(&state))
        .unify()
        .or(healthz)
        .unify()
        .recover(recover)
        .unify()
        .boxed();
    // Boxing made the error type a Rejection again; none can occur.
    cors::wrap(
        api,
        cors::CorsOrigins::from_config(&state.config.cors_origins),
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

/// A boxed route, as every group returns them.
type Route = warp::filters::BoxedFilter<(Response,)>;

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
