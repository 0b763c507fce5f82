//! What a request names: the library item of an id in the path, and what
//! a client asks to play ([`PlayRequest`]) as `audio=`, `subtitle=`,
//! `burn=`, `start=`, `profile=` and `max_bitrate=` in a query, or the
//! same fields in a `POST /api/v1/hls/start` body; and the user's own
//! bit-rate limit ([`for_user`]).

use super::error::ApiError;
use super::filters::query_value;
use super::profile;
use crate::app::AppState;
use crate::library::MediaItem;
use crate::profile::ClientProfile;
use crate::rendition::TrackRef;
use crate::session::{PlayRequest, MAX_START_S};
use std::sync::Arc;
use uuid::Uuid;
use warp::http::HeaderMap;

/// The library item `id` as its file is now: probed first if it was not
/// yet, or if its file changed since.
///
/// # Errors
/// 404 `not_found` for an unknown or malformed id, 404 `media_gone` for a
/// file deleted since it was listed.
pub async fn media(state: &AppState, id: &str) -> Result<Arc<MediaItem>, ApiError> {
    let uuid = Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("no media {id}")))?;
    Ok(state.library.current(&uuid).await?)
}

/// `profile` as `user` may play: its bit-rate limit lowered to the
/// user's `--user-max-bitrate`, if they have one.
pub fn for_user(state: &AppState, user: &str, profile: ClientProfile) -> ClientProfile {
    profile.limited_to(state.http.user_limit(user))
}

/// `start=`: seconds, finite, from 0 to [`MAX_START_S`].
fn start_seconds(raw: &str) -> Result<f64, ApiError> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=MAX_START_S).contains(s))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "start must be seconds from 0 to {MAX_START_S}, not {raw:?}"
            ))
        })
}

/// A track reference (`2`, `fr`, `off`) named `name`.
fn track(name: &str, raw: &str) -> Result<TrackRef, ApiError> {
    TrackRef::parse(raw).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

/// `burn=`: a subtitle track index.
fn burn(raw: &str) -> Result<usize, ApiError> {
    raw.parse::<usize>().map_err(|_| {
        ApiError::BadRequest(format!("burn must be a subtitle track index, not {raw:?}"))
    })
}

/// What a query asks to play (`/api/v1/stream/{id}?audio=fr&subtitle=2`),
/// with `profile`, the profile the request names.
///
/// # Errors
/// 400 for a value that is neither an index nor a language, or a bad
/// `burn` or `start`.
pub fn from_query(query: &str, profile: ClientProfile) -> Result<PlayRequest, ApiError> {
    let value = |name| query_value(query, name);
    Ok(PlayRequest {
        audio: value("audio").map(|v| track("audio", &v)).transpose()?,
        subtitle: value("subtitle")
            .map(|v| track("subtitle", &v))
            .transpose()?,
        burn: value("burn").map(|v| burn(&v)).transpose()?,
        start_s: value("start").map(|v| start_seconds(&v)).transpose()?,
        profile,
    })
}

/// What a query and its headers ask to play, the profile included
/// ([`profile::from_request`]).
///
/// # Errors
/// As [`from_query`] and [`profile::from_request`].
pub fn from_request(query: &str, headers: &HeaderMap) -> Result<PlayRequest, ApiError> {
    from_query(query, profile::from_request(query, headers)?)
}

/// The body of `POST /api/v1/hls/start`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct StartBody {
    /// The item; or `?media_id=`.
    #[serde(default)]
    pub media_id: Option<String>,
    /// Preferred audio track: its index or a language.
    #[serde(default)]
    pub audio: Option<serde_json::Value>,
    /// Preferred subtitle track: its index, a language, or `"off"`.
    #[serde(default)]
    pub subtitle: Option<serde_json::Value>,
    /// An image subtitle track to burn into the video.
    #[serde(default)]
    pub burn: Option<usize>,
    /// The client's profile: a built-in name or a profile object.
    #[serde(default)]
    pub profile: Option<serde_json::Value>,
    /// Where to start, in seconds (a resume).
    #[serde(default)]
    pub start: Option<f64>,
    /// The most the client can take, in bits per second.
    #[serde(default)]
    pub max_bitrate: Option<serde_json::Value>,
}

impl StartBody {
    /// What it asks to play.
    ///
    /// # Errors
    /// 400 for a track that is neither an index nor a language, a bad
    /// start, a bad profile or a bad `max_bitrate`.
    pub fn play_request(&self) -> Result<PlayRequest, ApiError> {
        let json_track = |name, v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| match v {
                    serde_json::Value::String(s) => track(name, s),
                    other => track(name, &other.to_string()),
                })
                .transpose()
        };
        Ok(PlayRequest {
            audio: json_track("audio", &self.audio)?,
            subtitle: json_track("subtitle", &self.subtitle)?,
            burn: self.burn,
            start_s: self
                .start
                .map(|s| start_seconds(&s.to_string()))
                .transpose()?,
            profile: profile::from_body(self.profile.as_ref())?.limited_to(
                self.max_bitrate
                    .as_ref()
                    .map(|v| {
                        let raw = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        crate::profile::parse_bitrate(&raw)
                            .map_err(|e| ApiError::BadRequest(format!("max_bitrate: {e}")))
                    })
                    .transpose()?,
            ),
        })
    }
}
