//! ISO base media file format boxes (ISO/IEC 14496-12) for CMAF tracks
//! (ISO/IEC 23000-19): the init segment of one track, and the `moof` of
//! one fragment. Pure: bytes in, bytes out; the boxes are written with
//! [`crate::container::isobmff`].

pub use super::colour::Colour;
use crate::container::isobmff::{begin, begin_full, end, leaf, u16be, u32be};

/// The stream a track carries, and what its sample entry needs.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleEntry {
    /// Video: `avc1`, `hvc1`, `av01` or `vp09`, with its configuration
    /// box (`avcC`, `hvcC`, `av1C`, `vpcC`) as kind and payload.
    Video {
        /// Sample entry four-character code.
        format: [u8; 4],
        /// Coded width in pixels.
        width: u16,
        /// Coded height in pixels.
        height: u16,
        /// Configuration box four-character code.
        config_kind: [u8; 4],
        /// Configuration box payload (for `vpcC`, after version and flags:
        /// see [`vpcc_payload`]).
        config: Vec<u8>,
        /// Clockwise rotation in degrees (0, 90, 180, 270) for the track
        /// header's matrix.
        rotation: u32,
        /// Its colour (`colr`, with `mdcv` and `clli` for HDR), when the
        /// stream says it.
        colour: Option<Colour>,
        /// The source's Dolby Vision configuration box (type, record), in
        /// a copy of a Dolby Vision stream.
        dolby_vision: Option<([u8; 4], [u8; 24])>,
    },
    /// Audio: `mp4a` (with an AudioSpecificConfig), `Opus` (with a
    /// `dOps` payload), `fLaC` (with a `dfLa` payload), `ac-3` (`dac3`) or
    /// `ec-3` (`dec3`).
    Audio {
        /// Sample entry four-character code.
        format: [u8; 4],
        /// Channel count.
        channels: u16,
        /// Sampling rate in Hz.
        rate: u32,
        /// The AudioSpecificConfig (`mp4a`) or configuration box payload.
        config: Vec<u8>,
    },
}

/// What a copied video's source declares that its caps do not, for its
/// sample entry; the default for an encode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopiedVideo {
    /// Clockwise rotation in degrees (0, 90, 180, 270).
    pub rotation: u32,
    /// The Dolby Vision configuration box (type, record), for a Dolby
    /// Vision source.
    pub dolby_vision: Option<([u8; 4], [u8; 24])>,
}

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Ticks per second of its timestamps (90 kHz for video, the sampling
    /// rate for audio).
    pub timescale: u32,
    /// Its sample entry.
    pub entry: SampleEntry,
}

/// The only track of every init segment hlsd writes (one rendition, one
/// track), as every `tfhd` names it.
pub const TRACK_ID: u32 = 1;

/// A transformation matrix (14496-12, 8.3.2: 16.16 fixed point, w 2.30)
/// for a clockwise rotation of `degrees` of a `width`×`height` picture.
fn matrix(degrees: u32, width: u16, height: u16) -> [i32; 9] {
    const ONE: i32 = 0x0001_0000;
    const W: i32 = 0x4000_0000;
    let (w, h) = (i32::from(width) << 16, i32::from(height) << 16);
    match degrees {
        90 => [0, ONE, 0, -ONE, 0, 0, h, 0, W],
        180 => [-ONE, 0, 0, 0, -ONE, 0, w, h, W],
        270 => [0, -ONE, 0, ONE, 0, 0, 0, w, W],
        _ => [ONE, 0, 0, 0, ONE, 0, 0, 0, W],
    }
}

