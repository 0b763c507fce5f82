//! The flags of a Matroska file's tracks, which GStreamer 1.22's
//! Discoverer does not report: `FlagDefault`, `FlagForced`, the language
//! and the name (Matroska specification, RFC 9559 §5.1.4.1). Read from the
//! `Tracks` element with the EBML reader of the key-frame index; only the
//! head of the file is read.

use super::ebml::{elem_at, kids, uint};
use super::input::Input;
use std::path::Path;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const TRACKENTRY: u32 = 0xAE;
const TRACKTYPE: u32 = 0x83;
const FLAGDEFAULT: u32 = 0x88;
const FLAGFORCED: u32 = 0x55AA;
const NAME: u32 = 0x536E;
const LANGUAGE: u32 = 0x22_B59C;
const LANGUAGE_IETF: u32 = 0x22_B59D;
const BLOCK_ADDITION_MAPPING: u32 = 0x41E4;
const BLOCK_ADD_ID_TYPE: u32 = 0x41E7;
const BLOCK_ADD_ID_EXTRA_DATA: u32 = 0x41ED;
/// `BlockAddIDType`s of a Dolby Vision configuration record: `dvcC`,
/// `dvvC` as big-endian integers (Matroska codec mappings).
const DOLBY_VISION_TYPES: [u64; 2] = [0x6476_6343, 0x6476_7643];

/// Top-level elements looked at before giving up on finding `Tracks`.
const MAX_TOP_ELEMENTS: usize = 64;
/// Largest `Tracks` element read (codec private data included).
const MAX_TRACKS_BYTES: u64 = 16 * 1024 * 1024;

/// `TrackType` values (RFC 9559 §5.1.4.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1.
    Video,
    /// 2.
    Audio,
    /// 17.
    Subtitle,
    /// Anything else (buttons, metadata, complex).
    Other,
}

/// One `TrackEntry`'s flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackHeader {
    /// Its type.
    pub kind: Kind,
    /// `FlagDefault` (1 when absent, as the specification says).
    pub default: bool,
    /// `FlagForced` (0 when absent).
    pub forced: bool,
    /// `LanguageIETF`, else `Language`, as written; `None` when absent.
    pub language: Option<String>,
    /// `Name`, if any.
    pub name: Option<String>,
    /// Its Dolby Vision record, from a `BlockAdditionMapping`, if any.
    pub dolby_vision: Option<super::dolby_vision::DolbyVision>,
}

fn text(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b.split(|&c| c == 0).next()?)
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

/// The Dolby Vision record a `BlockAdditionMapping` payload carries.
fn dolby_vision(mapping: &[u8]) -> Option<super::dolby_vision::DolbyVision> {
    let kids = kids(mapping)?;
    let kind = kids.iter().find(|(id, _)| *id == BLOCK_ADD_ID_TYPE)?;
    if !DOLBY_VISION_TYPES.contains(&uint(kind.1)?) {
        return None;
    }
    let (_, record) = kids.iter().find(|(id, _)| *id == BLOCK_ADD_ID_EXTRA_DATA)?;
    super::dolby_vision::DolbyVision::parse(record)
}

/// Parses the payload of a `Tracks` element.
fn parse(tracks: &[u8]) -> Option<Vec<TrackHeader>> {
    let mut out = Vec::new();
    for (id, entry) in kids(tracks)? {
        if id != TRACKENTRY {
            continue;
        }
        let mut t = TrackHeader {
            kind: Kind::Other,
            default: true,
            forced: false,
            language: None,
            name: None,
            dolby_vision: None,
        };
        let mut ietf = None;
        for (id, v) in kids(entry)? {
            match id {
                TRACKTYPE => {
                    t.kind = match uint(v)? {
                        1 => Kind::Video,
                        2 => Kind::Audio,
                        17 => Kind::Subtitle,
                        _ => Kind::Other,
                    }
                }
                FLAGDEFAULT => t.default = uint(v)? != 0,
                FLAGFORCED => t.forced = uint(v)? != 0,
                NAME => t.name = text(v),
                LANGUAGE => t.language = text(v),
                LANGUAGE_IETF => ietf = text(v),
                BLOCK_ADDITION_MAPPING => t.dolby_vision = t.dolby_vision.or(dolby_vision(v)),
                _ => {}
            }
        }
        t.language = ietf.or(t.language);
        out.push(t);
    }
    Some(out)
}

/// The track headers of the Matroska/WebM file at `path`, in file order;
/// `None` for another kind of file, a `Tracks` element after the first
/// cluster, or anything malformed.
pub fn read(path: &Path) -> Option<Vec<TrackHeader>> {
    let mut r = Input::open(path)?;
    let ebml = elem_at(&mut r, 0)?;
    if ebml.id != EBML {
        return None;
    }
    let segment = elem_at(&mut r, ebml.data.checked_add(ebml.size?)?)?;
    if segment.id != SEGMENT {
        return None;
    }
    let mut pos = segment.data;
    for _ in 0..MAX_TOP_ELEMENTS {
        let e = elem_at(&mut r, pos)?;
        match e.id {
            TRACKS => {
                let size = e.size?;
                if size > MAX_TRACKS_BYTES {
                    return None;
                }
                return parse(&r.read_vec(e.data, size)?);
            }
            CLUSTER => return None,
            _ => pos = e.data.checked_add(e.size?)?,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element: 1-byte-size header for short payloads.
    fn el(id: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.push(0x80 | payload.len() as u8);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn flags_default_to_the_specification() {
        let audio = [
            el(&[0x83], &[2]),
            el(&[0x22, 0xB5, 0x9C], b"fre"),
            el(&[0x88], &[0]),
            el(&[0x53, 0x6E], b"Commentary"),
        ]
        .concat();
        let subs = [el(&[0x83], &[17]), el(&[0x55, 0xAA], &[1])].concat();
        let tracks = [el(&[0xAE], &audio), el(&[0xAE], &subs)].concat();
        let parsed = parse(&tracks).expect("parsed");
        assert_eq!(
            parsed[0],
            TrackHeader {
                kind: Kind::Audio,
                default: false,
                forced: false,
                language: Some("fre".into()),
                name: Some("Commentary".into()),
                dolby_vision: None,
            }
        );
        assert_eq!(
            (parsed[1].kind, parsed[1].default, parsed[1].forced),
            (Kind::Subtitle, true, true)
        );
    }

    #[test]
    fn a_dolby_vision_mapping_is_read() {
        let mut record = vec![1, 0, 8 << 1, 6 << 3, 1 << 4];
        record.resize(24, 0);
        let mapping = [
            el(&[0x41, 0xE7], &[0x64, 0x76, 0x76, 0x43]),
            el(&[0x41, 0xED], &record),
        ]
        .concat();
        let video = [el(&[0x83], &[1]), el(&[0x41, 0xE4], &mapping)].concat();
        let parsed = parse(&el(&[0xAE], &video)).expect("parsed");
        let dv = parsed[0].dolby_vision.expect("a record");
        assert_eq!((dv.profile, dv.level, dv.compatibility_id), (8, 6, 1));
    }

    #[test]
    fn other_files_have_no_tracks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mp4");
        std::fs::write(&p, b"\0\0\0\x18ftypisom").unwrap();
        assert_eq!(read(&p), None);
    }
}
