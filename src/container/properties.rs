//! Property tests of the container readers (`proptest`): random bytes,
//! random bytes behind each container's magic, and made files truncated
//! at every length or with a byte changed. Every reader must answer
//! (`None`, an index, patches) without panicking, and what it answers must
//! hold: patches lie inside the file, an MP4 index comes only from a whole
//! `moov` and is then the file's. The box writer and reader, and the EBML
//! size reader, round-trip.

use super::input::Input;
use super::isobmff::{begin, begin_full, children, end, leaf, u32be};
use super::{asf, avi, ebml, h264, iframe, isobmff, keyframes, matroska, mp4, mp4_header, ts};
use proptest::prelude::*;
use std::time::Duration;

/// Runs every reader over `bytes` and checks what must hold of any answer.
fn read_everything(bytes: &[u8]) {
    let len = bytes.len() as u64;
    let input = || Input::from_bytes(bytes.to_vec());
    for index in [
        keyframes::index_of(&mut input()),
        mp4::index(&mut input()),
        matroska::cues::index(&mut input()),
        avi::index(&mut input()),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!index.keyframes.is_empty());
        assert!(index.keyframes.windows(2).all(|w| w[0] < w[1]), "{index:?}");
    }
    let _ = matroska::lead_in::lead_in(&mut input());
    let _ = mp4_header::holds_samples(&mut input());
    if let Some((at, moov)) = isobmff::read_moov(&mut input()) {
        assert!(at + moov.len() as u64 <= len);
    }
    let _ = children(bytes);
    let _ = (ebml::vint(bytes), ebml::header(bytes), ebml::kids(bytes));
    let _ = h264::has_idr_slice(bytes);
    if let Some(i) = iframe::ts_iframe(bytes) {
        assert!(i.len() <= bytes.len() && i.len() % ts::PACKET == 0);
    }
    if let Some(i) = iframe::fmp4_iframe(bytes) {
        assert_eq!(children(&i).map(|b| b.len()), Some(2), "moof and mdat");
    }
    let patches = mp4_header::header_patch(&mut input())
        .into_iter()
        .chain(asf::header_patches(&mut input()))
        .chain(ts::psi_first_patch(&mut input()));
    for patch in patches {
        assert!(patch.end() <= len, "{} > {len}", patch.end());
    }
}

/// A full box `kind` (version 0, flags 0) whose body is `body`'s words.
fn full(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u32]) {
    let open = begin_full(out, kind, 0, 0);
    for word in body {
        u32be(out, *word);
    }
    end(out, open);
}

/// An MP4 as ffmpeg lays one out (`ftyp`, `moov`, `mdat`): one video
/// track of 48 samples at 24 fps (timescale 90 kHz), key frames 1 and 25.
/// Returns the file and where its `moov` ends.
fn made_mp4() -> (Vec<u8>, usize) {
    let mut f = Vec::new();
    leaf(&mut f, b"ftyp", b"isom\0\0\x02\0isomiso2");
    let moov = begin(&mut f, b"moov");
    let mut mvhd = vec![0, 0, 1000, 2000];
    mvhd.extend([0; 20]);
    full(&mut f, b"mvhd", &mvhd);
    let trak = begin(&mut f, b"trak");
    let mdia = begin(&mut f, b"mdia");
    full(&mut f, b"mdhd", &[0, 0, 90_000, 48 * 3750, 0]);
    full(
        &mut f,
        b"hdlr",
        &[0, u32::from_be_bytes(*b"vide"), 0, 0, 0, 0],
    );
    let minf = begin(&mut f, b"minf");
    let stbl = begin(&mut f, b"stbl");
    full(&mut f, b"stts", &[1, 48, 3750]);
    let mut stsz = vec![0, 48];
    stsz.extend([100; 48]);
    full(&mut f, b"stsz", &stsz);
    full(&mut f, b"stss", &[2, 1, 25]);
    for open in [stbl, minf, mdia, trak, moov] {
        end(&mut f, open);
    }
    let moov_end = f.len();
    leaf(&mut f, b"mdat", &[0; 4800]);
    (f, moov_end)
}

/// An EBML element with an 8-byte size.
fn el(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = id
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    v.push(0x01);
    v.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
    v.extend_from_slice(payload);
    v
}

/// An unsigned EBML element, 8 bytes wide.
fn uint_el(id: u32, value: u64) -> Vec<u8> {
    el(id, &value.to_be_bytes())
}

/// A Matroska file as mkvmerge lays one out: Info (1 ms ticks), one video
/// track, Cues, then one cluster a second for `seconds` seconds, each
/// opening on a key frame the Cues list.
fn made_mkv(seconds: u64) -> Vec<u8> {
    let head = el(0x1A45_DFA3, &el(0x4282, b"matroska"));
    let info = el(0x1549_A966, &uint_el(0x2A_D7B1, 1_000_000));
    let track = [uint_el(0xD7, 1), uint_el(0x83, 1)].concat();
    let tracks = el(0x1654_AE6B, &el(0xAE, &track));
    let cluster = |second: u64| {
        let block = |ms: i16, key: bool| {
            let mut b = vec![0x81];
            b.extend_from_slice(&ms.to_be_bytes());
            b.push(if key { 0x80 } else { 0 });
            b.extend_from_slice(&[0; 32]);
            el(0xA3, &b)
        };
        let body = [
            uint_el(0xE7, second * 1000),
            block(0, true),
            block(500, false),
        ];
        el(0x1F43_B675, &body.concat())
    };
    let clusters: Vec<Vec<u8>> = (0..seconds).map(cluster).collect();
    // Cue positions are fixed-width, so the Cues' size is known first.
    let cues = |first: u64| {
        let mut at = first;
        let points: Vec<u8> = (0..seconds)
            .flat_map(|s| {
                let place = [uint_el(0xF7, 1), uint_el(0xF1, at)].concat();
                at += clusters[s as usize].len() as u64;
                el(0xBB, &[uint_el(0xB3, s * 1000), el(0xB7, &place)].concat())
            })
            .collect();
        el(0x1C53_BB6B, &points)
    };
    let before = (info.len() + tracks.len()) as u64;
    let size = cues(0).len() as u64;
    let segment = [info, tracks, cues(before + size), clusters.concat()].concat();
    [head, el(0x1853_8067, &segment)].concat()
}

