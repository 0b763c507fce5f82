//! The HTTP API: filters (one per route), handlers, and the JSON error edge.
//!
//! | route | handler |
//! |---|---|
//! | `GET /healthz` | liveness, no auth |
//! | `GET /api/v1/media`, `GET /api/v1/media/{id}` | the library |
//! | `GET\|HEAD /api/v1/stream/{id}` | direct play (Range) or 302 to HLS |
//! | `POST /api/v1/hls/start` | start or reuse a session |
//! | `GET /api/v1/hls/{sid}/master.m3u8` | master playlist |
//! | `GET /api/v1/hls/{sid}/{quality}/playlist.m3u8` | media playlist |
//! | `GET /api/v1/hls/{sid}/{quality}/{segment}` | segment bytes |
//! | `DELETE /api/v1/hls/{sid}` | stop a session |
//! | `GET /api/v1/sessions` | the caller's sessions |
//! | `POST /api/v1/hls/preload/{id}` | start a session in the background |
//! | `GET /api/v1/admin/streaming-stats` | statistics (admins) |
//! | `GET /metrics` | statistics, Prometheus text |
//! | `GET /`, `GET /static/...` | the web page |

mod error;
pub mod range;

pub use error::{recover, ApiError};

use crate::hls;
use crate::library::{MediaItem, Playback};
use crate::pipeline::segment_index;
use crate::session::{SegmentOutcome, Session, SessionState};
use crate::AppState;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use uuid::Uuid;
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// Who is asking, and how they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user the token belongs to.
    pub user: String,
    /// The token, when it came as `?api_key=` (playlists then carry it on).
    pub api_key: Option<String>,
}

/// `Content-Type` of playlists (RFC 8216 §4).
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of MPEG-TS segments (RFC 8216 §3.2).
const SEGMENT_TYPE: &str = "video/mp2t";
/// Seconds a client is told to wait when a playlist or segment is not ready.
const RETRY_AFTER_S: u32 = 2;

