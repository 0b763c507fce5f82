//! A fragmented-MP4 (CMAF) writer for one track, for renditions whose
//! codec hlsd's MPEG-TS does not carry (HEVC, AV1, VP9, Opus, FLAC, AC-3,
//! E-AC-3) and for the
//! H.264 and AAC beside them (ISO/IEC 23000-19; RFC 8216 §3.3).
//!
//! Every segment is one CMAF fragment, `moof` + `mdat`, of the one track
//! its init segment (`EXT-X-MAP`, [`boxes::init_segment`]) declares:
//! - `tfhd` with `default-base-is-moof` and a `trun` with each sample's
//!   duration, size, flags and (for video) signed composition offset, so
//!   that no sample depends on another fragment's boxes;
//! - `tfdt` = the first sample's decode time, in the track's timescale (90
//!   kHz for video, as MPEG-TS; the sampling rate for audio), with the same
//!   3600 s offset as the TS segments: segment `n` carries the same times
//!   whichever producer made it, and a sample's duration runs to the next
//!   sample's decode time, the next segment's first one for the last;
//! - samples as ISOBMFF stores them: length-prefixed NAL units (the
//!   parsers' `avc`/`hvc1` formats; for `hvc1` without the VPS, SPS and PPS
//!   a source repeats in-band, which that sample entry's `hvcC` holds
//!   complete: ISO/IEC 14496-15, 8.4.1, `array_completeness`), AV1 temporal
//!   units without temporal delimiters, AAC without ADTS headers.

pub mod boxes;
mod colour;
mod config;
mod dolby;

pub use boxes::CopiedVideo;
pub use config::{track, VIDEO_TIMESCALE};

use boxes::{Sample, Track};

/// How access units are changed into samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Strip {
    /// Taken as they are.
    #[default]
    Nothing,
    /// ADTS headers removed (encoded AAC).
    Adts,
    /// Temporal delimiter OBUs removed (AV1).
    TemporalDelimiters,
    /// Parameter set NAL units of this codec removed; NAL units are
    /// prefixed with lengths of this many bytes.
    ParameterSets(usize, config::NalCodec),
}

/// A sample of the fragment being gathered: times in timescale ticks.
struct Pending {
    dts: u64,
    pts: u64,
    size: u32,
    sync: bool,
}

/// One track's fragment writer. Segments are gathered in memory (a
/// `moof` needs every sample's size before the data) and written whole.
#[derive(Default)]
pub struct Fmp4Muxer {
    video: bool,
    timescale: u32,
    strip: Strip,
    sequence: u32,
    samples: Vec<Pending>,
    data: Vec<u8>,
}

impl Fmp4Muxer {
    /// A writer for a video (`video`) or audio track, not configured yet.
    pub fn new(video: bool) -> Self {
        Fmp4Muxer {
            video,
            timescale: VIDEO_TIMESCALE,
            ..Default::default()
        }
    }

    /// Takes the track its init segment declares (its timescale, and how
    /// its access units become samples).
    pub fn configure(&mut self, track: &Track, first: &[u8]) {
        self.timescale = track.timescale.max(1);
        self.strip = match &track.entry {
            boxes::SampleEntry::Video {
                format: [b'a', b'v', b'0', b'1'],
                ..
            } => Strip::TemporalDelimiters,
            // hvcC: lengthSizeMinusOne in the low bits of byte 21.
            boxes::SampleEntry::Video {
                format: [b'h', b'v', b'c', b'1'],
                config,
                ..
            } => Strip::ParameterSets(
                config.get(21).map_or(4, |b| usize::from(b & 3) + 1),
                config::NalCodec::Hevc,
            ),
            // avcC: lengthSizeMinusOne in the low bits of byte 4.
            boxes::SampleEntry::Video {
                format: [b'a', b'v', b'c', b'1'],
                config,
                ..
            } => Strip::ParameterSets(
                config.get(4).map_or(4, |b| usize::from(b & 3) + 1),
                config::NalCodec::H264,
            ),
            boxes::SampleEntry::Audio { format, .. }
                if format == b"mp4a" && config::adts_header_len(first).is_some() =>
            {
                Strip::Adts
            }
            _ => Strip::Nothing,
        };
    }

    /// Ticks of the track's timescale in `ns` nanoseconds, rounded.
    pub fn ticks(&self, ns: u64) -> u64 {
        ((u128::from(ns) * u128::from(self.timescale) + 500_000_000) / 1_000_000_000) as u64
    }

    /// Starts segment `index` (fragment sequence number `index + 1`).
    pub fn begin_segment(&mut self, index: usize) {
        self.sequence = u32::try_from(index + 1).unwrap_or(u32::MAX);
        self.samples.clear();
        self.data.clear();
    }

