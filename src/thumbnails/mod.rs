//! Pictures of a title: a poster frame for a library page (the key frame
//! nearest a time, kept in memory), and thumbnail sheets for the seek bar
//! (one key frame per 10 s, tiled, kept on disk), with the WebVTT track
//! and the image playlist that point players at them.
//!
//! - `layout.rs`: where each tile lies, and the WebVTT and playlist text
//!   (pure);
//! - `posters.rs`: poster frames ([`Thumbnails`]);
//! - `sheets.rs`: sheets made in the background, shared and kept
//!   ([`Sheets`]);
//! - `budget.rs`: which files' sheets go past the disk budget (pure).

mod budget;
mod layout;
mod posters;
mod sheets;

pub use layout::{sheet_index, sheet_name, Layout, COLUMNS, ROWS, STEP, TILE_WIDTH};
pub use posters::{seek_for, Picture, PictureError, Thumbnails, WIDTH};
pub use sheets::{SheetError, Sheets};
