#!/usr/bin/env bash
# Makes the media of tests/ladder.rs in $1 (default target/ladder-media):
# sources on the transcode path (MPEG-2 video, AAC audio, in Matroska) at
# 1920x1080 (48 s of coarse moving noise: detail that survives scaling
# down, so the bit-rate caps of the lower rungs bind) and 854x480 (20 s of
# test pattern). Needs ffmpeg (scripts/setup.sh installs it).
set -euo pipefail
out=${1:-target/ladder-media}
mkdir -p "$out" && cd "$out"
[ -e .done ] && exit 0
ff="timeout 300 nice -n 10 ffmpeg -nostdin -y -hide_banner -loglevel error"
$ff -f lavfi -i "testsrc2=s=640x360:r=25:d=48,noise=alls=24:allf=t+u,scale=1920:1080:flags=neighbor,format=yuv420p" \
  -f lavfi -i "sine=f=440:d=48:sample_rate=48000" \
  -c:v mpeg2video -b:v 8M -maxrate 8M -bufsize 4M -g 12 -c:a aac -b:a 128k -ac 2 \
  mpeg2_noise_1080p_48s.mkv
$ff -f lavfi -i "testsrc2=s=854x480:r=25:d=20,format=yuv420p" \
  -f lavfi -i "sine=f=660:d=20:sample_rate=48000" \
  -c:v mpeg2video -q:v 4 -g 12 -c:a aac -b:a 128k -ac 2 mpeg2_480p_20s.mkv
touch .done
