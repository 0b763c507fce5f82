//! Compiles the C shim over libx264 (`src/pipeline/x264/shim.c`) and links
//! libx264, libswscale and libavutil, found with pkg-config (Debian:
//! `libx264-dev`, `libswscale-dev`, which brings `libavutil-dev`).

fn main() {
    let x264 = pkg_config::Config::new()
        .atleast_version("0.155")
        .cargo_metadata(false)
        .probe("x264")
        .expect("libx264 not found: install libx264-dev (scripts/setup.sh does)");
    let mut build = cc::Build::new();
    build.file("src/pipeline/x264/shim.c").warnings(true);
    for dir in &x264.include_paths {
        build.include(dir);
    }
    build.compile("hlsd_x264_shim");
    // After the shim, which needs it (link order).
    for dir in &x264.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for lib in &x264.libs {
        println!("cargo:rustc-link-lib={lib}");
    }
    // libswscale, for hlsdvideoscale (src/pipeline/scale).
    pkg_config::Config::new()
        .probe("libswscale")
        .expect("libswscale not found: install libswscale-dev (scripts/setup.sh does)");
    // libavutil, for the pixel format's number by name.
    pkg_config::Config::new()
        .probe("libavutil")
        .expect("libavutil not found: install libavutil-dev (scripts/setup.sh does)");
    println!("cargo:rerun-if-changed=src/pipeline/x264/shim.c");
}
