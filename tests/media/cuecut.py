#!/usr/bin/env python3
"""Copies an MKV, turning the k-th video CuePoint into an EBML Void (same size): a file whose Cues miss one key frame."""
import re
import sys

def vint(b, o):
    first = b[o]
    n = 1
    while n <= 8 and not (first & (0x80 >> (n - 1))):
        n += 1
    v = first & (0xFF >> n)
    for x in b[o + 1:o + n]:
        v = (v << 8) | x
    return v, n

src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = bytearray(open(src, 'rb').read())
cues = -1
for m in re.finditer(re.escape(b'\x1c\x53\xbb\x6b'), d):
    _, l = vint(d, m.start() + 4)
    if d[m.start() + 4 + l] in (0xBB, 0xBF):  # CuePoint or CRC-32 first
        cues = m.start()
size, sl = vint(d, cues + 4)
o = cues + 4 + sl
points = []
while o < cues + 4 + sl + size:
    s, l = vint(d, o + 1)
    if d[o] == 0xBB:
        points.append(o)
    o = o + 1 + l + s
print(f"{len(points)} cue points; voiding #{k}")
d[points[k]] = 0xEC
open(dst, 'wb').write(d)