fn write_matrix(out: &mut Vec<u8>, m: &[i32; 9]) {
    for v in m {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// The init segment of `track`: `ftyp` and a `moov` with one track and
/// `mvex` (no samples: every sample is in the fragments), as CMAF asks
/// (ISO/IEC 23000-19, 7.3.1: brands `cmfc`, `iso6`).
pub fn init_segment(track: &Track) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_ftyp(&mut out);
    let moov = begin(&mut out, b"moov");
    write_mvhd(&mut out);
    let trak = begin(&mut out, b"trak");
    let (video, width, height, rotation) = match &track.entry {
        SampleEntry::Video {
            width,
            height,
            rotation,
            ..
        } => (true, *width, *height, *rotation),
        SampleEntry::Audio { .. } => (false, 0, 0, 0),
    };
    write_tkhd(&mut out, video, width, height, rotation);
    let mdia = begin(&mut out, b"mdia");
    write_mdhd_hdlr(&mut out, track.timescale, video);
    let minf = begin(&mut out, b"minf");
    write_media_header_dinf(&mut out, video);
    write_stbl(&mut out, &track.entry);
    end(&mut out, minf);
    end(&mut out, mdia);
    end(&mut out, trak);
    write_mvex(&mut out);
    end(&mut out, moov);
    out
}

/// `ftyp`: major brand `iso6`, compatible `iso6`, `cmfc`, `isom`, `mp41`.
fn write_ftyp(out: &mut Vec<u8>) {
    let ftyp = begin(out, b"ftyp");
    out.extend_from_slice(b"iso6");
    u32be(out, 0);
    for brand in [b"iso6", b"cmfc", b"isom", b"mp41"] {
        out.extend_from_slice(brand);
    }
    end(out, ftyp);
}

/// `mvhd`: a millisecond timescale and no duration (it is in the
/// fragments).
fn write_mvhd(out: &mut Vec<u8>) {
    let mvhd = begin_full(out, b"mvhd", 0, 0);
    u32be(out, 0); // creation_time
    u32be(out, 0); // modification_time
    u32be(out, 1000); // timescale
    u32be(out, 0); // duration: unknown, in the fragments
    u32be(out, 0x0001_0000); // rate 1.0
    u16be(out, 0x0100); // volume 1.0
    out.extend_from_slice(&[0; 10]);
    write_matrix(out, &matrix(0, 0, 0));
    out.extend_from_slice(&[0; 24]); // pre_defined
    u32be(out, TRACK_ID + 1); // next_track_ID
    end(out, mvhd);
}

/// `tkhd` of the one track, its display matrix rotated by `rotation`
/// degrees clockwise.
fn write_tkhd(out: &mut Vec<u8>, video: bool, width: u16, height: u16, rotation: u32) {
    // Enabled, in movie, in preview.
    let tkhd = begin_full(out, b"tkhd", 0, 7);
    u32be(out, 0);
    u32be(out, 0);
    u32be(out, TRACK_ID);
    u32be(out, 0); // reserved
    u32be(out, 0); // duration
    out.extend_from_slice(&[0; 8]);
    u16be(out, 0); // layer
    u16be(out, 0); // alternate_group
    u16be(out, if video { 0 } else { 0x0100 });
    u16be(out, 0);
    write_matrix(out, &matrix(rotation, width, height));
    u32be(out, u32::from(width) << 16);
    u32be(out, u32::from(height) << 16);
    end(out, tkhd);
}

/// `mdhd` (the track's `timescale`, language `und`) and `hdlr`.
fn write_mdhd_hdlr(out: &mut Vec<u8>, timescale: u32, video: bool) {
    let mdhd = begin_full(out, b"mdhd", 0, 0);
    u32be(out, 0);
    u32be(out, 0);
    u32be(out, timescale);
    u32be(out, 0);
    u16be(out, 0x55C4); // 'und', ISO 639-2/T packed
    u16be(out, 0);
    end(out, mdhd);
    let hdlr = begin_full(out, b"hdlr", 0, 0);
    u32be(out, 0);
    out.extend_from_slice(if video { b"vide" } else { b"soun" });
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(if video {
        b"VideoHandler\0".as_slice()
    } else {
        b"SoundHandler\0".as_slice()
    });
    end(out, hdlr);
}

/// `vmhd` or `smhd`, and a `dinf` whose one `url ` says the media is in
/// this file.
fn write_media_header_dinf(out: &mut Vec<u8>, video: bool) {
    if video {
        let vmhd = begin_full(out, b"vmhd", 0, 1);
        out.extend_from_slice(&[0; 8]);
        end(out, vmhd);
    } else {
        let smhd = begin_full(out, b"smhd", 0, 0);
        out.extend_from_slice(&[0; 4]);
        end(out, smhd);
    }
    let dinf = begin(out, b"dinf");
    let dref = begin_full(out, b"dref", 0, 0);
    u32be(out, 1);
    let url = begin_full(out, b"url ", 0, 1); // media in this file
    end(out, url);
    end(out, dref);
    end(out, dinf);
}

/// `stbl` with the sample entry and empty sample tables.
fn write_stbl(out: &mut Vec<u8>, entry: &SampleEntry) {
    let stbl = begin(out, b"stbl");
    let stsd = begin_full(out, b"stsd", 0, 0);
    u32be(out, 1);
    sample_entry(out, entry);
    end(out, stsd);
    for kind in [b"stts", b"stsc", b"stco"] {
        let b = begin_full(out, kind, 0, 0);
        u32be(out, 0);
        end(out, b);
    }
    let stsz = begin_full(out, b"stsz", 0, 0);
    u32be(out, 0);
    u32be(out, 0);
    end(out, stsz);
    end(out, stbl);
}

/// `mvex` with the one track's `trex` defaults.
fn write_mvex(out: &mut Vec<u8>) {
    let mvex = begin(out, b"mvex");
    let trex = begin_full(out, b"trex", 0, 0);
    u32be(out, TRACK_ID);
    u32be(out, 1); // default_sample_description_index
    u32be(out, 0);
    u32be(out, 0);
    u32be(out, 0);
    end(out, trex);
    end(out, mvex);
}

fn sample_entry(out: &mut Vec<u8>, entry: &SampleEntry) {
    match entry {
        SampleEntry::Video {
            format,
            width,
            height,
            config_kind,
            config,
            colour,
            dolby_vision,
            ..
        } => {
            let b = begin(out, format);
            out.extend_from_slice(&[0; 6]);
            u16be(out, 1); // data_reference_index
            out.extend_from_slice(&[0; 16]); // pre_defined, reserved
            u16be(out, *width);
            u16be(out, *height);
            u32be(out, 0x0048_0000); // 72 dpi
            u32be(out, 0x0048_0000);
            u32be(out, 0);
            u16be(out, 1); // frame_count
            let mut name = [0u8; 32];
            let label = b"hlsd";
            name[0] = label.len() as u8;
            name[1..=label.len()].copy_from_slice(label);
            out.extend_from_slice(&name);
            u16be(out, 0x0018); // depth
            u16be(out, 0xFFFF); // pre_defined -1
            if config_kind == b"vpcC" {
                let c = begin_full(out, config_kind, 1, 0);
                out.extend_from_slice(config);
                end(out, c);
            } else {
                leaf(out, config_kind, config);
            }
            if let Some(c) = colour {
                super::colour::write(out, c);
            }
            if let Some((kind, record)) = dolby_vision {
                leaf(out, kind, record);
            }
            end(out, b);
        }
        SampleEntry::Audio {
            format,
            channels,
            rate,
            config,
        } => {
            let b = begin(out, format);
            out.extend_from_slice(&[0; 6]);
            u16be(out, 1);
            out.extend_from_slice(&[0; 8]);
            u16be(out, *channels);
            // samplesize: FLAC's own bits per sample (its STREAMINFO,
            // after the 4-byte block header: FLAC in ISOBMFF 3.3.1; an
            // 8-bit FLAC declared as 16 is refused by Chromium), else 16.
            let bits = match (format, config.get(16..18)) {
                (b"fLaC", Some(&[b12, b13])) => u16::from(((b12 & 1) << 4) | (b13 >> 4)) + 1,
                _ => 16,
            };
            u16be(out, bits);
            u32be(out, 0);
            // 16.16 fixed point; rates past 65535 Hz do not fit.
            u32be(out, if *rate < 0x1_0000 { rate << 16 } else { 0 });
            match format {
                b"mp4a" => esds(out, config),
                b"Opus" => leaf(out, b"dOps", config),
                b"ac-3" => leaf(out, b"dac3", config),
                b"ec-3" => leaf(out, b"dec3", config),
                _ => {
                    let c = begin_full(out, b"dfLa", 0, 0);
                    out.extend_from_slice(config);
                    end(out, c);
                }
            }
            end(out, b);
        }
    }
}

/// An MPEG-4 descriptor (14496-1, 8.3.3): tag, one-byte size, body.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.push(u8::try_from(body.len()).unwrap_or(127).min(127));
    out.extend_from_slice(body);
}

