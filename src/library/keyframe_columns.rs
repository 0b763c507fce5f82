//! A key-frame index as the catalogue keeps it, in four columns of the
//! file's row (pure):
//! - `keyframes`: the key frames' times, nanoseconds, a little-endian
//!   `u64` each;
//! - `keyframes_end`: the video's end, nanoseconds, or NULL;
//! - `keyframes_src`: where the index came from (`matroska`, `mp4`,
//!   `avi`, `demux_pass`);
//! - `keyframes_pos`: each key frame's byte offset, then the data end,
//!   `u64`s again; empty when the file does not say; NULL in a row
//!   stored before the readers gave offsets, which is then read again.

use crate::container::index::{KeyframeIndex, Source};
use std::time::Duration;

/// The columns of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// `keyframes`.
    pub times: Vec<u8>,
    /// `keyframes_end`.
    pub end_ns: Option<i64>,
    /// `keyframes_src`.
    pub source: &'static str,
    /// `keyframes_pos` (never NULL when written).
    pub positions: Vec<u8>,
}

/// The columns that keep `index`.
pub fn to_columns(index: &KeyframeIndex) -> Columns {
    let positions = index
        .data_end
        .map(|end| {
            index
                .offsets
                .iter()
                .chain(std::iter::once(&end))
                .flat_map(|o| o.to_le_bytes())
                .collect()
        })
        .unwrap_or_default();
    Columns {
        times: index
            .keyframes
            .iter()
            .flat_map(|k| (k.as_nanos() as u64).to_le_bytes())
            .collect(),
        end_ns: index.end.map(|e| e.as_nanos() as i64),
        source: source_name(index.source),
        positions,
    }
}

/// The index the columns keep; `None` for an unknown source, and for a
/// container's index stored before offsets were read (NULL positions:
/// read it again, in milliseconds, so that a copy's bit rates are known).
pub fn from_columns(
    times: &[u8],
    end_ns: Option<i64>,
    source: &str,
    positions: Option<&[u8]>,
) -> Option<KeyframeIndex> {
    let source = source_from(source)?;
    if positions.is_none() && source != Source::DemuxPass {
        return None;
    }
    let keyframes: Vec<Duration> = u64s(times).map(Duration::from_nanos).collect();
    // One offset per key frame, then the data end.
    let mut offsets: Vec<u64> = positions.map(|p| u64s(p).collect()).unwrap_or_default();
    let data_end = if offsets.len() == keyframes.len() + 1 {
        offsets.pop()
    } else {
        offsets.clear();
        None
    };
    Some(KeyframeIndex {
        keyframes,
        end: end_ns.map(|e| Duration::from_nanos(e.max(0) as u64)),
        source,
        offsets,
        data_end,
    })
}

/// Little-endian `u64`s, 8 bytes each.
fn u64s(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Matroska => "matroska",
        Source::Mp4 => "mp4",
        Source::Avi => "avi",
        Source::DemuxPass => "demux_pass",
    }
}

fn source_from(s: &str) -> Option<Source> {
    Some(match s {
        "matroska" => Source::Matroska,
        "mp4" => Source::Mp4,
        "avi" => Source::Avi,
        "demux_pass" => Source::DemuxPass,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(offsets: Vec<u64>, data_end: Option<u64>, source: Source) -> KeyframeIndex {
        KeyframeIndex {
            keyframes: vec![Duration::ZERO, Duration::from_nanos(6_006_000_001)],
            end: Some(Duration::from_secs(12)),
            source,
            offsets,
            data_end,
        }
    }

    fn round_trip(i: &KeyframeIndex) -> Option<KeyframeIndex> {
        let c = to_columns(i);
        from_columns(&c.times, c.end_ns, c.source, Some(&c.positions))
    }

    #[test]
    fn an_index_with_offsets_survives_its_columns() {
        let i = index(vec![4_000, 900_000], Some(1_800_000), Source::Matroska);
        assert_eq!(round_trip(&i), Some(i));
    }

    #[test]
    fn no_offsets_are_kept_as_none_and_null_ones_are_read_again() {
        // The file does not say where its key frames lie: kept as it is.
        let i = index(Vec::new(), None, Source::Mp4);
        assert_eq!(round_trip(&i), Some(i.clone()));
        // Stored before offsets were read: read the file again.
        let c = to_columns(&i);
        assert_eq!(from_columns(&c.times, c.end_ns, c.source, None), None);
        // A demux pass never had offsets.
        let d = index(Vec::new(), None, Source::DemuxPass);
        let c = to_columns(&d);
        assert_eq!(from_columns(&c.times, c.end_ns, c.source, None), Some(d));
        assert_eq!(from_columns(&c.times, c.end_ns, "what", Some(&[])), None);
    }
}
