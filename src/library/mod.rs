//! The media library: the media files of a folder, each with a stable id,
//! probed with GStreamer's Discoverer in child processes, remembered in a
//! SQLite catalogue, kept in step with the disk by watching it, with the
//! playback decision and the key frames of video that is copied.
//!
//! * [`live`]: the library as served (load from the catalogue, probe on
//!   demand, forget what is gone).
//! * [`reconcile`]: keeping it in step with the disk (listings, watcher
//!   paths, the settle wait, the probe queue, sidecars).
//! * [`catalogue`]: the SQLite database of probe results and key frames.
//! * [`progress`]: each user's playback position per item, in the same
//!   database.
//! * [`prober`]: the pool of prober children (`hlsd probe --worker`).
//! * [`watch`]: inotify events and the polling fallback.
//! * [`scan`]: which files are media, and listing folders.
//! * [`items`]: the in-memory item set and its pages (pure).
//! * [`decision`]: how a file plays (pure); [`probe`]: the Discoverer.
//!
//! Everything but [`probe`], [`prober`] and the demux pass of
//! [`keyframes`] is free of GStreamer.

pub mod catalogue;
pub mod decision;
mod figures;
pub mod id;
mod items;
pub mod language;
mod live;
pub mod passes;
pub mod probe;
mod prober;
pub mod progress;
mod reconcile;
mod scan;
pub mod sidecar;
mod tasks;
mod view;
mod watch;

pub use decision::{decide, decide_for, AudioPlan, Decision, Playback, VideoPlan};
pub use figures::{ChangeWatch, LibraryFigures};
pub use items::{Lookup, Page, PageQuery, PlaybackFilter, DEFAULT_PAGE, MAX_PAGE};
pub use live::{Library, Unavailable};
pub use prober::{print_probes, run_worker};
pub use reconcile::ScanReport;
pub use scan::{is_media_file, MEDIA_EXTENSIONS};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use uuid::Uuid;

/// The video stream a file plays with, as the Discoverer reported it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VideoStream {
    /// Short codec name: `h264`, `hevc`, `vp9`, `av1`, `mpeg2video`, ...
    pub codec: String,
    /// Codec profile as GStreamer's caps spell it (`high`, `main-10`), if known.
    pub profile: Option<String>,
    /// Codec level as caps spell it (`3.1`), if known.
    pub level: Option<String>,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Frames per second (0 when the container does not say).
    pub fps: f64,
    /// Bits per luma sample (8, 10, 12), if known.
    pub bit_depth: Option<u32>,
    /// Chroma subsampling as caps spell it (`4:2:0`), if known.
    pub chroma_format: Option<String>,
    /// Pixel aspect ratio as (numerator, denominator).
    pub pixel_aspect: (u32, u32),
    /// Whether the frames are interlaced (then a deinterlacer is added).
    pub interlaced: bool,
    /// Clockwise rotation in degrees from the `image-orientation` tag.
    pub rotation: u32,
    /// Whether this machine's GStreamer has a decoder for it.
    pub decodable: bool,
    /// GStreamer stream id, used to pick this stream in the pipeline.
    pub stream_id: Option<String>,
}

/// One audio track.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AudioStream {
    /// Its place among the file's audio tracks, from 0: what `audio=`
    /// names.
    pub index: usize,
    /// Short codec name: `aac`, `mp3`, `ac3`, `eac3`, `dts`, `vorbis`, `flac`, ...
    pub codec: String,
    /// Channel count.
    pub channels: u32,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Codec profile as caps spell it (AAC: `lc`, `he-aac`, `he-aac-v2`).
    pub profile: Option<String>,
    /// Language as ISO 639-1 (`en`) where it has one, else the tag as the
    /// file gives it (an ISO 639-2 code such as `gsw`); `null` if untagged.
    pub language: Option<String>,
    /// The track's title (`Director's commentary`), if tagged.
    pub title: Option<String>,
    /// Whether the file marks it as the default track.
    pub default: bool,
    /// Whether this machine's GStreamer has a decoder for it.
    pub decodable: bool,
    /// GStreamer stream id, used to pick this track in the pipeline.
    pub stream_id: Option<String>,
}

