#!/usr/bin/env bash
# Makes the media of tests/it/identity.rs in $1 (default
# target/identity-media): 30 s files with every kind of rendition hlsd
# makes, each cut into several segments. HEVC (open GOPs, x265's default)
# with AAC, AC-3 5.1 and E-AC-3 in MKV (fMP4 copies for Safari); VP9 with
# Opus in WebM and H.264 with FLAC in MKV (fMP4 copies for Chromium);
# H.264 with B-frames, AAC and a SubRip track in MKV (MPEG-TS copies and
# WebVTT); MPEG-2 with B-frames and MP2 in MKV (x264 and AAC encodes). Needs
# ffmpeg (scripts/setup.sh installs it).
set -euo pipefail
out=${1:-target/identity-media}
mkdir -p "$out" && cd "$out"
[ -e .done ] && exit 0
ff="timeout 300 nice -n 10 ffmpeg -nostdin -y -hide_banner -loglevel error"
src="testsrc2=s=320x240:r=24:d=30,format=yuv420p"
tone() { echo "sine=f=$1:d=30:sample_rate=48000"; }
$ff -f lavfi -i "$src" -f lavfi -i "$(tone 440)" -f lavfi -i "$(tone 550)" -f lavfi -i "$(tone 660)" \
  -map 0 -map 1 -map 2 -map 3 -c:v libx265 -preset ultrafast -tag:v hvc1 \
  -x265-params keyint=48:min-keyint=24:bframes=3:log-level=error \
  -c:a:0 aac -b:a:0 96k -c:a:1 ac3 -ac:a:1 6 -b:a:1 384k -c:a:2 eac3 -ac:a:2 2 -b:a:2 192k \
  hevc_aac_ac3_eac3.mkv
$ff -f lavfi -i "$src" -f lavfi -i "$(tone 440)" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 \
  -b:v 300k -g 48 -c:a libopus -b:a 64k vp9_opus.webm
$ff -f lavfi -i "$src" -f lavfi -i "$(tone 440)" -c:v libx264 -preset veryfast -g 48 \
  -c:a flac h264_flac.mkv
{
  for i in $(seq 0 13); do
    s=$((i * 2 + 1))
    printf '%d\n00:00:%02d,000 --> 00:00:%02d,500\nCue %d\n\n' $((i + 1)) "$s" "$((s + 1))" "$i"
  done
} > cues.srt
$ff -f lavfi -i "$src" -f lavfi -i "$(tone 440)" -i cues.srt -map 0 -map 1 -map 2 \
  -c:v libx264 -preset veryfast -g 60 -bf 2 -c:a aac -b:a 96k -c:s srt h264_aac_srt.mkv
rm cues.srt
$ff -f lavfi -i "$src" -f lavfi -i "$(tone 440)" -c:v mpeg2video -q:v 5 -g 24 -bf 2 \
  -c:a mp2 -b:a 128k mpeg2_mp2.mkv
touch .done
