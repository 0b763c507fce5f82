//! `hlsdvideoscale`: the downscale of a transcode's video with libswscale's
//! bicubic filter, the scaler the ffmpeg peer uses.
//!
//! Measured on the bench transcode (36 s of 1080p HEVC to 720p, 2 cores,
//! docs/benchmarks.md "Transcode throughput"): GStreamer 1.22's
//! `videoconvertscale` costs ~0.5 s of CPU more than swscale for this
//! downscale, and its 2-tap bilinear filter keeps the detail a downscale
//! should filter away, which x264 then spends ~11 % more bits and
//! 0.3–0.5 s more on at the same CRF; its multi-tap filters filter right but
//! cost ~1.5 s more. This element gives x264 the pictures ffmpeg gives it,
//! at swscale's cost. It takes I420, and I420_10LE for the tone mapper
//! of an HDR source (`pipeline/tonemap.rs`: there GStreamer's 10-bit
//! `videoscale` of a 4K picture cost a third of the transcode's CPU on
//! bench/hdr.py; a `videoconvert` before it converts anything else, and
//! passes those through). It keeps every caps
//! field but the size and pixel aspect ratio; at one size it passes
//! buffers through. Downstream caps must fix the width, the height and the
//! pixel aspect ratio (the built-in description does): it does not pick a
//! size of its own. Interlaced pictures are scaled as whole frames, as
//! ffmpeg's `scale` does; hlsd deinterlaces first where it knows a source
//! is interlaced. Its output is swscale's own: `tests.rs` checks it is
//! byte for byte what `ffmpeg -vf scale=W:H:flags=bicubic` writes.

// The second place hlsd calls C: libswscale's API.
#[allow(unsafe_code)]
mod ffi;
#[cfg(test)]
mod tests;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;
use std::sync::{Mutex, OnceLock};

pub use ffi::Scaler;

/// Registers `hlsdvideoscale` with GStreamer (once per process), so that
/// pipeline descriptions can name it.
///
/// # Errors
/// Fails when GStreamer is not initialised or the type cannot be registered.
pub fn register() -> Result<(), glib::BoolError> {
    static DONE: OnceLock<Result<(), glib::BoolError>> = OnceLock::new();
    DONE.get_or_init(|| {
        gst::Element::register(
            None,
            "hlsdvideoscale",
            gst::Rank::NONE,
            VideoScale::static_type(),
        )
    })
    .clone()
}

glib::wrapper! {
    /// The `hlsdvideoscale` element: I420 (or I420_10LE) in, the same
    /// format out at the size the downstream caps ask for, scaled with
    /// swscale's bicubic filter.
    pub struct VideoScale(ObjectSubclass<imp::VideoScale>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct VideoScale {
        scaler: Mutex<Option<Scaler>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VideoScale {
        const NAME: &'static str = "HlsdVideoScale";
        type Type = super::VideoScale;
        type ParentType = gst_video::VideoFilter;
    }

    impl ObjectImpl for VideoScale {}
    impl GstObjectImpl for VideoScale {}

    impl ElementImpl for VideoScale {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: OnceLock<gst::subclass::ElementMetadata> = OnceLock::new();
            Some(META.get_or_init(|| {
                gst::subclass::ElementMetadata::new(
                    "hlsd video scaler",
                    "Filter/Converter/Video/Scaler",
                    "Scales I420 and I420_10LE video with libswscale's bicubic filter",
                    "hlsd",
                )
            }))
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: OnceLock<Vec<gst::PadTemplate>> = OnceLock::new();
            TEMPLATES.get_or_init(|| {
                let caps = gst_video::VideoCapsBuilder::new()
                    .format_list([
                        gst_video::VideoFormat::I420,
                        gst_video::VideoFormat::I42010le,
                    ])
                    .build();
                [gst::PadDirection::Src, gst::PadDirection::Sink]
                    .into_iter()
                    .map(|direction| {
                        let name = match direction {
                            gst::PadDirection::Src => "src",
                            _ => "sink",
                        };
                        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps)
                            .expect("pad template")
                    })
                    .collect()
            })
        }
    }

    impl BaseTransformImpl for VideoScale {
        const MODE: gst_base::subclass::BaseTransformMode =
            gst_base::subclass::BaseTransformMode::NeverInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = true;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        /// Any size and pixel aspect ratio on the other side; every other
        /// field (format, frame rate, colorimetry, interlacing) the same.
        fn transform_caps(
            &self,
            _direction: gst::PadDirection,
            caps: &gst::Caps,
            filter: Option<&gst::Caps>,
        ) -> Option<gst::Caps> {
            let mut other = gst::Caps::new_empty();
            {
                let other = other.get_mut().expect("new caps");
                for s in caps.iter() {
                    let mut s = s.to_owned();
                    s.set("width", gst::IntRange::new(1, i32::MAX));
                    s.set("height", gst::IntRange::new(1, i32::MAX));
                    s.remove_field("pixel-aspect-ratio");
                    other.append_structure(s);
                }
            }
            // The same caps first: at one size, pass through.
            let mut out = caps.clone();
            out.merge(other);
            Some(match filter {
                Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
                None => out,
            })
        }
    }

    impl VideoFilterImpl for VideoScale {
        fn set_info(
            &self,
            _incaps: &gst::Caps,
            in_info: &gst_video::VideoInfo,
            _outcaps: &gst::Caps,
            out_info: &gst_video::VideoInfo,
        ) -> Result<(), gst::LoggableError> {
            let from = (in_info.width(), in_info.height());
            let to = (out_info.width(), out_info.height());
            let scaler = match from == to {
                true => None,
                false => Some(
                    Scaler::new(in_info.format(), from, to)
                        .map_err(|e| gst::loggable_error!(gst::CAT_RUST, "{e:#}"))?,
                ),
            };
            *self.scaler.lock().unwrap_or_else(|p| p.into_inner()) = scaler;
            Ok(())
        }

        fn transform_frame(
            &self,
            inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
            outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mut scaler = self.scaler.lock().unwrap_or_else(|p| p.into_inner());
            let Some(scaler) = scaler.as_mut() else {
                // One size, another pixel aspect ratio only: a copy.
                inframe.copy(outframe).map_err(|_| gst::FlowError::Error)?;
                return Ok(gst::FlowSuccess::Ok);
            };
            scaler.scale(inframe, outframe).map_err(|e| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ["{e:#}"]);
                gst::FlowError::Error
            })?;
            Ok(gst::FlowSuccess::Ok)
        }
    }
}