fn with_state(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || state.clone())
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
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(move |authorization: Option<String>, query: String| {
            let state = state.clone();
            async move {
                let bearer = authorization
                    .as_deref()
                    .and_then(|h| h.strip_prefix("Bearer ").map(str::trim));
                let api_key = query_value(&query, "api_key");
                let principal = match (bearer, api_key) {
                    (Some(token), _) => state.user_for(token).map(|user| Principal {
                        user,
                        api_key: None,
                    }),
                    (None, Some(token)) => state.user_for(&token).map(|user| Principal {
                        user,
                        api_key: Some(token),
                    }),
                    (None, None) => None,
                };
                principal.ok_or_else(|| warp::reject::custom(ApiError::Unauthorized))
            }
        })
}

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

    // GET /healthz
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());

    // GET /api/v1/media
    let list_media = warp::path!("api" / "v1" / "media")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .map(|_: Principal, state: Arc<AppState>| {
            warp::reply::json(&state.library.items()).into_response()
        });

    // GET /api/v1/media/{id}
    let get_media = warp::path!("api" / "v1" / "media" / String)
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .map(|id: String, _: Principal, state: Arc<AppState>| {
            respond(find_media(&state, &id).map(|item| warp::reply::json(item).into_response()))
        });

    // GET|HEAD /api/v1/stream/{id}
    let stream = warp::path!("api" / "v1" / "stream" / String)
        .and(warp::get().or(warp::head()).unify())
        .and(auth.clone())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with_state(state.clone()))
        .then(stream_handler)
        .map(respond);

    // POST /api/v1/hls/start
    let start = warp::path!("api" / "v1" / "hls" / "start")
        .and(warp::post())
        .and(auth.clone())
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .and(with_state(state.clone()))
        .map(|p: Principal, body: Bytes, state: Arc<AppState>| {
            // Parsed here rather than by warp::body::json, whose rejection
            // would lose to the other routes' 405 when the JSON is bad.
            let request = serde_json::from_slice::<StartRequest>(&body)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")));
            respond(request.and_then(|r| start_handler(&state, &p, r)))
        });

    // GET /api/v1/hls/{sid}/master.m3u8
    let master = warp::path!("api" / "v1" / "hls" / String / "master.m3u8")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .map(|sid: String, p: Principal, state: Arc<AppState>| {
            respond(master_handler(&state, &p, &sid))
        });

    // GET /api/v1/hls/{sid}/{quality}/playlist.m3u8
    let media_playlist = warp::path!("api" / "v1" / "hls" / String / String / "playlist.m3u8")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .then(media_playlist_handler)
        .map(respond);

    // GET /api/v1/hls/{sid}/{quality}/{segment}
    let segment = warp::path!("api" / "v1" / "hls" / String / String / String)
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .then(segment_handler)
        .map(respond);

    // DELETE /api/v1/hls/{sid}
    let delete = warp::path!("api" / "v1" / "hls" / String)
        .and(warp::delete())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .then(
            |sid: String, p: Principal, state: Arc<AppState>| async move {
                let id = parse_session_id(&sid)?;
                if state.sessions.stop(&id, &p.user).await {
                    Ok(
                        warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT)
                            .into_response(),
                    )
                } else {
                    Err(ApiError::NotFound(format!("no session {sid}")))
                }
            },
        )
        .map(respond);

    // POST /api/v1/hls/preload/{media_id}
    let preload = warp::path!("api" / "v1" / "hls" / "preload" / String)
        .and(warp::post())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .map(|id: String, p: Principal, state: Arc<AppState>| {
            respond(preload_handler(&state, &p, &id))
        });

    // GET /api/v1/admin/streaming-stats
    let admin_stats = warp::path!("api" / "v1" / "admin" / "streaming-stats")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state.clone()))
        .map(|p: Principal, state: Arc<AppState>| {
            respond(require_admin(&state, &p).map(|_| {
                warp::reply::json(&state.stats.report(&state.sessions.snapshot())).into_response()
            }))
        });

    // GET /metrics (Prometheus text; a token unless --metrics-public)
    let metrics_state = state.clone();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(
            warp::any()
                .and_then(move || {
                    let state = metrics_state.clone();
                    async move {
                        if state.config.metrics_public {
                            Ok::<_, Rejection>(None)
                        } else {
                            Err(warp::reject::custom(ApiError::Unauthorized))
                        }
                    }
                })
                .or(auth.clone().map(Some))
                .unify(),
        )
        .and(with_state(state.clone()))
        .map(|p: Option<Principal>, state: Arc<AppState>| {
            let allowed = match &p {
                None => Ok(()),
                Some(p) => require_admin(&state, p),
            };
            respond(allowed.map(|_| {
                state.stats.set_active(&state.sessions.snapshot());
                let mut res = Response::new(state.stats.prometheus_text().into());
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                res
            }))
        });

    // GET / and GET /static/...: the web page (no token: it asks for one).
    let web_dir = state.config.web_dir.clone();
    let page = {
        let index = web_dir.as_ref().map(|d| d.join("index.html"));
        warp::path::end().and(warp::get()).and_then(move || {
            let index = index.clone();
            async move {
                match index {
                    Some(path) => match tokio::fs::read(&path).await {
                        Ok(bytes) => {
                            let mut res = Response::new(bytes.into());
                            res.headers_mut().insert(
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("text/html; charset=utf-8"),
                            );
                            Ok(res)
                        }
                        Err(_) => Err(warp::reject::not_found()),
                    },
                    None => Err(warp::reject::not_found()),
                }
            }
        })
    };
    let static_files = warp::path("static").and(match web_dir {
        Some(dir) => warp::fs::dir(dir)
            .map(|f: warp::fs::File| f.into_response())
            .boxed(),
        None => warp::any()
            .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
            .boxed(),
    });

    // GET /api/v1/sessions
    let counted = state.stats.clone();
    let sessions = warp::path!("api" / "v1" / "sessions")
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .map(|p: Principal, state: Arc<AppState>| {
            let list: Vec<SessionView> = state
                .sessions
                .for_user(&p.user)
                .iter()
                .map(|s| SessionView::of(s))
                .collect();
            warp::reply::json(&list).into_response()
        });

    healthz
        .boxed()
        .or(list_media.boxed())
        .unify()
        .or(get_media.boxed())
        .unify()
        .or(stream.boxed())
        .unify()
        .or(start.boxed())
        .unify()
        .or(master.boxed())
        .unify()
        .or(media_playlist.boxed())
        .unify()
        .or(segment.boxed())
        .unify()
        .or(delete.boxed())
        .unify()
        .or(sessions.boxed())
        .unify()
        .or(preload.boxed())
        .unify()
        .or(admin_stats.boxed())
        .unify()
        .or(metrics.boxed())
        .unify()
        .or(page.boxed())
        .unify()
        .or(static_files.boxed())
        .unify()
        .recover(recover)
        .unify()
        .with(warp::log::custom(move |info| {
            let status = info.status().as_u16();
            if status >= 400 {
                counted.error(&format!("http_{status}"));
            }
        }))
        .with(warp::trace::request())
}

