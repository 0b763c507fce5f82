#!/usr/bin/env bash
# Makes the small media files in fixtures/ from GStreamer test sources, one of
# each playback path, so hlsd plays something with no other data:
#   direct_h264_aac.mp4     H.264 + AAC in MP4        -> direct play
#   remux_h264_aac.mkv      H.264 + AAC in Matroska   -> remux
#   transcode_vp8_vorbis_20s.webm VP8 + Vorbis in WebM    -> transcode
# Each is 640x360 at 25 fps with a 440 Hz tone: 10 s, and 20 s for the
# transcode file (long enough to see segment 0 listed while encoding goes on). Files are written
# under a temporary name and renamed when complete; existing ones are kept.
set -euo pipefail
cd "$(dirname "$0")/../fixtures"

seconds=10
video() { echo "videotestsrc num-buffers=$((seconds * 25)) pattern=smpte horizontal-speed=4 ! video/x-raw,format=I420,width=640,height=360,framerate=25/1"; }
audio() { echo "audiotestsrc num-buffers=$((seconds * 47)) freq=440 ! audio/x-raw,rate=48000,channels=2"; }

make() { # NAME DESCRIPTION
  local name=$1; shift
  [ -s "$name" ] && return 0
  gst-launch-1.0 -q $* location="$name.part" >/dev/null
  mv "$name.part" "$name"
  echo "fixtures: made $name"
}

make direct_h264_aac.mp4 \
  $(video) ! x264enc speed-preset=veryfast key-int-max=50 ! h264parse ! mp4mux name=m faststart=true \
  $(audio) ! avenc_aac ! aacparse ! m. m. ! filesink
make remux_h264_aac.mkv \
  $(video) ! x264enc speed-preset=veryfast key-int-max=50 ! h264parse ! matroskamux name=m \
  $(audio) ! avenc_aac ! aacparse ! m. m. ! filesink
seconds=20
make transcode_vp8_vorbis_20s.webm \
  $(video) ! vp8enc deadline=1 cpu-used=8 ! webmmux name=m \
  $(audio) ! audioconvert ! vorbisenc ! m. m. ! filesink
