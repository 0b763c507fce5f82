//! `hlsdx264enc`: H.264 encoding with libx264 that lets go of each input
//! frame as soon as x264 has copied it.
//!
//! GStreamer's `x264enc` is a `GstVideoEncoder`: it keeps every frame that
//! x264 holds back (lookahead, B-frames, frame threads: about 17 at
//! veryfast) mapped until its encoded form comes out, although x264 copied
//! it on input. At 720p that is about 24 MB per transcode that the ffmpeg
//! peer does not pay (docs/benchmarks.md, "Memory"). This element passes each
//! frame to x264 and drops it at once; everything else matches `x264enc`
//! with the same settings: byte-stream output with SPS/PPS before each key
//! frame, access unit delimiters, nanosecond timestamps for rate control.
//!
//! Key frames are forced by `GstForceKeyUnit` events, downstream (from the
//! segment cutter, on the frame that follows) or upstream. Like
//! `GstVideoEncoder` with a minimum PTS, output timestamps and segments are
//! shifted by [`TIMESTAMP_OFFSET`] so that a B-frame stream's DTS (which x264
//! starts before the first PTS) is never negative; running time is
//! unchanged.

// The one place hlsd calls C: libx264's API through shim.c.
#[allow(unsafe_code)]
mod ffi;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::{Mutex, OnceLock};

pub use ffi::{EncodedFrame, Encoder, EncoderSettings, VideoShape};

/// Added to output PTS and DTS, and to the output segment's start, stop and
/// position: one hour, far more than any B-frame delay.
pub const TIMESTAMP_OFFSET: gst::ClockTime = gst::ClockTime::from_seconds(3600);

/// Registers `hlsdx264enc` with GStreamer (once per process), so that
/// pipeline descriptions can name it.
///
/// # Errors
/// Fails when GStreamer is not initialised or the type cannot be registered.
pub fn register() -> Result<(), glib::BoolError> {
    static DONE: OnceLock<Result<(), glib::BoolError>> = OnceLock::new();
    DONE.get_or_init(|| {
        gst::Element::register(None, "hlsdx264enc", gst::Rank::NONE, X264Enc::static_type())
    })
    .clone()
}

glib::wrapper! {
    /// The `hlsdx264enc` element: raw I420 in, H.264 byte-stream access
    /// units out. Properties: `speed-preset` (x264 preset, default
    /// `veryfast`), `tune` (default none), `profile` (default `high`),
    /// `crf` (default 23), `key-int-max` (frames, 0: x264's 250) and
    /// `option-string` (x264 `name=value` pairs separated by `:`).
    pub struct X264Enc(ObjectSubclass<imp::X264Enc>) @extends gst::Element, gst::Object;
}

mod imp {
    use super::*;

