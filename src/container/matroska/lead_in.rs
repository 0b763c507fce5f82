//! Blocks before a Matroska file's time 0 (lead-in frames).

use super::layout::{
    load, open_segment, Block, Mkv, EBML, HEAD_CLUSTERS, MAX_BLOCKS, TRACKENTRY, TRACKNUMBER,
    TRACKTYPE,
};
use crate::container::ebml::{elem_at, kids, uint};
use crate::container::input::Input;

/// Blocks of a Matroska file that lie before its time 0 (a cluster time
/// plus a negative block time): lead-in frames, to be decoded but not
/// shown, as a file cut from a longer one keeps them (the reported MPEG-4
/// clip: 2.28 s of them, 57 video and 107 audio blocks). GStreamer 1.22's
/// `matroskademux` clamps their times to 0, and the frames came out as
/// 2.28 s of extra picture before the film.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadIn {
    /// How far before 0 the earliest block lies (ns): the shift that
    /// brings every time to 0 or later.
    pub shift_ns: u64,
    /// Per track, in the order of the Tracks element: its type
    /// (`TrackType`: 1 video, 2 audio, 17 subtitles) and the true times
    /// (ns, negative) of its blocks before 0, in file order.
    pub tracks: Vec<(u64, Vec<i64>)>,
}

/// The lead-in of a Matroska file (`r`), from its first clusters; `None`
/// when it has none, or it cannot be told (laced lead-in blocks, a file
/// that does not parse).
pub fn lead_in(r: &mut Input) -> Option<LeadIn> {
    let ebml = elem_at(r, 0)?;
    if ebml.id != EBML {
        return None;
    }
    let segment = open_segment(r, ebml.data.checked_add(ebml.size?)?)?;
    let (layout, timescale) = (segment.layout, segment.timescale);
    let kinds = track_kinds(&load(r, layout.tracks?)?)?;
    let mut mkv = Mkv {
        seg: segment.span,
        timescale,
        video: kinds.iter().find(|(_, k)| *k == 1).map_or(0, |(n, _)| *n),
        tracks: kinds.iter().map(|(n, _)| (*n, None)).collect(),
        budget: MAX_BLOCKS,
    };
    let head = mkv.scan(r, layout.first_cluster?, HEAD_CLUSTERS, u64::MAX)?;
    let early: Vec<&Block> = head.blocks.iter().filter(|b| b.time < 0).collect();
    if early.is_empty() || early.iter().any(|b| b.laced) {
        return None;
    }
    let ns = |t: i64| t.checked_mul(i64::try_from(timescale).ok()?);
    let earliest = ns(early.iter().map(|b| b.time).min()?)?;
    let tracks = kinds
        .iter()
        .map(|&(number, kind)| {
            let times = early
                .iter()
                .filter(|b| b.track == number)
                .map(|b| ns(b.time))
                .collect::<Option<Vec<i64>>>()?;
            Some((kind, times))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(LeadIn {
        shift_ns: earliest.unsigned_abs(),
        tracks,
    })
}

/// Every track's (number, type), in the order of the Tracks element.
fn track_kinds(tracks: &[u8]) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for (id, entry) in kids(tracks)? {
        if id != TRACKENTRY {
            continue;
        }
        let (mut number, mut kind) = (None, None);
        for (id, v) in kids(entry)? {
            match id {
                TRACKNUMBER => number = uint(v),
                TRACKTYPE => kind = uint(v),
                _ => {}
            }
        }
        out.push((number?, kind.unwrap_or(0)));
    }
    Some(out)
}
