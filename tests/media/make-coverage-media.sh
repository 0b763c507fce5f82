#!/usr/bin/env bash
# Makes short (0.6-10 s, 320x240) examples in $1 (default target/coverage-media)
# of files that ffmpeg decodes but a GStreamer-based server may trip over:
#   ts_empty_audio_pid.ts       H.264 + an AAC PID in the PMT that never carries a packet
#   ts_open_gop_cea608.ts       open-GOP H.264 (only the first I-frame is an IDR; the
#                               others are non-IDR I with recovery points), CEA-608
#                               captions in A/53 SEI, AAC; 10 s at 29.97 fps
#   mp4_open_gop.mp4, mkv_open_gop.mkv
#                               the same open-GOP stream copied into MP4 and Matroska: their
#                               indexes (stss, Cues) list all 7 I-frames as key frames, 1 an IDR
#   mkv_mpeg4_aac51.mkv         MPEG-4 Part 2 video + 5.1 AAC in Matroska, 3.6 s
#   wma2_audio_only.wma         audio-only ASF with WMA v2, 5 s
#   mov_rpza_adpcm_ima_qt.mov   QuickTime rpza video + IMA4 (adpcm_ima_qt) audio, 5 s;
#                               ffmpeg has no QDM2 (nor MACE) encoder, so no QDM2 here
#   ts_short_0.6s.ts            0.6 s of H.264 + AAC in MPEG-TS
#   asf_wmv2_wma2.asf           WMV2 + WMA v2 in ASF, 5 s
#   m4b_chapters_bogus_duration.m4b
#                               AAC audiobook (ipod muxer, brand M4B) with 3 chapters, whose mvhd
#                               duration is patched to claim one hour (really 10 s)
#   m4b_chapters_zero_duration.m4b  the same with an mvhd duration of 0
# Needs ffmpeg (with libx264) and python3.
set -euo pipefail
out=${1:-target/coverage-media}
mkdir -p "$out" && cd "$out"
[ -e .done ] && exit 0
ff="timeout 300 nice -n 10 ffmpeg -nostdin -y -hide_banner -loglevel error"
py="timeout 120 nice -n 10 python3"
v="format=yuv420p,setsar=1"

# 1. An AAC stream that gets no frames at all: ffmpeg still declares it in the
# PMT (stream_type 0x0f, PID 0x101) but writes no packet on its PID.
$ff -f lavfi -i "testsrc2=s=320x240:r=25:d=6,$v" -f lavfi -i "sine=f=440:sample_rate=48000:d=6" \
  -filter_complex "[1:a]atrim=end=0[a]" -map 0:v -map "[a]" \
  -c:v libx264 -preset veryfast -c:a aac -b:a 64k ts_empty_audio_pid.ts
$py - ts_empty_audio_pid.ts <<'PY'
import sys, collections
d = open(sys.argv[1], 'rb').read()
pids = collections.Counter(((d[i + 1] & 0x1F) << 8) | d[i + 2] for i in range(0, len(d), 188))
assert pids[0x100] > 0 and pids[0x101] == 0, "audio PID 0x101 is not empty: %r" % pids
PY

# 2. Broadcast-style H.264: first a closed-GOP stream without B-frames and with
# access unit delimiters, into which one A/53 SEI (CEA-608 field-1 byte pair
# plus a null field-2 pair) is put per frame: a pop-on caption "CAPTION n"
# every 60 frames. ffmpeg's decoder hands those on as A53 side data, and the
# libx264 re-encode (open GOP, keyint 48, 3 B-frames) writes them again.
$ff -f lavfi -i "testsrc2=s=320x240:r=30000/1001:d=10,$v" -c:v libx264 -preset veryfast \
  -bf 0 -g 30 -x264-params aud=1 -f h264 cc_plain.h264
$py - cc_plain.h264 cc_sei.h264 <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
def odd(b):
    return b | (0x80 if bin(b).count('1') % 2 == 0 else 0)
def text(s):
    s += '\0' * (len(s) % 2)
    return [tuple(odd(ord(c)) if c != '\0' else 0x80 for c in s[i:i + 2]) for i in range(0, len(s), 2)]
def ctrl(a, b):                 # control codes go twice
    return [(odd(a), odd(b))] * 2
sched = {}
for n in range(5):              # RCL, ENM, PAC row 15, text, EOC
    seq = ctrl(0x14, 0x20) + ctrl(0x14, 0x2E) + ctrl(0x14, 0x70) + text("CAPTION %d" % (n + 1)) + ctrl(0x14, 0x2F)
    for i, p in enumerate(seq):
        sched[n * 60 + i] = p
def sei(frame):
    f1 = sched.get(frame, (0x80, 0x80))
    t35 = bytes([0xB5, 0x00, 0x31]) + b'GA94' + bytes([0x03, 0x40 | 2, 0xFF,
          0xFC, f1[0], f1[1], 0xFD, 0x80, 0x80, 0xFF])
    rbsp = bytes([4, len(t35)]) + t35 + b'\x80'    # user_data_registered_itu_t_t35
    ebsp, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            ebsp.append(3); zeros = 0
        ebsp.append(b); zeros = zeros + 1 if b == 0 else 0
    return b'\x00\x00\x00\x01\x06' + bytes(ebsp)
starts, j = [], data.find(b'\x00\x00\x01')
while j >= 0:
    starts.append(j); j = data.find(b'\x00\x00\x01', j + 3)
