//! The layout of a Matroska file as `matroskademux` reads it: its EBML
//! header and Segment, the top-level elements (through the SeekHead), the
//! Info's timecode scale, and the block headers of its clusters, read one
//! by one within a budget.

use std::collections::HashMap;

use crate::container::ebml::{elem_at, kids, uint, vint, Elem};
use crate::container::input::{Input, MAX_ALLOC};

pub(super) const EBML: u32 = 0x1A45_DFA3;
pub(super) const DOCTYPE: u32 = 0x4282;
pub(super) const SEGMENT: u32 = 0x1853_8067;
pub(super) const SEEKHEAD: u32 = 0x114D_9B74;
pub(super) const SEEK: u32 = 0x4DBB;
pub(super) const SEEKID: u32 = 0x53AB;
pub(super) const SEEKPOS: u32 = 0x53AC;
pub(super) const INFO: u32 = 0x1549_A966;
pub(super) const TIMECODESCALE: u32 = 0x2A_D7B1;
pub(super) const TRACKS: u32 = 0x1654_AE6B;
pub(super) const TRACKENTRY: u32 = 0xAE;
pub(super) const TRACKNUMBER: u32 = 0xD7;
pub(super) const TRACKTYPE: u32 = 0x83;
pub(super) const DEFAULTDURATION: u32 = 0x23_E383;
pub(super) const TRACKTIMECODESCALE: u32 = 0x23_314F;
pub(super) const CUES: u32 = 0x1C53_BB6B;
pub(super) const CUEPOINT: u32 = 0xBB;
pub(super) const CUETIME: u32 = 0xB3;
pub(super) const CUETRACKPOSITIONS: u32 = 0xB7;
pub(super) const CUETRACK: u32 = 0xF7;
pub(super) const CUECLUSTERPOSITION: u32 = 0xF1;
pub(super) const CLUSTER: u32 = 0x1F43_B675;
pub(super) const TIMECODE: u32 = 0xE7;
pub(super) const SIMPLEBLOCK: u32 = 0xA3;
pub(super) const BLOCKGROUP: u32 = 0xA0;
pub(super) const BLOCK: u32 = 0xA1;
pub(super) const BLOCKDURATION: u32 = 0x9B;
pub(super) const REFERENCEBLOCK: u32 = 0xFB;
/// Top-level IDs that end a cluster of unknown size.
pub(super) const TOP_LEVEL: [u32; 9] = [
    CLUSTER,
    CUES,
    SEEKHEAD,
    INFO,
    TRACKS,
    0x1254_C367,
    0x1043_A770,
    0x1941_A469,
    SEGMENT,
];

/// Most top-level elements walked looking for Info/Tracks/Cues.
pub(super) const MAX_TOP_ELEMENTS: u32 = 1_000_000;
/// Most block headers read over all scans.
pub(super) const MAX_BLOCKS: u32 = 400_000;
/// Clusters read at the start of the file.
pub(super) const HEAD_CLUSTERS: u32 = 2;
/// Most clusters read per Cue-to-Cue span check.
pub(super) const SPAN_CLUSTERS: u32 = 64;
/// Most blocks read looking for the first video block of a cluster.
pub(super) const FIRST_VIDEO_BLOCKS: usize = 64;
/// Size of a block-header read.
pub(super) const PEEK: usize = 16;

/// One block header read while scanning clusters.
pub(super) struct Block {
    /// Track number.
    pub(super) track: u64,
    /// Cluster timecode + block timecode, in TimecodeScale units (may be negative).
    pub(super) time: i64,
    /// Key frame (SimpleBlock key flag, or BlockGroup without ReferenceBlock).
    pub(super) key: bool,
    /// BlockDuration in TimecodeScale units, if present.
    pub(super) duration: Option<u64>,
    /// Lacing used (several frames in one block).
    pub(super) laced: bool,
}

/// File layout and track facts.
pub(super) struct Mkv {
    /// Payload start and end of the Segment.
    pub(super) seg: (u64, u64),
    /// Nanoseconds per timecode unit.
    pub(super) timescale: u64,
    /// Track number of the first video track.
    pub(super) video: u64,
    /// DefaultDuration of every track (ns), keyed by track number.
    pub(super) tracks: HashMap<u64, Option<u64>>,
    /// Block headers left in the scan budget.
    pub(super) budget: u32,
}

/// Positions of the top-level elements we need.
#[derive(Default)]
pub(super) struct Layout {
    pub(super) info: Option<u64>,
    pub(super) tracks: Option<u64>,
    pub(super) cues: Option<u64>,
    pub(super) first_cluster: Option<u64>,
}

