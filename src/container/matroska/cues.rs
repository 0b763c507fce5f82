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

use super::layout::{
    load, open_segment, Block, Mkv, Scan, CLUSTER, CUECLUSTERPOSITION, CUEPOINT, CUETIME, CUETRACK,
    CUETRACKPOSITIONS, DEFAULTDURATION, DOCTYPE, EBML, HEAD_CLUSTERS, MAX_BLOCKS, MAX_TOP_ELEMENTS,
    SPAN_CLUSTERS, TRACKENTRY, TRACKNUMBER, TRACKTIMECODESCALE, TRACKTYPE,
};
use crate::container::ebml::elem_at;
use crate::container::ebml::{float, kids, uint};
use crate::container::index::{finish, KeyframeIndex, Source};
use crate::container::input::Input;

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
    let segment = open_segment(r, ebml.data + ebml_size)?;
    let layout = segment.layout;
    let (video, tracks) = parse_tracks(&load(r, layout.tracks?)?)?;
    let cues = parse_cues(&load(r, layout.cues?)?, video, segment.span.0)?;
    let mut mkv = Mkv {
        seg: segment.span,
        timescale: segment.timescale,
        video,
        tracks,
        budget: MAX_BLOCKS,
    };
    let mut index = mkv.build(r, layout.first_cluster?, &cues)?;
    // Each key frame's cluster, where its segment's bytes start; the
    // clusters end at the Cues when those follow them, else at the end.
    if index.keyframes.len() == cues.len() {
        let last = cues.last()?.1;
        let cues_at = layout.cues.filter(|&c| c > last);
        index.offsets = cues.iter().map(|c| c.1).collect();
        index.data_end = Some(cues_at.unwrap_or(segment.span.1));
    }
    Some(index)
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

impl Mkv {
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
        let (start, head_keys) = self.start_of(&head)?;
        // The Cue times must be block times: check the first and the last one.
        if cues.first()?.1 == first_cluster && !self.key_in(&head, cues.first()?.0) {
            return None;
        }
        if !self.spans_listed(r, cues, &cue_times)? || !self.clusters_listed(r, cues, &cue_times)? {
            return None;
        }
        // 4. Tail: from the last Cue's cluster to the end, for the end time.
        let tail = self.scan(r, cues.last()?.1, u32::MAX, u64::MAX)?;
        if !self.all_listed(&tail, &cue_times)? || !self.key_in(&tail, cues.last()?.0) {
            return None;
        }
        let end = if tail.truncated {
            None
        } else {
            self.end_of(&tail, start)?
        };
        if tail.blocks.iter().any(|b| {
            self.tracks.contains_key(&b.track) && self.ns(b.time).is_none_or(|t| t < start)
        }) {
            return None; // would lower the stream start time again
        }
        let mut keys = Vec::with_capacity(cues.len());
        for &(time, _) in cues {
            let rt = match head_keys.get(&time) {
                Some(&rt) => rt,
                None => self.ns(i64::try_from(time).ok()?)?.checked_sub(start)?,
            };
            keys.push(rt);
        }
        finish(keys, end, Source::Matroska)
    }

    /// The stream start time (the earliest block time of a track played,
    /// in nanoseconds) over the head's blocks, and the running time of
    /// each video key frame there, by its Cue time.
    fn start_of(&self, head: &Scan) -> Option<(u64, HashMap<u64, u64>)> {
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
        Some((start?, head_keys))
    }

    /// Whether `scan` holds a video key frame at block time `time`.
    fn key_in(&self, scan: &Scan, time: u64) -> bool {
        scan.blocks.iter().any(|b| {
            b.track == self.video && b.key && i64::try_from(time).is_ok_and(|t| t == b.time)
        })
    }

    /// Step 2: whether the spans between consecutive Cues at 1/4, 1/2 and 3/4
    /// of the file list every key frame they hold.
    fn spans_listed(
        &mut self,
        r: &mut Input,
        cues: &[(u64, u64)],
        cue_times: &std::collections::HashSet<u64>,
    ) -> Option<bool> {
        let n = cues.len();
        let mut checked = std::collections::HashSet::new();
        for i in [n / 4, n / 2, 3 * n / 4] {
            if i + 1 >= n || !checked.insert(i) {
                continue;
            }
            let (from, to) = (cues.get(i)?.1, cues.get(i + 1)?.1);
            let span = self.scan(r, from, SPAN_CLUSTERS, to.max(from + 1))?;
            if !self.all_listed(&span, cue_times)? {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Step 3: whether the first video block of every cluster between the first
    /// and the last Cue is listed when it is a key frame. Muxers start
    /// clusters on video key frames (ffmpeg, matroskamux), so a key frame
    /// missing from the Cues usually shows here, for one small read per
    /// cluster.
    fn clusters_listed(
        &mut self,
        r: &mut Input,
        cues: &[(u64, u64)],
        cue_times: &std::collections::HashSet<u64>,
    ) -> Option<bool> {
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
                if !self.all_listed(&first, cue_times)? {
                    return Some(false);
                }
            }
            pos = next;
        }
        Some(true)
    }

    /// The media end (running time, nanoseconds) from the tail: the end of
    /// its latest video block. `Some(None)` when that block's duration is
    /// unknown or it ends before `start`; `None` when a time overflows.
    fn end_of(&self, tail: &Scan, start: u64) -> Option<Option<u64>> {
        let mut latest: Option<&Block> = None;
        for b in tail.blocks.iter().filter(|b| b.track == self.video) {
            if latest.is_none_or(|l| b.time >= l.time) {
                latest = Some(b);
            }
        }
        let Some(b) = latest else {
            return Some(None);
        };
        let dur = match b.duration {
            Some(d) => d.checked_mul(self.timescale),
            None => self.tracks.get(&self.video).copied().flatten(),
        };
        match dur {
            Some(d) => Some(self.ns(b.time)?.checked_add(d)?.checked_sub(start)),
            None => Some(None),
        }
    }
}
