//! One picture of a file: the key frame nearest a time, decoded on its
//! own (a key-unit seek, so no frame between is decoded), turned upright
//! (the stream's rotation tag), scaled to a width with square pixels and
//! encoded as a JPEG.
//!
//! ```text
//! source ─ parsebin ─ (video) queue ─ decodebin ─ videoconvert ─ videoflip(auto)
//!          │            ─ videoscale ─ videoconvert ─ I420,width=W ─ jpegenc ─ appsink
//!          └ (others) dropped
//! ```

use super::pipeline::{file_parsebin, make};
use gst::prelude::*;
use gst_video::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// The colorimetry of a JPEG's YCbCr (JFIF: BT.601 matrix, full range),
/// as GStreamer writes it (range 0–255, matrix BT.601, transfer and
/// primaries unknown); the pictures given are in it.
const JPEG_COLORIMETRY: &str = "1:4:0:0";

/// JPEG quality (`jpegenc`'s 0–100; 85 is its own default).
const QUALITY: i32 = 85;

/// A picture of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Still {
    /// The JPEG file's bytes.
    pub jpeg: Vec<u8>,
    /// The key frame's presentation time in the file's own stream time.
    pub at: Duration,
    /// Width and height of the picture, pixels.
    pub size: (u32, u32),
}

/// Which key frame a [`key_frame_jpeg`] seek lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// The key frame at or before this stream time.
    Before(Duration),
    /// The key frame nearest this stream time, as the demuxer finds it
    /// (some take the one before).
    Nearest(Duration),
}

/// The key frame of the first video stream of `path` that `seek` names,
/// `width` pixels wide (the height keeps the display aspect ratio), as a
/// JPEG. Blocking: it runs a pipeline, each of its steps bounded by
/// `limit`.
///
/// # Errors
/// A missing element, a file GStreamer cannot demux or decode, no video
/// stream, or a step that took longer than `limit`.
pub fn key_frame_jpeg(
    path: &Path,
    seek: Seek,
    width: u32,
    limit: Duration,
) -> Result<Still, String> {
    let (pipeline, sink) = picture_pipeline(path, width, true)?;
    let deadline = Instant::now() + limit;
    let result = preroll(&pipeline, deadline).and_then(|()| grab(&pipeline, &sink, seek, deadline));
    let _ = pipeline.set_state(gst::State::Null);
    let (sample, at) = result?;
    let info = sample
        .caps()
        .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
        .ok_or("a picture without caps")?;
    let buffer = sample.buffer().ok_or("an empty picture")?;
    let map = buffer.map_readable().map_err(|_| "an unreadable picture")?;
    Ok(Still {
        jpeg: map.to_vec(),
        at,
        size: (info.width(), info.height()),
    })
}

/// A decoded picture: I420 in full-range BT.601 (a JPEG's YCbCr), its
/// planes packed without padding (Y, then U and V at half the width and
/// height, rounded up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPicture {
    /// The key frame's presentation time in the file's stream time.
    pub at: Duration,
    /// Width and height, pixels.
    pub size: (u32, u32),
    /// The Y, U and V planes.
    pub planes: [Vec<u8>; 3],
}

/// The key frames of the first video stream of `path` that `seeks` name,
/// in order, each `width` pixels wide, given to `each` (its index in
/// `seeks` and the picture) as it is decoded: one pipeline, sought to
/// each in turn, and only key frames reach the decoder. Blocking; each
/// picture is bounded by `limit`. `each` answers `false` to stop.
///
/// # Errors
/// As [`key_frame_jpeg`], for the pipeline or any picture.
pub fn key_frame_pictures(
    path: &Path,
    seeks: &[Seek],
    width: u32,
    limit: Duration,
    mut each: impl FnMut(usize, RawPicture) -> bool,
) -> Result<(), String> {
    let (pipeline, sink) = picture_pipeline(path, width, false)?;
    let mut run = || -> Result<(), String> {
        preroll(&pipeline, Instant::now() + limit)?;
        for (i, seek) in seeks.iter().enumerate() {
            let (sample, at) = grab(&pipeline, &sink, *seek, Instant::now() + limit)?;
            if !each(i, raw_picture(&sample, at)?) {
                break;
            }
        }
        Ok(())
    };
    let result = run();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The planes of an I420 sample, packed.
fn raw_picture(sample: &gst::Sample, at: Duration) -> Result<RawPicture, String> {
    let info = sample
        .caps()
        .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
        .ok_or("a picture without caps")?;
    let buffer = sample.buffer().ok_or("an empty picture")?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|_| "an unreadable picture")?;
    let mut planes: [Vec<u8>; 3] = Default::default();
    for (p, plane) in planes.iter_mut().enumerate() {
        let (w, h) = if p == 0 {
            (info.width(), info.height())
        } else {
            (info.width().div_ceil(2), info.height().div_ceil(2))
        };
        let stride = usize::try_from(frame.plane_stride()[p]).map_err(|_| "a negative stride")?;
        let data = frame
            .plane_data(p as u32)
            .map_err(|_| "an unreadable plane")?;
        for row in 0..h as usize {
            let line = data
                .get(row * stride..row * stride + w as usize)
                .ok_or("a short plane")?;
            plane.extend_from_slice(line);
        }
    }
    Ok(RawPicture {
        at,
        size: (info.width(), info.height()),
        planes,
    })
}

