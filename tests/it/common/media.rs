//! Test media: the fixtures, `../shared/media`, media the tests make
//! (long AVIs, the key-frame and coverage corpora), subsets of them, and
//! the browser the page tests drive.

use super::*;

/// A test cannot run because `why` (an input or a tool is missing): with
/// `HLSD_REQUIRE_MEDIA=1` (as `.ci/run` sets it) the test fails; else it
/// prints a notice and the caller returns (skips).
///
/// # Panics
/// With `HLSD_REQUIRE_MEDIA=1`.
pub fn skip(why: impl std::fmt::Display) {
    if std::env::var("HLSD_REQUIRE_MEDIA").is_ok_and(|v| v == "1") {
        panic!("{why}; HLSD_REQUIRE_MEDIA=1 makes a missing input a failure (scripts/setup.sh installs what the tests need)");
    }
    eprintln!("NOTICE: {why}; skipping");
}

/// libx265's parameters for HDR10: BT.2020, PQ, a 1000-nit mastering
/// display (SMPTE ST 2086) and MaxCLL 1000, MaxFALL 400 (CTA-861.3).
pub const X265_HDR10: &str = "log-level=error:hdr10=1:colorprim=bt2020:transfer=smpte2084:\
     colormatrix=bt2020nc:master-display=G(13250,34500)B(7500,3000)R(34000,16000)\
     WP(15635,16450)L(10000000,1):max-cll=1000,400";

/// Makes `out`, an MP4 of `seconds` of ffmpeg's `testsrc2` at 640×360,
/// 24 fps, as 10-bit HEVC (`hvc1`) by libx265 with `x265_params` (e.g.
/// [`X265_HDR10`]).
pub fn make_x265_mp4(out: &Path, seconds: u32, x265_params: &str) {
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=s=640x360:r=24:d={seconds}"),
        "-vf",
        "format=yuv420p10le",
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        x265_params,
        "-tag:v",
        "hvc1",
        "-f",
        "mp4",
        out.to_str().unwrap(),
    ]);
}

/// The repository's fixtures (made by scripts/make-fixtures.sh).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `../shared/media`, or `None` (with a printed notice) when absent.
pub fn shared_media() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/media");
    if dir.is_dir() {
        Some(dir.canonicalize().expect("canonical shared media"))
    } else {
        skip("../shared/media is absent");
        None
    }
}

/// `target/{dir}`, made once by `tests/media/{script}` (one process at a
/// time: the tests of one binary share it); `None`, with a notice naming
/// `what`, when it cannot be made.
fn made_media(script: &str, dir: &str, what: &str) -> Option<PathBuf> {
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target").join(dir);
    if !dir.join(".done").exists() {
        let ok = std::process::Command::new("bash")
            .arg(root.join("tests/media").join(script))
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skip(format!("cannot make the {what} (ffmpeg missing?)"));
            return None;
        }
    }
    Some(dir)
}

/// The media `tests/media/make-keyframe-media.sh` makes (H.264 with
/// B-frames and irregular GOPs in many containers and muxers), made once
/// into `target/testmedia`; `None`, with a notice, when it cannot be made.
pub fn keyframe_media() -> Option<PathBuf> {
    made_media(
        "make-keyframe-media.sh",
        "testmedia",
        "key-frame test media",
    )
}

/// The coverage corpus `tests/media/make-coverage-media.sh` makes (files
/// ffmpeg decodes that GStreamer-based servers trip over), made once into
/// `target/coverage-media`; `None`, with a notice, when it cannot be made.
pub fn coverage_media() -> Option<PathBuf> {
    made_media("make-coverage-media.sh", "coverage-media", "coverage media")
}

/// The media `tests/media/make-profile-media.sh` makes (HEVC, VP9, Opus
/// and FLAC in Matroska and WebM), made once into `target/profile-media`;
/// `None`, with a notice, when it cannot be made.
pub fn profile_media() -> Option<PathBuf> {
    made_media("make-profile-media.sh", "profile-media", "profile media")
}

/// The media `tests/media/make-ladder-media.sh` makes (MPEG-2 sources at
/// 1080p and 480p, on the transcode path), made once into
/// `target/ladder-media`; `None`, with a notice, when it cannot be made.
pub fn ladder_media() -> Option<PathBuf> {
    made_media("make-ladder-media.sh", "ladder-media", "ladder media")
}

/// The media `tests/media/make-adapt-media.sh` makes (a 60 s 1080p H.264
/// film at 12 Mb/s with irregular key frames and one 11 s GOP, and MP4s
/// and HEVC beside it), made once
/// into `target/adapt-media-3`; `None`, with a notice, when it cannot be
/// made.
pub fn adapt_media() -> Option<PathBuf> {
    made_media("make-adapt-media.sh", "adapt-media-3", "adaptation media")
}

/// The media `tests/media/make-identity-media.sh` makes (30 s files with
/// every kind of rendition), made once into `target/identity-media`;
/// `None`, with a notice, when it cannot be made.
pub fn identity_media() -> Option<PathBuf> {
    made_media("make-identity-media.sh", "identity-media", "identity media")
}

/// The Chromium binary to drive, when it, playwright-core and hls.js are
/// installed (scripts/setup.sh installs them); `None` with a notice.
pub fn chromium() -> Option<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).is_file()
        && repo.join("web/node_modules/playwright-core").is_dir()
        && repo.join("web/node_modules/shaka-player").is_dir()
        && repo.join("web/static/vendor/hls.min.js").is_file();
    if !ready {
        skip(
            "chromium, playwright-core, Shaka Player or hls.js is not installed (scripts/setup.sh installs them)",
        );
        return None;
    }
    Some(chromium)
}

/// A temporary media dir holding symlinks to `files` (paths), so a test
/// scans only what it uses.
pub fn media_subset(files: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp media dir");
    for f in files {
        assert!(
            f.is_file(),
            "missing media file {} (run scripts/make-fixtures.sh)",
            f.display()
        );
        std::os::unix::fs::symlink(f, dir.path().join(f.file_name().unwrap())).expect("symlink");
    }
    dir
}

/// Writes `seconds` of GStreamer test video (320x240 at 30000/1001 fps,
/// moving, MPEG-4 Part 2) and test tone (MP3) into an AVI file in `dir`:
/// a long file on hlsd's transcode path, made in a few seconds.
pub fn make_long_avi(dir: &Path, seconds: u32) -> PathBuf {
    gst::init().unwrap();
    let path = dir.join(format!("long_mpeg4_mp3_{seconds}s.avi"));
    let frames = (seconds as u64 * 30_000).div_ceil(1001);
    let audio_buffers = (seconds as u64 * 44_100).div_ceil(1024);
    let description = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240,framerate=30000/1001 \
         ! avenc_mpeg4 bitrate=300000 ! queue ! mux. \
         audiotestsrc num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 \
         ! lamemp3enc ! queue ! mux. \
         avimux name=mux ! filesink location={}",
        path.display()
    );
    let pipeline = gst::parse::launch(&description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("making {}: {}", path.display(), e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    path
}

/// A media dir holding one [`make_long_avi`] file of `seconds`; returns the
/// dir and the file's name.
pub async fn long_avi_dir(seconds: u32) -> (tempfile::TempDir, String) {
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().to_path_buf();
    let file = tokio::task::spawn_blocking(move || make_long_avi(&dir, seconds))
        .await
        .unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    (media, name)
}

/// Runs Debian's ffmpeg with `args` (quiet, overwriting) to make a test
/// file; fails the test when it cannot.
pub fn ffmpeg_make(args: &[&str]) {
    let ok = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ffmpeg {args:?} failed");
}
