//! The media library: the media files of a folder, each with a stable id,
//! probed with GStreamer's Discoverer in child processes, remembered in a
//! catalogue database, kept in step with the disk by watching it, with the
//! playback decision and the key frames of video that is copied.
//!
//! * [`live`]: the library as served (load from the catalogue, probe on
//!   demand, forget what is gone).
//! * [`reconcile`]: keeping it in step with the disk (listings, watcher
//!   paths, the settle wait, the probe queue, sidecars).
//! * [`catalogue`]: the database of probe results and key frames, SQLite
//!   for one node or PostgreSQL shared by a cluster (their columns:
//!   `keyframe_columns.rs`, pure); `cluster.rs`: probing each file once
//!   per cluster (claims).
//! * [`progress`]: each user's playback position per item, in the same
//!   database.
//! * [`prober`]: the pool of prober children (`hlsd probe --worker`).
//! * [`watch`]: inotify events and the polling fallback.
//! * [`scan`]: which files are media, and listing folders.
//! * [`streams`]: what the Discoverer found in a file, with [`colour`]
//!   (colour coding and HDR, pure); [`item`]: the item it is listed as,
//!   and its stamp on disk.
//! * [`items`]: the in-memory item set and its pages (pure).
//! * [`decision`]: how a file plays (pure); [`probe`]: the Discoverer.
//!
//! Everything but [`probe`], [`prober`] and the GStreamer passes
//! ([`passes`]) is free of GStreamer.

pub mod catalogue;
mod cluster;
pub mod colour;
pub mod decision;
mod figures;
pub mod id;
mod item;
mod items;
mod keyframe_columns;
pub mod language;
mod live;
pub mod passes;
pub mod probe;
mod prober;
pub mod progress;
mod reconcile;
mod scan;
pub mod sidecar;
mod streams;
mod tasks;
mod view;
mod watch;

pub use decision::{decide, decide_for, AudioPlan, Decision, Playback, VideoPlan};
pub use figures::{ChangeWatch, LibraryFigures};
pub use item::PEAK_HEADROOM;
pub use item::{FileStamp, MediaItem};
pub use items::{Lookup, Page, PageQuery, PlaybackFilter, DEFAULT_PAGE, MAX_PAGE};
pub use live::{Library, Unavailable};
pub use prober::{print_probes, run_worker};
pub use reconcile::ScanReport;
pub use scan::{is_media_file, MEDIA_EXTENSIONS};
pub use streams::{
    AudioStream, MediaInfo, SubtitleKind, SubtitleSource, SubtitleStream, VideoStream,
};
