//! The tone mapper on one core (docs/benchmarks.md, "HDR"): a 1080p
//! 10-bit PQ picture (a ramp with noise, so that every table is read
//! all over) mapped to SDR by [`hlsd::tonemap::Mapper`], against the
//! same picture through the `f64` arithmetic it stands for
//! ([`hlsd::tonemap::map_picture`]). It prints milliseconds per picture
//! and the ratio; it asserts nothing.
//!
//! Usage: `cargo bench --bench tonemap`

use hlsd::tonemap::{map_picture, Curve, Mapper, Transfer};
use std::time::Instant;

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
    println!("| curve | Mapper, ms per 1080p picture | f64 arithmetic | ratio |");
    println!("|---|---|---|---|");
    for curve in [Curve::Bt2390, Curve::Hable] {
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
        println!(
            "| {} | {:.1} | {:.1} | {:.2} |",
            curve.as_str(),
            fast * 1e3,
            slow * 1e3,
            slow / fast
        );
    }
}
