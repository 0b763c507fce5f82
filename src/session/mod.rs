//! Viewer sessions: what a client sees of HLS playback, one per (media,
//! user), found in O(1) by id and by owner, kept alive by every playlist
//! and segment request, stopped when idle.
//!
//! A session no longer owns a pipeline. It names the renditions it plays
//! and the players it has handed out (one per master playlist fetch: one
//! account may play on several devices at once); each player's place is
//! kept by the [`crate::supervisor::Title`], where the supervisor's producers follow it.

mod open;
mod playlists;
mod registry;
#[allow(clippy::module_inception)]
mod session;
mod sessions;
mod view;

pub use open::{hls_playback, OpenAs, OpenError, PlayRequest, MAX_START_S};
pub use playlists::{
    PlaylistError, IFRAME_PLAYLIST, IMAGE_PLAYLIST, MEDIA_PLAYLIST, THUMBNAILS, THUMBNAILS_VTT,
};
pub use registry::Registry;
pub use session::{Opening, Session, SessionState, Status};
pub use sessions::Sessions;
pub use view::SessionView;
