//! The web page: `GET /` and `GET /static/...` without a token (the page
//! asks for one). The page and hls.js are built into the binary
//! (`web/static`, with `vendor/hls.min.js` as `scripts/setup.sh` copies it
//! from npm), so one binary serves them from any working directory;
//! `--web-dir` serves an operator's own page from a folder instead.

use super::filters::Route;
use crate::app::AppState;
use warp::http::{header, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

/// The page's files as they were at build time.
#[derive(rust_embed::RustEmbed)]
#[folder = "web/static/"]
struct Embedded;

/// A built-in file, with its media type; `None` for a name it does not
/// have (which also keeps any other path out).
fn embedded(name: &str) -> Option<Response> {
    let file = Embedded::get(name)?;
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let mut res = Response::new(file.data.into_owned().into());
    let h = res.headers_mut();
    let value = match mime.type_() {
        mime_guess::mime::TEXT => format!("{}; charset=utf-8", mime.essence_str()),
        _ => mime.essence_str().to_string(),
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&value).ok()?);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(res)
}

/// `GET /` and `GET /static/...`: the page and its files, no token.
pub fn page(state: &AppState) -> Route {
    let Some(web_dir) = state.http.web_dir.clone() else {
        // hls.js is copied in by the set-up script: a build without it
        // serves a page that plays HLS only where the browser does.
        if Embedded::get("vendor/hls.min.js").is_none() {
            tracing::warn!("this build's web page has no hls.js (scripts/setup.sh copies it in before building): only browsers with native HLS play HLS on it");
        }
        let page = warp::path::end()
            .and(warp::get())
            .and_then(|| async { embedded("index.html").ok_or_else(warp::reject::not_found) });
        let static_files = warp::path("static")
            .and(warp::get())
            .and(warp::path::tail())
            .and_then(|tail: warp::path::Tail| async move {
                embedded(tail.as_str()).ok_or_else(warp::reject::not_found)
            });
        return page.or(static_files).unify().boxed();
    };
    let index = web_dir.join("index.html");
    let page = warp::path::end().and(warp::get()).and_then(move || {
        let index = index.clone();
        async move {
            match tokio::fs::read(&index).await {
                Ok(bytes) => {
                    let mut res = Response::new(bytes.into());
                    res.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    Ok(res)
                }
                Err(_) => Err(warp::reject::not_found()),
            }
        }
    });
    let static_files = warp::path("static").and(
        warp::fs::dir(web_dir)
            .map(|f: warp::fs::File| f.into_response())
            .boxed(),
    );
    page.boxed().or(static_files.boxed()).unify().boxed()
}
