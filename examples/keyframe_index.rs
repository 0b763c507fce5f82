//! Times the key-frame index of each file given: the container's own index
//! (`from_container`) and the demux-only pass (`demux_pass`), each cold
//! (the file's pages dropped from the page cache first, with
//! `dd iflag=nocache`) and warm. A benchmark, not a test (bench/index.sh).
//!
//! Usage: cargo run --release --example keyframe_index -- FILE...

use hlsd::container::keyframes::from_container;
use hlsd::library::passes::demux_pass;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Asks the kernel to drop `path`'s pages from the page cache.
fn drop_cache(path: &Path) {
    let _ = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status();
}

fn main() {
    gst::init().expect("GStreamer initialises");
    println!(
        "| file | size | key frames | container index, cold / warm | demux pass, cold / warm |"
    );
    println!("|---|---|---|---|---|");
    for arg in std::env::args().skip(1) {
        let path = Path::new(&arg);
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut index = Vec::new();
        let mut keys = 0;
        for _ in ["cold", "warm"] {
            if index.is_empty() {
                drop_cache(path);
            }
            let t = Instant::now();
            let fc = from_container(path);
            index.push((t.elapsed(), fc.as_ref().map(|i| i.keyframes.len())));
        }
        let mut pass = Vec::new();
        for round in ["cold", "warm"] {
            if round == "cold" {
                drop_cache(path);
            }
            let t = Instant::now();
            let dp = demux_pass(path, Duration::from_secs(3600));
            pass.push(t.elapsed());
            keys = dp.map_or(0, |i| i.keyframes.len());
        }
        let fmt = |(d, n): &(Duration, Option<usize>)| match n {
            Some(_) => format!("{:.3} s", d.as_secs_f64()),
            None => format!("none ({:.3} s)", d.as_secs_f64()),
        };
        println!(
            "| {} | {:.2} GB | {keys} | {} / {} | {:.1} s / {:.1} s |",
            path.file_name().unwrap_or_default().to_string_lossy(),
            size as f64 / 1e9,
            fmt(&index[0]),
            fmt(&index[1]),
            pass[0].as_secs_f64(),
            pass[1].as_secs_f64()
        );
    }
}
