//! Packing one rendition's access units into its segment container, for
//! the segment writer ([`super::segmenter`]): MPEG-TS ([`super::ts`]), or
//! fragmented MP4 ([`super::fmp4`]), whose track is configured from the
//! stream's caps at the first access unit, when the rendition's init
//! segment is written too (once: a producer that finds it leaves it).

use super::fmp4::{CopiedVideo, Fmp4Muxer};
use super::ts::{self, Streams, TsMuxer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers the `.part` files of init segments within this process.
static INIT_PARTS: AtomicU64 = AtomicU64::new(0);

/// 90 kHz ticks of an output time (ns).
pub fn ticks(output_ns: u64) -> u64 {
    output_ns * 9 / 100_000
}

/// A write failure, with the `.part` file it concerns.
#[derive(Debug)]
pub struct WriteError {
    /// The file being written.
    pub part: PathBuf,
    /// What went wrong.
    pub error: std::io::Error,
}

/// Which elementary stream a writer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Video access units: H.264 Annex B byte-stream for MPEG-TS; for
    /// fMP4 as [`super::fmp4`] takes them.
    Video,
    /// Audio frames: ADTS AAC for MPEG-TS; for fMP4 also raw AAC, Opus,
    /// FLAC.
    Audio,
}

/// An access unit to pack: output times in ns.
pub struct Unit<'a> {
    /// Its bytes.
    pub data: &'a [u8],
    /// Presentation time.
    pub pts: u64,
    /// Decode time, when it differs or is known.
    pub dts: Option<u64>,
    /// Whether it is a key frame (every audio frame is).
    pub key: bool,
}

/// The container a writer packs access units into.
pub enum Packager {
    /// MPEG-TS, with the ADTS sampling index of the audio's caps (which
    /// every header must carry: [`super::adts`]).
    Ts {
        mux: Box<TsMuxer>,
        adts_index: Option<u8>,
    },
    /// Fragmented MP4.
    Fmp4 {
        mux: Fmp4Muxer,
        caps: Option<gst::Caps>,
        copied: CopiedVideo,
        configured: bool,
    },
}

impl Packager {
    /// MPEG-TS for a `kind` stream.
    pub fn ts(kind: StreamKind) -> Self {
        Packager::Ts {
            mux: Box::new(TsMuxer::new(Streams {
                video: kind == StreamKind::Video,
                audio: kind == StreamKind::Audio,
            })),
            adts_index: None,
        }
    }

    /// Fragmented MP4 for a `kind` stream; a copied video's sample entry
    /// says what `copied` does (its rotation, its Dolby Vision record).
    pub fn fmp4(kind: StreamKind, copied: CopiedVideo) -> Self {
        Packager::Fmp4 {
            mux: Fmp4Muxer::new(kind == StreamKind::Video),
            caps: None,
            copied,
            configured: false,
        }
    }

    /// Takes the stream's caps: an fMP4 track is configured from them;
    /// their audio rate is the one every ADTS header must carry, and MPEG
    /// audio (MP3) gets its own stream type in MPEG-TS.
    pub fn set_caps(&mut self, kind: StreamKind, caps: &gst::CapsRef) {
        match self {
            Packager::Fmp4 { caps: mine, .. } => *mine = Some(caps.to_owned()),
            Packager::Ts { mux, adts_index } if kind == StreamKind::Audio => {
                let s = caps.structure(0);
                let rate = s
                    .and_then(|s| s.get::<i32>("rate").ok())
                    .and_then(|r| u32::try_from(r).ok());
                let mp3 = s.is_some_and(|s| s.get::<i32>("mpegversion").ok() == Some(1));
                if mp3 {
                    mux.set_audio(ts::TsAudio::Mpeg {
                        rate: rate.unwrap_or(44_100),
                    });
                    *adts_index = None;
                } else {
                    *adts_index = rate.and_then(super::adts::sampling_index);
                }
            }
            Packager::Ts { .. } => {}
        }
    }

