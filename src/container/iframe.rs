//! The I-frame of a segment: the first picture of an MPEG-TS or
//! fragmented-MP4 video segment as a resource of its own, for the
//! segments of an I-frame playlist (RFC 8216 §4.3.3.6,
//! `EXT-X-I-FRAMES-ONLY`).
//!
//! Every video segment hlsd makes opens on a key frame (an IDR where the
//! encoder makes it, the source's key frame where it is copied), so
//! segment N's I-frame is its first picture. It is cut out of the stored
//! segment's bytes when asked for: nothing new is stored, and the same
//! segment always gives the same I-frame.
//!
//! - MPEG-TS: the segment's PAT and PMT, then the transport packets of
//!   the video's first PES packet, up to the next one (RFC 8216 §4.3.3.6:
//!   an I-frame resource begins with a PAT and PMT).
//! - fMP4: a `moof` whose `trun` holds the fragment's first sample only,
//!   with its `mfhd` and `tfdt` unchanged, and an `mdat` with that
//!   sample's data: the form ISO/IEC 14496-12 §8.8 gives any fragment,
//!   played after the rendition's init segment (`EXT-X-MAP`).
//!
//! A byte range of the stored segment (`EXT-X-BYTERANGE`) would need each
//! I-frame's length before its segment exists, which an encoder does not
//! know; so each I-frame has a URI of its own instead.

use super::input::bytes::{be32, be64};
use super::isobmff::{begin, begin_full, children, end, find, u32be};
use super::ts::{es_streams, header, pmt_pid, section, PACKET};

/// MPEG-TS `stream_type`s of video (ISO/IEC 13818-1 Table 2-34): MPEG-1,
/// MPEG-2, MPEG-4 Part 2, H.264, H.264 MVC, HEVC, VVC.
const VIDEO_STREAM_TYPES: [u8; 7] = [0x01, 0x02, 0x10, 0x1B, 0x20, 0x24, 0x33];

/// The I-frame of MPEG-TS segment `segment` (188-byte packets): its PAT
/// and PMT packets met before the video's first PES packet, then every
/// packet of that PES packet, in order. `None` when the segment has no
/// PAT and PMT before its video, or no video PES packet.
pub fn ts_iframe(segment: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * PACKET);
    let mut pmt: Option<u16> = None;
    let mut video: Option<u16> = None;
    let mut started = false;
    for packet in segment.chunks_exact(PACKET) {
        let (pid, unit_start, payload) = header(packet)?;
        if !started && pid == 0 {
            if unit_start {
                pmt = pmt.or_else(|| section(payload, 0x00).and_then(pmt_pid));
            }
            out.extend_from_slice(packet);
        } else if !started && Some(pid) == pmt {
            if unit_start && video.is_none() {
                video = section(payload, 0x02)
                    .and_then(es_streams)
                    .and_then(|s| s.into_iter().find(|(t, _)| VIDEO_STREAM_TYPES.contains(t)))
                    .map(|(_, pid)| pid);
            }
            out.extend_from_slice(packet);
        } else if Some(pid) == video {
            if unit_start && started {
                return Some(out);
            }
            started |= unit_start;
            if started {
                out.extend_from_slice(packet);
            }
        }
    }
    started.then_some(out)
}

/// `tfhd` flags (ISO/IEC 14496-12 §8.8.7.1).
const BASE_DATA_OFFSET: u32 = 0x00_0001;
const DEFAULT_SAMPLE_SIZE: u32 = 0x00_0010;
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags (§8.8.8.1).
const DATA_OFFSET: u32 = 0x00_0001;
const FIRST_SAMPLE_FLAGS: u32 = 0x00_0004;
const SAMPLE_DURATION: u32 = 0x00_0100;
const SAMPLE_SIZE: u32 = 0x00_0200;
const SAMPLE_FLAGS: u32 = 0x00_0400;
const SAMPLE_CTO: u32 = 0x00_0800;

/// A full box's version and flags, and the rest of its payload.
fn full(payload: &[u8]) -> Option<(u8, u32, &[u8])> {
    let word = be32(payload, 0)?;
    Some(((word >> 24) as u8, word & 0xFF_FFFF, payload.get(4..)?))
}

/// A top-level box: its type, the byte it starts at, its payload.
type Placed<'a> = ([u8; 4], usize, &'a [u8]);

/// The top-level boxes of `data`, each with where it starts.
fn top_boxes(data: &[u8]) -> Option<Vec<Placed<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let size32 = be32(data, pos)?;
        let kind: [u8; 4] = data.get(pos + 4..pos + 8)?.try_into().ok()?;
        let (header, size) = match size32 {
            0 => (8, data.len() - pos),
            1 => (16, usize::try_from(be64(data, pos + 8)?).ok()?),
            s => (8, usize::try_from(s).ok()?),
        };
        let end = pos.checked_add(size)?;
        if size < header || end > data.len() {
            return None;
        }
        out.push((kind, pos, data.get(pos + header..end)?));
        pos = end;
    }
    Some(out)
}

