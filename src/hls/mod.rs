//! HLS playlist text (RFC 8216), free of GStreamer and HTTP types.
//!
//! hlsd writes its own playlists from the item's renditions and timeline:
//! a master (multivariant) playlist whose variant is the video rendition
//! with the audio as an `EXT-X-MEDIA` rendition, and one media playlist
//! per rendition, a complete `VOD` playlist whenever the item's end is
//! known. URIs are passed in by the caller (they carry signed tokens).
//!
//! - `master`: the master (multivariant) playlist;
//! - `media`: media playlists, I-frame playlists among them.

mod master;
mod media;

pub use master::{
    master_playlist, Listed, ListedImages, ListedSubtitles, AUDIO_GROUP, SUBTITLE_GROUP,
};
pub use media::{event_playlist, target_duration, vod_playlist, PlaylistType, SegmentFormat};