/// `planes` (I420 in full-range BT.601, packed, `size` pixels) as a JPEG: `appsrc` ─
/// `jpegenc` ─ `appsink`. Blocking.
///
/// # Errors
/// A missing element, or a picture the encoder refuses.
pub fn i420_jpeg(size: (u32, u32), planes: &[Vec<u8>; 3]) -> Result<Vec<u8>, String> {
    let caps = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, size.0, size.1)
        .fps(gst::Fraction::new(0, 1))
        .build()
        .map_err(|e| format!("no caps for {size:?}: {e}"))?;
    let src = gst_app::AppSrc::builder()
        .caps(&caps.to_caps().map_err(|e| e.to_string())?)
        .format(gst::Format::Time)
        .build();
    let enc = make("jpegenc")?;
    enc.set_property("quality", QUALITY);
    let sink = gst_app::AppSink::builder().sync(false).build();
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([src.upcast_ref(), &enc, sink.upcast_ref()])
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    gst::Element::link_many([src.upcast_ref(), &enc, sink.upcast_ref()])
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    let run = || -> Result<Vec<u8>, String> {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| "the JPEG encoder did not start")?;
        // The planes at the offsets and strides the caps say.
        let mut data = vec![0u8; caps.size()];
        for (p, plane) in planes.iter().enumerate() {
            let (offset, stride) = (caps.offset()[p], caps.stride()[p] as usize);
            let w = if p == 0 { size.0 } else { size.0.div_ceil(2) } as usize;
            for (row, line) in plane.chunks_exact(w).enumerate() {
                let at = offset + row * stride;
                if let Some(dst) = data.get_mut(at..at + w) {
                    dst.copy_from_slice(line);
                }
            }
        }
        let mut buffer = gst::Buffer::from_mut_slice(data);
        buffer
            .get_mut()
            .expect("a new buffer")
            .set_pts(gst::ClockTime::ZERO);
        src.push_buffer(buffer)
            .map_err(|e| format!("the JPEG encoder refused the picture: {e}"))?;
        let _ = src.end_of_stream();
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(20))
            .ok_or("the JPEG encoder gave nothing")?;
        let buffer = sample.buffer().ok_or("an empty JPEG")?;
        let map = buffer.map_readable().map_err(|_| "an unreadable JPEG")?;
        Ok(map.to_vec())
    };
    let result = run();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// `source ─ parsebin ─ queue ─ decodebin ─ ... ─ appsink` for pictures
