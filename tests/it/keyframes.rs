//! The key-frame index: the container's own index (Matroska Cues, MP4
//! sample tables, AVI index) read without decoding must give the very key
//! frames, at the very times, that GStreamer's demuxers and `h264parse`
//! give the cutter; and it must survive hostile files.
//!
//! Media: the fixtures, `../shared/media`, and files made by
//! `tests/media/make-keyframe-media.sh` into `target/testmedia` (H.264 with
//! B-frames and irregular GOPs in every container and muxer at hand).

use crate::common::{fixtures_dir, keyframe_media as generated, shared_media};
use hlsd::container::index::{KeyframeIndex, Source};
use hlsd::container::keyframes::from_container;
use hlsd::library::passes::demux_pass;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `from_container` must do for a file.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// An index from this container reader, equal to the demux pass within 1 ms.
    Index(Source),
    /// No index: none in the file, or one known to be incomplete.
    NoIndex,
}

fn cases(shared: &Path) -> Vec<(PathBuf, Expect)> {
    use Expect::{Index, NoIndex};
    use Source::{Avi, Matroska, Mp4};
    let mut v = vec![
        (fixtures_dir().join("remux_h264_aac.mkv"), Index(Matroska)),
        (fixtures_dir().join("direct_h264_aac.mp4"), Index(Mp4)),
        (
            fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
            Index(Matroska),
        ),
    ];
    for (name, e) in [
        ("h264_aac_screencast_1024x576.avi", Index(Avi)),
        ("derived_h264_aac51_bbb_720p.mkv", Index(Matroska)),
        ("derived_bbb_h264_3audio_srt_pgs.mkv", Index(Matroska)),
        ("derived_h264_dts51_bbb_720p.mkv", Index(Matroska)),
        ("h264_aac_android_phone_1080p_vfr.mp4", Index(Mp4)),
        ("h264_aac51_bbb_720p_5s.mp4", Index(Mp4)),
        ("h264_aac_screencast_720p_8s.mp4", Index(Mp4)),
        ("h264_aac_0.33s_720p.mp4", Index(Mp4)),
        ("h264_videoonly_bikes_640x272.mp4", Index(Mp4)),
        ("derived_hevc_main10_hvc1_phone_rot90.mp4", Index(Mp4)),
        ("h264_aac_coin_568x320.mov", Index(Mp4)),
        ("h264_aac_oddres_640x465.mov", Index(Mp4)),
        ("vp8_vorbis_rocket_launch_640x360.webm", Index(Matroska)),
        ("vp9_10bit444_vorbis51_6srt.mkv", Index(Matroska)),
        ("av1_bbb_640x360_2srt.mkv", Index(Matroska)),
        ("mpeg4asp_aac_190x240.mp4", Index(Mp4)),
        ("h263_amrnb_lego.3gp", Index(Mp4)),
        // The Haali muxer: no Cues, an unknown-size segment.
        ("h264_1fps_countdown_600s.mkv", NoIndex),
        ("h264_aac_sintel_cea608.ts", NoIndex),
        ("mpeg2_city_720x405.mpg", NoIndex),
    ] {
        v.push((shared.join(name), e));
    }
    if let Some(gen) = generated() {
        for (name, e) in [
            ("bf_ffmpeg.mkv", Index(Matroska)),
            ("bf_ffmpeg.mp4", Index(Mp4)),
            ("bf_faststart.mp4", Index(Mp4)),
            ("bf_negcts.mp4", Index(Mp4)),
            ("bf_ffmpeg.mov", Index(Mp4)),
            ("bf_ffmpeg.avi", Index(Avi)),
            ("bf_gst.mkv", Index(Matroska)),
            ("bf_gst.avi", Index(Avi)),
            ("bf_mkvmerge.mkv", Index(Matroska)),
            ("bf_nocues.mkv", NoIndex),
            // matroskamux min-index-interval=5s: 10 Cues for 21 key frames.
            ("bf_gst_sparsecues.mkv", NoIndex),
            ("bf_cue3_removed.mkv", NoIndex),
            ("bf_cue11_removed.mkv", NoIndex),
        ] {
            let p = gen.join(name);
            if p.exists() {
                v.push((p, e));
            } else {
                crate::common::skip(format!(
                    "{} was not made (mkvtoolnix missing?)",
                    p.display()
                ));
            }
        }
    }
    v
}

/// Largest per-key-frame difference, `None` if the counts differ.
fn max_diff(a: &KeyframeIndex, b: &KeyframeIndex) -> Option<Duration> {
    (a.keyframes.len() == b.keyframes.len()).then(|| {
        a.keyframes
            .iter()
            .zip(&b.keyframes)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or_default()
    })
}

