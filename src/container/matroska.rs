//! Matroska / WebM: key frames of the first video track from the `Cues`, with
//! `matroskademux`'s timestamp arithmetic.
//!
//! What `matroskademux` (GStreamer 1.22) does and this module reproduces:
//! * buffer PTS = (cluster timecode + block timecode) × `TimecodeScale` ns
//!   (0 if negative); Cue times are in the same unit, so they match exactly;
//! * key frame = SimpleBlock with the key flag, or BlockGroup without ReferenceBlock;
//! * the segment starts at the *stream start time*: the time of the first block
//!   read (any track), lowered again each time a later-read block is earlier
//!   (a new segment is sent then). So the very first key frame of an ffmpeg file
//!   whose video starts at 21 ms gets running time 0, and all later ones
//!   `pts - min(first block times)`: this module reads the first clusters block
//!   header by block header to replay that.
//!
//! Cues may not list every key frame (e.g. `matroskamux min-index-interval`).
//! The first two clusters, the clusters from the last Cue to the end, and three
//! Cue-to-Cue spans spread over the file are scanned; a key frame there that is
//! missing from the Cues gives `None`. Gaps elsewhere cannot be seen cheaply.

use std::collections::HashMap;

use super::ebml::{elem_at, float, kids, uint, vint, Elem};
use super::index::{finish, KeyframeIndex, Source};
use super::input::{Input, MAX_ALLOC};

