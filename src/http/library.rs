//! The library listing, in pages, and the rescan hook:
//!
//! * `GET /api/v1/media?offset=&limit=&path=&q=&playback=`: one page, in
//!   path order, with the total and an `ETag` (304 on `If-None-Match`).
//! * `POST /api/v1/library/scan` (admins; body `{"path": "sub/dir"}` or
//!   `?path=`, optional): lists that folder (or all) now and probes what is
//!   new or changed, for download tools' post-processing hooks.

use super::error::ApiError;
use super::filters::{
    optional_body, query_value, raw_query, respond, with_state, Principal, Route,
};
use crate::app::AppState;
use crate::library::{PageQuery, PlaybackFilter, DEFAULT_PAGE, MAX_PAGE};
use serde::Serialize;
use std::sync::Arc;
use warp::http::{header, HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// One page of `GET /api/v1/media`.
#[derive(Serialize)]
struct PageBody<'a> {
    /// Items matching the filters, in every page.
    total: usize,
    offset: usize,
    limit: usize,
    items: Vec<&'a crate::library::MediaItem>,
}

/// `GET /api/v1/media?offset=&limit=&path=&q=&playback=`: one page of
/// the library, in path order, with an `ETag` (304 on `If-None-Match`).
pub fn list(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "media")
        .and(warp::get())
        .and(auth)
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(with_state(state))
        .map(
            |_: Principal, headers: HeaderMap, query: String, state: Arc<AppState>| {
                respond(page(&state, &headers, &query))
            },
        )
        .boxed()
}

/// `POST /api/v1/library/scan` (admins; body `{"path": "sub/dir"}` or
/// `?path=`, optional): lists that folder (or all) now and probes what is
/// new or changed: 202 with what it found; 503 `database_unavailable`
/// while the catalogue's database does not answer.
pub fn scan(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "library" / "scan")
        .and(warp::post())
        .and(auth)
        .and(raw_query())
        .and(optional_body(4096))
        .and(with_state(state))
        .then(
            |p: Principal, query: String, body: bytes::Bytes, state: Arc<AppState>| async move {
                respond(scan_handler(&state, &p, &query, &body).await)
            },
        )
        .boxed()
}

fn number(query: &str, key: &str, default: usize) -> Result<usize, ApiError> {
    match query_value(query, key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("{key} must be a whole number, not {v:?}"))),
    }
}

fn page(state: &AppState, headers: &HeaderMap, query: &str) -> Result<Response, ApiError> {
    let limit = number(query, "limit", DEFAULT_PAGE)?;
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    let q = PageQuery {
        offset: number(query, "offset", 0)?,
        limit,
        path: query_value(query, "path").filter(|p| !p.is_empty()),
        search: query_value(query, "q").filter(|p| !p.is_empty()),
        playback: query_value(query, "playback")
            .map(|p| p.parse::<PlaybackFilter>())
            .transpose()
            .map_err(ApiError::BadRequest)?,
    };
    let page = state.library.page(&q);
    // The same generation and query give the same body.
    let etag = format!("W/\"{}-{}\"", state.library.instance(), page.generation);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if matches {
        let mut r = Response::new(Default::default());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        warp::reply::json(&PageBody {
            total: page.total,
            offset: q.offset,
            limit,
            items: page.items.iter().map(|i| &**i).collect(),
        })
        .into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(|_| ApiError::Internal)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScanBody {
    path: Option<String>,
}

async fn scan_handler(
    state: &AppState,
    p: &Principal,
    query: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    if !state.is_admin(&p.user) {
        return Err(ApiError::Forbidden(
            "only admins may start a library scan".into(),
        ));
    }
    let parsed: ScanBody = if body.iter().all(u8::is_ascii_whitespace) {
        ScanBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("body must be {{\"path\": \"sub/dir\"}}: {e}"))
        })?
    };
    let path = parsed.path.or_else(|| query_value(query, "path"));
    // A scan writes what it finds to the catalogue: not while its
    // database does not answer.
    let catalogue = state.library.catalogue();
    tokio::task::spawn_blocking(move || catalogue.ping())
        .await
        .map_err(|_| ApiError::Internal)??;
    let started = std::time::Instant::now();
    let report = state
        .library
        .scan(path.as_deref())
        .await
        .map_err(ApiError::BadRequest)?;
    tracing::info!(user = %p.user, path = ?path, ?report, "library scan requested");
    let mut res = warp::reply::json(&serde_json::json!({
        "scan": report,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    }))
    .into_response();
    *res.status_mut() = StatusCode::ACCEPTED;
    Ok(res)
}