#[test]
fn the_container_index_matches_what_the_demuxers_give_the_cutter() {
    let Some(shared) = shared_media() else { return };
    gst::init().unwrap();
    let mut failures = Vec::new();
    println!(
        "{:<42} {:<9} {:>5} {:>10} {:>12} {:>12} {:>9} {:>9}  result",
        "file", "source", "keys", "max diff", "end (index)", "end (demux)", "t index", "t demux"
    );
    for (path, expect) in cases(&shared) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let t = Instant::now();
        let fc = from_container(&path);
        let t_fc = t.elapsed();
        let t = Instant::now();
        let dp = match demux_pass(&path, Duration::from_secs(120)) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: demux pass failed: {e}"));
                continue;
            }
        };
        let t_dp = t.elapsed();
        let (source, diff, ok) = match (expect, &fc) {
            (Expect::Index(src), Some(f)) => {
                let diff = max_diff(f, &dp);
                let ok = f.source == src && diff.is_some_and(|d| d < Duration::from_millis(1));
                (format!("{:?}", f.source), diff, ok)
            }
            (Expect::NoIndex, None) => ("none".into(), None, true),
            (_, f) => (format!("{:?}", f.as_ref().map(|f| f.source)), None, false),
        };
        let fmt = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64()));
        println!(
            "{:<42} {:<9} {:>5} {:>10} {:>12} {:>12} {:>9.2?} {:>9.2?}  {}",
            name,
            source,
            dp.keyframes.len(),
            diff.map_or("-".into(), |d| format!("{d:?}")),
            fmt(fc.as_ref().and_then(|f| f.end)),
            fmt(dp.end),
            t_fc,
            t_dp,
            if ok { "pass" } else { "FAIL" }
        );
        if !ok {
            failures.push(format!(
                "{name}: expected {expect:?}\n  index: {fc:?}\n  demux: {dp:?}"
            ));
        }
        // The ends may differ by less than a frame: GStreamer's last buffer
        // duration comes from h264parse's frame rate, the index's from the
        // container.
        if let (Some(a), Some(b)) = (fc.as_ref().and_then(|f| f.end), dp.end) {
            if a.abs_diff(b) > Duration::from_millis(50) {
                failures.push(format!("{name}: end {a:?} vs {b:?}"));
            }
        }
        assert!(
            dp.keyframes.windows(2).all(|w| w[0] < w[1]),
            "{name}: unsorted"
        );
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// Whether the sample at byte `at` of `file` holds an IDR (H.264) or IRAP
/// (HEVC) picture among its first NAL units (4-byte lengths, as MP4
/// writes them).
fn key_picture_at(file: &[u8], at: u64, hevc: bool) -> bool {
    let mut pos = at as usize;
    for _ in 0..16 {
        let Some(len) = file.get(pos..pos + 4) else {
            return false;
        };
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        let Some(&header) = file.get(pos + 4) else {
            return false;
        };
        let key = if hevc {
            (16..=21).contains(&((header >> 1) & 0x3f))
        } else {
            header & 0x1f == 5
        };
        if key {
            return true;
        }
        if len == 0 {
            return false;
        }
        pos += 4 + len;
    }
    false
}

/// Whether the AVI chunk at byte `at` of `file` is a video chunk (`##dc`,
/// or `##db` as `avimux` writes) whose
/// H.264 (Annex B) data holds an IDR picture.
fn key_chunk_at(file: &[u8], at: u64) -> bool {
    let at = at as usize;
    let Some(head) = file.get(at..at + 8) else {
        return false;
    };
    let size = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
    let Some(data) = file.get(at + 8..(at + 8 + size).min(file.len())) else {
        return false;
    };
    matches!(&head[2..4], b"dc" | b"db")
        && data
            .windows(4)
            .any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
}

/// Whether the bytes of a file at an offset are a key frame's.
type HoldsKey<'a> = dyn Fn(&[u8], u64) -> bool + 'a;

#[test]
fn mp4_and_avi_indexes_say_where_each_key_frame_lies() {
    let Some(shared) = shared_media() else { return };
    let mut checked = [0, 0];
    for (path, expect) in cases(&shared) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let hevc = name.contains("hevc");
        // Whether the bytes at an offset are the key frame's: an MP4
        // sample's H.264 or HEVC NAL units, an AVI video chunk.
        let (kind, holds_key): (usize, &HoldsKey<'_>) = match expect {
            Expect::Index(Source::Mp4)
                if name.contains("h264") || name.starts_with("bf_") || hevc =>
            {
                (0, &|file, at| key_picture_at(file, at, hevc))
            }
            Expect::Index(Source::Avi) => (1, &key_chunk_at),
            _ => continue,
        };
        let index = from_container(&path).unwrap_or_else(|| panic!("{name}: no index"));
        let file = std::fs::read(&path).unwrap();
        assert_eq!(
            index.offsets.len(),
            index.keyframes.len(),
            "{name}: {index:?}"
        );
        let end = index
            .data_end
            .unwrap_or_else(|| panic!("{name}: no data end"));
        assert!(
            end <= file.len() as u64 && index.offsets.last() < Some(&end),
            "{name}"
        );
        for (n, at) in index.offsets.iter().enumerate() {
            assert!(holds_key(&file, *at), "{name}: key frame {n} at byte {at}");
        }
        checked[kind] += 1;
    }
    assert!(
        checked[0] >= 8 && checked[1] >= 3,
        "MP4 and AVI files checked: {checked:?}"
    );
}

