//! The web page: `GET /` and `GET /static/...` from `--web-dir`, without a
//! token (the page asks for one).

use super::Route;
use crate::AppState;
use warp::http::{header, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

pub(super) fn routes(state: &AppState) -> Route {
    let web_dir = state.config.web_dir.clone();
    let index = web_dir.as_ref().map(|d| d.join("index.html"));
    let page = warp::path::end().and(warp::get()).and_then(move || {
        let index = index.clone();
        async move {
            let Some(path) = index else {
                return Err(warp::reject::not_found());
            };
            match tokio::fs::read(&path).await {
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
    let static_files = warp::path("static").and(match web_dir {
        Some(dir) => warp::fs::dir(dir)
            .map(|f: warp::fs::File| f.into_response())
            .boxed(),
        None => warp::any()
            .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
            .boxed(),
    });
    page.boxed().or(static_files.boxed()).unify().boxed()
}