/// Whether a subtitle track is text (served as WebVTT) or pictures
/// (burned into the video on request).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SubtitleKind {
    /// Timed text: SubRip, WebVTT, ASS/SSA, `tx3g`.
    Text,
    /// Bitmaps: PGS (Blu-ray), VobSub (DVD), DVB.
    Image,
}

/// Where a subtitle track comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SubtitleSource {
    /// A track inside the media file.
    Embedded {
        /// GStreamer stream id, to pick the track in a pipeline.
        stream_id: Option<String>,
    },
    /// A file next to the media file (`film.en.srt`).
    Sidecar {
        /// Its file name, in the media file's folder, as text without loss
        /// ([`id::name_text`]).
        file: String,
        /// Whether its name marks it as for the deaf and hard of hearing
        /// (`.sdh.`, `.cc.`, `.hi.`).
        sdh: bool,
        /// Absolute path on disk (not serialised).
        path: PathBuf,
    },
}

/// One subtitle track, embedded or sidecar.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubtitleStream {
    /// Its place in the item's subtitle list (embedded tracks first, in
    /// file order, then sidecars by name): what `subtitle=` and `burn=`
    /// name.
    pub index: usize,
    /// Short codec name: `subrip`, `webvtt`, `ass`, `pgs`, `dvdsub`, `dvbsub`, ...
    pub codec: String,
    /// Text or image.
    pub kind: SubtitleKind,
    /// Language as for [`AudioStream::language`].
    pub language: Option<String>,
    /// The track's title, if tagged.
    pub title: Option<String>,
    /// Only for foreign-language passages (a `.forced.` sidecar, or a title
    /// that says "forced").
    pub forced: bool,
    /// Whether the file marks it as the default track.
    pub default: bool,
    /// Embedded or sidecar.
    #[serde(flatten)]
    pub source: SubtitleSource,
}

impl SubtitleStream {
    /// The subtitle kind of a codec name ([`SubtitleStream::codec`]).
    pub fn kind_of(codec: &str) -> SubtitleKind {
        match codec {
            "pgs" | "dvdsub" | "dvbsub" => SubtitleKind::Image,
            _ => SubtitleKind::Text,
        }
    }
}

/// What the Discoverer found in a file, in plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Duration, if the file declares one.
    pub duration: Option<std::time::Duration>,
    /// Short container name: `mp4`, `mov`, `matroska`, `webm`, `avi`,
    /// `mpegts`, `mpeg-ps`, `ogg`, or the bare stream's codec for files
    /// without a container (`flac`, `mp3`).
    pub container: Option<String>,
    /// The first video stream, if any.
    pub video: Option<VideoStream>,
    /// Every audio track in file order.
    pub audio: Vec<AudioStream>,
    /// Every subtitle track in file order.
    pub subtitles: Vec<SubtitleStream>,
    /// Why probing failed, when it did; the file is then unplayable.
    pub probe_error: Option<String>,
}

/// One file of the library, as `GET /api/v1/media` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct MediaItem {
    /// Stable id: see [`id::media_id`].
    pub id: Uuid,
    /// Path relative to the media dir, `/`-separated, as text without
    /// loss ([`id::portable_path`]); shown as [`id::display`] gives it.
    #[serde(serialize_with = "view::path")]
    pub path: String,
    /// File size in bytes at scan time.
    pub size_bytes: u64,
    /// Duration in seconds, if known.
    pub duration_s: Option<f64>,
    /// Short container name (see [`MediaInfo::container`]).
    pub container: Option<String>,
    /// The video stream, or `null`.
    #[serde(serialize_with = "view::video")]
    pub video: Option<VideoStream>,
    /// Audio tracks.
    #[serde(serialize_with = "view::audio")]
    pub audio: Vec<AudioStream>,
    /// Subtitle tracks.
    #[serde(serialize_with = "view::subtitles")]
    pub subtitles: Vec<SubtitleStream>,
    /// `false` while the file waits to be probed: it is then listed with
    /// `playable: false` and the reason `not_probed_yet`, and a request
    /// for it probes it at once.
    pub probed: bool,
    /// Whether any stream of it can be played.
    pub playable: bool,
    /// How it plays, when playable.
    pub playback: Option<Playback>,
    /// Why: see [`Decision::reasons`].
    pub reasons: Vec<String>,
    /// Absolute path on disk (not serialised: clients never see it).
    #[serde(skip)]
    pub abs_path: PathBuf,
    /// The file's size, modification time, inode and device when it was
    /// probed.
    #[serde(skip)]
    pub stamp: FileStamp,
    /// The full decision, with the plan the pipeline follows.
    #[serde(skip)]
    pub decision: Decision,
}