res, frame = bytearray(), 0
for k, s in enumerate(starts):
    e = starts[k + 1] if k + 1 < len(starts) else len(data)
    if e < len(data) and data[e - 1] == 0:
        e -= 1
    nal = data[s:e]
    res += (b'\x00' if s > 0 and data[s - 1] == 0 else b'') + nal
    if nal[3] & 0x1F == 9:      # after each access unit delimiter
        res += sei(frame); frame += 1
open(sys.argv[2], 'wb').write(res)
PY
$ff -framerate 30000/1001 -f h264 -i cc_sei.h264 -f lavfi -i "sine=f=440:sample_rate=48000:d=10" \
  -map 0:v -map 1:a -c:v libx264 -preset veryfast -pix_fmt yuv420p -bf 3 \
  -x264-params open-gop=1:keyint=48:min-keyint=48:scenecut=0 -a53cc 1 \
  -c:a aac -b:a 64k -ac 2 -t 10 ts_open_gop_cea608.ts
rm -f cc_plain.h264 cc_sei.h264
$ff -i ts_open_gop_cea608.ts -map 0 -c copy mp4_open_gop.mp4
$ff -i ts_open_gop_cea608.ts -map 0 -c copy mkv_open_gop.mkv

# 3. MPEG-4 Part 2 + 5.1 AAC in Matroska
$ff -f lavfi -i "testsrc=s=320x240:r=25:d=3.6,$v" \
  -f lavfi -i "aevalsrc=sin(2*PI*220*t)|sin(2*PI*330*t)|sin(2*PI*440*t)|sin(2*PI*60*t)|sin(2*PI*550*t)|sin(2*PI*660*t):s=48000:d=3.6:channel_layout=5.1" \
  -c:v mpeg4 -q:v 5 -c:a aac -b:a 192k mkv_mpeg4_aac51.mkv

# 4. WMA v2 only
$ff -f lavfi -i "sine=f=440:sample_rate=44100:d=5" -ac 2 -c:a wmav2 -b:a 64k wma2_audio_only.wma

# 5. QuickTime "Road Pizza" video (flat bars and a moving box keep it small)
# + IMA4 audio (ffmpeg cannot encode QDM2)
$ff -f lavfi -i "smptebars=s=320x240:r=15:d=5[b];color=white:s=40x40:r=15[c];[b][c]overlay=x='mod(t*120,280)':y=100:shortest=1" \
  -f lavfi -i "sine=f=440:sample_rate=22050:d=5" -c:v rpza -c:a adpcm_ima_qt -ac 1 mov_rpza_adpcm_ima_qt.mov

# 6. 0.6 s of H.264 + AAC
$ff -f lavfi -i "testsrc2=s=320x240:r=25:d=0.6,$v" -f lavfi -i "sine=f=440:sample_rate=48000:d=0.6" \
  -c:v libx264 -preset veryfast -c:a aac -b:a 64k -ac 2 ts_short_0.6s.ts

# 7. WMV2 + WMA v2 in ASF
$ff -f lavfi -i "testsrc2=s=320x240:r=25:d=5,format=yuv420p" -f lavfi -i "sine=f=440:sample_rate=44100:d=5" \
  -c:v wmv2 -b:v 400k -c:a wmav2 -b:a 64k -ac 2 asf_wmv2_wma2.asf

# 8. AAC audiobook with chapters; the movie header then claims 3600 s (qtdemux
# skips tracks shorter than 20 % of that as "preview" tracks) or 0 s
cat > chapters.ffmeta <<'EOF'
;FFMETADATA1
title=Coverage Audiobook
artist=hlsd tests
genre=Audiobook

[CHAPTER]
TIMEBASE=1/1000
START=0
END=3000
title=Chapter One

[CHAPTER]
TIMEBASE=1/1000
START=3000
END=7000
title=Chapter Two

[CHAPTER]
TIMEBASE=1/1000
START=7000
END=10000
title=Chapter Three
EOF
$ff -f lavfi -i "sine=f=330:sample_rate=44100:d=10" -i chapters.ffmeta -map 0:a -map_metadata 1 \
  -map_chapters 1 -c:a aac -b:a 64k -ac 2 -f ipod m4b_chapters.tmp
rm -f chapters.ffmeta
for fix in "bogus 3600" "zero 0"; do
$py - m4b_chapters.tmp m4b_chapters_${fix% *}_duration.m4b ${fix#* } <<'PY'
import sys, struct
src, dst, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = bytearray(open(src, 'rb').read())
if d[4:12] == b'ftypM4A ':      # iTunes audiobooks say M4B
    d[8:12] = b'M4B '
def boxes(start, end):
    while start + 8 <= end:
        size, typ = struct.unpack('>I4s', d[start:start + 8])
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack('>Q', d[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        yield start, hdr, size, typ
        start += size
moov = next(b for b in boxes(0, len(d)) if b[3] == b'moov')
mvhd = next(b for b in boxes(moov[0] + moov[1], moov[0] + moov[2]) if b[3] == b'mvhd')
p = mvhd[0] + mvhd[1]
if d[p] == 0:                   # version 0: 32-bit times
    scale = struct.unpack('>I', d[p + 12:p + 16])[0]
    struct.pack_into('>I', d, p + 16, seconds * scale)
else:
    scale = struct.unpack('>I', d[p + 20:p + 24])[0]
    struct.pack_into('>Q', d, p + 24, seconds * scale)
open(dst, 'wb').write(d)
PY
done
rm -f m4b_chapters.tmp
touch .done