/// A Segment opened: where its payload runs, where its top-level
/// elements are, and its clock.
pub(super) struct Segment {
    /// Payload start and end (bytes), the end clipped to the file.
    pub(super) span: (u64, u64),
    /// Positions of the top-level elements.
    pub(super) layout: Layout,
    /// Nanoseconds per timecode unit (`TimecodeScale`; Matroska's default
    /// 1,000,000 when there is no Info).
    pub(super) timescale: u64,
}

/// Opens the Segment element at `at`: `None` when there is none there or
/// its Info cannot be read.
pub(super) fn open_segment(r: &mut Input, at: u64) -> Option<Segment> {
    let seg = elem_at(r, at)?;
    if seg.id != SEGMENT {
        return None;
    }
    let end = seg
        .size
        .and_then(|s| seg.data.checked_add(s))
        .unwrap_or(u64::MAX)
        .min(r.len());
    let layout = find_top_level(r, seg.data, end)?;
    let timescale = match layout.info {
        Some(pos) => parse_info(&load(r, pos)?)?,
        None => 1_000_000,
    };
    Some(Segment {
        span: (seg.data, end),
        layout,
        timescale,
    })
}

/// Walks the Segment's top-level elements (using SeekHead entries where present).
pub(super) fn find_top_level(r: &mut Input, seg_start: u64, seg_end: u64) -> Option<Layout> {
    let mut l = Layout::default();
    let mut pos = seg_start;
    for _ in 0..MAX_TOP_ELEMENTS {
        if pos >= seg_end {
            break;
        }
        let Some(e) = elem_at(r, pos) else { break };
        match e.id {
            SEEKHEAD => read_seekhead(r, e, seg_start, &mut l, 0)?,
            INFO => l.info = l.info.or(Some(pos)),
            TRACKS => l.tracks = l.tracks.or(Some(pos)),
            CUES => l.cues = l.cues.or(Some(pos)),
            CLUSTER => l.first_cluster = l.first_cluster.or(Some(pos)),
            _ => {}
        }
        if l.first_cluster.is_some() && l.info.is_some() && l.tracks.is_some() && l.cues.is_some() {
            break;
        }
        // An unknown-size element (a live-written cluster) cannot be skipped.
        pos = e.data.checked_add(e.size?)?;
    }
    Some(l)
}

/// Records the positions listed in a SeekHead (following one nested SeekHead).
pub(super) fn read_seekhead(
    r: &mut Input,
    e: Elem,
    seg_start: u64,
    l: &mut Layout,
    depth: u8,
) -> Option<()> {
    let body = r.read_vec(e.data, e.size?)?;
    for (id, seek) in kids(&body)? {
        if id != SEEK {
            continue;
        }
        let fields = kids(seek)?;
        let target = fields
            .iter()
            .find(|(i, _)| *i == SEEKID)
            .map(|(_, v)| uint(v));
        let at = fields
            .iter()
            .find(|(i, _)| *i == SEEKPOS)
            .map(|(_, v)| uint(v));
        let (Some(Some(target)), Some(Some(at))) = (target, at) else {
            continue;
        };
        let pos = seg_start.checked_add(at)?;
        match u32::try_from(target).ok()? {
            INFO => l.info = l.info.or(Some(pos)),
            TRACKS => l.tracks = l.tracks.or(Some(pos)),
            CUES => l.cues = l.cues.or(Some(pos)),
            SEEKHEAD if depth == 0 && pos != e.data => {
                let nested = elem_at(r, pos)?;
                if nested.id == SEEKHEAD {
                    read_seekhead(r, nested, seg_start, l, 1)?;
                }
            }
            _ => {}
        }
    }
    Some(())
}

/// Loads the payload of the element at `pos`.
pub(super) fn load(r: &mut Input, pos: u64) -> Option<Vec<u8>> {
    let e = elem_at(r, pos)?;
    let size = e.size?;
    if size > MAX_ALLOC {
        return None;
    }
    r.read_vec(e.data, size)
}

/// TimecodeScale (ns per timecode unit) from Info.
pub(super) fn parse_info(info: &[u8]) -> Option<u64> {
    let v = match kids(info)?.into_iter().find(|(id, _)| *id == TIMECODESCALE) {
        Some((_, v)) => uint(v)?,
        None => 1_000_000,
    };
    (v > 0).then_some(v)
}

/// Result of scanning some clusters.
#[derive(Default)]
pub(super) struct Scan {
    /// Blocks in file order.
    pub(super) blocks: Vec<Block>,
    /// Whether the scan stopped early (budget or limit), so the tail is incomplete.
    pub(super) truncated: bool,
}