    #[derive(Debug, Clone)]
    struct Settings {
        preset: String,
        tune: String,
        profile: String,
        crf: f64,
        key_int_max: u32,
        options: String,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                preset: "veryfast".into(),
                tune: String::new(),
                profile: "high".into(),
                crf: 23.0,
                key_int_max: 0,
                options: String::new(),
            }
        }
    }

    #[derive(Default)]
    struct State {
        info: Option<gst_video::VideoInfo>,
        encoder: Option<Encoder>,
        force_key_frame: bool,
        /// (PTS, duration) of the frames x264 holds, to date their output.
        durations: std::collections::VecDeque<(i64, Option<gst::ClockTime>)>,
    }

    pub struct X264Enc {
        sinkpad: gst::Pad,
        srcpad: gst::Pad,
        settings: Mutex<Settings>,
        state: Mutex<State>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for X264Enc {
        const NAME: &'static str = "HlsdX264Enc";
        type Type = super::X264Enc;
        type ParentType = gst::Element;

        fn with_class(klass: &Self::Class) -> Self {
            let sinkpad = gst::Pad::builder_from_template(
                &klass.pad_template("sink").expect("sink template"),
            )
            .chain_function(|_pad, parent, buffer| {
                X264Enc::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                X264Enc::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                X264Enc::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad, query),
                )
            })
            .build();
            let srcpad =
                gst::Pad::builder_from_template(&klass.pad_template("src").expect("src template"))
                    .event_function(|pad, parent, event| {
                        X264Enc::catch_panic_pad_function(
                            parent,
                            || false,
                            |this| this.src_event(pad, event),
                        )
                    })
                    .build();
            X264Enc {
                sinkpad,
                srcpad,
                settings: Mutex::new(Settings::default()),
                state: Mutex::new(State::default()),
            }
        }
    }

    impl ObjectImpl for X264Enc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                let d = Settings::default();
                vec![
                    glib::ParamSpecString::builder("speed-preset")
                        .nick("Speed preset")
                        .blurb("x264 preset: ultrafast ... placebo")
                        .default_value(Some(d.preset.as_str()))
                        .build(),
                    glib::ParamSpecString::builder("tune")
                        .nick("Tune")
                        .blurb("x264 tune (film, animation, ...), empty for none")
                        .build(),
                    glib::ParamSpecString::builder("profile")
                        .nick("Profile")
                        .blurb("H.264 profile the stream must fit: baseline, main, high")
                        .default_value(Some(d.profile.as_str()))
                        .build(),
                    glib::ParamSpecDouble::builder("crf")
                        .nick("CRF")
                        .blurb("Constant rate factor (x264 --crf): lower is better and larger")
                        .minimum(0.0)
                        .maximum(51.0)
                        .default_value(d.crf)
                        .build(),
                    glib::ParamSpecUInt::builder("key-int-max")
                        .nick("Maximum key frame interval")
                        .blurb("Frames between key frames at most (0: x264's 250)")
                        .build(),
                    glib::ParamSpecString::builder("option-string")
                        .nick("Options")
                        .blurb("More x264 options: name=value pairs separated by ':'")
                        .build(),
                ]
            })
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut s = self.settings.lock().expect("settings");
            let text = || {
                value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            };
            match pspec.name() {
                "speed-preset" => s.preset = text(),
                "tune" => s.tune = text(),
                "profile" => s.profile = text(),
                "crf" => s.crf = value.get().expect("type checked by GObject"),
                "key-int-max" => s.key_int_max = value.get().expect("type checked by GObject"),
                "option-string" => s.options = text(),
                _ => unreachable!("no such property"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = self.settings.lock().expect("settings");
            match pspec.name() {
                "speed-preset" => s.preset.to_value(),
                "tune" => s.tune.to_value(),
                "profile" => s.profile.to_value(),
                "crf" => s.crf.to_value(),
                "key-int-max" => s.key_int_max.to_value(),
                "option-string" => s.options.to_value(),
                _ => unreachable!("no such property"),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.add_pad(&self.sinkpad).expect("adding sink pad");
            obj.add_pad(&self.srcpad).expect("adding src pad");
        }
    }

    impl GstObjectImpl for X264Enc {}

    impl ElementImpl for X264Enc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: OnceLock<gst::subclass::ElementMetadata> = OnceLock::new();
            Some(META.get_or_init(|| {
                gst::subclass::ElementMetadata::new(
                    "H.264 encoder (libx264, frames released on input)",
                    "Codec/Encoder/Video",
                    "Encodes I420 video to H.264 with libx264",
                    "hlsd",
                )
            }))
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: OnceLock<Vec<gst::PadTemplate>> = OnceLock::new();
            TEMPLATES.get_or_init(|| {
                let sink = gst_video::VideoCapsBuilder::new()
                    .format(gst_video::VideoFormat::I420)
                    .build();
                let src = gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &sink,
                    )
                    .expect("sink template"),
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &src,
                    )
                    .expect("src template"),
                ]
            })
        }

        fn change_state(
            &self,
            transition: gst::StateChange,
        ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
            let result = self.parent_change_state(transition)?;
            if transition == gst::StateChange::PausedToReady {
                *self.state.lock().expect("state") = State::default();
            }
            Ok(result)
        }
    }

    impl X264Enc {
        fn chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let out = {
                let mut state = self.state.lock().expect("state");
                let Some(info) = state.info.clone() else {
                    return Err(gst::FlowError::NotNegotiated);
                };
                let Some(pts) = buffer.pts() else {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Encode,
                        ["Dropping a frame without a timestamp"]
                    );
                    return Ok(gst::FlowSuccess::Ok);
                };
                if state.encoder.is_none() {
                    let encoder = self.open(&info).map_err(|e| {
                        gst::element_imp_error!(self, gst::LibraryError::Settings, ("{e:#}"));
                        gst::FlowError::Error
                    })?;
                    state.encoder = Some(encoder);
                }
                let force = std::mem::take(&mut state.force_key_frame);
                let pts_ns = pts.nseconds() as i64;
                state.durations.push_back((pts_ns, buffer.duration()));
                let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(&buffer, &info)
                    .map_err(|_| {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Format,
                            ["A frame does not match its caps"]
                        );
                        gst::FlowError::Error
                    })?;
                let encoder = state.encoder.as_mut().expect("opened above");
                let encoded = encoder.encode(Some(&frame), pts_ns, force);
                // The point of this element: x264 has its own copy now.
                drop(frame);
                drop(buffer);
                match encoded {
                    Ok(e) => e.map(|e| Self::output(&mut state, e)),
                    Err(e) => {
                        gst::element_imp_error!(self, gst::StreamError::Encode, ["{e:#}"]);
                        return Err(gst::FlowError::Error);
                    }
                }
            };
            match out {
                Some(buffer) => self.srcpad.push(buffer),
                None => Ok(gst::FlowSuccess::Ok),
            }
        }

        fn open(&self, info: &gst_video::VideoInfo) -> anyhow::Result<Encoder> {
            let s = self.settings.lock().expect("settings").clone();
            let colorimetry = info.colorimetry();
            let iso = |known: bool, code: u32| if known { code as i32 } else { -1 };
            let shape = VideoShape {
                width: info.width(),
                height: info.height(),
                fps: (info.fps().numer(), info.fps().denom()),
                par: (info.par().numer(), info.par().denom()),
                colour_primaries: iso(
                    colorimetry.primaries() != gst_video::VideoColorPrimaries::Unknown,
                    colorimetry.primaries().to_iso(),
                ),
                transfer: iso(
                    colorimetry.transfer() != gst_video::VideoTransferFunction::Unknown,
                    colorimetry.transfer().to_iso(),
                ),
                matrix: iso(
                    colorimetry.matrix() != gst_video::VideoColorMatrix::Unknown,
                    colorimetry.matrix().to_iso(),
                ),
                full_range: match colorimetry.range() {
                    gst_video::VideoColorRange::Range0_255 => 1,
                    gst_video::VideoColorRange::Range16_235 => 0,
                    _ => -1,
                },
            };
            let mut options = vec![("crf".to_string(), s.crf.to_string())];
            if s.key_int_max > 0 {
                options.push(("keyint".into(), s.key_int_max.to_string()));
            }
            for pair in s.options.split(':').filter(|p| !p.trim().is_empty()) {
                let (name, value) = pair.split_once('=').unwrap_or((pair, "1"));
                options.push((name.trim().to_string(), value.trim().to_string()));
            }
            let settings = EncoderSettings {
                preset: s.preset,
                tune: s.tune,
                profile: s.profile,
                options,
            };
            Encoder::open(&shape, &settings)
        }

        /// Makes the output buffer of one encoded frame.
        fn output(state: &mut State, frame: EncodedFrame) -> gst::Buffer {
            let duration = state
                .durations
                .iter()
                .position(|(pts, _)| *pts == frame.pts)
                .and_then(|i| state.durations.remove(i))
                .and_then(|(_, d)| d);
            let shift = |t: i64| {
                let t = t + TIMESTAMP_OFFSET.nseconds() as i64;
                (t >= 0).then(|| gst::ClockTime::from_nseconds(t as u64))
            };
            let mut buffer = gst::Buffer::from_mut_slice(frame.data);
            {
                let b = buffer.get_mut().expect("new buffer is writable");
                b.set_pts(shift(frame.pts));
                b.set_dts(shift(frame.dts));
                b.set_duration(duration);
                if !frame.keyframe {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            buffer
        }

        /// Pushes every frame x264 still holds.
        fn drain(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
            loop {
                let out = {
                    let mut state = self.state.lock().expect("state");
                    let Some(encoder) = state.encoder.as_mut() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    if encoder.delayed_frames() == 0 {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    match encoder.encode(None, 0, false) {
                        Ok(Some(e)) => Self::output(&mut state, e),
                        Ok(None) => continue,
                        Err(e) => {
                            gst::element_imp_error!(self, gst::StreamError::Encode, ["{e:#}"]);
                            return Err(gst::FlowError::Error);
                        }
                    }
                };
                self.srcpad.push(out)?;
            }
        }

        fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
            match event.view() {
                gst::EventView::Caps(c) => {
                    let Ok(info) = gst_video::VideoInfo::from_caps(c.caps()) else {
                        return false;
                    };
                    let changed = {
                        let state = self.state.lock().expect("state");
                        state.info.as_ref() != Some(&info)
                    };
                    if changed {
                        if self.drain().is_err() {
                            return false;
                        }
                        let mut state = self.state.lock().expect("state");
                        state.encoder = None;
                        state.info = Some(info.clone());
                    }
                    let profile = self.settings.lock().expect("settings").profile.clone();
                    let mut caps = gst::Caps::builder("video/x-h264")
                        .field("stream-format", "byte-stream")
                        .field("alignment", "au")
                        .field("width", info.width() as i32)
                        .field("height", info.height() as i32)
                        .field("framerate", info.fps())
                        .field("pixel-aspect-ratio", info.par());
                    if !profile.is_empty() {
                        caps = caps.field("profile", profile);
                    }
                    self.srcpad.push_event(gst::event::Caps::new(&caps.build()))
                }
                gst::EventView::Segment(e) => {
                    let Some(segment) = e.segment().downcast_ref::<gst::ClockTime>() else {
                        return gst::Pad::event_default(pad, Some(&*self.obj()), event);
                    };
                    let mut segment = segment.clone();
                    segment.set_start(segment.start().map(|t| t + TIMESTAMP_OFFSET));
                    segment.set_stop(segment.stop().map(|t| t + TIMESTAMP_OFFSET));
                    segment.set_position(segment.position().map(|t| t + TIMESTAMP_OFFSET));
                    let seqnum = event.seqnum();
                    self.srcpad.push_event(
                        gst::event::Segment::builder(&segment)
                            .seqnum(seqnum)
                            .build(),
                    )
                }
                gst::EventView::Eos(_) => {
                    // An error was posted by drain; EOS still goes on.
                    let _ = self.drain();
                    self.srcpad.push_event(event)
                }
                gst::EventView::FlushStop(_) => {
                    let mut state = self.state.lock().expect("state");
                    state.encoder = None;
                    state.durations.clear();
                    state.force_key_frame = false;
                    drop(state);
                    self.srcpad.push_event(event)
                }
                gst::EventView::CustomDownstream(_) if gst_video::ForceKeyUnitEvent::is(&event) => {
                    self.state.lock().expect("state").force_key_frame = true;
                    true
                }
                _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
            }
        }

        fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
            if let gst::QueryViewMut::Allocation(q) = query.view_mut() {
                // Any strides and offsets will do: frames are read through
                // their video meta.
                q.add_allocation_meta::<gst_video::VideoMeta>(None);
                return true;
            }
            gst::Pad::query_default(pad, Some(&*self.obj()), query)
        }

        fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
            if gst_video::UpstreamForceKeyUnitEvent::parse(&event).is_ok() {
                self.state.lock().expect("state").force_key_frame = true;
                return true;
            }
            gst::Pad::event_default(pad, Some(&*self.obj()), event)
        }
    }
}

#[cfg(test)]
mod tests;
