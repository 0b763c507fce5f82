//! What fits a client: the video renditions offered within its height
//! and bit-rate limits, and the lowered cap of a lowest rung when none
//! does. Pure.

use super::choice::Choice;
use super::set::RenditionSet;
use super::{Plan, Rendition};

/// The video renditions a client is offered: the copy and every rung no
/// taller than `max_height` lines whose variant's `BANDWIDTH` (the
/// rendition's and the largest of the `audio` offered) is at most
/// `max_bitrate_bps`, else the cheapest encoded rung (else the copy). Burn-in renditions are
/// chosen by name, never offered.
pub fn video_options(
    renditions: &[Rendition],
    audio: RenditionSet,
    max_height: Option<u32>,
    max_bitrate_bps: Option<u64>,
) -> RenditionSet {
    let rungs: Vec<usize> = renditions
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            *i < RenditionSet::CAPACITY
                && matches!(
                    r.plan,
                    Plan::VideoCopy | Plan::VideoEncode { burn: None, .. }
                )
        })
        .map(|(i, _)| i)
        .collect();
    let audio_bps = audio
        .iter()
        .filter_map(|i| renditions.get(i))
        .map(|r| r.bandwidth_bps)
        .max()
        .unwrap_or(0);
    let fits = |r: &Rendition| {
        max_height.is_none_or(|m| r.resolution.is_none_or(|(_, h)| h <= m))
            && max_bitrate_bps.is_none_or(|m| r.bandwidth_bps + audio_bps <= m)
    };
    let fitting: RenditionSet = rungs
        .iter()
        .copied()
        .filter(|i| fits(&renditions[*i]))
        .collect();
    if !fitting.is_empty() {
        return fitting;
    }
    // Nothing fits: the cheapest encoded rung (a limit then lowers its
    // cap), else the copy.
    rungs
        .iter()
        .min_by_key(|i| {
            (
                renditions[**i].plan.is_copy(),
                renditions[**i].bandwidth_bps,
            )
        })
        .map_or(RenditionSet::EMPTY, |i| RenditionSet::one(*i))
}

/// The richest of the video renditions `choice` offers (the largest
/// `BANDWIDTH`): where a client held to a bit-rate limit starts, since
/// every variant it is offered fits its link. `None` without video.
pub fn richest(renditions: &[Rendition], choice: &Choice) -> Option<usize> {
    let offered = || {
        choice
            .video_options
            .iter()
            .filter(|i| renditions.get(*i).is_some_and(|r| r.plan.is_video()))
    };
    // The original first, when it is offered (it fits).
    offered()
        .find(|i| renditions[*i].plan == Plan::VideoCopy)
        .or_else(|| offered().max_by_key(|i| renditions[*i].bandwidth_bps))
}

/// The cap, in kilobits per second, to lower the lowest rung to when the
/// variant `choice` plays does not fit `limit_bps` (its video's
/// `BANDWIDTH` plus the largest audio offered): the most under which its
/// peak, VBV buffer and container included, fits beside that audio, at
/// least [`crate::ladder::FLOOR_KBPS`]. `None` when it fits, when there
/// is no limit, or when the video is not an encoded rung.
pub fn floor_for(renditions: &[Rendition], choice: &Choice, limit_bps: Option<u64>) -> Option<u32> {
    let limit = limit_bps?;
    let video = &renditions[choice.video?];
    let Plan::VideoEncode {
        maxrate_kbps,
        burn: None,
        ..
    } = video.plan
    else {
        return None;
    };
    let audio = choice
        .audio_options
        .iter()
        .filter_map(|i| renditions.get(i))
        .map(|r| r.bandwidth_bps)
        .max()
        .unwrap_or(0);
    if video.bandwidth_bps + audio <= limit {
        return None;
    }
    // Peak bits per second per bit per second of cap, for this rung.
    let per_cap = video.bandwidth_bps as f64 / (f64::from(maxrate_kbps) * 1000.0);
    let budget = limit.saturating_sub(audio) as f64;
    let cap = (budget / per_cap / 1000.0).floor() as u32;
    // One of a few caps, so that limits a little apart share one title
    // (and one encode) rather than each making its own.
    let step = FLOOR_STEPS_KBPS
        .iter()
        .copied()
        .rev()
        .find(|s| *s <= cap)
        .unwrap_or(crate::ladder::FLOOR_KBPS);
    Some(step.clamp(crate::ladder::FLOOR_KBPS, maxrate_kbps))
}

/// The caps a lowest rung may be lowered to, in kilobits per second: a
/// limit gets the largest at or under what fits it.
pub(super) const FLOOR_STEPS_KBPS: [u32; 10] = [48, 64, 96, 128, 192, 256, 384, 512, 640, 768];

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(plan: Plan, bandwidth_bps: u64) -> Rendition {
        Rendition {
            name: format!("{plan:?}"),
            plan,
            codecs: String::new(),
            bandwidth_bps,
            average_bps: bandwidth_bps,
            resolution: None,
            channels: None,
            language: None,
            label: None,
            default: false,
            key: String::new(),
            packaging: crate::packaging::Packaging::Ts,
        }
    }

    #[test]
    fn a_limit_no_rung_fits_lowers_the_lowest_rungs_cap() {
        let low = rendition(
            Plan::VideoEncode {
                width: 640,
                height: 360,
                maxrate_kbps: 830,
                deinterlace: false,
                rotate: false,
                burn: None,
                tonemap: None,
            },
            1_320_000,
        );
        let audio = rendition(Plan::AudioEncode { track: 0 }, 153_600);
        let r = vec![low, audio];
        let choice = Choice {
            video: Some(0),
            audio: Some(1),
            audio_options: RenditionSet::one(1),
            video_options: RenditionSet::one(0),
            ..Choice::default()
        };
        assert_eq!(floor_for(&r, &choice, None), None);
        assert_eq!(floor_for(&r, &choice, Some(2_000_000)), None);
        // 300 kb/s: 146.4 kb/s left for a peak of 1.59 times the cap:
        // 92 kb/s, whose step is 64.
        let cap = floor_for(&r, &choice, Some(300_000)).expect("a lower cap");
        assert_eq!(cap, 64);
        assert_eq!(floor_for(&r, &choice, Some(305_000)), Some(64), "shared");
        let peak = u64::from(cap) * 1_320_000 / 830;
        assert!(peak + 153_600 <= 300_000, "{peak}");
        // Never below the floor, however low the limit.
        assert_eq!(
            floor_for(&r, &choice, Some(150_000)),
            Some(crate::ladder::FLOOR_KBPS)
        );
    }

    #[test]
    fn a_limited_client_starts_on_the_richest_variant_offered() {
        let video = |kbps: u32, bw: u64| {
            rendition(
                Plan::VideoEncode {
                    width: 2,
                    height: 2,
                    maxrate_kbps: kbps,
                    deinterlace: false,
                    rotate: false,
                    burn: None,
                    tonemap: None,
                },
                bw,
            )
        };
        let r = vec![
            video(2900, 4_600_000),
            video(1400, 2_200_000),
            video(830, 1_300_000),
            rendition(Plan::AudioEncode { track: 0 }, 153_600),
        ];
        let choice = Choice {
            video: Some(2),
            video_options: RenditionSet::from_bits(0b110),
            ..Choice::default()
        };
        assert_eq!(richest(&r, &choice), Some(1));
        assert_eq!(richest(&r, &Choice::default()), None);
    }
}
