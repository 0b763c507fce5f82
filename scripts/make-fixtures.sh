#!/usr/bin/env bash
# Makes the small media files in fixtures/ from GStreamer test sources, one of
# each playback path, so hlsd plays something with no other data:
#   direct_h264_aac.mp4     H.264 + AAC in MP4        -> direct play
#   remux_h264_aac.mkv      H.264 + AAC in Matroska   -> remux
#   transcode_vp8_vorbis.webm VP8 + Vorbis in WebM    -> transcode
# Each is 10 s of 640x360 at 25 fps with a 440 Hz tone. Files are written
# under a temporary name and renamed when complete; existing ones are kept.
set -euo pipefail
cd "$(dirname "$0")/../fixtures"

video="videotestsrc num-buffers=250 pattern=smpte horizontal-speed=4 ! video/x-raw,format=I420,width=640,height=360,framerate=25/1"
audio="audiotestsrc num-buffers=470 freq=440 ! audio/x-raw,rate=48000,channels=2"

make() { # NAME DESCRIPTION
  local name=$1; shift
  [ -s "$name" ] && return 0
  gst-launch-1.0 -q $* location="$name.part" >/dev/null
  mv "$name.part" "$name"
  echo "fixtures: made $name"
}

make direct_h264_aac.mp4 \
  $video ! x264enc speed-preset=veryfast key-int-max=50 ! h264parse ! mp4mux name=m faststart=true \
  $audio ! avenc_aac ! aacparse ! m. m. ! filesink
make remux_h264_aac.mkv \
  $video ! x264enc speed-preset=veryfast key-int-max=50 ! h264parse ! matroskamux name=m \
  $audio ! avenc_aac ! aacparse ! m. m. ! filesink
make transcode_vp8_vorbis.webm \
  $video ! vp8enc deadline=1 cpu-used=8 ! webmmux name=m \
  $audio ! audioconvert ! vorbisenc ! m. m. ! filesink
