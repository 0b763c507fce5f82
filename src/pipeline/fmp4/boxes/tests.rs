//! The boxes against ISO/IEC 14496-12's layouts: an init segment's
//! tree, each codec's sample entry, and a fragment's `moof`.

use super::*;

use crate::container::isobmff::children;

/// The box at `path` below the top level of `data`.
fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    crate::container::isobmff::path(data, path)
}

/// A 1080p HEVC track at 90 kHz whose `hvcC` holds 1, 2, 3, turned by
/// `rotation` degrees, with `dolby_vision`'s record if any.
fn hevc_1080p(rotation: u32, dolby_vision: Option<([u8; 4], [u8; 24])>) -> Track {
    Track {
        timescale: 90_000,
        entry: SampleEntry::Video {
            format: *b"hvc1",
            width: 1920,
            height: 1080,
            config_kind: *b"hvcC",
            config: vec![1, 2, 3],
            rotation,
            colour: None,
            dolby_vision,
        },
    }
}

#[test]
fn an_init_segment_has_one_fragmented_track_with_its_config() {
    let init = init_segment(&hevc_1080p(90, None));
    let kinds: Vec<[u8; 4]> = children(&init)
        .expect("boxes")
        .iter()
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(kinds, [*b"ftyp", *b"moov"]);
    let trex = find(&init, &[b"moov", b"mvex", b"trex"]).expect("trex");
    assert_eq!(&trex[4..8], &TRACK_ID.to_be_bytes());
    let mdhd = find(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]).expect("mdhd");
    assert_eq!(&mdhd[12..16], &90_000u32.to_be_bytes());
    let stsd = find(
        &init,
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
    )
    .expect("stsd");
    // version/flags, entry_count, then the hvc1 entry ending in hvcC.
    assert_eq!(&stsd[12..16], b"hvc1");
    assert!(stsd.ends_with(&[0, 0, 0, 11, b'h', b'v', b'c', b'C', 1, 2, 3]));
    let tkhd = find(&init, &[b"moov", b"trak", b"tkhd"]).expect("tkhd");
    // The matrix's first row is (0, 1, 0): a quarter turn.
    assert_eq!(&tkhd[40..48], &[0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn a_dolby_vision_copy_ends_its_sample_entry_with_the_record() {
    let mut record = [0u8; 24];
    record[..5].copy_from_slice(&[1, 0, 16, 0x25, 0x10]);
    let init = init_segment(&hevc_1080p(0, Some((*b"dvvC", record))));
    let stsd = find(
        &init,
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
    )
    .expect("stsd");
    let mut tail = 32u32.to_be_bytes().to_vec();
    tail.extend_from_slice(b"dvvC");
    tail.extend_from_slice(&record);
    assert!(stsd.ends_with(&tail));
}

#[test]
fn aac_gets_an_esds_with_its_audio_specific_config() {
    let init = init_segment(&Track {
        timescale: 48_000,
        entry: SampleEntry::Audio {
            format: *b"mp4a",
            channels: 2,
            rate: 48_000,
            config: vec![0x11, 0x90],
        },
    });
    let stsd = find(
        &init,
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
    )
    .expect("stsd");
    let esds = stsd.windows(4).position(|w| w == b"esds").expect("esds");
    let body = &stsd[esds + 8..];
    assert_eq!(body[0], 0x03, "ES_Descriptor");
    let dsi = body
        .windows(3)
        .position(|w| w == [0x05, 2, 0x11])
        .expect("DSI");
    assert_eq!(body[dsi + 3], 0x90);
}

#[test]
fn flac_declares_its_own_bits_per_sample() {
    // dfLa payload: block header, then STREAMINFO whose bytes 12-13
    // end in bits-per-sample minus one (7: 8-bit).
    let mut config = vec![0x80, 0, 0, 34];
    let mut info = [0u8; 34];
    info[12] = 0x02; // ... channels - 1 = 1, top bit of bps - 1 = 0
    info[13] = 0x70; // bps - 1 = 7
    config.extend_from_slice(&info);
    let init = init_segment(&Track {
        timescale: 48_000,
        entry: SampleEntry::Audio {
            format: *b"fLaC",
            channels: 2,
            rate: 48_000,
            config,
        },
    });
    let at = init.windows(4).position(|w| w == b"fLaC").unwrap();
    // size/format, reserved, index, reserved, channelcount, samplesize
    assert_eq!(&init[at + 4 + 16..at + 4 + 20], &[0, 2, 0, 8]);
}

#[test]
fn a_moof_points_at_the_data_after_it() {
    let samples = [
        Sample {
            size: 100,
            duration: 3600,
            composition_offset: 7200,
            sync: true,
        },
        Sample {
            size: 50,
            duration: 3600,
            composition_offset: -3600,
            sync: false,
        },
    ];
    let moof = moof(3, 324_000_000, &samples, true);
    let trun = find(&moof, &[b"moof", b"traf", b"trun"]).expect("trun");
    assert_eq!(trun[0], 1, "version 1: signed offsets");
    let offset = u32::from_be_bytes(trun[8..12].try_into().unwrap());
    assert_eq!(offset as usize, moof.len() + 8);
    let tfdt = find(&moof, &[b"moof", b"traf", b"tfdt"]).expect("tfdt");
    assert_eq!(&tfdt[4..12], &324_000_000u64.to_be_bytes());
    // Second sample: duration, size, non-sync flags, offset -3600.
    assert_eq!(
        &trun[28..44],
        [
            &3600u32.to_be_bytes()[..],
            &50u32.to_be_bytes(),
            &NON_SYNC_FLAGS.to_be_bytes(),
            &(-3600i32).to_be_bytes()
        ]
        .concat()
        .as_slice()
    );
}
