//! ASF (Windows Media) files whose header lies, and the bytes that
//! correct it (Advanced Systems Format specification, revision 01.20.05,
//! §3 and §5).
//!
//! Two lies seen in a file from a real encoder (the reported WMV2 + WMA2
//! clip), each of which GStreamer 1.22's `asfdemux` believes and ffmpeg
//! ignores:
//! - the Header Object counts more child objects (6) than it holds (5,
//!   which end exactly at its size): `asfdemux` waits for the sixth and
//!   fails ("Internal data stream error");
//! - the File Properties Object's play duration (6.408 s, with a preroll
//!   of 2 s) ends before the last payloads (shown up to 8.407 s with the
//!   preroll): `asfdemux` stops the segment at play duration minus
//!   preroll and drops every later payload, 2 s of a 6.4 s film.
//!
//! [`header_patches`] corrects the count to the children found and the
//! play and send durations to the last payload's presentation time plus
//! one frame.

use super::input::bytes::{le16, le32, le64};
use super::input::Input;
use super::patch::SourcePatch;

/// The Header Object's GUID as it lies in the file (§10.1).
pub const HEADER_GUID: [u8; 16] = [
    0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C,
];
/// The File Properties Object's GUID (§10.1).
const FILE_PROPERTIES_GUID: [u8; 16] = [
    0xA1, 0xDC, 0xAB, 0x8C, 0x47, 0xA9, 0xCF, 0x11, 0x8E, 0xE4, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65,
];
/// The Data Object's GUID (§10.1).
const DATA_GUID: [u8; 16] = [
    0x36, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C,
];
/// The largest header read (its children: stream properties, codec
/// private data): 16 MiB.
const MAX_HEADER: u64 = 16 << 20;
/// Data packets read from the end of the file for the last payload's time.
const LAST_PACKETS: u64 = 256;
/// 100-nanosecond units (the File Properties Object's) per millisecond
/// (the payloads').
const HNS_PER_MS: u64 = 10_000;

/// What the File Properties Object says (§3.2), and where it lies.
struct FileProperties {
    /// Its offset in the file.
    at: u64,
    /// Data packets in the Data Object.
    packets: u64,
    /// Play duration, in 100 ns units (the preroll included, as in the
    /// payloads' presentation times).
    play_hns: u64,
    /// The packet size (minimum and maximum are equal in a file that can
    /// be read; else `None`).
    packet_size: Option<u64>,
}

/// The patches an ASF file (`input`) needs: its Header Object's child
/// count, its play and send durations; empty when it needs none or
/// cannot be read.
pub fn header_patches(input: &mut Input) -> Vec<SourcePatch> {
    let mut patches = Vec::new();
    let Some(head) = input.read_vec(0, 30) else {
        return patches;
    };
    let (Some(size), Some(declared)) = (le64(&head, 16), le32(&head, 24)) else {
        return patches;
    };
    if head[..16] != HEADER_GUID || !(30..=MAX_HEADER).contains(&size) {
        return patches;
    }
    let Some(header) = input.read_vec(0, size) else {
        return patches;
    };
    let (children, properties) = walk(&header);
    if children < declared {
        patches.push(SourcePatch {
            offset: 24,
            bytes: children.to_le_bytes().to_vec(),
        });
    }
    if let Some(fp) = properties {
        if let Some(end_hns) = last_payload_end(input, size, &fp) {
            if end_hns > fp.play_hns {
                // Play duration, then send duration (§3.2: offsets 64 and
                // 72 in the object).
                let bytes = [end_hns.to_le_bytes(), end_hns.to_le_bytes()].concat();
                patches.push(SourcePatch {
                    offset: fp.at + 64,
                    bytes,
                });
            }
        }
    }
    patches
}