impl MediaItem {
    /// The item for the file at `path` under the media dir `root`, of
    /// `size_bytes` modified at `modified`, from its probe `info` and
    /// `decision`. A duration the file cannot back
    /// ([`crate::timeline::plausible_duration`]) is not listed: it becomes
    /// `null` with the reason `duration_untrusted:SECONDS`, and the item
    /// plays with a growing playlist until its real end is found.
    pub fn from_probe(
        root: &Path,
        path: &Path,
        stamp: FileStamp,
        info: &MediaInfo,
        mut decision: Decision,
    ) -> MediaItem {
        let size_bytes = stamp.size_bytes;
        let relative = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        let duration = info.duration.filter(|d| !d.is_zero());
        let trusted = duration.filter(|d| crate::timeline::plausible_duration(*d, size_bytes));
        if let (Some(d), None) = (duration, trusted) {
            decision
                .reasons
                .push(format!("duration_untrusted:{:.1}", d.as_secs_f64()));
        }
        MediaItem {
            id: id::media_id(&relative),
            path: id::portable_path(&relative),
            size_bytes,
            duration_s: trusted.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
            container: info.container.clone(),
            video: info.video.clone(),
            audio: info.audio.clone(),
            subtitles: info.subtitles.clone(),
            probed: true,
            playable: decision.playback.is_some(),
            playback: decision.playback,
            reasons: decision.reasons.clone(),
            abs_path: path.to_path_buf(),
            stamp,
            decision,
        }
    }

    /// The decision for a client with `profile`: the stored one for
    /// `generic` and for items that cannot play at all (not probed, probe
    /// failed, no stream), else made again from the probed streams.
    pub fn decision_for(&self, profile: &crate::profile::ClientProfile) -> Decision {
        if *profile == crate::profile::ClientProfile::generic() || self.decision.playback.is_none()
        {
            return self.decision.clone();
        }
        let info = MediaInfo {
            duration: self.duration_s.map(std::time::Duration::from_secs_f64),
            container: self.container.clone(),
            video: self.video.clone(),
            audio: self.audio.clone(),
            subtitles: self.subtitles.clone(),
            probe_error: None,
        };
        let mut d = decision::decide_for(&info, profile);
        d.reasons.extend(
            self.reasons
                .iter()
                .filter(|r| r.starts_with("duration_untrusted:"))
                .cloned(),
        );
        d
    }

    /// The item for a file at `path` under `root` that is known but not
    /// probed yet: listed, not playable, reason `not_probed_yet`.
    pub fn pending(root: &Path, path: &Path, stamp: FileStamp) -> MediaItem {
        let decision = Decision {
            playback: None,
            reasons: vec!["not_probed_yet".to_string()],
            ..Decision::default()
        };
        MediaItem {
            probed: false,
            ..MediaItem::from_probe(root, path, stamp, &MediaInfo::default(), decision)
        }
    }
}

/// What identifies a file's content for the catalogue: if any of these
/// changed, the file is probed again, and direct play serves only a file
/// whose device, inode and size are still these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStamp {
    /// Size in bytes.
    pub size_bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 if unknown).
    pub mtime_ns: i64,
    /// Inode number (0 where the platform has none).
    pub inode: u64,
    /// Device number of the file system holding it.
    pub device: u64,
}

impl FileStamp {
    /// The stamp of a file from its metadata (symlinks followed).
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            size_bytes: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }

    /// The modification time as a [`SystemTime`].
    pub fn modified(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(self.mtime_ns.max(0) as u64)
    }
}