fn find_media<'a>(state: &'a AppState, id: &str) -> Result<&'a MediaItem, ApiError> {
    Uuid::parse_str(id)
        .ok()
        .and_then(|id| state.library.get(&id))
        .ok_or_else(|| ApiError::NotFound(format!("no media {id}")))
}

fn parse_session_id(sid: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(sid).map_err(|_| ApiError::NotFound(format!("no session {sid}")))
}

fn find_session(state: &AppState, p: &Principal, sid: &str) -> Result<Arc<Session>, ApiError> {
    let id = parse_session_id(sid)?;
    state
        .sessions
        .get(&id, &p.user)
        .ok_or_else(|| ApiError::NotFound(format!("no session {sid}")))
}

/// The HLS mode for an item: its own, or remux/transcode for a direct-play
/// file that is asked for as HLS.
fn hls_mode(item: &MediaItem) -> Result<Playback, ApiError> {
    match item.playback {
        None => Err(ApiError::Unplayable(format!(
            "{} cannot be played: {}",
            item.path,
            item.reasons.join(", ")
        ))),
        Some(Playback::DirectPlay) => Ok(item.decision.hls_mode()),
        Some(mode) => Ok(mode),
    }
}

fn master_url(session: &Session, p: &Principal) -> String {
    format!(
        "/api/v1/hls/{}/master.m3u8{}",
        session.id,
        hls::key_query(p.api_key.as_deref())
    )
}

#[derive(Debug, Deserialize)]
struct StartRequest {
    media_id: String,
}

#[derive(Debug, Serialize)]
struct StartResponse {
    session_id: Uuid,
    mode: Playback,
    master_url: String,
}

fn start_handler(
    state: &Arc<AppState>,
    p: &Principal,
    body: StartRequest,
) -> Result<Response, ApiError> {
    let item = find_media(state, &body.media_id)?;
    let mode = hls_mode(item)?;
    let (session, _) = state
        .sessions
        .start(item, mode, &p.user, false)
        .map_err(|e| ApiError::AtCapacity(e.to_string()))?;
    Ok(warp::reply::json(&StartResponse {
        session_id: session.id,
        mode: session.mode,
        master_url: master_url(&session, p),
    })
    .into_response())
}

/// 403 unless `p` is an admin.
fn require_admin(state: &AppState, p: &Principal) -> Result<(), ApiError> {
    if state.is_admin(&p.user) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this needs an admin token (--admin)".into(),
        ))
    }
}

