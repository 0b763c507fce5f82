//! The one integration-test binary: every test starts the real server on
//! `127.0.0.1:0` (or the real binary, or several behind nginx) over real
//! media, and checks what a client sees. One binary links once (22 did
//! before) and its tests share one process's GStreamer registry.
//!
//! `HLSD_REQUIRE_MEDIA=1` (set by `.ci/run`) turns every test that would
//! skip for a missing input (`../shared/media`, ffmpeg, Chromium, nginx)
//! into a failure.

mod common;

mod adapt;
mod bad_input;
mod browser;
mod burn_in;
mod conformance;
mod corrupt_media;
mod coverage;
mod database;
mod direct_play;
mod dolby_vision;
mod faults;
mod hdr;
mod hls;
mod identity;
mod iframes;
mod keyframes;
mod ladder;
mod library;
mod music;
mod nodes;
mod operations;
mod process;
mod profiles;
mod reported;
mod restart;
mod resume;
mod scaleout;
mod seek;
mod sessions;
mod sharing;
mod thumbnails;
mod tonemap;
mod tracks;
mod watching;