/// `esds` with an AAC AudioSpecificConfig (14496-14, 5.6; 14496-1).
fn esds(out: &mut Vec<u8>, asc: &[u8]) {
    let b = begin_full(out, b"esds", 0, 0);
    let mut dsi = Vec::new();
    descriptor(&mut dsi, 0x05, asc);
    let mut dcd = vec![0x40, 0x15]; // Audio ISO/IEC 14496-3; audio stream
    dcd.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
    dcd.extend_from_slice(&0u32.to_be_bytes()); // maxBitrate
    dcd.extend_from_slice(&0u32.to_be_bytes()); // avgBitrate
    dcd.extend_from_slice(&dsi);
    let mut es = vec![0, 1, 0]; // ES_ID 1, no flags
    descriptor(&mut es, 0x04, &dcd);
    descriptor(&mut es, 0x06, &[0x02]); // SLConfig predefined: MP4
    descriptor(out, 0x03, &es);
    end(out, b);
}

/// The `vpcC` payload after its version and flags (VP9 codec ISO media
/// file format binding, 2.2): profile, level, bit depth, chroma
/// subsampling (1: 4:2:0 co-sited, 2: 4:2:2, 3: 4:4:4), full range, and
/// colour description (2: unspecified), no initialization data.
pub fn vpcc_payload(
    profile: u8,
    level: u8,
    bit_depth: u8,
    chroma: &str,
    full_range: bool,
) -> Vec<u8> {
    let subsampling = match chroma {
        "4:2:2" => 2,
        "4:4:4" => 3,
        _ => 1,
    };
    vec![
        profile,
        level,
        (bit_depth << 4) | (subsampling << 1) | u8::from(full_range),
        2,
        2,
        2,
        0,
        0,
    ]
}

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Its size in bytes.
    pub size: u32,
    /// Its duration in timescale ticks.
    pub duration: u32,
    /// Composition time minus decode time, in ticks.
    pub composition_offset: i32,
    /// Whether it is a sync sample (a key frame; every audio frame).
    pub sync: bool,
}

