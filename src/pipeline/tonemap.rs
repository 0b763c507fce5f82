//! `hlsdtonemap`: HDR video (10-bit 4:2:0, BT.2020, PQ or HLG) to SDR
//! BT.709 8-bit 4:2:0, for the encoded rungs of an HDR source.
//!
//! GStreamer 1.22 on Debian has no tone-mapping element, and without one
//! an HDR film's encode kept its PQ-coded values in 8 bits: the grey,
//! washed-out picture on every SDR screen (the 75 % white bar of HDR10
//! colour bars at luma 127). The arithmetic is [`crate::tonemap`]'s,
//! matched to ffmpeg's `zscale`/`tonemap` chain (luma PSNR 40–43 dB on
//! those bars, `tests/it/tonemap.rs`), with lookup tables
//! ([`crate::tonemap::Mapper`]) so that it costs little next to the
//! decode. It runs after the picture is scaled to its rung, never at the
//! source's 4K, each picture in two halves on two threads. Its output
//! caps say BT.709, so the encoder's VUI does. The 10-bit downscale
//! before it is swscale's (`hlsdvideoscale`), as in the peer's chain.
//! Measured (bench/hdr.py): a 4K HDR10 film's 1080p rung at 1.23× the
//! speed of ffmpeg's `zscale`/`tonemap` (0.84× its CPU), the mapping
//! 13–17.5 ms of CPU per 1080p frame here (`cargo bench --bench
//! tonemap`).
//!
//! Properties: `transfer` (`pq`, `hlg`), `curve` (`bt2390`, `hable`,
//! `mobius`, `reinhard`), `peak` (the source's brightest light in units
//! of 100 cd/m²: its mastering peak, else 10).

use crate::tonemap::{Curve, Mapper, Transfer};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;
use std::sync::{Mutex, OnceLock};

/// The gst-launch description of a rung's tone mapping `t`: the picture
/// in 10 bits (a `videoconvert`, passing the decoder's I420_10LE
/// through), scaled to `width` × `height` by swscale (`hlsdvideoscale`),
/// then `hlsdtonemap`, giving I420 BT.709; the template's scaler that
/// follows passes it through.
pub fn description(t: &crate::rendition::ToneMapping, width: u32, height: u32) -> String {
    let transfer = match t.transfer {
        Transfer::Pq => "pq",
        Transfer::Hlg => "hlg",
    };
    format!(
        "videoconvert n-threads=2 ! video/x-raw,format=I420_10LE ! hlsdvideoscale \
         ! video/x-raw,format=I420_10LE,width={width},height={height},pixel-aspect-ratio=1/1 \
         ! hlsdtonemap transfer={transfer} curve={} peak={} \
         ! video/x-raw,format=I420,colorimetry=bt709",
        t.curve.as_str(),
        f64::from(t.peak_nits) / 100.0
    )
}

/// Registers `hlsdtonemap` with GStreamer (once per process).
///
/// # Errors
/// Fails when GStreamer is not initialised or the type cannot be registered.
pub fn register() -> Result<(), glib::BoolError> {
    static DONE: OnceLock<Result<(), glib::BoolError>> = OnceLock::new();
    DONE.get_or_init(|| {
        gst::Element::register(None, "hlsdtonemap", gst::Rank::NONE, ToneMap::static_type())
    })
    .clone()
}

