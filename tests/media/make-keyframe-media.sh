#!/usr/bin/env bash
# Makes the media of tests/keyframes.rs in $1 (default target/testmedia):
# 60 s of H.264 with B-frames and irregular GOPs (x264 keyint 100 plus
# scene cuts, at 30 fps) and AAC, in the containers and muxers a library
# holds: ffmpeg's MKV, MP4 (with an edit list), faststart MP4, MP4 with
# negative CTS offsets, MOV and AVI; GStreamer's matroskamux (with full and
# sparse Cues) and avimux; mkvmerge's, with and without Cues, when
# mkvtoolnix is installed; and MKVs with one CuePoint removed.
# Needs ffmpeg and gst-launch-1.0 (scripts/setup.sh installs both).
set -euo pipefail
out=${1:-target/testmedia}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out" && cd "$out"
[ -e .done ] && exit 0
ff="timeout 300 nice -n 10 ffmpeg -nostdin -y -hide_banner -loglevel error"
gst="timeout 120 nice -n 10 gst-launch-1.0 -q -e"
f="format=yuv420p,setsar=1"
$ff -filter_complex "\
testsrc2=s=640x360:r=30:d=9,$f[a];\
mandelbrot=s=640x360:r=30,trim=duration=7,setpts=PTS-STARTPTS,$f[b];\
life=s=640x360:r=30:mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00,trim=duration=11,setpts=PTS-STARTPTS,$f[c];\
smptehdbars=s=640x360:r=30:d=4,$f[d];\
testsrc=s=640x360:r=30:d=13,$f[e];\
cellauto=s=640x360:r=30:rule=110,trim=duration=6,setpts=PTS-STARTPTS,$f[f];\
rgbtestsrc=s=640x360:r=30:d=10,hue=H=2*PI*t,$f[g];\
[a][b][c][d][e][f][g]concat=n=7:v=1:a=0[v];\
sine=f=440:d=60:sample_rate=48000,aformat=channel_layouts=stereo[au]" \
  -map "[v]" -map "[au]" -c:v libx264 -preset veryfast -g 100 -bf 3 -sc_threshold 40 -c:a aac -b:a 96k bf_ffmpeg.mkv
$ff -i bf_ffmpeg.mkv -map 0 -c copy bf_ffmpeg.mp4            # edit list: empty 21 ms + media_time 2 frames
$ff -i bf_ffmpeg.mkv -map 0 -c copy -movflags +faststart bf_faststart.mp4
$ff -i bf_ffmpeg.mkv -map 0 -c copy -movflags +negative_cts_offsets bf_negcts.mp4
$ff -i bf_ffmpeg.mkv -map 0 -c copy -f mov bf_ffmpeg.mov
$ff -i bf_ffmpeg.mkv -map 0 -c copy -bsf:v h264_mp4toannexb bf_ffmpeg.avi
$ff -i bf_ffmpeg.mkv -map 0 -c copy bf_ffmpeg.ts               # PCR 0.7 s ahead of the first PTS
# GStreamer's own muxers (same streams)
for mux in "matroskamux:bf_gst.mkv" "matroskamux min-index-interval=5000000000:bf_gst_sparsecues.mkv" "avimux:bf_gst.avi"; do
  $gst filesrc location=bf_ffmpeg.mp4 ! qtdemux name=d \
    d.video_0 ! queue ! h264parse ! ${mux%%:*} name=m ! filesink location=${mux##*:} \
    d.audio_0 ! queue ! aacparse ! m.
done
if command -v mkvmerge >/dev/null; then
  mkvmerge -q -o bf_mkvmerge.mkv bf_ffmpeg.mkv
  mkvmerge -q --no-cues -o bf_nocues.mkv bf_ffmpeg.mkv
fi
# One key frame taken out of the Cues (a CuePoint turned into an EBML Void)
python3 "$here/cuecut.py" bf_ffmpeg.mkv bf_cue3_removed.mkv 3 >/dev/null
python3 "$here/cuecut.py" bf_ffmpeg.mkv bf_cue11_removed.mkv 11 >/dev/null
touch .done