/// Counts the Header Object's children (until its end) and reads its
/// File Properties Object.
fn walk(header: &[u8]) -> (u32, Option<FileProperties>) {
    let mut pos = 30usize;
    let mut count = 0u32;
    let mut properties = None;
    while pos + 24 <= header.len() {
        let Some(size) = le64(header, pos + 16).and_then(|s| usize::try_from(s).ok()) else {
            break;
        };
        if size < 24 || pos.checked_add(size).is_none_or(|end| end > header.len()) {
            break;
        }
        if header[pos..pos + 16] == FILE_PROPERTIES_GUID {
            let o = &header[pos..pos + size];
            let min = le32(o, 92);
            let max = le32(o, 96);
            properties = (|| {
                Some(FileProperties {
                    at: pos as u64,
                    packets: le64(o, 56)?,
                    play_hns: le64(o, 64)?,
                    packet_size: (min == max).then_some(u64::from(min?)),
                })
            })();
        }
        count += 1;
        pos += size;
    }
    (count, properties)
}

/// The end of the last payload of the Data Object that follows a header
/// of `header_size` bytes, in 100 ns units with the preroll (as the play
/// duration counts): the latest presentation time of the last
/// [`LAST_PACKETS`] packets plus the shortest step between two of its
/// stream's times (a frame).
fn last_payload_end(input: &mut Input, header_size: u64, fp: &FileProperties) -> Option<u64> {
    let packet_size = fp.packet_size.filter(|s| *s > 0)?;
    let data = input.read_vec(header_size, 50)?;
    if data[..16] != DATA_GUID {
        return None;
    }
    let first = header_size + 50;
    let available = input.len().checked_sub(first)? / packet_size;
    let packets = fp.packets.min(available);
    let mut times: Vec<(u8, u64)> = Vec::new();
    for n in packets.saturating_sub(LAST_PACKETS)..packets {
        let packet = input.read_vec(first + n * packet_size, packet_size)?;
        payload_times(&packet, &mut times);
    }
    let &(stream, latest) = times.iter().max_by_key(|(_, t)| *t)?;
    let mut mine: Vec<u64> = times
        .iter()
        .filter(|(s, _)| *s == stream)
        .map(|(_, t)| *t)
        .collect();
    mine.sort_unstable();
    mine.dedup();
    let frame = mine.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
    Some((latest + frame) * HNS_PER_MS)
}

/// Reads a field whose length a 2-bit type gives (§5.2.2: absent, byte,
/// word, double word), at `*pos`.
fn field(p: &[u8], pos: &mut usize, kind: u8) -> Option<u64> {
    let (v, n) = match kind & 3 {
        0 => (0, 0),
        1 => (u64::from(*p.get(*pos)?), 1),
        2 => (u64::from(le16(p, *pos)?), 2),
        _ => (u64::from(le32(p, *pos)?), 4),
    };
    *pos += n;
    Some(v)
}

