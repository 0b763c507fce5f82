//! The tone-mapping step alone, on one core (docs/benchmarks.md, "HDR"):
//! a 1080p 10-bit PQ picture (a ramp with noise, so that every table is
//! read all over) mapped to SDR
//! - by [`hlsd::tonemap::Mapper`];
//! - by the `f64` arithmetic it stands for
//!   ([`hlsd::tonemap::map_picture`]);
//! - by the peer, ffmpeg's float-RGB chain (`zscale` linear, `tonemap`,
//!   `zscale` back to BT.709), one thread, on the same picture repeated:
//!   its time less that of ffmpeg reading the pictures into `null`.
//!
//! It prints milliseconds per picture and the ratios; it asserts nothing.
//!
//! Usage: `cargo bench --bench tonemap`

use hlsd::tonemap::{map_picture, Curve, Mapper, Transfer};
use std::process::Command;
use std::time::Instant;

/// Pictures the peer maps per run.
const PEER_PICTURES: usize = 24;

/// Seconds ffmpeg takes (one thread) to read `PEER_PICTURES` 1080p
/// yuv420p10le pictures from `raw` through `filter` into `null`.
fn ffmpeg_seconds(raw: &std::path::Path, filter: &str) -> f64 {
    let started = Instant::now();
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-nostdin",
            "-threads",
            "1",
            "-filter_threads",
            "1",
        ])
        .args([
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p10le",
            "-s",
            "1920x1080",
            "-i",
        ])
        .arg(raw)
        .args(["-vf", filter, "-f", "null", "-"])
        .status()
        .expect("ffmpeg (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {filter}");
    started.elapsed().as_secs_f64()
}

/// Milliseconds per picture of ffmpeg's chain with `curve`, less `read`
/// (its seconds to read the pictures into `null`).
fn peer_ms(raw: &std::path::Path, curve: &str, read: f64) -> f64 {
    let chain = format!(
        "zscale=tin=smpte2084:min=bt2020nc:pin=bt2020:rin=tv:t=linear:p=bt2020:npl=100,\
         format=gbrpf32le,zscale=p=bt709,tonemap=tonemap={curve}:desat=0:peak=10,\
         zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
    );
    let mapped = ffmpeg_seconds(raw, &chain);
    (mapped - read) * 1e3 / PEER_PICTURES as f64
}

fn main() {
    let (w, h) = (1920usize, 1080usize);
    let (cw, ch) = (w / 2, h / 2);
    let mut state = 12_345u32;
    let mut noise = move |range: u32| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ((state >> 16) % range) as u16
    };
    let y: Vec<u16> = (0..w * h)
        .map(|i| 64 + ((i % w) * 700 / w) as u16 + noise(64))
        .collect();
    let cb: Vec<u16> = (0..cw * ch)
        .map(|i| 400 + ((i / cw) * 200 / ch) as u16 + noise(32))
        .collect();
    let cr: Vec<u16> = (0..cw * ch)
        .map(|i| 450 + ((i % cw) * 150 / cw) as u16 + noise(32))
        .collect();
    let raw = tempfile::NamedTempFile::new().expect("a temp file");
    let mut picture = Vec::with_capacity(2 * (y.len() + cb.len() + cr.len()));
    for sample in y.iter().chain(&cb).chain(&cr) {
        picture.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(raw.path(), picture.repeat(PEER_PICTURES)).expect("raw pictures");
    println!("| curve | Mapper, ms per 1080p picture | f64 arithmetic | ffmpeg's chain (peer) | Mapper / peer |");
    println!("|---|---|---|---|---|");
    let read = ffmpeg_seconds(raw.path(), "format=yuv420p10le");
    for curve in [Curve::Bt2390, Curve::Hable, Curve::Mobius, Curve::Reinhard] {
        let mapper = Mapper::new(10, Transfer::Pq, curve, 10.0);
        let mut out = [vec![0u8; w * h], vec![0u8; cw * ch], vec![0u8; cw * ch]];
        let rounds = 20;
        let started = Instant::now();
        for _ in 0..rounds {
            let [oy, ocb, ocr] = &mut out;
            mapper.picture((w, h), [&y, &cb, &cr], [oy, ocb, ocr]);
        }
        let fast = started.elapsed().as_secs_f64() / f64::from(rounds);
        let started = Instant::now();
        let slow_out = map_picture([&y, &cb, &cr], (w, h), 10, Transfer::Pq, curve, 10.0);
        let slow = started.elapsed().as_secs_f64();
        assert_eq!(slow_out[0].len(), out[0].len());
        // ffmpeg's `tonemap` has no BT.2390: Hable stands in for it.
        let peer_curve = match curve {
            Curve::Bt2390 => "hable",
            other => other.as_str(),
        };
        let peer = peer_ms(raw.path(), peer_curve, read);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} |",
            curve.as_str(),
            fast * 1e3,
            slow * 1e3,
            peer,
            fast * 1e3 / peer
        );
    }
}