#[test]
fn the_made_files_are_read() {
    let (mp4, _) = made_mp4();
    let index = mp4::index(&mut Input::from_bytes(mp4)).expect("an MP4 index");
    assert_eq!(
        index.keyframes,
        [Duration::ZERO, Duration::from_secs(1)],
        "{index:?}"
    );
    assert_eq!(index.end, Some(Duration::from_secs(2)));
    let mkv = matroska::cues::index(&mut Input::from_bytes(made_mkv(6))).expect("an MKV index");
    let seconds: Vec<u64> = index_seconds(&mkv.keyframes);
    assert_eq!(seconds, [0, 1, 2, 3, 4, 5], "{mkv:?}");
}

/// Whole seconds of `times`.
fn index_seconds(times: &[Duration]) -> Vec<u64> {
    times.iter().map(Duration::as_secs).collect()
}

/// A byte string behind one of the containers' magic numbers.
fn behind_magic() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop_oneof![
        Just(b"\0\0\0\x18ftypisom".to_vec()),
        Just(b"\0\0\0\x08moov".to_vec()),
        Just(vec![0x1A, 0x45, 0xDF, 0xA3]),
        Just(b"RIFF\0\0\0\0AVI LIST".to_vec()),
        Just(asf_magic()),
        Just(vec![0x47, 0x40, 0x00, 0x10]),
    ];
    (magic, prop::collection::vec(any::<u8>(), 0..2048)).prop_map(|(m, rest)| [m, rest].concat())
}

/// The ASF header object's GUID.
fn asf_magic() -> Vec<u8> {
    vec![
        0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE,
        0x6C,
    ]
}

/// A box tree one level deep: kinds and payloads.
fn boxes() -> impl Strategy<Value = Vec<([u8; 4], Vec<u8>)>> {
    prop::collection::vec(
        (any::<[u8; 4]>(), prop::collection::vec(any::<u8>(), 0..64)),
        0..16,
    )
}

/// Encodes `value` as an EBML size of `width` bytes.
fn vint_bytes(value: u64, width: usize) -> Vec<u8> {
    let marked = value | (1u64 << (7 * width));
    marked.to_be_bytes()[8 - width..].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_are_answered(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        read_everything(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_magic_number_are_answered(bytes in behind_magic()) {
        read_everything(&bytes);
    }

    #[test]
    fn a_truncated_mp4_gives_its_index_only_with_the_whole_moov(cut in any::<prop::sample::Index>()) {
        let (file, moov_end) = made_mp4();
        let whole = mp4::index(&mut Input::from_bytes(file.clone()));
        let cut = cut.index(file.len() + 1);
        read_everything(&file[..cut]);
        let index = mp4::index(&mut Input::from_bytes(file[..cut].to_vec()));
        // The sample tables are all in the moov: a file cut in its mdat
        // still has them (as a download in progress does).
        if cut < moov_end {
            prop_assert_eq!(index, None);
        } else {
            prop_assert_eq!(index, whole);
        }
    }

    #[test]
    fn a_truncated_mkv_lists_its_first_key_frames_or_nothing(cut in any::<prop::sample::Index>()) {
        let file = made_mkv(6);
        let cut = cut.index(file.len() + 1);
        read_everything(&file[..cut]);
        if let Some(index) = matroska::cues::index(&mut Input::from_bytes(file[..cut].to_vec())) {
            // Whatever it lists is the file's own key frames from the
            // first on, one a second: no gap, none made up.
            let seconds = index_seconds(&index.keyframes);
            let own: Vec<u64> = (0..seconds.len() as u64).collect();
            prop_assert_eq!(seconds, own);
        }
    }

    #[test]
    fn a_garbled_byte_anywhere_is_answered(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        for mut file in [made_mp4().0, made_mkv(6)] {
            let at = at.index(file.len());
            file[at] = byte;
            read_everything(&file);
        }
    }

    #[test]
    fn written_boxes_are_read_back(tree in boxes()) {
        let mut out = Vec::new();
        for (kind, payload) in &tree {
            leaf(&mut out, kind, payload);
        }
        let read = children(&out).expect("boxes");
        let read: Vec<([u8; 4], Vec<u8>)> = read.into_iter().map(|(k, p)| (k, p.to_vec())).collect();
        prop_assert_eq!(read, tree);
    }

    #[test]
    fn ebml_sizes_are_read_back(
        (width, value) in (1usize..=8).prop_flat_map(|w| (Just(w), 0u64..(1u64 << (7 * w)) - 1))
    ) {
        let bytes = vint_bytes(value, width);
        let (read, used, _) = ebml::vint(&bytes).expect("a size");
        prop_assert_eq!((read, used), (value, width));
    }
}