/// `POST /api/v1/hls/preload/{media_id}`: starts the caller's session in
/// the background so that a later play finds its first segment made.
fn preload_handler(state: &Arc<AppState>, p: &Principal, id: &str) -> Result<Response, ApiError> {
    let item = find_media(state, id)?;
    let mode = hls_mode(item)?;
    let json = |status: StatusCode, body: serde_json::Value| {
        warp::reply::with_status(warp::reply::json(&body), status).into_response()
    };
    if !state.config.preload {
        return Ok(json(
            StatusCode::OK,
            serde_json::json!({"status": "disabled"}),
        ));
    }
    if item.playback == Some(Playback::DirectPlay) {
        return Ok(json(
            StatusCode::OK,
            serde_json::json!({"status": "direct_play"}),
        ));
    }
    let (session, _) = state
        .sessions
        .start(item, mode, &p.user, true)
        .map_err(|e| ApiError::AtCapacity(e.to_string()))?;
    Ok(json(
        StatusCode::ACCEPTED,
        serde_json::json!({"status": "warming", "session_id": session.id}),
    ))
}

fn master_handler(state: &AppState, p: &Principal, sid: &str) -> Result<Response, ApiError> {
    let session = find_session(state, p, sid)?;
    session.touch();
    let status = session.status();
    if status.state == SessionState::Failed {
        return Err(ApiError::SessionFailed(
            status.error.unwrap_or_else(|| "the session failed".into()),
        ));
    }
    let body = hls::master_playlist(&session.variant, &hls::key_query(p.api_key.as_deref()));
    Ok(playlist_response(body))
}

fn playlist_response(body: String) -> Response {
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PLAYLIST_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

async fn media_playlist_handler(
    sid: String,
    quality: String,
    p: Principal,
    state: Arc<AppState>,
) -> Result<Response, ApiError> {
    let session = find_session(&state, &p, &sid)?;
    if quality != session.variant.quality {
        return Err(ApiError::NotFound(format!(
            "no quality {quality} in session {sid}"
        )));
    }
    session.touch();
    let query = hls::key_query(p.api_key.as_deref());
    if let Some(grid) = &session.grid {
        // Seekable: the whole timeline at once; segments are made on request.
        let status = session.status();
        if status.state == SessionState::Failed {
            return Err(ApiError::SessionFailed(
                status.error.unwrap_or_else(|| "the session failed".into()),
            ));
        }
        return Ok(playlist_response(hls::vod_playlist(grid, &query)));
    }
    let status = session
        .wait_for(state.config.playlist_wait, |s| {
            s.ready_count() > 0 || matches!(s.state, SessionState::Complete | SessionState::Failed)
        })
        .await;
    if status.state == SessionState::Failed {
        return Err(ApiError::SessionFailed(
            status.error.unwrap_or_else(|| "the session failed".into()),
        ));
    }
    let segments = status.ready_prefix();
    if segments.is_empty() && status.state != SessionState::Complete {
        return Err(ApiError::NotReady {
            message: "the first segment is not ready yet".into(),
            retry_after_s: RETRY_AFTER_S,
        });
    }
    let body = hls::media_playlist(&segments, status.state == SessionState::Complete, &query);
    Ok(playlist_response(body))
}

async fn segment_handler(
    sid: String,
    quality: String,
    name: String,
    p: Principal,
    state: Arc<AppState>,
) -> Result<Response, ApiError> {
    let session = find_session(&state, &p, &sid)?;
    let not_found = || ApiError::NotFound(format!("no segment {quality}/{name} in session {sid}"));
    if quality != session.variant.quality {
        return Err(not_found());
    }
    let index = segment_index(&name).ok_or_else(not_found)?;
    session.touch();
    // Only finished segments are served (a segment is written to a `.part`
    // file and renamed once closed); one that is coming is waited for.
    match session.segment(index, state.config.segment_wait).await {
        SegmentOutcome::Ready => {}
        SegmentOutcome::Missing => return Err(not_found()),
        SegmentOutcome::Failed(message) => return Err(ApiError::SessionFailed(message)),
        SegmentOutcome::NotYet => {
            return Err(ApiError::NotReady {
                message: format!("segment {index} is being made"),
                retry_after_s: RETRY_AFTER_S,
            })
        }
    }
    let bytes = tokio::fs::read(session.dir.join(crate::pipeline::segment_name(index)))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "finished segment unreadable");
            not_found()
        })?;
    let mut res = Response::new(Bytes::from(bytes).into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SEGMENT_TYPE));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(res)
}

