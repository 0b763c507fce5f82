//! The video renditions of an item: its copy, the rungs of its quality
//! ladder ([`crate::ladder`]) and its burn-ins. Pure.
//!
//! Where the video is copied, the rungs stand beside the copy on the same
//! key-frame cuts (the encoder is asked for an IDR frame at each cut, see
//! `pipeline::transcode`), so a player switches between the original and
//! an encoded rung at any segment boundary, as Kyoo's transcoder offers
//! `original` beside its qualities. Where it is not, the rungs alone are
//! offered on the fixed grid.

use super::codecs::{avc1_codec, h264_level_idc, video_copy_codecs};
use super::{
    key_of, with_headroom, KeyInputs, Plan, Presentation, Rendition, ToneMapping,
    MAX_BURN_RENDITIONS,
};
use crate::ladder::{ladder, Rung};
use crate::library::colour::HdrTransfer;
use crate::library::decision::display_size;
use crate::library::{MediaItem, SubtitleKind, VideoStream};
use crate::timeline::SEGMENT_SECONDS;
use crate::tonemap::{Curve, Transfer};
use std::time::Duration;

/// The plan of `v` encoded at `rung`, with image subtitle track `burn`
/// burned in; an HDR `v` tone-mapped with `curve` to SDR BT.709.
fn encode_plan(v: &VideoStream, rung: Rung, burn: Option<usize>, curve: Curve) -> Plan {
    Plan::VideoEncode {
        width: rung.width,
        height: rung.height,
        maxrate_kbps: rung.maxrate_kbps,
        deinterlace: v.interlaced,
        rotate: v.rotation != 0,
        burn,
        tonemap: v.hdr.as_ref().map(|h| ToneMapping {
            transfer: match h.transfer {
                HdrTransfer::Pq => Transfer::Pq,
                HdrTransfer::Hlg => Transfer::Hlg,
            },
            curve,
            peak_nits: h
                .mastering_max_nits
                .map(|n| n.round() as u32)
                .or(h.max_cll_nits)
                .filter(|n| *n >= 100)
                .unwrap_or(DEFAULT_PEAK_NITS),
        }),
    }
}

/// The peak assumed of an HDR source that does not say its own, cd/m²
/// (ffmpeg's `tonemap` assumes the same of HLG; Jellyfin of both).
const DEFAULT_PEAK_NITS: u32 = 1000;

/// The frame rate assumed for `item`'s video: its own, at most 60, else 30.
fn fps_of(item: &MediaItem) -> f64 {
    item.video
        .as_ref()
        .map_or(30.0, |v| if v.fps > 0.0 { v.fps.min(60.0) } else { 30.0 })
}

/// An encoded video rendition of `item`: a rung of its ladder, H.264 in
/// `presentation`. Its name says all that its bytes depend on besides the
/// file: `video-720p`, and `-kf` on a copy's key frames (not the grid),
/// `-burn3` with a subtitle track burned in, `-f92k` for a cap lowered to
/// 92 kb/s, `-cmaf` in fMP4 ([`Presentation::of_video_name`] reads it
/// back). A cache that keys segments on their path never mixes two.
fn encoded_video(
    item: &MediaItem,
    plan: Plan,
    presentation: Presentation,
    lowered: bool,
    inputs: &KeyInputs<'_>,
) -> Rendition {
    let packaging = presentation.packaging;
    let Plan::VideoEncode {
        width,
        height,
        maxrate_kbps,
        burn,
        ..
    } = plan
    else {
        unreachable!("encoded_video takes an encode plan")
    };
    let fps = fps_of(item);
    let rung = Rung {
        width,
        height,
        maxrate_kbps,
    };
    // The shortest segment but the last: the first, when it is short.
    let shortest = Duration::from_millis(inputs.first_segment_ms.min(u64::MAX as u128) as u64)
        .min(Duration::from_secs(SEGMENT_SECONDS.into()));
    Rendition {
        key: key_of(&plan, presentation, inputs),
        name: format!(
            "video-{height}p{}{}{}{}",
            if presentation.copy_video { "-kf" } else { "" },
            burn.map(|s| format!("-burn{s}")).unwrap_or_default(),
            if lowered {
                format!("-f{maxrate_kbps}k")
            } else {
                String::new()
            },
            presentation.suffix()
        ),
        plan,
        codecs: avc1_codec(Some("high"), None, h264_level_idc(width, height, fps)),
        bandwidth_bps: rung.peak_bps(shortest),
        average_bps: rung.average_bps(fps),
        resolution: Some((width, height)),
        channels: None,
        language: None,
        label: None,
        default: false,
        packaging,
    }
}

