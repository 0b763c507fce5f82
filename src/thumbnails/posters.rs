//! Poster frames: a picture of a title for a library page, the key
//! frame nearest a time, decoded alone ([`crate::library::passes::still`])
//! and kept in memory for every user.
//!
//! Pictures are made by at most [`MAKERS`] decodes at once (a library page
//! asks for one per item); a request that would wait behind more than
//! [`WAITING`] others is told to come back (503 with `Retry-After`).

use crate::library::passes::still::{key_frame_jpeg, Seek, Still};
use crate::library::MediaItem;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Width of a poster frame, pixels (Jellyfin's trickplay and the issue's
/// thumbnails use 320).
pub const WIDTH: u32 = 320;
/// Decodes that may run at once.
const MAKERS: usize = 2;
/// Requests that may wait for a decode.
const WAITING: usize = 32;
/// Pictures kept in memory (about 15 KB each at 320 px).
const KEPT: usize = 512;
/// How long one picture may take to make.
const LIMIT: Duration = Duration::from_secs(20);
/// Where a poster frame is taken when no time is asked: this share of
/// the duration, at most [`DEFAULT_AT_MOST`] in.
const DEFAULT_SHARE: f64 = 0.1;
/// See [`DEFAULT_SHARE`].
const DEFAULT_AT_MOST: Duration = Duration::from_secs(300);

/// Why no picture was given.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// `--no-thumbnails`.
    #[error("thumbnails are turned off on this server (--no-thumbnails)")]
    Off,
    /// The item has no video.
    #[error("{0} has no video to take a picture of")]
    NoVideo(String),
    /// Too many pictures are being made.
    #[error("too many pictures are being made; retry shortly")]
    Busy,
    /// The file did not give one.
    #[error("no picture of {path}: {reason}")]
    Failed {
        /// The item's path in the library.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// A picture, as served.
#[derive(Debug, Clone)]
pub struct Picture {
    /// JPEG bytes.
    pub jpeg: Bytes,
    /// The key frame's time in the file, the time asked for rounded to it.
    pub at: Duration,
}

/// The seek that lands on the key frame of `keys` (times, ascending)
/// nearest `at`: a time after it, halfway to the next one, and the key
/// frame at or before that. Halfway, so that a stream whose times start a
/// little after 0 (the index counts from 0) still lands on it.
pub fn seek_for(keys: &[Duration], at: Duration) -> Seek {
    let after = keys.partition_point(|k| *k <= at);
    let nearest = match (after.checked_sub(1).map(|i| keys[i]), keys.get(after)) {
        (Some(before), Some(next)) if next.saturating_sub(at) < at.saturating_sub(before) => after,
        (Some(_), _) => after - 1,
        (None, Some(_)) => 0,
        (None, None) => return Seek::Nearest(at),
    };
    let key = keys[nearest];
    let halfway = keys
        .get(nearest + 1)
        .map_or(Duration::from_millis(500), |next| {
            next.saturating_sub(key) / 2
        });
    Seek::Before(key + halfway)
}

/// Poster frames: made on demand, kept, bounded.
pub struct Thumbnails {
    enabled: bool,
    stats: Arc<crate::stats::Stats>,
    makers: Arc<tokio::sync::Semaphore>,
    waiting: Arc<tokio::sync::Semaphore>,
    /// (item id, file size, mtime ns, time asked in ms) → picture.
    kept: quick_cache::sync::Cache<(uuid::Uuid, u64, i64, u64), Picture>,
}

impl Thumbnails {
    /// None made yet; each one made is counted in `stats`
    /// (`hlsd_thumbnails_made_total`, `hlsd_thumbnail_seconds_total`);
    /// none at all unless `enabled`.
    pub fn new(stats: Arc<crate::stats::Stats>, enabled: bool) -> Self {
        Thumbnails {
            enabled,
            stats,
            makers: Arc::new(tokio::sync::Semaphore::new(MAKERS)),
            waiting: Arc::new(tokio::sync::Semaphore::new(WAITING)),
            kept: quick_cache::sync::Cache::new(KEPT),
        }
    }

    /// Where `item`'s poster frame is taken when `at` is not given:
    /// a tenth in, at most 5 minutes; a time past the end is the end.
    pub fn time_for(item: &MediaItem, at: Option<Duration>) -> Duration {
        let duration = item.duration_s.map(Duration::from_secs_f64);
        match (at, duration) {
            (Some(at), Some(d)) => at.min(d),
            (Some(at), None) => at,
            (None, Some(d)) => d.mul_f64(DEFAULT_SHARE).min(DEFAULT_AT_MOST),
            (None, None) => Duration::ZERO,
        }
    }

    /// The key frame of `item` nearest `at`, [`WIDTH`]
    /// pixels wide, as a JPEG: kept from an earlier request, or made.
    ///
    /// # Errors
    /// [`PictureError::Off`] with `--no-thumbnails`,
    /// [`PictureError::NoVideo`] for an item without video,
    /// [`PictureError::Busy`] when [`WAITING`] requests already wait,
    /// [`PictureError::Failed`] when the file gives none.
    pub async fn poster(&self, item: &MediaItem, at: Duration) -> Result<Picture, PictureError> {
        if !self.enabled {
            return Err(PictureError::Off);
        }
        if item.video.is_none() {
            return Err(PictureError::NoVideo(item.path.clone()));
        }
        let key = (
            item.id,
            item.stamp.size_bytes,
            item.stamp.mtime_ns,
            u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
        );
        if let Some(picture) = self.kept.get(&key) {
            return Ok(picture);
        }
        let _waiting = self
            .waiting
            .clone()
            .try_acquire_owned()
            .map_err(|_| PictureError::Busy)?;
        let _making = self
            .makers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PictureError::Busy)?;
        if let Some(picture) = self.kept.get(&key) {
            return Ok(picture);
        }
        let started = std::time::Instant::now();
        let file = item.abs_path.clone();
        let made = tokio::task::spawn_blocking(move || {
            // The nearest key frame from the file's own index where it has
            // one (milliseconds; demuxers differ in what "nearest" means).
            let keys = crate::container::keyframes::from_container(&file);
            let seek = keys.map_or(Seek::Nearest(at), |k| seek_for(&k.keyframes, at));
            key_frame_jpeg(&file, seek, WIDTH, LIMIT).or_else(|e| {
                // A file that decodes from its start but not after a seek
                // (a QuickTime track whose codec changes) still has a
                // first picture.
                tracing::debug!(error = %e, "no picture after a seek; taking the first");
                key_frame_jpeg(&file, Seek::Nearest(Duration::ZERO), WIDTH, LIMIT).map_err(|_| e)
            })
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let Still { jpeg, at, .. } = made.map_err(|reason| PictureError::Failed {
            path: item.path.clone(),
            reason,
        })?;
        self.stats.picture_made(started.elapsed());
        let picture = Picture {
            jpeg: Bytes::from(jpeg),
            at,
        };
        self.kept.insert(key, picture.clone());
        Ok(picture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seek_lands_halfway_after_the_nearest_key_frame() {
        let s = Duration::from_secs;
        let keys = [s(0), s(5), s(10), s(15)];
        assert_eq!(
            seek_for(&keys, s(3)),
            Seek::Before(Duration::from_millis(7_500))
        );
        assert_eq!(
            seek_for(&keys, s(8)),
            Seek::Before(Duration::from_millis(12_500))
        );
        assert_eq!(
            seek_for(&keys, s(12)),
            Seek::Before(Duration::from_millis(12_500))
        );
        assert_eq!(
            seek_for(&keys, s(0)),
            Seek::Before(Duration::from_millis(2_500))
        );
        // Past the last: the last, half a second on.
        assert_eq!(
            seek_for(&keys, s(99)),
            Seek::Before(Duration::from_millis(15_500))
        );
        assert_eq!(seek_for(&[], s(3)), Seek::Nearest(s(3)));
    }
}
