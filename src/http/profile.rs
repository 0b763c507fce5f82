//! The client profile a request names ([`crate::profile`]): `?profile=`
//! (a built-in name or JSON), the `X-Hlsd-Profile` header, or the
//! `profile` field of `POST /api/v1/hls/start` (a name or an object).
//! Without one, `generic`. A `max_bitrate=BPS` in the query lowers its
//! bit-rate limit ([`ClientProfile::limited_to`]).

use super::error::ApiError;
use super::filters::{query_value, raw_query};
use crate::profile::ClientProfile;
use warp::http::HeaderMap;
use warp::{Filter, Rejection};

/// The profile a request names ([`from_request`]), as a filter; a bad one
/// rejects with its 400.
pub(super) fn requested() -> impl Filter<Extract = (ClientProfile,), Error = Rejection> + Clone {
    warp::header::headers_cloned().and(raw_query()).and_then(
        |headers: HeaderMap, query: String| async move {
            from_request(&query, &headers).map_err(warp::reject::custom)
        },
    )
}

/// The header a client may send its profile in (a name or JSON).
pub const PROFILE_HEADER: &str = "x-hlsd-profile";

/// The profile of a request: its `profile` query value, else its
/// [`PROFILE_HEADER`], else `generic`.
///
/// # Errors
/// 400 `bad_request` for an unknown name or a bad JSON profile.
pub(super) fn from_request(query: &str, headers: &HeaderMap) -> Result<ClientProfile, ApiError> {
    let header = headers
        .get(PROFILE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let profile = parse(query_value(query, "profile").or(header).as_deref())?;
    Ok(profile.limited_to(max_bitrate(query)?))
}

/// The query's `max_bitrate=BPS`, if any.
///
/// # Errors
/// 400 `bad_request` for a value that is not a bit rate
/// ([`crate::profile::parse_bitrate`]).
pub(super) fn max_bitrate(query: &str) -> Result<Option<u64>, ApiError> {
    query_value(query, "max_bitrate")
        .map(|raw| {
            crate::profile::parse_bitrate(&raw)
                .map_err(|e| ApiError::BadRequest(format!("max_bitrate: {e}")))
        })
        .transpose()
}

/// The profile of a `profile` JSON field: a name, or an object.
///
/// # Errors
/// 400 `bad_request` for an unknown name or a bad profile.
pub(super) fn from_body(value: Option<&serde_json::Value>) -> Result<ClientProfile, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(ClientProfile::generic()),
        Some(serde_json::Value::String(name)) => parse(Some(name)),
        Some(other) => parse(Some(&other.to_string())),
    }
}

fn parse(raw: Option<&str>) -> Result<ClientProfile, ApiError> {
    match raw {
        None => Ok(ClientProfile::generic()),
        Some(raw) => {
            ClientProfile::parse(raw).map_err(|e| ApiError::BadRequest(format!("profile: {e}")))
        }
    }
}
