//! The producer supervisor: one encode for every viewer.
//!
//! Each media file being played is a [`Title`] with its renditions and
//! timeline. A request for a segment is served from the [`crate::store::SegmentStore`]
//! when it is there; otherwise, unless a running producer of the title
//! will reach it soon ([`crate::policy::coming`]), a new [`Producer`] starts at
//! that segment, within the title's cap (`--producers-per-item`; past it
//! a producer nobody needs gives way, then one that only served the same
//! player: the newest request of a player wins) and the server's caps
//! (`--max-transcodes`, `--max-remuxes`, the disk budget). Producers follow
//! their viewers: held by their throttle past the margin, stopped when
//! they reach segments that exist or nobody needs them any more.
//!
//! The rules are pure functions in [`crate::policy`]; this module applies
//! them to live state. Its admission lock serializes every start, so two
//! requests never both pass a cap.

mod admission;
mod cues;
mod outcome;
mod playheads;
mod producer;
mod run;
mod spec;
mod subtitles;
#[allow(clippy::module_inception)]
mod supervisor;
#[cfg(test)]
pub(crate) mod testing;
mod title;

pub use outcome::{AtCapacity, Player, SegmentOutcome};
pub use playheads::PlayerKey;
pub use producer::{Phase, Producer};
pub use supervisor::{ProducerCounts, ProducerInfo, Supervisor};
pub use title::{TimelineState, Title};
