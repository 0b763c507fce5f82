//! The tracks a client asks for (`audio=`, `subtitle=`, `burn=` on
//! `/api/v1/stream/{id}`, the same fields in `POST /api/v1/hls/start`),
//! and starting the caller's session with them.

use super::media::hls_mode;
use super::{query_value, ApiError, Principal};
use crate::library::decision::audio_copied;
use crate::library::Playback;
use crate::packaging::Packaging;
use crate::profile::ClientProfile;
use crate::rendition::{audio_options, choose, video_options, Presentation, TrackRef};
use crate::session::{Opening, Session};
use crate::AppState;
use std::sync::Arc;
use uuid::Uuid;

/// The tracks a client asks for, as `audio=`, `subtitle=` and `burn=`,
/// and where it starts (`start=`, seconds: a resume).
#[derive(Debug, Default)]
pub(super) struct TrackRequest {
    audio: Option<TrackRef>,
    subtitle: Option<TrackRef>,
    burn: Option<usize>,
    start_s: Option<f64>,
}

/// The latest `start=` taken, in seconds (11.6 days): an item whose length
/// is not known is not checked against its end.
const MAX_START_S: f64 = 1_000_000.0;

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

impl TrackRequest {
    /// From a query string (`/api/v1/stream/{id}?audio=fr&subtitle=2`).
    ///
    /// # Errors
    /// 400 for a value that is neither an index nor a language.
    pub(super) fn from_query(query: &str) -> Result<TrackRequest, ApiError> {
        let track = |name| {
            query_value(query, name)
                .map(|v| {
                    TrackRef::parse(&v).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
                })
                .transpose()
        };
        let burn = query_value(query, "burn")
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    ApiError::BadRequest(format!("burn must be a subtitle track index, not {v:?}"))
                })
            })
            .transpose()?;
        Ok(TrackRequest {
            audio: track("audio")?,
            subtitle: track("subtitle")?,
            burn,
            start_s: query_value(query, "start")
                .map(|v| start_seconds(&v))
                .transpose()?,
        })
    }

    /// From the fields of a `POST /api/v1/hls/start` body.
    ///
    /// # Errors
    /// 400 for a value that is neither an index nor a language.
    pub(super) fn from_body(
        audio: &Option<serde_json::Value>,
        subtitle: &Option<serde_json::Value>,
        burn: Option<usize>,
        start_s: Option<f64>,
    ) -> Result<TrackRequest, ApiError> {
        let track = |name, v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| {
                    let raw = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    TrackRef::parse(&raw).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
                })
                .transpose()
        };
        Ok(TrackRequest {
            audio: track("audio", audio)?,
            subtitle: track("subtitle", subtitle)?,
            burn,
            start_s: start_s.map(|s| start_seconds(&s.to_string())).transpose()?,
        })
    }

    /// The query that asks for the same tracks and start, and for
    /// `profile` (`audio=fr&start=95&profile=safari`; empty for the
    /// defaults): what a session's master URL carries so that any node
    /// can open the session again as it was asked for.
    pub(super) fn query(&self, profile: &ClientProfile) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        let track = |t: &TrackRef| match t {
            TrackRef::Index(i) => i.to_string(),
            TrackRef::Language(l) => l.clone(),
            TrackRef::Off => "off".to_string(),
        };
        if let Some(a) = &self.audio {
            q.append_pair("audio", &track(a));
        }
        if let Some(s) = &self.subtitle {
            q.append_pair("subtitle", &track(s));
        }
        if let Some(b) = self.burn {
            q.append_pair("burn", &b.to_string());
        }
        if let Some(s) = self.start_s {
            q.append_pair("start", &s.to_string());
        }
        if *profile != ClientProfile::generic() {
            q.append_pair("profile", &profile.to_request());
        }
        q.finish()
    }
}

/// Starts (or finds) `p`'s session of `item` playing the tracks `tracks`
/// asks for, as the decision for `profile` has it: the title of that
/// decision's presentation, and of each audio track the rendition the
/// client plays (a copy where it plays the codec, else an AAC encode).
/// Burned-in subtitles are MPEG-TS only: with `burn`, a client that takes
/// fMP4 gets the decision it would get without it. With `start=`, the
/// session starts at the segment holding that time (its first producer is
/// started there) once the title's timeline is known, and its media
/// playlists say where to start (`EXT-X-START`). With `id`, a new session
/// takes that id (one a signed URL names, opened again on this node).
///
/// # Errors
/// 400 for a track the item does not have or a start past the item's end,
/// 422 unplayable, 503 `at_capacity`, or `not_ready` when the timeline a
/// start needs is not known within `--playlist-wait`.
pub(super) async fn start_session(
    state: &AppState,
    p: &Principal,
    item: Arc<crate::library::MediaItem>,
    tracks: &TrackRequest,
    preload: bool,
    profile: &ClientProfile,
    id: Option<Uuid>,
) -> Result<Arc<Session>, ApiError> {
    let request = tracks.query(profile);
    let mut decision = item.decision_for(profile);
    let mut profile = profile.clone();
    if tracks.burn.is_some() && decision.packaging == Packaging::Fmp4 {
        profile.fmp4 = false;
        decision = item.decision_for(&profile);
    }
    let mut mode = hls_mode(&item, &decision)?;
    let presentation = Presentation::of(&decision);
    let title = state
        .sessions
        .supervisor()
        .title(item.clone(), presentation);
    let options = audio_options(&title.renditions, |track| {
        item.audio
            .get(track)
            .is_some_and(|a| audio_copied(&profile, a, presentation.packaging))
    });
    let choice = choose(
        &title.renditions,
        &title.subtitles,
        tracks.audio.as_ref(),
        tracks.subtitle.as_ref(),
        tracks.burn,
        options,
        video_options(
            &title.renditions,
            profile.max_height,
            profile.max_bitrate_bps,
        ),
    )
    .map_err(ApiError::BadRequest)?;
    if choice
        .video
        .is_some_and(|v| !title.renditions[v].plan.is_copy())
    {
        mode = Playback::Transcode;
    }
    let start = match tracks.start_s.filter(|s| *s > 0.0) {
        None => None,
        Some(s) => {
            if item.duration_s.is_some_and(|d| s >= d) {
                return Err(ApiError::BadRequest(format!(
                    "start {s} s is past the end of {} ({:?} s)",
                    item.path, item.duration_s
                )));
            }
            let timeline = match title.wait_timeline(state.config.playlist_wait).await {
                Some(Ok(t)) => t,
                Some(Err(e)) => return Err(ApiError::SessionFailed(e)),
                None => {
                    return Err(ApiError::NotReady {
                        message: "the file's key frames are being read".into(),
                        retry_after_s: super::RETRY_AFTER_S,
                    })
                }
            };
            let at = std::time::Duration::try_from_secs_f64(s).map_err(|_| {
                ApiError::BadRequest(format!("start {s} s is not a time in this item"))
            })?;
            Some((timeline.index_at(at), at))
        }
    };
    state
        .sessions
        .start(
            title,
            mode,
            Opening {
                id: id.unwrap_or_else(Uuid::new_v4),
                user: p.user.clone(),
                choice,
                start,
                preload,
                request,
            },
        )
        .map(|(session, _)| session)
        .map_err(ApiError::from)
}
