#!/usr/bin/env bash
# What the key-frame index of a 2-hour film costs (docs/benchmarks.md, "Key frames of a 2-hour film").
# Makes 2-hour 1080p H.264 8 Mb/s + AAC files (~7 GB each: MKV, MP4 and
# MPEG-TS, by looping the 120 s remux bench input with a stream copy) in
# bench-media/long/, then times the container index and the demux pass on
# each, cold and warm. Needs ~22 GB of disk; delete bench-media/long after.
# Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
src=bench-media/bench_h264_aac_1080p_120s.mkv
[ -s "$src" ] || ../shared/bench/make-bench-media.sh bench-media >/dev/null
out=bench-media/long
mkdir -p "$out"
ff="ffmpeg -nostdin -v error -y"
[ -s "$out/film_2h.mkv" ] || $ff -stream_loop 59 -i "$src" -map 0 -c copy "$out/film_2h.mkv"
[ -s "$out/film_2h.mp4" ] || $ff -i "$out/film_2h.mkv" -map 0 -c copy "$out/film_2h.mp4"
[ -s "$out/film_2h.ts" ] || $ff -i "$out/film_2h.mkv" -map 0 -c copy "$out/film_2h.ts"
cargo build --release --quiet --example keyframe_index
exec target/release/examples/keyframe_index "$out/film_2h.mkv" "$out/film_2h.mp4" "$out/film_2h.ts"
