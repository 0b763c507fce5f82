//! Matroska / WebM (RFC 9559): the key-frame index a file's `Cues` give
//! ([`cues`]), and the blocks before its time 0 ([`lead_in`]), both as
//! `matroskademux` (GStreamer 1.22) reads the file ([`layout`]).

pub mod cues;
mod layout;
pub mod lead_in;