    /// Adds an access unit decoded at `dts_ns` and shown at `pts_ns`
    /// (output times, ns).
    pub fn add(&mut self, unit: &[u8], dts_ns: u64, pts_ns: u64, sync: bool) {
        let start = self.data.len();
        match self.strip {
            Strip::Nothing => self.data.extend_from_slice(unit),
            Strip::Adts => {
                let skip = config::adts_header_len(unit).unwrap_or(0);
                self.data.extend_from_slice(&unit[skip.min(unit.len())..]);
            }
            Strip::TemporalDelimiters => match config::strip_temporal_delimiters(unit) {
                Some(stripped) => self.data.extend_from_slice(&stripped),
                None => self.data.extend_from_slice(unit),
            },
            Strip::ParameterSets(length_size, codec) => {
                match config::strip_parameter_sets(unit, length_size, codec) {
                    Some(stripped) => self.data.extend_from_slice(&stripped),
                    None => self.data.extend_from_slice(unit),
                }
            }
        }
        let size = u32::try_from(self.data.len() - start).unwrap_or(u32::MAX);
        if size == 0 {
            return;
        }
        let (dts, pts) = (self.ticks(dts_ns), self.ticks(pts_ns));
        self.samples.push(Pending {
            dts,
            pts,
            size,
            sync,
        });
    }

    /// Writes the segment gathered into `out`: its `moof` and `mdat`.
    /// The last sample lasts until `next_dts_ns` (the next segment's first
    /// decode time) when it is known, else `last_duration_ns`, else as
    /// long as the one before it.
    pub fn finish_segment(
        &mut self,
        out: &mut Vec<u8>,
        next_dts_ns: Option<u64>,
        last_duration_ns: u64,
    ) {
        if self.samples.is_empty() {
            return;
        }
        let next = next_dts_ns.map(|n| self.ticks(n));
        let last_duration = self.ticks(last_duration_ns);
        let count = self.samples.len();
        let samples: Vec<Sample> = (0..count)
            .map(|i| {
                let s = &self.samples[i];
                let end = match self.samples.get(i + 1) {
                    Some(n) => n.dts,
                    None => next.filter(|n| *n > s.dts).unwrap_or_else(|| {
                        let previous = i
                            .checked_sub(1)
                            .map(|p| s.dts.saturating_sub(self.samples[p].dts));
                        s.dts
                            + if last_duration > 0 {
                                last_duration
                            } else {
                                previous.unwrap_or(1)
                            }
                    }),
                };
                Sample {
                    size: s.size,
                    duration: u32::try_from(end.saturating_sub(s.dts)).unwrap_or(u32::MAX),
                    composition_offset: i32::try_from(s.pts as i64 - s.dts as i64).unwrap_or(0),
                    sync: s.sync,
                }
            })
            .collect();
        out.extend_from_slice(&boxes::moof(
            self.sequence,
            self.samples[0].dts,
            &samples,
            self.video,
        ));
        let mdat_size = u32::try_from(8 + self.data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&mdat_size.to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&self.data);
        self.samples.clear();
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxes::SampleEntry;

    fn audio_track() -> Track {
        Track {
            timescale: 48_000,
            entry: SampleEntry::Audio {
                format: *b"mp4a",
                channels: 2,
                rate: 48_000,
                config: vec![0x11, 0x90],
            },
        }
    }

    #[test]
    fn a_fragment_holds_its_samples_back_to_back_with_durations_to_the_next() {
        let mut m = Fmp4Muxer::new(false);
        let adts = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x1F, 0xFC, 0xAA, 0xBB];
        m.configure(&audio_track(), &adts);
        m.begin_segment(4);
        let frame_ns = 1024 * 1_000_000_000 / 48_000;
        let t0 = 3_600_000_000_000;
        m.add(&adts, t0, t0, true);
        m.add(&adts, t0 + frame_ns, t0 + frame_ns, true);
        let mut out = Vec::new();
        m.finish_segment(&mut out, Some(t0 + 3 * frame_ns), 0);
        // moof then mdat holding the two payloads without headers.
        assert!(out.ends_with(&[0, 0, 0, 12, b'm', b'd', b'a', b't', 0xAA, 0xBB, 0xAA, 0xBB]));
        let trun = out.windows(4).position(|w| w == b"trun").unwrap();
        let first = &out[trun + 16..trun + 24];
        // 1024 ticks long, 2 bytes.
        assert_eq!(first, [0, 0, 4, 0, 0, 0, 0, 2]);
        let second = &out[trun + 28..trun + 32];
        assert_eq!(second, [0, 0, 8, 0], "the last runs to the next segment");
        let mfhd = out.windows(4).position(|w| w == b"mfhd").unwrap();
        assert_eq!(&out[mfhd + 8..mfhd + 12], &5u32.to_be_bytes());
    }
}