/// Adds the (stream, presentation time in ms) of every payload of a data
/// packet to `out` (§5.2); stops at anything it cannot parse.
fn payload_times(p: &[u8], out: &mut Vec<(u8, u64)>) -> Option<()> {
    let mut pos = 0usize;
    if *p.first()? & 0x80 != 0 {
        // Error correction data: its length in the low 4 bits.
        pos = 1 + usize::from(p[0] & 0x0F);
    }
    let flags = *p.get(pos)?;
    let props = *p.get(pos + 1)?;
    pos += 2;
    let multiple = flags & 1 != 0;
    field(p, &mut pos, flags >> 5)?; // packet length
    field(p, &mut pos, flags >> 1)?; // sequence
    let padding = field(p, &mut pos, flags >> 3)?;
    pos += 6; // send time, duration
    let (rep_type, off_type, mon_type) = (props, props >> 2, props >> 4);
    let (count, length_type) = if multiple {
        let b = *p.get(pos)?;
        pos += 1;
        (usize::from(b & 0x3F), b >> 6)
    } else {
        (1, 0)
    };
    for _ in 0..count {
        let stream = *p.get(pos)? & 0x7F;
        pos += 1;
        field(p, &mut pos, mon_type)?;
        let offset = field(p, &mut pos, off_type)?;
        let replicated = usize::try_from(field(p, &mut pos, rep_type)?).ok()?;
        let time = if replicated == 1 {
            // Compressed payload: the offset field is the presentation
            // time; a presentation time delta byte follows.
            pos += 1;
            offset
        } else {
            let t = if replicated >= 8 {
                u64::from(le32(p, pos + 4)?)
            } else {
                return Some(());
            };
            pos += replicated;
            t
        };
        out.push((stream, time));
        let length = if multiple {
            usize::try_from(field(p, &mut pos, length_type)?).ok()?
        } else {
            p.len().checked_sub(pos + usize::try_from(padding).ok()?)?
        };
        pos = pos.checked_add(length)?;
        if pos > p.len() {
            return Some(());
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object: GUID, size, body.
    fn object(guid: &[u8; 16], body: &[u8]) -> Vec<u8> {
        let mut o = guid.to_vec();
        o.extend_from_slice(&((body.len() + 24) as u64).to_le_bytes());
        o.extend_from_slice(body);
        o
    }

    /// File properties: `packets` packets of `size` bytes, play duration
    /// `play_ms` with a preroll of `preroll_ms`.
    fn file_properties(packets: u64, size: u32, play_ms: u64, preroll_ms: u64) -> Vec<u8> {
        let mut b = vec![0u8; 80];
        b[32..40].copy_from_slice(&packets.to_le_bytes());
        b[40..48].copy_from_slice(&(play_ms * HNS_PER_MS).to_le_bytes());
        b[48..56].copy_from_slice(&(play_ms * HNS_PER_MS).to_le_bytes());
        b[56..64].copy_from_slice(&preroll_ms.to_le_bytes());
        b[68..72].copy_from_slice(&size.to_le_bytes());
        b[72..76].copy_from_slice(&size.to_le_bytes());
        object(&FILE_PROPERTIES_GUID, &b)
    }

    /// A single-payload packet of `size` bytes: stream 1, replicated data
    /// of 8 bytes (object size, presentation time `t_ms`).
    fn packet(size: usize, t_ms: u32) -> Vec<u8> {
        // No error correction; flags: padding length as a byte; props:
        // replicated data length, offset and object number as bytes.
        let mut p = vec![0x08, 0x55, 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&[0x81, 0, 0, 8]);
        p.extend_from_slice(&100u32.to_le_bytes());
        p.extend_from_slice(&t_ms.to_le_bytes());
        let padding = size - p.len() - 100;
        p[2] = padding as u8;
        p.resize(size, 0);
        p
    }

    /// A file whose header declares `declared` children, play duration
    /// `play_ms`, and whose 3 packets show frames at 2000, 2040, 8407 ms.
    fn file(declared: u32, play_ms: u64) -> Vec<u8> {
        let children = file_properties(3, 200, play_ms, 2000);
        let mut head = HEADER_GUID.to_vec();
        head.extend_from_slice(&((30 + children.len()) as u64).to_le_bytes());
        head.extend_from_slice(&declared.to_le_bytes());
        head.extend_from_slice(&[1, 2]);
        head.extend_from_slice(&children);
        let mut data = DATA_GUID.to_vec();
        data.extend_from_slice(&(50u64 + 600).to_le_bytes());
        data.extend_from_slice(&[0; 16]);
        data.extend_from_slice(&3u64.to_le_bytes());
        data.extend_from_slice(&[1, 1]);
        for t in [2000, 8367, 8407] {
            data.extend_from_slice(&packet(200, t));
        }
        [head, data].concat()
    }

    #[test]
    fn a_header_that_counts_too_many_children_and_ends_too_soon_is_corrected() {
        let f = file(2, 6408);
        let patches = header_patches(&mut Input::from_bytes(f));
        assert_eq!(patches.len(), 2, "{patches:?}");
        assert_eq!(patches[0].offset, 24);
        assert_eq!(patches[0].bytes, 1u32.to_le_bytes());
        // Play and send duration: the last frame (8407 ms) plus one (40 ms).
        assert_eq!(patches[1].offset, 30 + 64);
        let hns = 8447 * HNS_PER_MS;
        assert_eq!(
            patches[1].bytes,
            [hns.to_le_bytes(), hns.to_le_bytes()].concat()
        );
    }

    #[test]
    fn an_honest_header_needs_nothing() {
        assert!(header_patches(&mut Input::from_bytes(file(1, 9000))).is_empty());
        let mut f = file(2, 6408);
        f.truncate(40);
        assert!(header_patches(&mut Input::from_bytes(f)).is_empty());
    }
}
