//! A safe handle on libx264, through the C shim in `shim.c` (built by
//! `build.rs`).

use anyhow::{anyhow, bail};
use gst_video::prelude::*;
use std::ffi::{c_char, c_int, CString};
use std::ptr::NonNull;

#[repr(C)]
struct RawFrame {
    data: *const u8,
    size: c_int,
    pts: i64,
    dts: i64,
    keyframe: c_int,
}

#[repr(C)]
struct X264 {
    _opaque: [u8; 0],
}

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn hlsd_x264_open(
        width: c_int,
        height: c_int,
        fps_num: c_int,
        fps_den: c_int,
        par_n: c_int,
        par_d: c_int,
        colorprim: c_int,
        transfer: c_int,
        colmatrix: c_int,
        fullrange: c_int,
        preset: *const c_char,
        tune: *const c_char,
        profile: *const c_char,
        names: *const *const c_char,
        values: *const *const c_char,
        n_options: c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut X264;
    fn hlsd_x264_encode(
        enc: *mut X264,
        planes: *const *const u8,
        strides: *const c_int,
        pts: i64,
        force_idr: c_int,
        out: *mut RawFrame,
    ) -> c_int;
    fn hlsd_x264_delayed_frames(enc: *mut X264) -> c_int;
    fn hlsd_x264_close(enc: *mut X264);
}

/// What the encoder is given: picture size in pixels, frame rate and pixel
/// aspect ratio as fractions, and the H.264 VUI colour codes (ISO/IEC
/// 23001-8; -1 leaves them unspecified).
#[derive(Debug, Clone)]
pub struct VideoShape {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second as (numerator, denominator); (0, 1) when unknown.
    pub fps: (i32, i32),
    /// Pixel aspect ratio as (numerator, denominator).
    pub par: (i32, i32),
    /// Colour primaries code, or -1.
    pub colour_primaries: i32,
    /// Transfer characteristics code, or -1.
    pub transfer: i32,
    /// Matrix coefficients code, or -1.
    pub matrix: i32,
    /// 1 for full range, 0 for video range, -1 unspecified.
    pub full_range: i32,
}

/// x264 settings: a preset and tune (`x264 --preset/--tune`), the profile
/// the stream must fit (empty: none) and further options by their x264
/// names (`crf`, `keyint`, ...), applied in order after the preset.
#[derive(Debug, Clone, Default)]
pub struct EncoderSettings {
    /// x264 preset, for example `veryfast`.
    pub preset: String,
    /// x264 tune, or empty.
    pub tune: String,
    /// H.264 profile (`baseline`, `main`, `high`), or empty.
    pub profile: String,
    /// (name, value) pairs for `x264_param_parse`.
    pub options: Vec<(String, String)>,
}

/// One encoded access unit, Annex B, with x264's SPS/PPS before key frames.
#[derive(Debug)]
pub struct EncodedFrame {
    /// The access unit's bytes.
    pub data: Vec<u8>,
    /// Presentation time, nanoseconds (as given to [`Encoder::encode`]).
    pub pts: i64,
    /// Decode time, nanoseconds; below the first PTS for B-frame streams.
    pub dts: i64,
    /// Whether this is a key frame (IDR).
    pub keyframe: bool,
}

/// An open libx264 encoder for I420 pictures.
pub struct Encoder {
    raw: NonNull<X264>,
}

// x264_t is used from one thread at a time (the owner holds it in a mutex
// or moves it); libx264 has no thread affinity.
unsafe impl Send for Encoder {}