async fn stream_handler(
    id: String,
    p: Principal,
    method: Method,
    headers: HeaderMap,
    query: String,
    state: Arc<AppState>,
) -> Result<Response, ApiError> {
    let item = find_media(&state, &id)?;
    let force_hls = match query_value(&query, "mode").as_deref() {
        None | Some("auto") => false,
        Some("hls") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "mode must be auto or hls, not {other:?}"
            )))
        }
    };
    let mode = hls_mode(item)?;
    if item.playback == Some(Playback::DirectPlay) && !force_hls {
        return direct_play(item, &method, &headers).await;
    }
    let (session, _) = state
        .sessions
        .start(item, mode, &p.user, false)
        .map_err(|e| ApiError::AtCapacity(e.to_string()))?;
    let mut res = Response::new(Default::default());
    *res.status_mut() = StatusCode::FOUND;
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&master_url(&session, &p)).map_err(|_| ApiError::Internal)?,
    );
    Ok(res)
}

/// Serves the file's bytes: 200, 206 for one range, 416 outside the file.
async fn direct_play(
    item: &MediaItem,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let gone = || ApiError::NotFound(format!("{} is no longer on disk", item.path));
    let meta = tokio::fs::metadata(&item.abs_path)
        .await
        .map_err(|_| gone())?;
    let size = meta.len();
    let modified = meta.modified().unwrap_or(item.modified);
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
        let mut file = tokio::fs::File::open(&item.abs_path)
            .await
            .map_err(|_| gone())?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|_| ApiError::Internal)?;
        let body = tokio_util::io::ReaderStream::new(file.take(len));
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

/// A session as `GET /api/v1/sessions` lists it.
#[derive(Debug, Serialize)]
struct SessionView {
    session_id: Uuid,
    media_id: Uuid,
    mode: Playback,
    state: SessionState,
    /// Media seconds produced so far.
    position_s: f64,
    /// Source duration in seconds, if known.
    duration_s: Option<f64>,
    /// 0–100, if the duration is known: of the segments made when
    /// seekable, else of the media encoded.
    percent: Option<f64>,
    /// Started by a preload and not played yet.
    preload: bool,
    /// Whether the media playlist is a complete VOD playlist (seek
    /// anywhere; segments are made on request) rather than a growing one.
    seekable: bool,
    /// Media seconds per wall-clock second.
    speed: f64,
    segments_ready: usize,
    error: Option<String>,
}

impl SessionView {
    fn of(s: &Session) -> Self {
        let status = s.status();
        let round = |x: f64| (x * 100.0).round() / 100.0;
        SessionView {
            session_id: s.id,
            media_id: s.media_id,
            mode: s.mode,
            state: status.state,
            position_s: round(status.position.as_secs_f64()),
            duration_s: s.duration.map(|d| round(d.as_secs_f64())),
            percent: s.percent(&status).map(round),
            seekable: s.grid.is_some(),
            preload: s.is_preload(),
            speed: status.speed,
            segments_ready: status.ready_count(),
            error: status.error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_segment_names_are_accepted() {
        assert_eq!(segment_index("segment_00000.ts"), Some(0));
        assert_eq!(segment_index("segment_00042.ts"), Some(42));
        for bad in [
            "segment_0.ts",
            "../segment_00000.ts",
            "segment_00000.ts.bak",
            "segment_-0001.ts",
            "hlssink2.m3u8",
            "segment_0000a.ts",
        ] {
            assert_eq!(segment_index(bad), None, "{bad}");
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