    /// Whether `buffer` is not an access unit of the segments: in fMP4, an
    /// audio stream header (FLAC's, Opus's: they are in the init segment)
    /// or other metadata (FLAC's `VORBIS_COMMENT` block comes undated and
    /// without a duration). Video parsers flag key frames that carry
    /// parameter sets as headers too: those are samples.
    pub fn skips(&self, kind: StreamKind, buffer: &gst::BufferRef) -> bool {
        let metadata = buffer.flags().contains(gst::BufferFlags::HEADER)
            || (buffer.pts().is_none() && buffer.dts().is_none() && buffer.duration().is_none());
        matches!(self, Packager::Fmp4 { .. }) && kind == StreamKind::Audio && metadata
    }

    /// For fMP4, at the first access unit (`first`): configures the track
    /// from the caps and writes the init segment at `init_path` unless it
    /// is there.
    ///
    /// # Errors
    /// No caps, caps without what the sample entry needs, or an init
    /// segment that cannot be written.
    pub fn configure(&mut self, first: &[u8], init_path: &Path) -> Result<(), WriteError> {
        let Packager::Fmp4 {
            mux,
            caps,
            copied,
            configured,
        } = self
        else {
            return Ok(());
        };
        if *configured {
            return Ok(());
        }
        let failed = |error: std::io::Error| WriteError {
            part: init_path.to_path_buf(),
            error,
        };
        let caps = caps
            .as_ref()
            .ok_or_else(|| failed(std::io::Error::other("a stream without caps")))?;
        let track = super::fmp4::track(caps, first, copied)
            .map_err(|e| failed(std::io::Error::other(e)))?;
        mux.configure(&track, first);
        *configured = true;
        if !init_path.exists() {
            let n = INIT_PARTS.fetch_add(1, Ordering::Relaxed);
            let part = init_path.with_extension(format!("mp4.{}-{n}.part", std::process::id()));
            let written = std::fs::write(&part, super::fmp4::boxes::init_segment(&track))
                .and_then(|()| std::fs::rename(&part, init_path));
            if let Err(error) = written {
                let _ = std::fs::remove_file(&part);
                return Err(WriteError { part, error });
            }
        }
        Ok(())
    }

    /// Begins segment `index` in `buf`.
    pub fn begin(&mut self, buf: &mut Vec<u8>, index: usize) {
        match self {
            Packager::Ts { mux, .. } => mux.begin_segment(buf, index),
            Packager::Fmp4 { mux, .. } => mux.begin_segment(index),
        }
    }

    /// Packs `unit` of a `kind` stream (`last`: the segment's last).
    pub fn write(&mut self, buf: &mut Vec<u8>, kind: StreamKind, unit: Unit<'_>, last: bool) {
        match self {
            Packager::Fmp4 { mux, .. } => {
                mux.add(unit.data, unit.dts.unwrap_or(unit.pts), unit.pts, unit.key)
            }
            Packager::Ts { mux, .. } if kind == StreamKind::Video => mux.write_video(
                buf,
                unit.data,
                ticks(unit.pts),
                unit.dts.map(ticks),
                unit.key,
                last,
            ),
            Packager::Ts { mux, adts_index } => {
                let fixed = adts_index.and_then(|i| super::adts::with_sampling_index(unit.data, i));
                let data = fixed.as_deref().unwrap_or(unit.data);
                mux.push_audio(buf, data, ticks(unit.pts), last)
            }
        }
    }

    /// Ends the segment in `buf`: `next_dts` is the output decode time
    /// (ns) of the next segment's first access unit, if it is known (the
    /// PCR gap is filled up to its PCR; an fMP4 fragment's last sample
    /// lasts until it, else `last_duration` ns).
    pub fn end(&mut self, buf: &mut Vec<u8>, next_dts: Option<u64>, last_duration: u64) {
        match self {
            Packager::Ts { mux, .. } => {
                mux.flush_audio(buf, true);
                if let Some(dts) = next_dts {
                    mux.fill_pcr_gap(buf, ts::pcr_for(ticks(dts)));
                }
            }
            Packager::Fmp4 { mux, .. } => mux.finish_segment(buf, next_dts, last_duration),
        }
    }
}
