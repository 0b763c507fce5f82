//! Which renditions a viewer session plays: the tracks a client asks for
//! (by index or language) resolved against an item's renditions. Pure.

use super::{Plan, Rendition, RenditionSet, SubtitleRendition};

/// A track a client asks for: by its index in the item's list, or by
/// language (`fr`, `fre`, `French` is not a tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackRef {
    /// [`crate::library::AudioStream::index`] or [`crate::library::SubtitleStream::index`].
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
    /// The audio renditions its master playlist lists: one per track, as
    /// the client's profile takes it ([`audio_options`]).
    pub audio_options: RenditionSet,
    /// The video renditions its master playlist lists as variants: the
    /// copy and the rungs the client takes ([`super::video_options`]), or
    /// the one burn-in rendition.
    pub video_options: RenditionSet,
    /// Whether its master announces a copied Dolby Vision stream as such
    /// (`SUPPLEMENTAL-CODECS`): the client shows Dolby Vision.
    pub dolby_vision: bool,
}

impl Choice {
    /// Its video and audio renditions.
    pub fn renditions(&self) -> RenditionSet {
        [self.video, self.audio].into_iter().flatten().collect()
    }
}

/// The audio renditions a client is offered, one per track: the copy of a
/// track where there is one and the client plays it as it is
/// (`copied(track)`), else its AAC encode, else its copy. Under a
/// bit-rate limit (`limit_bps`), a copy dearer than the encode only where
/// it fits beside the cheapest video: a 5.1 track for a client on
/// 300 kb/s is offered as stereo AAC.
pub fn audio_options(
    renditions: &[Rendition],
    copied: impl Fn(usize) -> bool,
    limit_bps: Option<u64>,
) -> RenditionSet {
    let mut set = RenditionSet::EMPTY;
    let cheapest_video = renditions
        .iter()
        .filter(|r| {
            matches!(
                r.plan,
                Plan::VideoCopy | Plan::VideoEncode { burn: None, .. }
            )
        })
        .map(|r| r.bandwidth_bps)
        .min()
        .unwrap_or(0);
    let track_of = |r: &Rendition| match r.plan {
        Plan::AudioCopy { track } | Plan::AudioEncode { track } => Some(track),
        _ => None,
    };
    let mut tracks: Vec<usize> = renditions.iter().filter_map(track_of).collect();
    tracks.sort_unstable();
    tracks.dedup();
    for track in tracks {
        let copy = renditions
            .iter()
            .position(|r| r.plan == Plan::AudioCopy { track });
        let encode = renditions
            .iter()
            .position(|r| r.plan == Plan::AudioEncode { track });
        let cheap = |c: usize| {
            let Some(limit) = limit_bps else { return true };
            let fits = renditions[c].bandwidth_bps + cheapest_video <= limit;
            fits || encode
                .is_none_or(|e| renditions[c].bandwidth_bps <= renditions[e].bandwidth_bps)
        };
        let pick = match (copy, encode) {
            (Some(c), _) if copied(track) && cheap(c) => Some(c),
            (_, Some(e)) => Some(e),
            (c, None) => c,
        };
        if let Some(i) = pick {
            set = set.with(i);
        }
    }
    set
}

/// Picks a session's renditions: `audio` (else the item's default track),
/// `subtitle` (else the track the file marks default, if any) and `burn`
/// (an image subtitle track burned into the video), among the audio
/// renditions in `audio_options` and the video renditions in
/// `video_options`. The video is the copy where it is offered, else the
/// rung a player starts on ([`crate::ladder::start_rung`]), unless a burn
/// is asked for.
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
    audio_options: RenditionSet,
    video_options: RenditionSet,
) -> Result<Choice, String> {
    let offered_video: Vec<usize> = video_options
        .iter()
        .filter(|i| {
            *i < renditions.len()
                && matches!(
                    renditions[*i].plan,
                    Plan::VideoCopy | Plan::VideoEncode { burn: None, .. }
                )
        })
        .collect();
    let video = choose_video(renditions, &offered_video, burn)?;
    let offered = |i: usize| audio_options.contains(i);
    let audio_track = |(i, r): (usize, &Rendition)| match r.plan {
        Plan::AudioCopy { track } | Plan::AudioEncode { track } if offered(i) => Some(track),
        _ => None,
    };
    let fallback = renditions
        .iter()
        .enumerate()
        .position(|(i, r)| r.default && audio_track((i, r)).is_some())
        .or_else(|| {
            renditions
                .iter()
                .enumerate()
                .position(|e| audio_track(e).is_some())
        });
    let audio = match audio {
        None | Some(TrackRef::Off) => fallback,
        Some(TrackRef::Index(t)) => Some(
            renditions
                .iter()
                .enumerate()
                .position(|e| audio_track(e) == Some(*t))
                .ok_or_else(|| format!("audio track {t} does not exist or cannot be played"))?,
        ),
        Some(TrackRef::Language(l)) => renditions
            .iter()
            .enumerate()
            .position(|(i, r)| audio_track((i, r)).is_some() && r.language.as_deref() == Some(l))
            .or(fallback),
    };
    let subtitle = subtitle.map_or_else(
        || Ok(subtitles.iter().position(|s| s.default)),
        |t| choose_subtitle(subtitles, t),
    )?;
    let listed: RenditionSet = (0..renditions.len())
        .filter(|i| audio_track((*i, &renditions[*i])).is_some())
        .collect();
    let video_listed = match (burn, video) {
        (Some(_), Some(v)) => RenditionSet::one(v),
        _ => offered_video.iter().copied().collect(),
    };
    Ok(Choice {
        video,
        audio,
        subtitle,
        audio_options: listed,
        video_options: video_listed,
        dolby_vision: false,
    })
}