impl Encoder {
    /// Opens an encoder for pictures of `shape` with `settings`.
    ///
    /// # Errors
    /// Names the preset, tune, option or profile that x264 refused, or the
    /// picture size it could not open.
    pub fn open(shape: &VideoShape, settings: &EncoderSettings) -> anyhow::Result<Self> {
        let c = |s: &str| CString::new(s).map_err(|_| anyhow!("NUL in x264 setting {s:?}"));
        let preset = c(&settings.preset)?;
        let tune = c(&settings.tune)?;
        let profile = c(&settings.profile)?;
        let names = settings
            .options
            .iter()
            .map(|(n, _)| c(n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let values = settings
            .options
            .iter()
            .map(|(_, v)| c(v))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let name_ptrs: Vec<*const c_char> = names.iter().map(|s| s.as_ptr()).collect();
        let value_ptrs: Vec<*const c_char> = values.iter().map(|s| s.as_ptr()).collect();
        let mut err = [0 as c_char; 256];
        let as_int = |v: u32| c_int::try_from(v).map_err(|_| anyhow!("picture size {v}"));
        // SAFETY: every pointer outlives the call; err has err.len() bytes.
        let raw = unsafe {
            hlsd_x264_open(
                as_int(shape.width)?,
                as_int(shape.height)?,
                shape.fps.0,
                shape.fps.1,
                shape.par.0,
                shape.par.1,
                shape.colour_primaries,
                shape.transfer,
                shape.matrix,
                shape.full_range,
                preset.as_ptr(),
                tune.as_ptr(),
                profile.as_ptr(),
                name_ptrs.as_ptr(),
                value_ptrs.as_ptr(),
                name_ptrs.len() as c_int,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        match NonNull::new(raw) {
            Some(raw) => Ok(Encoder { raw }),
            None => {
                // SAFETY: the shim always NUL-terminates err (snprintf).
                let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
                bail!("{}", msg.to_string_lossy())
            }
        }
    }

    /// Encodes `frame` (an I420 picture of the opened size) at `pts`
    /// nanoseconds, as a key frame if `force_key_frame`; `None` drains one
    /// held-back frame instead. x264 copies the picture before returning.
    /// Returns the access unit that came out, if any (x264 holds frames
    /// back for lookahead and B-frames: see [`Encoder::delayed_frames`]).
    ///
    /// # Errors
    /// Fails when the frame is not I420 or x264 reports an error.
    pub fn encode(
        &mut self,
        frame: Option<&gst_video::VideoFrameRef<&gst::BufferRef>>,
        pts: i64,
        force_key_frame: bool,
    ) -> anyhow::Result<Option<EncodedFrame>> {
        let mut out = RawFrame {
            data: std::ptr::null(),
            size: 0,
            pts: 0,
            dts: 0,
            keyframe: 0,
        };
        let size = match frame {
            Some(frame) => {
                if frame.format() != gst_video::VideoFormat::I420 {
                    bail!("x264 is given {:?}, not I420", frame.format());
                }
                let mut planes = [std::ptr::null::<u8>(); 3];
                for (i, p) in planes.iter_mut().enumerate() {
                    *p = frame.plane_data(i as u32)?.as_ptr();
                }
                let strides = frame.plane_stride();
                let strides: [c_int; 3] = [strides[0], strides[1], strides[2]];
                // SAFETY: the planes stay mapped for the call, and x264
                // copies them before it returns.
                unsafe {
                    hlsd_x264_encode(
                        self.raw.as_ptr(),
                        planes.as_ptr(),
                        strides.as_ptr(),
                        pts,
                        force_key_frame as c_int,
                        &mut out,
                    )
                }
            }
            // SAFETY: NULL planes ask the shim to drain.
            None => unsafe {
                hlsd_x264_encode(
                    self.raw.as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    0,
                    0,
                    &mut out,
                )
            },
        };
        if size < 0 {
            bail!("x264_encoder_encode failed ({size})");
        }
        if size == 0 || out.data.is_null() {
            return Ok(None);
        }
        // SAFETY: x264 keeps the payload valid until the next encode call.
        let data = unsafe { std::slice::from_raw_parts(out.data, out.size as usize) }.to_vec();
        Ok(Some(EncodedFrame {
            data,
            pts: out.pts,
            dts: out.dts,
            keyframe: out.keyframe != 0,
        }))
    }

    /// Frames given to x264 whose encoded form has not come out yet.
    pub fn delayed_frames(&self) -> usize {
        // SAFETY: raw is an open encoder.
        unsafe { hlsd_x264_delayed_frames(self.raw.as_ptr()) }.max(0) as usize
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: raw is open and closed only here.
        unsafe { hlsd_x264_close(self.raw.as_ptr()) }
    }
}