/// `sample_flags` (14496-12, 8.8.3.1) of a sync sample: depends on no
/// other; and of any other: depends on others, non-sync.
const SYNC_FLAGS: u32 = 0x0200_0000;
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// The `moof` of fragment `sequence` (1-based) of [`TRACK_ID`]: samples
/// from decode time `base_decode_time` on, whose data follows in an
/// `mdat` right after it (`default-base-is-moof`, as CMAF asks: 7.5.16).
/// Composition offsets are signed (`trun` version 1) and only written for
/// video; audio's `trun` is version 0.
pub fn moof(sequence: u32, base_decode_time: u64, samples: &[Sample], video: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + samples.len() * 16);
    let moof = begin(&mut out, b"moof");
    let mfhd = begin_full(&mut out, b"mfhd", 0, 0);
    u32be(&mut out, sequence);
    end(&mut out, mfhd);
    let traf = begin(&mut out, b"traf");
    let tfhd = begin_full(&mut out, b"tfhd", 0, 0x02_0000);
    u32be(&mut out, TRACK_ID);
    end(&mut out, tfhd);
    let tfdt = begin_full(&mut out, b"tfdt", 1, 0);
    out.extend_from_slice(&base_decode_time.to_be_bytes());
    end(&mut out, tfdt);
    // data offset, duration, size, flags; composition offsets, signed
    // (version 1), for video only. Audio gets version 0: Chromium refuses
    // a version-1 `trun` in a FLAC track.
    let flags = 0x0701 | if video { 0x0800 } else { 0 };
    let trun = begin_full(&mut out, b"trun", u8::from(video), flags);
    u32be(&mut out, samples.len() as u32);
    let offset_at = out.len();
    u32be(&mut out, 0);
    for s in samples {
        u32be(&mut out, s.duration);
        u32be(&mut out, s.size);
        u32be(&mut out, if s.sync { SYNC_FLAGS } else { NON_SYNC_FLAGS });
        if video {
            out.extend_from_slice(&s.composition_offset.to_be_bytes());
        }
    }
    end(&mut out, trun);
    end(&mut out, traf);
    end(&mut out, moof);
    // The first sample's data: after this moof and the mdat header.
    let data_offset = (out.len() + 8) as u32;
    out[offset_at..offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    out
}

#[cfg(test)]
mod tests;