/// The video renditions: the copy with the rungs of the ladder beside it
/// ([`rungs_beside_copy`]), or, when the video is not copied, one encode
/// per rung of the ladder.
pub(super) fn video_renditions(
    item: &MediaItem,
    v: &VideoStream,
    presentation: Presentation,
    inputs: &KeyInputs<'_>,
) -> Vec<Rendition> {
    let packaging = presentation.packaging;
    if presentation.copy_video {
        let plan = Plan::VideoCopy;
        let copy = Rendition {
            key: key_of(&plan, presentation, inputs),
            name: format!("video-copy{}", presentation.suffix()),
            plan,
            codecs: video_copy_codecs(v),
            // The source's whole bit rate: an upper bound for its video.
            bandwidth_bps: with_headroom(item.bitrate_bps().max(64_000)),
            average_bps: item.bitrate_bps().max(64_000),
            resolution: Some((v.width, v.height)),
            channels: None,
            language: None,
            label: None,
            default: false,
            packaging,
        };
        // Beside an fMP4 copy (HEVC for Safari), H.264 rungs in fMP4 too:
        // one packaging, one `EXT-X-MAP` kind, per master playlist.
        let rungs = rungs_beside_copy(item, v, inputs.max_height);
        let mut out = vec![copy];
        out.extend(encoded_rungs(item, v, rungs, presentation, inputs));
        return out;
    }
    if !v.decodable {
        return Vec::new();
    }
    let rungs = ladder(display_size(v), fps_of(item), inputs.max_height);
    encoded_rungs(item, v, rungs, presentation, inputs)
}

/// The renditions of `rungs` (tallest first), the cap of the last lowered
/// to the presentation's floor when that is lower.
fn encoded_rungs(
    item: &MediaItem,
    v: &VideoStream,
    mut rungs: Vec<Rung>,
    presentation: Presentation,
    inputs: &KeyInputs<'_>,
) -> Vec<Rendition> {
    let last = rungs.len().saturating_sub(1);
    let mut lowered = false;
    if let (Some(floor), Some(rung)) = (presentation.floor_kbps, rungs.last_mut()) {
        lowered = floor < rung.maxrate_kbps;
        rung.maxrate_kbps = rung.maxrate_kbps.min(floor);
    }
    rungs
        .into_iter()
        .enumerate()
        .map(|(i, rung)| {
            let plan = encode_plan(v, rung, None, inputs.tonemap);
            encoded_video(item, plan, presentation, lowered && i == last, inputs)
        })
        .collect()
}

/// The rungs listed beside a copy of `v`, for players whose bandwidth
/// cannot carry the original: the rungs of the ladder of its display size
/// whose cap is below the source's bit rate (a dearer rung would cost an
/// encode and weigh more than the original it stands in for). A 1080p
/// source at 20 Mb/s keeps every rung, its 1080p one (6 Mb/s) included;
/// a 720p one at 1.6 Mb/s keeps 480p (1.4 Mb/s) and 360p. When no rung is
/// cheaper than the source, its lowest one stays, the one a bit-rate limit
/// lowers ([`crate::rendition::floor_for`]). None when the video cannot
/// be decoded.
pub(super) fn rungs_beside_copy(item: &MediaItem, v: &VideoStream, max_height: u32) -> Vec<Rung> {
    if !v.decodable {
        return Vec::new();
    }
    let source = item.bitrate_bps();
    let mut all = ladder(display_size(v), fps_of(item), max_height);
    let lowest = all.pop().expect("a ladder has a rung");
    let mut kept: Vec<Rung> = all
        .into_iter()
        .filter(|r| u64::from(r.maxrate_kbps) * 1000 < source)
        .collect();
    kept.push(lowest);
    kept
}

/// One burn-in video rendition per image subtitle track (at most
/// [`MAX_BURN_RENDITIONS`]), burned in at the size a player starts on, on
/// the cut list of `presentation` (MPEG-TS).
pub(super) fn burn_renditions(
    item: &MediaItem,
    presentation: Presentation,
    inputs: &KeyInputs<'_>,
) -> Vec<Rendition> {
    let Some(v) = item.video.as_ref().filter(|v| v.decodable) else {
        return Vec::new();
    };
    let rungs = ladder(display_size(v), fps_of(item), inputs.max_height);
    let heights: Vec<u32> = rungs.iter().map(|r| r.height).collect();
    let rung = rungs[crate::ladder::start_rung(&heights).unwrap_or(0)];
    item.subtitles
        .iter()
        .filter(|s| s.kind == SubtitleKind::Image)
        .take(MAX_BURN_RENDITIONS)
        .map(|s| {
            encoded_video(
                item,
                encode_plan(v, rung, Some(s.index), inputs.tonemap),
                presentation,
                false,
                inputs,
            )
        })
        .collect()
}