#[test]
fn files_without_video_or_readable_data_get_a_plain_error() {
    let Some(shared) = shared_media() else { return };
    gst::init().unwrap();
    let missing = demux_pass(Path::new("/nonexistent/file.mkv"), Duration::from_secs(10));
    assert!(missing.is_err_and(|e| e.contains("cannot read")));
    for name in [
        "bad_no_streams_262b.mp4",
        "derived_truncated_no_moov_bbb.mp4",
        "flac_music_stereo_139s.flac",
    ] {
        let r = demux_pass(&shared.join(name), Duration::from_secs(30));
        assert!(r.is_err(), "{name}: {r:?}");
        assert!(from_container(&shared.join(name)).is_none(), "{name}");
    }
    if let Some(gen) = generated() {
        let r = demux_pass(&gen.join("bf_ffmpeg.mkv"), Duration::from_nanos(1));
        assert!(r.is_err_and(|e| e.contains("timed out")));
    }
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn truncated_and_garbled_containers_never_panic_or_hang_the_reader() {
    let Some(shared) = shared_media() else { return };
    let inputs = [
        fixtures_dir().join("remux_h264_aac.mkv"),
        shared.join("derived_bbb_h264_3audio_srt_pgs.mkv"),
        shared.join("vp8_vorbis_rocket_launch_640x360.webm"),
        shared.join("h264_aac51_bbb_720p_5s.mp4"),
        shared.join("h264_aac_android_phone_1080p_vfr.mp4"),
        shared.join("h264_aac_coin_568x320.mov"),
        shared.join("h264_aac_screencast_1024x576.avi"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("case");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut runs = 0u32;
    let mut check = |data: &[u8], what: &str| {
        std::fs::write(&tmp, data).unwrap();
        let t = Instant::now();
        let r = std::panic::catch_unwind(|| from_container(&tmp))
            .unwrap_or_else(|_| panic!("panic on {what}"));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{what}: took {:?}",
            t.elapsed()
        );
        if let Some(i) = r {
            assert!(
                i.keyframes.windows(2).all(|w| w[0] < w[1]),
                "{what}: unsorted"
            );
        }
        runs += 1;
    };
    for path in &inputs {
        let orig = std::fs::read(path).unwrap();
        let len = orig.len();
        // Truncations: every length of the first 300 bytes, spread over the
        // file, and densely in the last 64 KiB (where moov, Cues and idx1
        // often sit).
        let mut cuts: Vec<usize> = (0..300.min(len)).collect();
        cuts.extend((0..100).map(|i| len * i / 100));
        cuts.extend((0..100).map(|_| len - rng.below(65_536.min(len))));
        for cut in cuts {
            check(&orig[..cut], &format!("{} cut at {cut}", path.display()));
        }
        // 1 to 8 bytes garbled in the head or the last 256 KiB.
        for i in 0..200 {
            let mut data = orig.clone();
            for _ in 0..1 + rng.below(8) {
                let window = 262_144.min(len);
                let at = if rng.next() & 1 == 0 {
                    rng.below(window)
                } else {
                    len - 1 - rng.below(window)
                };
                data[at] = match rng.below(4) {
                    0 => 0xFF,
                    1 => 0x00,
                    _ => rng.next() as u8,
                };
            }
            check(&data, &format!("{} garbled #{i}", path.display()));
        }
    }
    println!("{runs} damaged files, no panic");
}

/// An open-GOP stream copied into MP4 and MKV (the coverage corpus) lists
/// non-IDR I-frames as key frames; closed-GOP files do not.
#[test]
fn open_gop_indexes_are_recognised() {
    let Some(corpus) = crate::common::coverage_media() else {
        return;
    };
    for name in ["mkv_open_gop.mkv", "mp4_open_gop.mp4"] {
        let path = corpus.join(name);
        let index = hlsd::container::keyframes::from_container(&path).expect("an index");
        assert!(
            hlsd::library::passes::lists_non_idr_key_frames(&path, &index),
            "{name}: its I-frames are not all IDR frames"
        );
    }
    // Closed GOPs keep their container index.
    for path in [
        fixtures_dir().join("remux_h264_aac.mkv"),
        fixtures_dir().join("direct_h264_aac.mp4"),
    ] {
        let index = hlsd::container::keyframes::from_container(&path).expect("an index");
        assert!(
            !hlsd::library::passes::lists_non_idr_key_frames(&path, &index),
            "{}",
            path.display()
        );
    }
}