glib::wrapper! {
    /// The `hlsdtonemap` element: I420_10LE HDR in, I420 SDR BT.709 out.
    pub struct ToneMap(ObjectSubclass<imp::ToneMap>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// What the element is set to.
#[derive(Debug, Clone, Copy)]
struct Settings {
    transfer: Transfer,
    curve: Curve,
    peak: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            transfer: Transfer::Pq,
            curve: Curve::Bt2390,
            peak: 10.0,
        }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct ToneMap {
        settings: Mutex<Settings>,
        mapper: Mutex<Option<Mapper>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ToneMap {
        const NAME: &'static str = "HlsdToneMap";
        type Type = super::ToneMap;
        type ParentType = gst_video::VideoFilter;
    }

    impl ObjectImpl for ToneMap {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                vec![
                    glib::ParamSpecString::builder("transfer")
                        .nick("Transfer")
                        .blurb("The source's transfer: pq or hlg")
                        .default_value(Some("pq"))
                        .build(),
                    glib::ParamSpecString::builder("curve")
                        .nick("Curve")
                        .blurb("bt2390, hable, mobius or reinhard")
                        .default_value(Some("bt2390"))
                        .build(),
                    glib::ParamSpecDouble::builder("peak")
                        .nick("Peak")
                        .blurb("The source's brightest light, in units of 100 cd/m2")
                        .minimum(1.0)
                        .maximum(100.0)
                        .default_value(10.0)
                        .build(),
                ]
            })
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut s = self.settings.lock().unwrap_or_else(|p| p.into_inner());
            match pspec.name() {
                "transfer" => {
                    s.transfer = match value.get::<Option<String>>().ok().flatten().as_deref() {
                        Some("hlg") => Transfer::Hlg,
                        _ => Transfer::Pq,
                    }
                }
                "curve" => {
                    let name = value.get::<Option<String>>().ok().flatten();
                    s.curve = name
                        .and_then(|n| <Curve as clap::ValueEnum>::from_str(&n, true).ok())
                        .unwrap_or(Curve::Bt2390);
                }
                "peak" => s.peak = value.get().unwrap_or(10.0),
                _ => {}
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = *self.settings.lock().unwrap_or_else(|p| p.into_inner());
            match pspec.name() {
                "transfer" => match s.transfer {
                    Transfer::Pq => "pq",
                    Transfer::Hlg => "hlg",
                }
                .to_value(),
                "curve" => s.curve.as_str().to_value(),
                _ => s.peak.to_value(),
            }
        }
    }

    impl GstObjectImpl for ToneMap {}

    impl ElementImpl for ToneMap {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: OnceLock<gst::subclass::ElementMetadata> = OnceLock::new();
            Some(META.get_or_init(|| {
                gst::subclass::ElementMetadata::new(
                    "hlsd tone mapper",
                    "Filter/Converter/Video",
                    "Tone-maps HDR (PQ, HLG) BT.2020 video to SDR BT.709",
                    "hlsd",
                )
            }))
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: OnceLock<Vec<gst::PadTemplate>> = OnceLock::new();
            TEMPLATES.get_or_init(|| {
                let sink = gst_video::VideoCapsBuilder::new()
                    .format(gst_video::VideoFormat::I42010le)
                    .build();
                let src = gst_video::VideoCapsBuilder::new()
                    .format(gst_video::VideoFormat::I420)
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &src,
                    )
                    .expect("pad template"),
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &sink,
                    )
                    .expect("pad template"),
                ]
            })
        }
    }

    impl BaseTransformImpl for ToneMap {
        const MODE: gst_base::subclass::BaseTransformMode =
            gst_base::subclass::BaseTransformMode::NeverInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = false;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        /// The same size, rate and aspect; 10-bit in, 8-bit BT.709 out.
        fn transform_caps(
            &self,
            direction: gst::PadDirection,
            caps: &gst::Caps,
            filter: Option<&gst::Caps>,
        ) -> Option<gst::Caps> {
            let mut out = gst::Caps::new_empty();
            {
                let out = out.get_mut().expect("new caps");
                for s in caps.iter() {
                    let mut s = s.to_owned();
                    match direction {
                        gst::PadDirection::Sink => {
                            s.set("format", "I420");
                            s.set("colorimetry", "bt709");
                        }
                        _ => {
                            s.set("format", "I420_10LE");
                            s.remove_field("colorimetry");
                        }
                    }
                    out.append_structure(s);
                }
            }
            Some(match filter {
                Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
                None => out,
            })
        }
    }

    impl VideoFilterImpl for ToneMap {
        fn set_info(
            &self,
            _incaps: &gst::Caps,
            _in_info: &gst_video::VideoInfo,
            _outcaps: &gst::Caps,
            _out_info: &gst_video::VideoInfo,
        ) -> Result<(), gst::LoggableError> {
            let s = *self.settings.lock().unwrap_or_else(|p| p.into_inner());
            *self.mapper.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Mapper::new(10, s.transfer, s.curve, s.peak));
            Ok(())
        }

        fn transform_frame(
            &self,
            inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
            outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mapper = self.mapper.lock().unwrap_or_else(|p| p.into_inner());
            let mapper = mapper.as_ref().ok_or(gst::FlowError::NotNegotiated)?;
            let (w, h) = (inframe.width() as usize, inframe.height() as usize);
            let dims = |p: usize| {
                if p == 0 {
                    (w, h)
                } else {
                    (w.div_ceil(2), h.div_ceil(2))
                }
            };
            // The input samples, packed (little-endian u16 rows).
            let mut input: [Vec<u16>; 3] = Default::default();
            for (p, plane) in input.iter_mut().enumerate() {
                let (pw, ph) = dims(p);
                let stride = inframe.plane_stride()[p] as usize;
                let data = inframe
                    .plane_data(p as u32)
                    .map_err(|_| gst::FlowError::Error)?;
                plane.reserve(pw * ph);
                for row in 0..ph {
                    let line = data
                        .get(row * stride..row * stride + 2 * pw)
                        .ok_or(gst::FlowError::Error)?;
                    plane.extend(
                        line.chunks_exact(2)
                            .map(|b| u16::from_le_bytes([b[0], b[1]])),
                    );
                }
            }
            let mut output: [Vec<u8>; 3] = [0, 1, 2].map(|p| {
                let (pw, ph) = dims(p);
                vec![0u8; pw * ph]
            });
            // Two halves at once (an even number of rows above the cut),
            // each on a thread: a stage of its own in the pipeline, it
            // would otherwise cap a 1080p transcode at about 13 frames a
            // second on this machine.
            let (cw, ch) = dims(1);
            let top = ch.div_ceil(2) * 2;
            let [y, cb, cr] = &mut output;
            if top >= h {
                mapper.picture((w, h), [&input[0], &input[1], &input[2]], [y, cb, cr]);
            } else {
                let (y0, y1) = y.split_at_mut(top * w);
                let (cb0, cb1) = cb.split_at_mut(top / 2 * cw);
                let (cr0, cr1) = cr.split_at_mut(top / 2 * cw);
                let (i0, i1) = input[0].split_at(top * w);
                let (ib0, ib1) = input[1].split_at(top / 2 * cw);
                let (ir0, ir1) = input[2].split_at(top / 2 * cw);
                std::thread::scope(|scope| {
                    scope.spawn(|| mapper.picture((w, top), [i0, ib0, ir0], [y0, cb0, cr0]));
                    mapper.picture((w, h - top), [i1, ib1, ir1], [y1, cb1, cr1]);
                });
            }
            for (p, plane) in output.iter().enumerate() {
                let (pw, ph) = dims(p);
                let stride = outframe.plane_stride()[p] as usize;
                let data = outframe
                    .plane_data_mut(p as u32)
                    .map_err(|_| gst::FlowError::Error)?;
                for row in 0..ph {
                    let dst = data
                        .get_mut(row * stride..row * stride + pw)
                        .ok_or(gst::FlowError::Error)?;
                    dst.copy_from_slice(&plane[row * pw..(row + 1) * pw]);
                }
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }
}
