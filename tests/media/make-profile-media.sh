#!/usr/bin/env bash
# Makes the media of tests/profiles.rs in $1 (default target/profile-media):
# streams MPEG-TS HLS cannot carry, in the containers a library holds them
# in. HEVC Main with AAC in MKV (8 s, 640x360, a key frame every 2 s);
# the shared HEVC Main 10 phone clip (rotated 90 degrees) copied into MKV;
# VP9 with Opus in WebM and the same streams in a plain Matroska file;
# H.264 with FLAC in MKV; HEVC with an AC-3 5.1 and an E-AC-3 stereo
# track in MKV. Needs ffmpeg (scripts/setup.sh installs it).
set -euo pipefail
out=${1:-target/profile-media}
here=$(cd "$(dirname "$0")" && pwd)
shared=$(cd "$here/../../../shared/media" && pwd)
mkdir -p "$out" && cd "$out"
[ -e .done ] && exit 0
ff="timeout 300 nice -n 10 ffmpeg -nostdin -y -hide_banner -loglevel error"
src="testsrc2=s=640x360:r=24:d=8,format=yuv420p"
tone="sine=f=440:d=8:sample_rate=48000,aformat=channel_layouts=stereo"
$ff -f lavfi -i "$src" -f lavfi -i "$tone" -c:v libx265 -preset ultrafast \
  -x265-params keyint=48:min-keyint=48:scenecut=0:log-level=error -tag:v hvc1 \
  -c:a aac -b:a 96k hevc_aac.mkv
$ff -i "$shared/derived_hevc_main10_hvc1_phone_rot90.mp4" -map 0 -c copy hevc_main10_rot90.mkv
$ff -f lavfi -i "$src" -f lavfi -i "$tone" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 \
  -b:v 500k -g 48 -c:a libopus -b:a 64k vp9_opus.webm
$ff -i vp9_opus.webm -map 0 -c copy -f matroska vp9_opus.mkv
$ff -f lavfi -i "$src" -f lavfi -i "$tone" -c:v libx264 -preset veryfast -g 48 \
  -c:a flac h264_flac.mkv
$ff -f lavfi -i "$src" -f lavfi -i "sine=f=440:d=8:sample_rate=48000" \
  -f lavfi -i "sine=f=660:d=8:sample_rate=48000" -map 0 -map 1 -map 2 \
  -c:v libx265 -preset ultrafast -x265-params keyint=48:log-level=error \
  -c:a:0 ac3 -ac:a:0 6 -b:a:0 384k -c:a:1 eac3 -ac:a:1 2 -b:a:1 192k \
  -metadata:s:a:0 language=eng -metadata:s:a:1 language=spa hevc_ac3_eac3.mkv
touch .done