/// The video rendition: the copy when it is among `offered`, else the
/// rung a player starts on among them, or the burn-in rendition of image
/// subtitle track `burn`.
fn choose_video(
    renditions: &[Rendition],
    offered: &[usize],
    burn: Option<usize>,
) -> Result<Option<usize>, String> {
    let Some(b) = burn else {
        // The original, where it is offered: it fits the client's
        // bandwidth, and costs no encode.
        if let Some(copy) = offered
            .iter()
            .find(|i| renditions[**i].plan == Plan::VideoCopy)
        {
            return Ok(Some(*copy));
        }
        let heights: Vec<u32> = offered
            .iter()
            .map(|i| renditions[*i].resolution.map_or(0, |(_, h)| h))
            .collect();
        return Ok(crate::ladder::start_rung(&heights).map(|k| offered[k]));
    };
    renditions
        .iter()
        .position(|r| matches!(r.plan, Plan::VideoEncode { burn: Some(x), .. } if x == b))
        .map(Some)
        .ok_or_else(|| {
            format!("subtitle track {b} is not an image subtitle track that can be burned in")
        })
}

/// The WebVTT rendition asked for by `t`: none when off, the one of a
/// track index, or the first of a language that is not forced (else a
/// forced one).
fn choose_subtitle(subtitles: &[SubtitleRendition], t: &TrackRef) -> Result<Option<usize>, String> {
    Ok(match t {
        TrackRef::Off => None,
        TrackRef::Index(i) => Some(
            subtitles
                .iter()
                .position(|s| s.track == *i)
                .ok_or_else(|| format!("subtitle track {i} is not a text subtitle track"))?,
        ),
        TrackRef::Language(l) => subtitles
            .iter()
            .position(|s| s.language.as_deref() == Some(l) && !s.forced)
            .or_else(|| {
                subtitles
                    .iter()
                    .position(|s| s.language.as_deref() == Some(l))
            }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fit::video_options;
    use super::*;

    fn rendition(name: &str, plan: Plan, language: Option<&str>, default: bool) -> Rendition {
        Rendition {
            name: name.into(),
            plan,
            codecs: String::new(),
            bandwidth_bps: 1,
            average_bps: 1,
            resolution: None,
            channels: None,
            language: language.map(str::to_string),
            label: None,
            default,
            key: name.into(),
            packaging: crate::packaging::Packaging::Ts,
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
            maxrate_kbps: 2900,
            deinterlace: false,
            rotate: false,
            burn: Some(3),
            tonemap: None,
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
        let c = choose(
            &r,
            &s,
            None,
            None,
            None,
            RenditionSet::ALL,
            RenditionSet::ALL,
        )
        .expect("choice");
        assert_eq!(
            c,
            Choice {
                video: Some(0),
                audio: Some(2),
                subtitle: Some(2),
                audio_options: RenditionSet::from_bits(0b110),
                video_options: RenditionSet::from_bits(0b1),
                dolby_vision: false,
            }
        );
        assert_eq!(c.renditions(), RenditionSet::from_bits(0b101));
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
                RenditionSet::ALL,
                RenditionSet::ALL,
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
            choose(
                &r,
                &s,
                None,
                None,
                Some(3),
                RenditionSet::ALL,
                RenditionSet::ALL
            )
            .expect("choice")
            .video,
            Some(3)
        );
        assert!(choose(
            &r,
            &s,
            None,
            None,
            Some(0),
            RenditionSet::ALL,
            RenditionSet::ALL
        )
        .is_err());
    }

    fn rung(height: u32, bandwidth_bps: u64, burn: Option<usize>) -> Rendition {
        let plan = Plan::VideoEncode {
            width: height * 16 / 9,
            height,
            maxrate_kbps: 1000,
            deinterlace: false,
            rotate: false,
            burn,
            tonemap: None,
        };
        Rendition {
            resolution: Some((height * 16 / 9, height)),
            bandwidth_bps,
            ..rendition(&format!("video-{height}p"), plan, None, false)
        }
    }

    #[test]
    fn a_ladder_starts_at_720p_within_what_the_client_takes() {
        let r = vec![
            rung(1080, 9_000_000, None),
            rung(720, 4_500_000, None),
            rung(480, 2_200_000, None),
            rung(360, 1_300_000, None),
            rendition("audio-0-aac", Plan::AudioEncode { track: 0 }, None, true),
            rung(720, 4_500_000, Some(0)),
        ];
        let all = video_options(&r, RenditionSet::one(4), None, None);
        assert_eq!(
            all,
            RenditionSet::from_bits(0b1111),
            "burn-in renditions are not offered"
        );
        let c = choose(&r, &[], None, None, None, RenditionSet::ALL, all).expect("choice");
        assert_eq!(
            (c.video, c.video_options, c.audio),
            (Some(1), RenditionSet::from_bits(0b1111), Some(4))
        );
        // A phone that shows 480 lines, a link of 2.5 Mb/s.
        assert_eq!(
            video_options(&r, RenditionSet::one(4), Some(480), None),
            RenditionSet::from_bits(0b1100)
        );
        assert_eq!(
            video_options(&r, RenditionSet::one(4), None, Some(2_500_000)),
            RenditionSet::from_bits(0b1100)
        );
        let c = choose(
            &r,
            &[],
            None,
            None,
            None,
            RenditionSet::ALL,
            RenditionSet::from_bits(0b1100),
        )
        .expect("choice");
        assert_eq!(c.video, Some(2));
        // Nothing fits: the smallest rung still plays.
        assert_eq!(
            video_options(&r, RenditionSet::one(4), Some(100), None),
            RenditionSet::from_bits(0b1000)
        );
        // A burn lists its own rendition only.
        let c = choose(&r, &[], None, None, Some(0), RenditionSet::ALL, all).expect("choice");
        assert_eq!((c.video, c.video_options), (Some(5), RenditionSet::one(5)));
    }

    #[test]
    fn the_original_is_where_a_player_starts_while_it_fits() {
        let mut copy = rung(1080, 14_000_000, None);
        copy.plan = Plan::VideoCopy;
        let r = vec![
            copy,
            rung(1080, 9_000_000, None),
            rung(720, 4_500_000, None),
            rendition("audio-0-aac", Plan::AudioEncode { track: 0 }, None, true),
        ];
        let audio = RenditionSet::one(3);
        let all = video_options(&r, audio, None, None);
        assert_eq!(all, RenditionSet::from_bits(0b111));
        let c = choose(&r, &[], None, None, None, audio, all).expect("choice");
        assert_eq!(c.video, Some(0));
        // 10 Mb/s: the original does not fit; the richest rung that does.
        let fit = video_options(&r, audio, None, Some(10_000_000));
        assert_eq!(fit, RenditionSet::from_bits(0b110));
        let c = choose(&r, &[], None, None, None, audio, fit).expect("choice");
        assert_eq!(c.video, Some(2), "720p, where players start");
    }

    #[test]
    fn under_a_limit_a_track_costs_its_cheaper_rendition() {
        let mut surround = rendition("audio-0-copy", Plan::AudioCopy { track: 0 }, None, true);
        surround.bandwidth_bps = 691_000;
        let mut stereo = rendition("audio-0-aac", Plan::AudioEncode { track: 0 }, None, false);
        stereo.bandwidth_bps = 153_600;
        let r = vec![surround, stereo];
        assert_eq!(audio_options(&r, |_| true, None), RenditionSet::one(0));
        assert_eq!(
            audio_options(&r, |_| true, Some(300_000)),
            RenditionSet::one(1)
        );
        // A limit the copy fits: the copy.
        assert_eq!(
            audio_options(&r, |_| true, Some(8_000_000)),
            RenditionSet::one(0)
        );
    }
}