const EBML: u32 = 0x1A45_DFA3;
const DOCTYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const SEEKHEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEKID: u32 = 0x53AB;
const SEEKPOS: u32 = 0x53AC;
const INFO: u32 = 0x1549_A966;
const TIMECODESCALE: u32 = 0x2A_D7B1;
const TRACKS: u32 = 0x1654_AE6B;
const TRACKENTRY: u32 = 0xAE;
const TRACKNUMBER: u32 = 0xD7;
const TRACKTYPE: u32 = 0x83;
const DEFAULTDURATION: u32 = 0x23_E383;
const TRACKTIMECODESCALE: u32 = 0x23_314F;
const CUES: u32 = 0x1C53_BB6B;
const CUEPOINT: u32 = 0xBB;
const CUETIME: u32 = 0xB3;
const CUETRACKPOSITIONS: u32 = 0xB7;
const CUETRACK: u32 = 0xF7;
const CUECLUSTERPOSITION: u32 = 0xF1;
const CLUSTER: u32 = 0x1F43_B675;
const TIMECODE: u32 = 0xE7;
const SIMPLEBLOCK: u32 = 0xA3;
const BLOCKGROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const BLOCKDURATION: u32 = 0x9B;
const REFERENCEBLOCK: u32 = 0xFB;
/// Top-level IDs that end a cluster of unknown size.
const TOP_LEVEL: [u32; 9] = [
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
const MAX_TOP_ELEMENTS: u32 = 1_000_000;
/// Most block headers read over all scans.
const MAX_BLOCKS: u32 = 400_000;
/// Clusters read at the start of the file.
const HEAD_CLUSTERS: u32 = 2;
/// Most clusters read per Cue-to-Cue span check.
const SPAN_CLUSTERS: u32 = 64;
/// Most blocks read looking for the first video block of a cluster.
const FIRST_VIDEO_BLOCKS: usize = 64;
/// Size of a block-header read.
const PEEK: usize = 16;

/// One block header read while scanning clusters.
struct Block {
    /// Track number.
    track: u64,
    /// Cluster timecode + block timecode, in TimecodeScale units (may be negative).
    time: i64,
    /// Key frame (SimpleBlock key flag, or BlockGroup without ReferenceBlock).
    key: bool,
    /// BlockDuration in TimecodeScale units, if present.
    duration: Option<u64>,
    /// Lacing used (several frames in one block).
    laced: bool,
}

/// File layout and track facts.
struct Mkv {
    /// Payload start and end of the Segment.
    seg: (u64, u64),
    /// Nanoseconds per timecode unit.
    timescale: u64,
    /// Track number of the first video track.
    video: u64,
    /// DefaultDuration of every track (ns), keyed by track number.
    tracks: HashMap<u64, Option<u64>>,
    /// Block headers left in the scan budget.
    budget: u32,
}

/// Reads the key-frame index of the first video track; see the module docs.
pub fn index(r: &mut Input) -> Option<KeyframeIndex> {
    let ebml = elem_at(r, 0)?;
    let ebml_size = ebml.size?;
    if ebml.id != EBML || ebml_size > 4096 {
        return None;
    }
    let head = r.read_vec(ebml.data, ebml_size)?;
    let doctype = kids(&head)?.into_iter().find(|(id, _)| *id == DOCTYPE)?.1;
    // EBML strings may be padded with NULs (matroskamux writes "matroska\0").
    let doctype = doctype.split(|&c| c == 0).next()?;
    if doctype != b"matroska" && doctype != b"webm" {
        return None;
    }
    let seg = elem_at(r, ebml.data + ebml_size)?;
    if seg.id != SEGMENT {
        return None;
    }
    let seg_end = seg
        .size
        .and_then(|s| seg.data.checked_add(s))
        .unwrap_or(u64::MAX)
        .min(r.len());
    let layout = find_top_level(r, seg.data, seg_end)?;
    let timescale = match layout.info {
        Some(pos) => parse_info(&load(r, pos)?)?,
        None => 1_000_000,
    };
    let (video, tracks) = parse_tracks(&load(r, layout.tracks?)?)?;
    let cues = parse_cues(&load(r, layout.cues?)?, video, seg.data)?;
    let mut mkv = Mkv {
        seg: (seg.data, seg_end),
        timescale,
        video,
        tracks,
        budget: MAX_BLOCKS,
    };
    mkv.build(r, layout.first_cluster?, &cues)
}

/// Positions of the top-level elements we need.
#[derive(Default)]
struct Layout {
    info: Option<u64>,
    tracks: Option<u64>,
    cues: Option<u64>,
    first_cluster: Option<u64>,
}

/// Walks the Segment's top-level elements (using SeekHead entries where present).
fn find_top_level(r: &mut Input, seg_start: u64, seg_end: u64) -> Option<Layout> {
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
fn read_seekhead(r: &mut Input, e: Elem, seg_start: u64, l: &mut Layout, depth: u8) -> Option<()> {
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
fn load(r: &mut Input, pos: u64) -> Option<Vec<u8>> {
    let e = elem_at(r, pos)?;
    let size = e.size?;
    if size > MAX_ALLOC {
        return None;
    }
    r.read_vec(e.data, size)
}

/// TimecodeScale (ns per timecode unit) from Info.
fn parse_info(info: &[u8]) -> Option<u64> {
    let v = match kids(info)?.into_iter().find(|(id, _)| *id == TIMECODESCALE) {
        Some((_, v)) => uint(v)?,
        None => 1_000_000,
    };
    (v > 0).then_some(v)
}

/// First video track number and every track's DefaultDuration.
fn parse_tracks(tracks: &[u8]) -> Option<(u64, HashMap<u64, Option<u64>>)> {
    let mut video = None;
    let mut all = HashMap::new();
    for (id, entry) in kids(tracks)? {
        if id != TRACKENTRY {
            continue;
        }
        let (mut number, mut kind, mut default_duration) = (None, None, None);
        for (id, v) in kids(entry)? {
            match id {
                TRACKNUMBER => number = uint(v),
                TRACKTYPE => kind = uint(v),
                DEFAULTDURATION => default_duration = uint(v).filter(|&d| d > 0),
                // matroskademux then scales times by a float: not modelled
                TRACKTIMECODESCALE if float(v)? != 1.0 => return None,
                _ => {}
            }
        }
        let number = number?;
        if kind == Some(1) && video.is_none() {
            video = Some(number);
        }
        all.insert(number, default_duration);
    }
    Some((video?, all))
}

/// Video Cue points as (time in timecode units, absolute cluster offset), sorted by time.
fn parse_cues(cues: &[u8], video: u64, seg_start: u64) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for (id, point) in kids(cues)? {
        if id != CUEPOINT {
            continue;
        }
        let fields = kids(point)?;
        let time = uint(fields.iter().find(|(i, _)| *i == CUETIME)?.1)?;
        for (id, pos) in fields {
            if id != CUETRACKPOSITIONS {
                continue;
            }
            let p = kids(pos)?;
            let track = uint(p.iter().find(|(i, _)| *i == CUETRACK)?.1)?;
            let cluster = uint(p.iter().find(|(i, _)| *i == CUECLUSTERPOSITION)?.1)?;
            if track == video {
                out.push((time, seg_start.checked_add(cluster)?));
            }
        }
    }
    out.sort_unstable();
    out.dedup_by_key(|c| c.0);
    (!out.is_empty()).then_some(out)
}

/// Result of scanning some clusters.
#[derive(Default)]
struct Scan {
    /// Blocks in file order.
    blocks: Vec<Block>,
    /// Whether the scan stopped early (budget or limit), so the tail is incomplete.
    truncated: bool,
}

impl Mkv {
    /// Scans block headers of up to `max_clusters` clusters from `pos`, stopping
    /// before a cluster that starts at or after `stop_at`.
    fn scan(
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
    fn scan_cluster(
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
    fn ns(&self, time: i64) -> Option<u64> {
        u64::try_from(time.max(0)).ok()?.checked_mul(self.timescale)
    }

    /// Checks that every video key frame in `scan` is a Cue time.
    fn all_listed(&self, scan: &Scan, cue_times: &std::collections::HashSet<u64>) -> Option<bool> {
        for b in scan.blocks.iter().filter(|b| b.track == self.video) {
            if b.laced {
                return None;
            }
            if b.key && !cue_times.contains(&u64::try_from(b.time.max(0)).ok()?) {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Scans head, spans and tail, then maps Cue times to running times.
    fn build(
        &mut self,
        r: &mut Input,
        first_cluster: u64,
        cues: &[(u64, u64)],
    ) -> Option<KeyframeIndex> {
        let cue_times: std::collections::HashSet<u64> = cues.iter().map(|c| c.0).collect();
        // 1. Head: replay the stream start time over the first blocks.
        let head = self.scan(r, first_cluster, HEAD_CLUSTERS, u64::MAX)?;
        if !self.all_listed(&head, &cue_times)? {
            return None;
        }
        let mut start: Option<u64> = None;
        let mut head_keys: HashMap<u64, u64> = HashMap::new(); // cue time -> running time
        for b in &head.blocks {
            if !self.tracks.contains_key(&b.track) {
                continue;
            }
            let t = self.ns(b.time)?;
            let s = *start.get_or_insert(t);
            if t < s {
                start = Some(t);
            }
            let s = start?;
            if b.track == self.video && b.key {
                head_keys
                    .entry(u64::try_from(b.time.max(0)).ok()?)
                    .or_insert(t.checked_sub(s)?);
            }
        }
        let start = start?;
        // The Cue times must be block times: check the first and the last one.
        let video = self.video;
        let key_in = move |scan: &Scan, time: u64| {
            scan.blocks.iter().any(|b| {
                b.track == video && b.key && i64::try_from(time).is_ok_and(|t| t == b.time)
            })
        };
        if cues.first()?.1 == first_cluster && !key_in(&head, cues.first()?.0) {
            return None;
        }
        // 2. Spans between consecutive Cues at 1/4, 1/2, 3/4 of the file.
        let n = cues.len();
        let mut checked = std::collections::HashSet::new();
        for i in [n / 4, n / 2, 3 * n / 4] {
            if i + 1 >= n || !checked.insert(i) {
                continue;
            }
            let (from, to) = (cues.get(i)?.1, cues.get(i + 1)?.1);
            let span = self.scan(r, from, SPAN_CLUSTERS, to.max(from + 1))?;
            if !self.all_listed(&span, &cue_times)? {
                return None;
            }
        }
        // 3. Every cluster between the first and the last Cue: its first video block.
        // Muxers start clusters on video key frames (ffmpeg, matroskamux), so a
        // key frame missing from the Cues usually shows here, for one small
        // read per cluster.
        let (mut pos, last) = (cues.first()?.1, cues.last()?.1);
        let mut walked = 0u32;
        while pos < last {
            walked += 1;
            if walked > MAX_TOP_ELEMENTS {
                return None;
            }
            let e = elem_at(r, pos)?;
            let next = e.data.checked_add(e.size?)?;
            if e.id == CLUSTER {
                let mut first = Scan::default();
                self.scan_cluster(r, e, &mut first, true)?;
                if !self.all_listed(&first, &cue_times)? {
                    return None;
                }
            }
            pos = next;
        }
        // 4. Tail: from the last Cue's cluster to the end, for the end time.
        let tail = self.scan(r, cues.last()?.1, u32::MAX, u64::MAX)?;
        if !self.all_listed(&tail, &cue_times)? || !key_in(&tail, cues.last()?.0) {
            return None;
        }
        let mut end = None;
        if !tail.truncated {
            let mut latest: Option<&Block> = None;
            for b in tail.blocks.iter().filter(|b| b.track == self.video) {
                if latest.is_none_or(|l| b.time >= l.time) {
                    latest = Some(b);
                }
            }
            if let Some(b) = latest {
                let dur = match b.duration {
                    Some(d) => d.checked_mul(self.timescale),
                    None => self.tracks.get(&self.video).copied().flatten(),
                };
                if let Some(d) = dur {
                    end = self.ns(b.time)?.checked_add(d)?.checked_sub(start);
                }
            }
        }
        if tail.blocks.iter().any(|b| {
            self.tracks.contains_key(&b.track) && self.ns(b.time).is_none_or(|t| t < start)
        }) {
            return None; // would lower the stream start time again
        }
        let mut keys = Vec::with_capacity(n);
        for &(time, _) in cues {
            let rt = match head_keys.get(&time) {
                Some(&rt) => rt,
                None => self.ns(i64::try_from(time).ok()?)?.checked_sub(start)?,
            };
            keys.push(rt);
        }
        finish(keys, end, Source::Matroska)
    }
}

/// A block header: (track, relative timecode, key, BlockDuration, laced).
type Header = (u64, i16, bool, Option<u64>, bool);

/// Reads a (Simple)Block header at `pos`; `reference` = Some(..) for a Block in a BlockGroup.
fn block_header(r: &mut Input, pos: u64, size: u64, reference: Option<bool>) -> Option<Header> {
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
fn block_group(r: &mut Input, mut pos: u64, end: u64) -> Option<Option<Header>> {
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