/// of the first video stream, `width` pixels wide, I420, JPEG-encoded
/// when `jpeg`. Only key frames reach the decoder: a picture is always
/// a key frame, and no frame between two is decoded.
fn picture_pipeline(
    path: &Path,
    width: u32,
    jpeg: bool,
) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
    let (pipeline, _, parsebin) = file_parsebin(path)?;
    super::one_codec::keep_first_codec(&parsebin);
    let mut chain = vec![
        make("queue")?,
        make("decodebin")?,
        make("videoconvert")?,
        make("videoflip")?,
        make("videoscale")?,
        make("videoconvert")?,
        make("capsfilter")?,
    ];
    chain[3].set_property_from_str("video-direction", "auto");
    chain[6].set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field(
                "width",
                i32::try_from(width).map_err(|_| "width too large")?,
            )
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            // What a JPEG holds (JFIF): full-range BT.601 YCbCr, which
            // `jpegenc` writes as it is given.
            .field("colorimetry", JPEG_COLORIMETRY)
            .build(),
    );
    if jpeg {
        let enc = make("jpegenc")?;
        enc.set_property("quality", QUALITY);
        chain.push(enc);
    }
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline
        .add_many(chain.iter().chain([sink.upcast_ref()]))
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    chain[0]
        .link(&chain[1])
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    gst::Element::link_many(chain[2..].iter().chain([sink.upcast_ref()]))
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    // One key frame per seek reaches the decoder, then the end of the
    // stream, so that the decoder gives it out at once (a decoder with
    // frame threads or a frame delay holds it until more input comes);
    // nothing else is decoded. The next flushing seek starts again.
    if let Some(out) = chain[0].static_pad("src") {
        let passed = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
        crate::guard::probe(
            &out,
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_FLUSH,
            move |pad, info| {
                use std::sync::atomic::Ordering::SeqCst;
                if let Some(gst::PadProbeData::Event(e)) = &info.data {
                    if e.type_() == gst::EventType::FlushStop {
                        passed.store(0, SeqCst);
                    }
                    return gst::PadProbeReturn::Ok;
                }
                let key = info
                    .buffer()
                    .is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT));
                match passed.load(SeqCst) {
                    0 if key => {
                        passed.store(1, SeqCst);
                        gst::PadProbeReturn::Ok
                    }
                    0 => gst::PadProbeReturn::Drop,
                    1 => {
                        passed.store(2, SeqCst);
                        let _ = pad.push_event(gst::event::Eos::new());
                        gst::PadProbeReturn::Drop
                    }
                    _ => gst::PadProbeReturn::Drop,
                }
            },
        );
    }
    // A libav decoder decodes each picture as it comes (slice threads):
    // with frame threads it holds one back per thread until more input
    // comes, here the next key frame, decoded for nothing.
    chain[1].connect("deep-element-added", false, |args| {
        let element = args.get(2).and_then(|v| v.get::<gst::Element>().ok());
        if let Some(e) =
            element.filter(|e| e.factory().is_some_and(|f| f.name().starts_with("avdec_")))
        {
            e.set_property_from_str("thread-type", "slice");
        }
        None
    });
    // The queue gives the video a thread of its own: decodebin holds its
    // first picture until it knows the stream, which would block the
    // demuxer's one thread.
    let (queue, decodebin, convert) = (chain[0].clone(), chain[1].clone(), chain[2].clone());
    crate::guard::on_pad_added(&decodebin, move |_, pad| {
        if let Some(sinkpad) = convert.static_pad("sink") {
            if !sinkpad.is_linked() && is_raw_video(pad) {
                let _ = pad.link(&sinkpad);
            }
        }
    });
    {
        // The first video stream to the decoder, anything else discarded.
        crate::guard::on_pad_added(&parsebin, move |_, pad| {
            let video = pad
                .current_caps()
                .unwrap_or_else(|| pad.query_caps(None))
                .structure(0)
                .is_some_and(|s| s.name().starts_with("video/"));
            match queue.static_pad("sink").filter(|p| video && !p.is_linked()) {
                Some(target) => {
                    let _ = pad.link(&target);
                }
                // Dropped at the pad rather than sent to a sink: in PAUSED
                // a sink would hold the demuxer's one thread on its first
                // buffer, and the video would never come.
                None => {
                    crate::guard::probe(
                        pad,
                        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                        |_, _| gst::PadProbeReturn::Drop,
                    );
                }
            }
        });
    }
    Ok((pipeline, sink))
}

/// Whether `pad` gives raw video.
fn is_raw_video(pad: &gst::Pad) -> bool {
    pad.current_caps()
        .unwrap_or_else(|| pad.query_caps(None))
        .structure(0)
        .is_some_and(|s| s.name() == "video/x-raw")
}

/// Prerolls `pipeline` (by `deadline`).
fn preroll(pipeline: &gst::Pipeline, deadline: Instant) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Paused)
        .map_err(|_| "the file cannot be opened".to_string())?;
    settle(pipeline, deadline)
}

/// Seeks the prerolled `pipeline` to the key frame `seek` names and takes
/// the picture its appsink prerolled on, with its stream time.
fn grab(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    seek: Seek,
    deadline: Instant,
) -> Result<(gst::Sample, Duration), String> {
    let (at, snap) = match seek {
        Seek::Before(at) => (at, gst::SeekFlags::SNAP_BEFORE),
        Seek::Nearest(at) => (at, gst::SeekFlags::SNAP_NEAREST),
    };
    let position = gst::ClockTime::from_nseconds(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT | snap,
            position,
        )
        .map_err(|_| "the file cannot be seeked".to_string())?;
    settle(pipeline, deadline)?;
    let left = deadline.saturating_duration_since(Instant::now());
    let sample = sink
        .try_pull_preroll(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
        .ok_or("no picture: the file has no video that decodes")?;
    let buffer = sample.buffer().ok_or("an empty picture")?;
    let at = buffer
        .pts()
        .and_then(|pts| {
            let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?.clone();
            segment.to_stream_time(pts)
        })
        .map_or(Duration::ZERO, |t| Duration::from_nanos(t.nseconds()));
    Ok((sample, at))
}

/// Waits until the pipeline has prerolled (or has no more to preroll),
/// or fails with its error or at `deadline`.
fn settle(pipeline: &gst::Pipeline, deadline: Instant) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("a pipeline without a bus")?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the picture took too long to decode".into());
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::AsyncDone, gst::MessageType::Error],
        ) else {
            return Err("the picture took too long to decode".into());
        };
        match msg.view() {
            gst::MessageView::AsyncDone(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                return Err(format!("the file does not decode: {}", e.error()))
            }
            _ => {}
        }
    }
}
