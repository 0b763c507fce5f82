//! One file of the library as it is listed and played ([`MediaItem`]),
//! and what identifies its content on disk ([`FileStamp`]).

use super::decision::{self, Decision, Playback};
use super::id;
use super::streams::{AudioStream, MediaInfo, SubtitleStream, VideoStream};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use uuid::Uuid;

/// Headroom over a file's mean bit rate for its peak, where only the mean
/// is known (copies, audio): MPEG-TS overhead and scenes above the mean.
pub const PEAK_HEADROOM: f64 = 1.2;

/// One file of the library, as `GET /api/v1/media` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct MediaItem {
    /// Stable id: see [`id::media_id`].
    pub id: Uuid,
    /// Path relative to the media dir, `/`-separated, as text without
    /// loss ([`id::portable_path`]); shown as [`id::display`] gives it.
    #[serde(serialize_with = "super::view::path")]
    pub path: String,
    /// File size in bytes at scan time.
    pub size_bytes: u64,
    /// Duration in seconds, if known.
    pub duration_s: Option<f64>,
    /// Short container name (see [`MediaInfo::container`]).
    pub container: Option<String>,
    /// The video stream, or `null`.
    #[serde(serialize_with = "super::view::video")]
    pub video: Option<VideoStream>,
    /// Audio tracks.
    #[serde(serialize_with = "super::view::audio")]
    pub audio: Vec<AudioStream>,
    /// Subtitle tracks.
    #[serde(serialize_with = "super::view::subtitles")]
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

    /// The file's mean bit rate in bits per second, every stream and the
    /// container included: its size over its duration (0 when the
    /// duration is not known).
    pub fn bitrate_bps(&self) -> u64 {
        match self.duration_s {
            Some(d) if d > 0.0 => (self.size_bytes as f64 * 8.0 / d) as u64,
            _ => 0,
        }
    }

    /// The file's peak bit rate in bits per second, as estimated before a
    /// byte of it is sent: [`Self::bitrate_bps`] with
    /// [`PEAK_HEADROOM`]. What a client's bit-rate limit is held against
    /// for direct play and for its copy's `BANDWIDTH`.
    pub fn peak_bps(&self) -> u64 {
        (self.bitrate_bps() as f64 * PEAK_HEADROOM) as u64
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
        if let Some(limit) = profile.max_bitrate_bps {
            decision::fit_bitrate(&mut d, self.peak_bps(), limit);
        }
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