impl Mkv {
    /// Scans block headers of up to `max_clusters` clusters from `pos`, stopping
    /// before a cluster that starts at or after `stop_at`.
    pub(super) fn scan(
        &mut self,
        r: &mut Input,
        mut pos: u64,
        max_clusters: u32,
        stop_at: u64,
    ) -> Option<Scan> {
        let mut scan = Scan::default();
        for n in 0..max_clusters {
            if pos >= self.seg.1 || (n > 0 && pos >= stop_at) {
                return Some(scan);
            }
            let e = elem_at(r, pos)?;
            if e.id != CLUSTER {
                if n == 0 {
                    return None; // a Cue that does not point at a cluster
                }
                // Cues, Tags, ...: skip it and go on looking for clusters.
                pos = e.data.checked_add(e.size?)?;
                continue;
            }
            pos = self.scan_cluster(r, e, &mut scan, false)?;
            if scan.truncated {
                return Some(scan);
            }
        }
        scan.truncated = pos < self.seg.1;
        Some(scan)
    }

    /// Reads the block headers of one cluster (only up to its first video block
    /// when `first_video`); returns the offset after the cluster.
    pub(super) fn scan_cluster(
        &mut self,
        r: &mut Input,
        cluster: Elem,
        scan: &mut Scan,
        first_video: bool,
    ) -> Option<u64> {
        let end = match cluster.size {
            Some(s) => cluster.data.checked_add(s)?.min(self.seg.1),
            None => self.seg.1,
        };
        let mut cluster_time: Option<i64> = None;
        let mut pos = cluster.data;
        while pos < end {
            let e = elem_at(r, pos)?;
            if cluster.size.is_none() && TOP_LEVEL.contains(&e.id) {
                return Some(pos);
            }
            let size = e.size?;
            let next = e.data.checked_add(size)?;
            if first_video
                && (scan.blocks.len() >= FIRST_VIDEO_BLOCKS
                    || scan.blocks.last().is_some_and(|b| b.track == self.video))
            {
                return cluster.size.map(|_| end);
            }
            match e.id {
                TIMECODE => {
                    cluster_time = Some(i64::try_from(uint(&r.read_vec(e.data, size)?)?).ok()?);
                }
                SIMPLEBLOCK | BLOCKGROUP => {
                    if self.budget == 0 {
                        scan.truncated = true;
                        return Some(next);
                    }
                    self.budget -= 1;
                    let block = if e.id == SIMPLEBLOCK {
                        Some(block_header(r, e.data, size, None)?)
                    } else {
                        block_group(r, e.data, next)?
                    };
                    if let Some((track, rel, key, duration, laced)) = block {
                        scan.blocks.push(Block {
                            track,
                            time: cluster_time?.checked_add(i64::from(rel))?,
                            key,
                            duration,
                            laced,
                        });
                    }
                }
                _ => {}
            }
            pos = next;
        }
        Some(end)
    }

    /// lace_time as matroskademux computes it (ns).
    pub(super) fn ns(&self, time: i64) -> Option<u64> {
        u64::try_from(time.max(0)).ok()?.checked_mul(self.timescale)
    }
}

/// A block header: (track, relative timecode, key, BlockDuration, laced).
pub(super) type Header = (u64, i16, bool, Option<u64>, bool);

/// Reads a (Simple)Block header at `pos`; `reference` = Some(..) for a Block in a BlockGroup.
pub(super) fn block_header(
    r: &mut Input,
    pos: u64,
    size: u64,
    reference: Option<bool>,
) -> Option<Header> {
    let mut buf = [0u8; PEEK];
    let want = usize::try_from(size.min(PEEK as u64)).ok()?;
    let got = r.read_upto(pos, buf.get_mut(..want)?)?;
    let b = buf.get(..got)?;
    let (track, len, _) = vint(b)?;
    let rel = i16::from_be_bytes([*b.get(len)?, *b.get(len + 1)?]);
    let flags = *b.get(len + 2)?;
    let key = match reference {
        None => flags & 0x80 != 0,
        Some(has_reference) => !has_reference,
    };
    Some((track, rel, key, None, flags & 0x06 != 0))
}

/// Reads a BlockGroup's Block header, BlockDuration and ReferenceBlock presence.
pub(super) fn block_group(r: &mut Input, mut pos: u64, end: u64) -> Option<Option<Header>> {
    let (mut block, mut duration, mut referenced) = (None, None, false);
    while pos < end {
        let e = elem_at(r, pos)?;
        let size = e.size?;
        match e.id {
            BLOCK => block = Some((e.data, size)),
            BLOCKDURATION => duration = Some(uint(&r.read_vec(e.data, size.min(8))?)?),
            REFERENCEBLOCK => referenced = true,
            _ => {}
        }
        pos = e.data.checked_add(size)?;
    }
    let Some((at, size)) = block else {
        return Some(None);
    };
    let (track, rel, key, _, laced) = block_header(r, at, size, Some(referenced))?;
    Some(Some((track, rel, key, duration, laced)))
}
