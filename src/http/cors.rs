//! Cross-origin access (`--cors-origin`): the headers a player on another
//! origin (a Chromecast receiver, a media server's web app) needs to read
//! playlists, segments and the API, and answers to its preflights
//! (Fetch standard, "CORS protocol").
//!
//! Written here rather than with `warp::cors`: warp's filter refuses (403)
//! any request whose `Origin` is not listed, which would also refuse the
//! server's own page (browsers send `Origin` on same-origin POSTs). Here a
//! request from an origin not listed is served exactly as without CORS,
//! and the browser keeps the response from the other page, as the
//! protocol intends.

use super::error::ApiError;
use super::filters::Route;
use warp::http::header::{self, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

/// Methods a cross-origin page may use.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
/// Request headers a cross-origin page may send: the token, byte ranges,
/// JSON bodies, conditional requests, and a client profile.
const ALLOW_HEADERS: &str =
    "authorization, range, content-type, if-none-match, if-modified-since, x-hlsd-profile";
/// Response headers a cross-origin page may read: sizes and ranges (for
/// players that read direct play by ranges), validators and retry hints.
const EXPOSE_HEADERS: &str =
    "content-length, content-range, accept-ranges, etag, last-modified, retry-after, location";
/// Seconds a browser may cache a preflight's answer.
const MAX_AGE_S: &str = "600";

/// Which origins may read responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: every origin (answered with `*`; no credentials are involved:
    /// tokens travel in `Authorization` or the URL).
    Any,
    /// Exactly these serialized origins (`scheme://host[:port]`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// The policy for the configured origins; `None` when there are none
    /// (no CORS headers at all).
    pub fn from_config(origins: &[String]) -> Option<CorsOrigins> {
        if origins.is_empty() {
            None
        } else if origins.iter().any(|o| o == "*") {
            Some(CorsOrigins::Any)
        } else {
            Some(CorsOrigins::List(
                origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
            ))
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`,
    /// or `None` when that origin may not read the response.
    pub fn allow(&self, origin: Option<&str>) -> Option<String> {
        match self {
            CorsOrigins::Any => Some("*".to_string()),
            CorsOrigins::List(list) => {
                let origin = origin?;
                list.iter()
                    .any(|o| o.eq_ignore_ascii_case(origin))
                    .then(|| origin.to_string())
            }
        }
    }
}

/// Adds the CORS headers of `policy` for `origin` to `response`.
fn decorate(mut response: Response, policy: &CorsOrigins, origin: Option<&str>) -> Response {
    let headers = response.headers_mut();
    if let CorsOrigins::List(_) = policy {
        // The answer differs by Origin: caches must key on it.
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    if let Some(value) = policy
        .allow(origin)
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    response
}

/// Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`):
/// 204 with the allowed methods and headers, or 403 `origin_not_allowed`.
fn preflight(policy: &CorsOrigins, origin: Option<&str>) -> Response {
    if policy.allow(origin).is_none() {
        return ApiError::Forbidden("this origin may not use the API (--cors-origin)".into())
            .into_response();
    }
    let mut response =
        warp::reply::with_status(warp::reply(), warp::http::StatusCode::NO_CONTENT).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS),
        (header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_S),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    decorate(response, policy, origin)
}

/// Wraps every route: preflights are answered before routing, and every
/// other response (errors too) gains the CORS headers. Without a policy
/// the routes are returned unchanged.
pub fn wrap(routes: Route, policy: Option<CorsOrigins>) -> Route {
    let Some(policy) = policy else {
        return routes;
    };
    let for_preflight = policy.clone();
    let preflights = warp::options()
        .and(warp::header::<String>("access-control-request-method"))
        .and(warp::header::optional::<String>("origin"))
        .map(move |_method: String, origin: Option<String>| {
            preflight(&for_preflight, origin.as_deref())
        });
    let decorated = warp::header::optional::<String>("origin").and(routes).map(
        move |origin: Option<String>, response: Response| {
            decorate(response, &policy, origin.as_deref())
        },
    );
    preflights.or(decorated).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let p = CorsOrigins::from_config(&["https://Cast.example".into()]).unwrap();
        assert_eq!(
            p.allow(Some("https://cast.example")).as_deref(),
            Some("https://cast.example")
        );
        assert_eq!(p.allow(Some("https://evil.example")), None);
        assert_eq!(p.allow(None), None);
    }

    #[test]
    fn a_star_allows_every_origin_and_none_means_no_cors() {
        let p = CorsOrigins::from_config(&["https://a.example".into(), "*".into()]).unwrap();
        assert_eq!(p, CorsOrigins::Any);
        assert_eq!(p.allow(Some("https://x.example")).as_deref(), Some("*"));
        assert_eq!(CorsOrigins::from_config(&[]), None);
    }
}
