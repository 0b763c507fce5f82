#!/usr/bin/env bash
# Makes the media of tests/it/adapt.rs in $1 (default target/adapt-media-3):
# a 60 s 1920x1080 25 fps H.264 + AAC Matroska film whose key frames fall
# at irregular times, 2.4 to 5.6 s apart and one GOP of 11 s (20.0 to
# 31.0 s), with no key frame anywhere else (no scene cuts, no keyint), at
# 12 Mb/s, twice the 1080p rung's 6 Mb/s cap (moving noise); and a 10 s
# 1080p H.264 + AAC MP4 at 10 Mb/s, which browsers play as it is; and a
# 12 s 1280x720 HEVC + AAC Matroska film (key frames every 2 s), which
# Safari takes copied into fMP4 with H.264 rungs beside it; and a 20 s
# 1080p H.264 + AAC MP4 whose bit rate is uneven (still colour bars for
# 10 s, then moving noise), so that its peak is far above its mean, and the
# same in a Matroska file without Cues (its key frames are found by a
# demux pass) and in an MP4 whose audio lies after all its video (one
# chunk per track: GStreamer's mp4mux with an interleave time of an hour,
# as ffmpeg's muxer always interleaves). Needs ffmpeg, mkvmerge and
# gst-launch-1.0 (scripts/setup.sh installs them).
set -euo pipefail
out=${1:-target/adapt-media-3}
mkdir -p "$out" && cd "$out"
[ -e .done ] && exit 0
ff="timeout 600 nice -n 10 ffmpeg -nostdin -y -hide_banner -loglevel error"
keys=0,2.4,5.6,8.0,12.6,15.2,20.0,31.0,34.0,37.4,40.2,44.8,47.6,50.4,54.0,57.2
$ff -f lavfi -i "testsrc2=s=960x540:r=25:d=60,noise=alls=12:allf=t+u,scale=1920:1080:flags=bicubic,format=yuv420p" \
  -f lavfi -i "sine=f=440:d=60:sample_rate=48000" \
  -c:v libx264 -preset superfast -b:v 12M -maxrate 14M -bufsize 14M -forced-idr 1 -force_key_frames "$keys" \
  -x264-params keyint=infinite:min-keyint=1:scenecut=0 \
  -c:a aac -b:a 128k -ac 2 h264_irregular_gops_1080p_60s.mkv
$ff -f lavfi -i "testsrc2=s=960x540:r=25:d=10,noise=alls=12:allf=t+u,scale=1920:1080:flags=bicubic,format=yuv420p" \
  -f lavfi -i "sine=f=660:d=10:sample_rate=48000" \
  -c:v libx264 -preset superfast -b:v 10M -maxrate 11M -bufsize 11M -g 50 \
  -c:a aac -b:a 128k -ac 2 -movflags +faststart h264_10mbps_1080p_10s.mp4
$ff -f lavfi -i "testsrc2=s=1280x720:r=24:d=12,format=yuv420p" \
  -f lavfi -i "sine=f=550:d=12:sample_rate=48000" \
  -c:v libx265 -preset ultrafast -x265-params keyint=48:min-keyint=48:scenecut=0:log-level=error \
  -tag:v hvc1 -c:a aac -b:a 96k -ac 2 hevc_aac_720p_12s.mkv
$ff -f lavfi -i "smptebars=s=1920x1080:r=25:d=10,format=yuv420p[a];testsrc2=s=960x540:r=25:d=10,noise=alls=14:allf=t+u,scale=1920:1080:flags=bicubic,format=yuv420p[b];[a][b]concat=n=2:v=1:a=0" \
  -f lavfi -i "sine=f=770:d=20:sample_rate=48000" \
  -c:v libx264 -preset superfast -crf 20 -maxrate 12M -bufsize 12M -g 50 \
  -c:a aac -b:a 128k -ac 2 h264_uneven_1080p_20s.mp4
mkvmerge -q --no-cues -o h264_uneven_1080p_20s_nocues.mkv h264_uneven_1080p_20s.mp4
unbounded="queue max-size-time=0 max-size-buffers=0 max-size-bytes=0"
timeout 600 gst-launch-1.0 -q filesrc location=h264_uneven_1080p_20s.mp4 ! qtdemux name=d \
  mp4mux name=m interleave-time=3600000000000 interleave-bytes=0 \
  ! filesink location=h264_uneven_1080p_20s_apart.mp4 \
  d.video_0 ! $unbounded ! h264parse ! m. d.audio_0 ! $unbounded ! aacparse ! m.
touch .done
