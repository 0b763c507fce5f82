//! A safe handle on libswscale: one context that scales 4:2:0 planar
//! pictures, 8-bit (`AV_PIX_FMT_YUV420P`) or 10-bit little-endian
//! (`AV_PIX_FMT_YUV420P10LE`), from one size to another in the same
//! format, with swscale's bicubic filter, the one the ffmpeg command line
//! uses by default (`sws_flags=bicubic`).

use anyhow::bail;
use gst_video::prelude::*;
use std::ffi::{c_char, c_int};
use std::ptr::NonNull;

/// `AV_PIX_FMT_YUV420P`, the first value of `enum AVPixelFormat`
/// (libavutil/pixfmt.h; it has never moved).
const AV_PIX_FMT_YUV420P: c_int = 0;
/// `SWS_BICUBIC` (libswscale/swscale.h).
const SWS_BICUBIC: c_int = 4;

#[repr(C)]
struct SwsContext {
    _opaque: [u8; 0],
}

extern "C" {
    fn sws_getContext(
        src_w: c_int,
        src_h: c_int,
        src_format: c_int,
        dst_w: c_int,
        dst_h: c_int,
        dst_format: c_int,
        flags: c_int,
        src_filter: *mut std::ffi::c_void,
        dst_filter: *mut std::ffi::c_void,
        param: *const f64,
    ) -> *mut SwsContext;
    fn sws_scale(
        c: *mut SwsContext,
        src: *const *const u8,
        src_stride: *const c_int,
        src_slice_y: c_int,
        src_slice_h: c_int,
        dst: *const *mut u8,
        dst_stride: *const c_int,
    ) -> c_int;
    fn sws_freeContext(c: *mut SwsContext);
    fn av_get_pix_fmt(name: *const c_char) -> c_int;
}

/// swscale's number for a GStreamer 4:2:0 planar format, and its bytes
/// per sample; `None` for any other format.
fn pixel_format(format: gst_video::VideoFormat) -> Option<(c_int, u32)> {
    match format {
        gst_video::VideoFormat::I420 => Some((AV_PIX_FMT_YUV420P, 1)),
        gst_video::VideoFormat::I42010le => {
            // Looked up by name: its place in `enum AVPixelFormat` has
            // moved between libavutil versions.
            // SAFETY: a NUL-terminated string; the call only reads it.
            let id = unsafe { av_get_pix_fmt(c"yuv420p10le".as_ptr()) };
            (id >= 0).then_some((id, 2))
        }
        _ => None,
    }
}

/// Scales 4:2:0 pictures (I420 or I420_10LE) of one size (`from`,
/// pixels) to another (`to`), in the same format.
pub struct Scaler {
    raw: NonNull<SwsContext>,
    format: gst_video::VideoFormat,
    sample_bytes: u32,
    from: (u32, u32),
    to: (u32, u32),
}

// SAFETY: a SwsContext has no thread affinity; `Scaler` is used by one
// thread at a time (`&mut self` in `scale`).
unsafe impl Send for Scaler {}

impl Scaler {
    /// A bicubic scaler of `format` pictures from `from` to `to` (width,
    /// height in pixels).
    ///
    /// # Errors
    /// Fails when the format is neither I420 nor I420_10LE, a size does
    /// not fit a C `int` or swscale refuses it.
    pub fn new(
        format: gst_video::VideoFormat,
        from: (u32, u32),
        to: (u32, u32),
    ) -> anyhow::Result<Scaler> {
        let int = |v: u32| c_int::try_from(v).map_err(|_| anyhow::anyhow!("picture size {v}"));
        let Some((av_format, sample_bytes)) = pixel_format(format) else {
            bail!("swscale scales I420 and I420_10LE here, not {format:?}");
        };
        // SAFETY: plain values; null filters and params are allowed.
        let raw = unsafe {
            sws_getContext(
                int(from.0)?,
                int(from.1)?,
                av_format,
                int(to.0)?,
                int(to.1)?,
                av_format,
                SWS_BICUBIC,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        match NonNull::new(raw) {
            Some(raw) => Ok(Scaler {
                raw,
                format,
                sample_bytes,
                from,
                to,
            }),
            None => bail!("swscale cannot scale {from:?} to {to:?}"),
        }
    }

    /// Scales `input` into `output`, both of this scaler's format and
    /// sizes.
    ///
    /// # Errors
    /// Fails when a frame is not of the format and size the scaler was
    /// made for.
    pub fn scale(
        &mut self,
        input: &gst_video::VideoFrameRef<&gst::BufferRef>,
        output: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> anyhow::Result<()> {
        let format = self.format;
        if input.format() != format || (input.width(), input.height()) != self.from {
            bail!(
                "scaler made for {format:?} {:?}, given {:?} {}x{}",
                self.from,
                input.format(),
                input.width(),
                input.height()
            );
        }
        if output.format() != format || (output.width(), output.height()) != self.to {
            bail!(
                "scaler made for {format:?} {:?}, writing {:?} {}x{}",
                self.to,
                output.format(),
                output.width(),
                output.height()
            );
        }
        // swscale reads and writes whole rows: each plane's stride must
        // cover its width in bytes (chroma planes half as wide, rounded
        // up).
        for (frame_strides, width) in [
            (input.plane_stride(), self.from.0),
            (output.plane_stride(), self.to.0),
        ] {
            for (plane, stride) in frame_strides.iter().take(3).enumerate() {
                let samples = if plane == 0 { width } else { width.div_ceil(2) };
                let plane_width = samples * self.sample_bytes;
                if *stride < 0 || (*stride as u32) < plane_width {
                    bail!("plane {plane}: stride {stride} under its width {plane_width}");
                }
            }
        }
        let mut src = [std::ptr::null::<u8>(); 4];
        let mut src_stride = [0 as c_int; 4];
        for plane in 0..3u32 {
            src[plane as usize] = input.plane_data(plane)?.as_ptr();
            src_stride[plane as usize] = input.plane_stride()[plane as usize];
        }
        let mut dst = [std::ptr::null_mut::<u8>(); 4];
        let mut dst_stride = [0 as c_int; 4];
        let strides = output.plane_stride().to_vec();
        for plane in 0..3u32 {
            dst[plane as usize] = output.plane_data_mut(plane)?.as_mut_ptr();
            dst_stride[plane as usize] = strides[plane as usize];
        }
        // SAFETY: the planes are mapped for the frames' lifetimes, of the
        // sizes and strides checked above, which are the context's.
        let rows = unsafe {
            sws_scale(
                self.raw.as_ptr(),
                src.as_ptr(),
                src_stride.as_ptr(),
                0,
                self.from.1 as c_int,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows != self.to.1 as c_int {
            bail!("swscale wrote {rows} rows of {}", self.to.1);
        }
        Ok(())
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: made by sws_getContext, freed once.
        unsafe { sws_freeContext(self.raw.as_ptr()) }
    }
}
