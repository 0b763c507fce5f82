//! Which renditions a viewer session plays: the tracks a client asks for
//! (by index or language) resolved against an item's renditions. Pure.

use super::{Plan, Rendition, SubtitleRendition};

/// A track a client asks for: by its index in the item's list, or by
/// language (`fr`, `fre`, `French` is not a tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackRef {
    /// [`crate::library::AudioStream::index`] or [`SubtitleStream::index`].
    Index(usize),
    /// A language tag, normalised by [`crate::library::language::normalize`].
    Language(String),
    /// No subtitles.
    Off,
}

impl TrackRef {
    /// Parses `2`, `fr`, `fre`, `off`/`none`.
    ///
    /// # Errors
    /// Anything else, with a message for the client.
    pub fn parse(raw: &str) -> Result<TrackRef, String> {
        let raw = raw.trim();
        if let Ok(i) = raw.parse::<usize>() {
            return Ok(TrackRef::Index(i));
        }
        if matches!(raw.to_ascii_lowercase().as_str(), "off" | "none") {
            return Ok(TrackRef::Off);
        }
        crate::library::language::normalize(raw)
            .map(TrackRef::Language)
            .ok_or_else(|| format!("{raw:?} is neither a track index nor a language tag"))
    }
}

/// What a viewer session plays of a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Choice {
    /// The video rendition (index into the title's renditions), if any.
    pub video: Option<usize>,
    /// The default audio rendition, if any.
    pub audio: Option<usize>,
    /// The default subtitle rendition (index into the WebVTT renditions).
    pub subtitle: Option<usize>,
}

impl Choice {
    /// The bits of its video and audio renditions.
    pub fn mask(&self) -> u64 {
        [self.video, self.audio]
            .into_iter()
            .flatten()
            .fold(0, |m, i| m | (1u64 << i.min(63)))
    }
}

/// Picks a session's renditions: `audio` (else the item's default track),
/// `subtitle` (else the track the file marks default, if any) and `burn`
/// (an image subtitle track burned into the video).
///
/// # Errors
/// A track index that names no playable audio track, no text subtitle
/// track, or (for `burn`) no image subtitle track; a message for the
/// client.
pub fn choose(
    renditions: &[Rendition],
    subtitles: &[SubtitleRendition],
    audio: Option<&TrackRef>,
    subtitle: Option<&TrackRef>,
    burn: Option<usize>,
) -> Result<Choice, String> {
    let video = match burn {
        None => renditions.iter().position(|r| {
            matches!(
                r.plan,
                Plan::VideoCopy | Plan::VideoEncode { burn: None, .. }
            )
        }),
        Some(b) => Some(
            renditions
                .iter()
                .position(|r| matches!(r.plan, Plan::VideoEncode { burn: Some(x), .. } if x == b))
                .ok_or_else(|| {
                    format!(
                        "subtitle track {b} is not an image subtitle track that can be burned in"
                    )
                })?,
        ),
    };
    let audio_track = |r: &Rendition| match r.plan {
        Plan::AudioCopy { track } | Plan::AudioEncode { track } => Some(track),
        _ => None,
    };
    let fallback = renditions
        .iter()
        .position(|r| r.default && audio_track(r).is_some())
        .or_else(|| renditions.iter().position(|r| audio_track(r).is_some()));
    let audio = match audio {
        None | Some(TrackRef::Off) => fallback,
        Some(TrackRef::Index(i)) => Some(
            renditions
                .iter()
                .position(|r| audio_track(r) == Some(*i))
                .ok_or_else(|| format!("audio track {i} does not exist or cannot be played"))?,
        ),
        Some(TrackRef::Language(l)) => renditions
            .iter()
            .position(|r| audio_track(r).is_some() && r.language.as_deref() == Some(l))
            .or(fallback),
    };
    let subtitle = match subtitle {
        None => subtitles.iter().position(|s| s.default),
        Some(TrackRef::Off) => None,
        Some(TrackRef::Index(i)) => Some(
            subtitles
                .iter()
                .position(|s| s.track == *i)
                .ok_or_else(|| format!("subtitle track {i} is not a text subtitle track"))?,
        ),
        Some(TrackRef::Language(l)) => subtitles
            .iter()
            .position(|s| s.language.as_deref() == Some(l) && !s.forced)
            .or_else(|| {
                subtitles
                    .iter()
                    .position(|s| s.language.as_deref() == Some(l))
            }),
    };
    Ok(Choice {
        video,
        audio,
        subtitle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(name: &str, plan: Plan, language: Option<&str>, default: bool) -> Rendition {
        Rendition {
            name: name.into(),
            plan,
            codecs: String::new(),
            bandwidth_bps: 1,
            resolution: None,
            channels: None,
            language: language.map(str::to_string),
            label: None,
            default,
            key: name.into(),
        }
    }

    fn subs(track: usize, language: &str, forced: bool, default: bool) -> SubtitleRendition {
        SubtitleRendition {
            name: format!("subs-{track}"),
            track,
            language: Some(language.into()),
            label: language.into(),
            forced,
            default,
        }
    }

    fn title() -> (Vec<Rendition>, Vec<SubtitleRendition>) {
        let burn = Plan::VideoEncode {
            width: 1280,
            height: 720,
            deinterlace: false,
            rotate: false,
            burn: Some(3),
        };
        (
            vec![
                rendition("video-copy", Plan::VideoCopy, None, false),
                rendition(
                    "audio-0-copy",
                    Plan::AudioCopy { track: 0 },
                    Some("en"),
                    false,
                ),
                rendition(
                    "audio-1-aac",
                    Plan::AudioEncode { track: 1 },
                    Some("fr"),
                    true,
                ),
                rendition("video-720p-burn3", burn, None, false),
            ],
            vec![
                subs(0, "fr", true, false),
                subs(1, "fr", false, false),
                subs(2, "en", false, true),
            ],
        )
    }

    #[test]
    fn defaults_are_the_marked_tracks() {
        let (r, s) = title();
        let c = choose(&r, &s, None, None, None).expect("choice");
        assert_eq!(
            c,
            Choice {
                video: Some(0),
                audio: Some(2),
                subtitle: Some(2)
            }
        );
        assert_eq!(c.mask(), 0b101);
    }

    #[test]
    fn tracks_are_picked_by_index_or_language() {
        let (r, s) = title();
        let by = |a: &str, sub: &str| {
            choose(
                &r,
                &s,
                Some(&TrackRef::parse(a).unwrap()),
                Some(&TrackRef::parse(sub).unwrap()),
                None,
            )
        };
        let c = by("0", "fre").expect("choice");
        // French subtitles: the full track, not the forced one.
        assert_eq!((c.audio, c.subtitle), (Some(1), Some(1)));
        let c = by("eng", "off").expect("choice");
        assert_eq!((c.audio, c.subtitle), (Some(1), None));
        // A language nobody speaks falls back to the default.
        assert_eq!(by("de", "1").expect("choice").audio, Some(2));
        assert!(by("7", "0").is_err());
        assert!(by("0", "9").is_err());
        assert!(TrackRef::parse("klingon!").is_err());
    }

    #[test]
    fn burn_picks_the_burned_video_or_refuses() {
        let (r, s) = title();
        assert_eq!(
            choose(&r, &s, None, None, Some(3)).expect("choice").video,
            Some(3)
        );
        assert!(choose(&r, &s, None, None, Some(0)).is_err());
    }
}
