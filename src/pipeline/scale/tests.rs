//! `hlsdvideoscale` against its reference: a 1080p zone plate (the
//! pattern that shows a scaler's aliasing) scaled to 720p, in 8 and in
//! 10 bits, a 4K one to 1080p in 10 bits (an HDR film's rung), and a DVD
//! frame with non-square pixels to square ones, are byte for byte what
//! ffmpeg's `scale` filter writes with `flags=bicubic`; at one size the
//! element passes the picture through.

use super::*;
use gst::prelude::*;

/// The first buffer's bytes at the end of `description` (a gst-launch
/// line ending in `appsink name=out`).
fn first_buffer(description: &str) -> Vec<u8> {
    gst::init().unwrap();
    register().unwrap();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(30))
        .expect("a frame");
    pipeline.set_state(gst::State::Null).unwrap();
    let bytes = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    bytes
}

/// ffmpeg's `scale=W:H:flags=bicubic` of the `pix_fmt` (`yuv420p`,
/// `yuv420p10le`) picture `input` of `from` pixels.
fn ffmpeg_scale(input: &[u8], pix_fmt: &str, from: (u32, u32), to: (u32, u32)) -> Vec<u8> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), input).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s"])
        .arg(format!("{}x{}", from.0, from.1))
        .arg("-i")
        .arg(file.path())
        .arg("-vf")
        .arg(format!("scale={}:{}:flags=bicubic", to.0, to.1))
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .expect("ffmpeg (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The source, its raw picture and the element's picture at `to`, in
/// 8-bit I420.
fn compare(source: &str, from: (u32, u32), par: &str, to: (u32, u32)) {
    compare_in("I420", source, from, par, to);
}

/// [`compare`] in `format` (`I420` or `I420_10LE`).
fn compare_in(format: &str, source: &str, from: (u32, u32), par: &str, to: (u32, u32)) {
    let (pix_fmt, bytes) = match format {
        "I420" => ("yuv420p", 1),
        _ => ("yuv420p10le", 2),
    };
    let caps = format!(
        "video/x-raw,format={format},width={},height={},pixel-aspect-ratio={par}",
        from.0, from.1
    );
    let input = first_buffer(&format!("{source} ! {caps} ! appsink name=out"));
    assert_eq!(input.len() as u32, from.0 * from.1 * 3 / 2 * bytes);
    let scaled = first_buffer(&format!(
        "{source} ! {caps} ! hlsdvideoscale ! \
         video/x-raw,width={},height={},pixel-aspect-ratio=1/1 ! appsink name=out",
        to.0, to.1
    ));
    assert_eq!(scaled.len() as u32, to.0 * to.1 * 3 / 2 * bytes);
    let reference = ffmpeg_scale(&input, pix_fmt, from, to);
    let differing = scaled
        .iter()
        .zip(&reference)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differing,
        0,
        "{differing} of {} bytes differ from ffmpeg's",
        scaled.len()
    );
}

#[test]
fn a_1080p_zone_plate_to_720p_is_ffmpegs_bicubic_byte_for_byte() {
    compare(
        "videotestsrc num-buffers=1 pattern=zone-plate kx2=20 ky2=20 kt=1",
        (1920, 1080),
        "1/1",
        (1280, 720),
    );
}

#[test]
fn ten_bit_zone_plates_are_ffmpegs_bicubic_byte_for_byte() {
    let source = "videotestsrc num-buffers=1 pattern=zone-plate kx2=20 ky2=20 kt=1";
    compare_in("I420_10LE", source, (1920, 1080), "1/1", (1280, 720));
    compare_in("I420_10LE", source, (3840, 2160), "1/1", (1920, 1080));
}

#[test]
fn non_square_pixels_to_square_ones_are_ffmpegs_bicubic_byte_for_byte() {
    compare(
        "videotestsrc num-buffers=1 pattern=smpte",
        (720, 576),
        "16/15",
        (768, 576),
    );
}

#[test]
fn at_one_size_the_picture_passes_through() {
    let source = "videotestsrc num-buffers=1 pattern=ball ! \
                  video/x-raw,format=I420,width=640,height=360";
    let plain = first_buffer(&format!("{source} ! appsink name=out"));
    let through = first_buffer(&format!("{source} ! hlsdvideoscale ! appsink name=out"));
    assert_eq!(plain, through);
}