/// The I-frame of fragmented-MP4 segment `segment`: its first `moof`
/// cut down to the first sample of its first track run, then an `mdat`
/// of that sample's data. `None` when the segment holds no `moof` with a
/// sample whose data lies in the segment.
pub fn fmp4_iframe(segment: &[u8]) -> Option<Vec<u8>> {
    let top = top_boxes(segment)?;
    let (_, moof_start, moof) = top.iter().find(|(k, _, _)| k == b"moof")?;
    let boxes = children(moof)?;
    let mfhd = find(&boxes, b"mfhd")?;
    let traf = children(find(&boxes, b"traf")?)?;
    let (_, tfhd_flags, tfhd) = full(find(&traf, b"tfhd")?)?;
    let tfdt = find(&traf, b"tfdt")?;
    let (trun_version, trun_flags, trun) = full(find(&traf, b"trun")?)?;

    // tfhd: track_ID, then the optional fields its flags name, in order.
    let track_id = be32(tfhd, 0)?;
    let mut at = 4;
    let base = if tfhd_flags & BASE_DATA_OFFSET != 0 {
        at += 8;
        usize::try_from(be64(tfhd, 4)?).ok()?
    } else {
        *moof_start
    };
    let defaults = tfhd.get(at..)?;
    // Sample description index, default duration, default size, default
    // flags: the size is the third of those the flags may name.
    let mut default_size = None;
    let mut d = 0;
    for (bit, is_size) in [
        (0x02, false),
        (0x08, false),
        (DEFAULT_SAMPLE_SIZE, true),
        (0x20, false),
    ] {
        if tfhd_flags & bit != 0 {
            if is_size {
                default_size = Some(be32(defaults, d)?);
            }
            d += 4;
        }
    }
    let defaults = defaults.get(..d)?;

    // trun: sample_count, data_offset, first_sample_flags, then the
    // first sample's fields.
    if be32(trun, 0)? == 0 {
        return None;
    }
    let mut at = 4;
    let data_offset = if trun_flags & DATA_OFFSET != 0 {
        at += 4;
        i64::from(be32(trun, 4)? as i32)
    } else {
        0
    };
    let first_flags = if trun_flags & FIRST_SAMPLE_FLAGS != 0 {
        at += 4;
        Some(be32(trun, at - 4)?)
    } else {
        None
    };
    let fields = [SAMPLE_DURATION, SAMPLE_SIZE, SAMPLE_FLAGS, SAMPLE_CTO]
        .iter()
        .filter(|f| trun_flags & **f != 0)
        .count();
    let entry = trun.get(at..at + 4 * fields)?;
    let size = if trun_flags & SAMPLE_SIZE != 0 {
        let before = usize::from(trun_flags & SAMPLE_DURATION != 0);
        be32(entry, 4 * before)?
    } else {
        default_size?
    };
    let data_at = usize::try_from(i64::try_from(base).ok()?.checked_add(data_offset)?).ok()?;
    let data = segment.get(data_at..data_at.checked_add(usize::try_from(size).ok()?)?)?;

    let mut out = Vec::with_capacity(data.len() + 128);
    let moof_box = begin(&mut out, b"moof");
    let b = begin(&mut out, b"mfhd");
    out.extend_from_slice(mfhd);
    end(&mut out, b);
    let traf_box = begin(&mut out, b"traf");
    let b = begin_full(
        &mut out,
        b"tfhd",
        0,
        (tfhd_flags & !BASE_DATA_OFFSET) | DEFAULT_BASE_IS_MOOF,
    );
    u32be(&mut out, track_id);
    out.extend_from_slice(defaults);
    end(&mut out, b);
    let b = begin(&mut out, b"tfdt");
    out.extend_from_slice(tfdt);
    end(&mut out, b);
    let b = begin_full(&mut out, b"trun", trun_version, trun_flags | DATA_OFFSET);
    u32be(&mut out, 1);
    let offset_at = out.len();
    u32be(&mut out, 0);
    if let Some(f) = first_flags {
        u32be(&mut out, f);
    }
    out.extend_from_slice(entry);
    end(&mut out, b);
    end(&mut out, traf_box);
    end(&mut out, moof_box);
    let data_offset = u32::try_from(out.len() + 8).ok()?;
    out[offset_at..offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    let b = begin(&mut out, b"mdat");
    out.extend_from_slice(data);
    end(&mut out, b);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::isobmff::{leaf, path};

    /// A TS packet of `pid` with `payload` (padded with 0xFF stuffing in
    /// the payload, which is enough for these tests).
    fn packet(pid: u16, unit_start: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x47,
            (u8::from(unit_start) << 6) | (pid >> 8) as u8,
            pid as u8,
            0x10,
        ];
        p.extend_from_slice(payload);
        p.resize(PACKET, 0xFF);
        p
    }

    /// A PAT naming PMT PID 0x1000, and a PMT of an H.264 stream on 0x100
    /// and an AAC one on 0x101 (CRCs left zero: not checked here).
    fn tables() -> Vec<u8> {
        let pat = [
            0, 0x00, 0xB0, 13, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0x00, 0, 0, 0, 0,
        ];
        let pmt = [
            0, 0x02, 0xB0, 23, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0, 0x1B, 0xE1, 0x00, 0xF0, 0,
            0x0F, 0xE1, 0x01, 0xF0, 0, 0, 0, 0, 0,
        ];
        let mut out = packet(0, true, &pat);
        out.extend(packet(0x1000, true, &pmt));
        out
    }

    #[test]
    fn a_ts_iframe_is_the_tables_and_the_first_video_pes() {
        let mut seg = tables();
        seg.extend(packet(0x100, true, b"idr-1"));
        seg.extend(packet(0x101, true, b"audio"));
        seg.extend(packet(0x100, false, b"idr-2"));
        seg.extend(packet(0x100, true, b"p-frame"));
        seg.extend(packet(0x100, false, b"p-2"));
        let iframe = ts_iframe(&seg).expect("an I-frame");
        let mut want = tables();
        want.extend(packet(0x100, true, b"idr-1"));
        want.extend(packet(0x100, false, b"idr-2"));
        assert_eq!(iframe, want);
        // The last PES of a segment runs to its end.
        let mut one = tables();
        one.extend(packet(0x100, true, b"idr"));
        one.extend(packet(0x100, false, b"more"));
        assert_eq!(ts_iframe(&one).unwrap(), one);
    }

    #[test]
    fn a_ts_segment_without_tables_or_video_has_no_iframe() {
        assert_eq!(ts_iframe(&packet(0x100, true, b"idr")), None);
        assert_eq!(ts_iframe(&tables()), None);
        assert_eq!(ts_iframe(&[0u8; 500]), None);
        assert_eq!(ts_iframe(&[]), None);
    }

    /// A fragment as hlsd's fMP4 writer makes it: `moof` (tfhd with
    /// default-base-is-moof, tfdt, a version-1 trun of `sizes`) and `mdat`.
    fn fragment(sizes: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        let moof = begin(&mut out, b"moof");
        leaf(&mut out, b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 7]);
        let traf = begin(&mut out, b"traf");
        leaf(&mut out, b"tfhd", &[0, 2, 0, 0, 0, 0, 0, 1]);
        leaf(&mut out, b"tfdt", &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]);
        let trun = begin_full(&mut out, b"trun", 1, 0x0F01);
        u32be(&mut out, sizes.len() as u32);
        let offset_at = out.len();
        u32be(&mut out, 0);
        for (i, s) in sizes.iter().enumerate() {
            u32be(&mut out, 512);
            u32be(&mut out, *s);
            u32be(&mut out, if i == 0 { 0x0200_0000 } else { 0x0101_0000 });
            u32be(&mut out, 1024);
        }
        end(&mut out, trun);
        end(&mut out, traf);
        end(&mut out, moof);
        let offset = (out.len() + 8) as u32;
        out[offset_at..offset_at + 4].copy_from_slice(&offset.to_be_bytes());
        let mdat = begin(&mut out, b"mdat");
        for (i, s) in sizes.iter().enumerate() {
            out.extend(std::iter::repeat_n(i as u8 + 1, *s as usize));
        }
        end(&mut out, mdat);
        out
    }

    #[test]
    fn an_fmp4_iframe_is_the_first_sample_in_a_fragment_of_its_own() {
        let seg = fragment(&[300, 40, 50]);
        let iframe = fmp4_iframe(&seg).expect("an I-frame");
        // The same as the writer makes for a fragment of that one sample.
        assert_eq!(iframe, fragment(&[300]));
        let trun = path(&iframe, &[b"moof", b"traf", b"trun"]).unwrap();
        assert_eq!(be32(trun, 4), Some(1), "one sample");
        let top = top_boxes(&iframe).unwrap();
        assert_eq!(top[1].0, *b"mdat");
        assert!(top[1].2.iter().all(|b| *b == 1), "the first sample's data");
    }

    #[test]
    fn an_fmp4_segment_without_a_sample_has_no_iframe() {
        assert_eq!(fmp4_iframe(&fragment(&[])), None);
        let mut cut = fragment(&[300, 40]);
        cut.truncate(cut.len() - 200);
        assert_eq!(fmp4_iframe(&cut), None, "its data is cut off");
        assert_eq!(fmp4_iframe(b"\0\0\0\x08free"), None);
    }
}
