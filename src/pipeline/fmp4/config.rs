//! A track's sample entry from its GStreamer caps: the configuration
//! records the parsers put in `codec_data` (`avcC`, `hvcC`, `av1C`, AAC's
//! AudioSpecificConfig), or what is built from the caps' fields and stream
//! headers (`vpcC`, `dOps`, `dfLa`), or from the first frame: an encoded
//! AAC stream's ADTS header, an AC-3 or E-AC-3 sync frame's bit stream
//! information (`dac3`, `dec3`: [`super::dolby`]).

use super::boxes::{vpcc_payload, Colour, CopiedVideo, SampleEntry, Track};

/// The 90 kHz timescale of video tracks (as MPEG-TS, so that both
/// packagings give the same ticks).
pub const VIDEO_TIMESCALE: u32 = 90_000;

fn codec_data(s: &gst::StructureRef) -> Option<Vec<u8>> {
    let buffer = s.get::<gst::Buffer>("codec_data").ok()?;
    let map = buffer.map_readable().ok()?;
    Some(map.to_vec())
}

fn stream_headers(s: &gst::StructureRef) -> Vec<Vec<u8>> {
    let Ok(array) = s.get::<gst::ArrayRef>("streamheader") else {
        return Vec::new();
    };
    array
        .iter()
        .filter_map(|v| v.get::<gst::Buffer>().ok())
        .filter_map(|b| b.map_readable().ok().map(|m| m.to_vec()))
        .collect()
}

/// What video caps say of the stream's colour: its colorimetry as
/// H.273 codes, and the mastering display and content light levels that
/// the parsers read from the stream's SEI or the container
/// (`mastering-display-info`, `content-light-level`). `None` without a
/// colorimetry, or one whose codes are all unspecified.
fn colour_of(caps: &gst::CapsRef, s: &gst::StructureRef) -> Option<Colour> {
    let c: gst_video::VideoColorimetry = s.get::<&str>("colorimetry").ok()?.parse().ok()?;
    let code = |iso: u32| u16::try_from(iso).unwrap_or(2);
    let (primaries, transfer, matrix) = (
        code(c.primaries().to_iso()),
        code(c.transfer().to_iso()),
        code(c.matrix().to_iso()),
    );
    if (primaries, transfer, matrix) == (2, 2, 2) {
        return None;
    }
    let mastering = gst_video::VideoMasteringDisplayInfo::from_caps(caps)
        .ok()
        .map(|m| {
            let mut out = [0u8; 24];
            let p = m.display_primaries();
            // GStreamer lists red, green, blue; the box green, blue, red.
            let points = [p[1], p[2], p[0], m.white_point()];
            for (i, xy) in points.iter().enumerate() {
                out[i * 4..i * 4 + 2].copy_from_slice(&xy.x.to_be_bytes());
                out[i * 4 + 2..i * 4 + 4].copy_from_slice(&xy.y.to_be_bytes());
            }
            out[16..20].copy_from_slice(&m.max_display_mastering_luminance().to_be_bytes());
            out[20..24].copy_from_slice(&m.min_display_mastering_luminance().to_be_bytes());
            out
        });
    let light_level = gst_video::VideoContentLightLevel::from_caps(caps)
        .ok()
        .map(|l| {
            (
                l.max_content_light_level(),
                l.max_frame_average_light_level(),
            )
        });
    Some(Colour {
        primaries,
        transfer,
        matrix,
        full_range: c.range() == gst_video::VideoColorRange::Range0_255,
        mastering,
        light_level,
    })
}

fn int(s: &gst::StructureRef, field: &str) -> Option<u32> {
    s.get::<i32>(field).ok().and_then(|v| u32::try_from(v).ok())
}

/// The track of a stream with `caps`; `first` is its first access unit
/// (an ADTS frame of encoded AAC carries what its caps do not).
/// `copied` says what a copied video's source declares beyond its caps.
///
/// # Errors
/// Caps of a codec fMP4 is not written for here, or without the
/// configuration record the codec needs.
pub fn track(caps: &gst::CapsRef, first: &[u8], copied: &CopiedVideo) -> Result<Track, String> {
    let s = caps.structure(0).ok_or("caps without a structure")?;
    let name = s.name().as_str();
    let needs = |what: &str| format!("{name} caps without {what}");
    let video = |format: &[u8; 4], config_kind: &[u8; 4], config: Vec<u8>| {
        let (width, height) = dimensions(s);
        Track {
            timescale: VIDEO_TIMESCALE,
            entry: SampleEntry::Video {
                format: *format,
                width,
                height,
                config_kind: *config_kind,
                config,
                rotation: copied.rotation,
                colour: colour_of(caps, s),
                dolby_vision: copied.dolby_vision,
            },
        }
    };
    let record = |what: &str| codec_data(s).ok_or_else(|| needs(what));
    match name {
        "video/x-h264" => Ok(video(b"avc1", b"avcC", record("an avcC")?)),
        "video/x-h265" => Ok(video(b"hvc1", b"hvcC", record("an hvcC")?)),
        "video/x-av1" => Ok(video(b"av01", b"av1C", record("an av1C")?)),
        "video/x-vp9" => Ok(video(b"vp09", b"vpcC", vpcc_of(s))),
        "audio/mpeg" => {
            let (asc, channels, rate) = match codec_data(s) {
                Some(asc) => (
                    asc,
                    int(s, "channels").unwrap_or(2),
                    int(s, "rate").unwrap_or(48_000),
                ),
                None => asc_from_adts(first).ok_or_else(|| needs("an AudioSpecificConfig"))?,
            };
            Ok(audio(*b"mp4a", channels as u16, rate, asc))
        }
        "audio/x-opus" => {
            let head = codec_data(s)
                .into_iter()
                .chain(stream_headers(s))
                .find(|h| h.starts_with(b"OpusHead"));
            let channels = int(s, "channels").unwrap_or(2);
            let dops = match head {
                Some(h) => dops_from_head(&h).ok_or_else(|| needs("a valid OpusHead"))?,
                None => dops_from_head(&opus_head(channels)).ok_or_else(|| needs("an OpusHead"))?,
            };
            // Opus in ISOBMFF: timescale 48 kHz whatever the input rate.
            Ok(audio(*b"Opus", u16::from(dops[1]), 48_000, dops))
        }
        "audio/x-flac" => {
            let info = stream_headers(s)
                .into_iter()
                .find_map(|h| flac_streaminfo(&h))
                .ok_or_else(|| needs("a STREAMINFO header"))?;
            // One metadata block, STREAMINFO, marked last.
            let mut dfla = vec![0x80, 0, 0, 34];
            dfla.extend_from_slice(&info);
            let channels = int(s, "channels").unwrap_or(2) as u16;
            Ok(audio(
                *b"fLaC",
                channels,
                int(s, "rate").unwrap_or(48_000),
                dfla,
            ))
        }
        "audio/x-ac3" | "audio/x-eac3" => {
            let enhanced = name == "audio/x-eac3";
            let (config, rate) = if enhanced {
                super::dolby::dec3(first)
            } else {
                super::dolby::dac3(first)
            }
            .ok_or_else(|| needs("a sync frame to read"))?;
            let format = if enhanced { *b"ec-3" } else { *b"ac-3" };
            Ok(audio(
                format,
                int(s, "channels").unwrap_or(2) as u16,
                rate,
                config,
            ))
        }
        other => Err(format!("fMP4 does not carry {other} here")),
    }
}

/// The width and height of video caps, in pixels (0 when missing).
fn dimensions(s: &gst::StructureRef) -> (u16, u16) {
    let side = |field| u16::try_from(int(s, field).unwrap_or(0)).unwrap_or(u16::MAX);
    (side("width"), side("height"))
}

/// An audio track of `format` whose timescale is its sample `rate` (Hz).
fn audio(format: [u8; 4], channels: u16, rate: u32, config: Vec<u8>) -> Track {
    Track {
        timescale: rate,
        entry: SampleEntry::Audio {
            format,
            channels,
            rate,
            config,
        },
    }
}

/// The `vpcC` payload of VP9 caps: profile, level from the frame size,
/// bit depth, chroma subsampling and range.
fn vpcc_of(s: &gst::StructureRef) -> Vec<u8> {
    let profile: u8 = s
        .get::<String>("profile")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let depth = int(s, "bit-depth-luma").unwrap_or(8) as u8;
    let chroma = s.get::<String>("chroma-format").unwrap_or_default();
    let (w, h) = dimensions(s);
    let level = crate::rendition::vp9_level(u32::from(w), u32::from(h)) as u8;
    let full = s
        .get::<String>("colorimetry")
        .is_ok_and(|c| c.starts_with("1:"));
    vpcc_payload(profile, level, depth, &chroma, full)
}

/// An AAC AudioSpecificConfig (14496-3, 1.6.2.1) from an ADTS header:
/// object type (profile + 1), sampling frequency index, channel
/// configuration; with the channel count and rate it gives.
pub fn asc_from_adts(frame: &[u8]) -> Option<(Vec<u8>, u32, u32)> {
    if frame.len() < 7 || frame[0] != 0xFF || frame[1] & 0xF0 != 0xF0 {
        return None;
    }
    let object_type = (frame[2] >> 6) + 1;
    let index = (frame[2] >> 2) & 0x0F;
    let channels = ((frame[2] & 0x01) << 2) | (frame[3] >> 6);
    let rate = super::super::adts::rate_of_index(index)?;
    let asc = (u16::from(object_type) << 11) | (u16::from(index) << 7) | (u16::from(channels) << 3);
    Some((asc.to_be_bytes().to_vec(), u32::from(channels.max(1)), rate))
}

/// The length of an ADTS frame's header (7, or 9 with a CRC), if `frame`
/// starts with one.
pub fn adts_header_len(frame: &[u8]) -> Option<usize> {
    if frame.len() < 7 || frame[0] != 0xFF || frame[1] & 0xF6 != 0xF0 {
        return None;
    }
    Some(if frame[1] & 0x01 == 0 { 9 } else { 7 })
}

/// A minimal OpusHead (RFC 7845, 5.1) for `channels` (1 or 2: mapping
/// family 0), for caps that carry none.
fn opus_head(channels: u32) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(channels.clamp(1, 2) as u8);
    h.extend_from_slice(&312u16.to_le_bytes()); // libopus's usual pre-skip
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// The `dOps` payload (Opus in ISOBMFF, 4.3.2) of an OpusHead: the same
/// fields, big-endian, version 0.
pub fn dops_from_head(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() < 19 || !head.starts_with(b"OpusHead") {
        return None;
    }
    let channels = head[9];
    let pre_skip = u16::from_le_bytes([head[10], head[11]]);
    let rate = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    let gain = i16::from_le_bytes([head[16], head[17]]);
    let family = head[18];
    let mut d = vec![0, channels];
    d.extend_from_slice(&pre_skip.to_be_bytes());
    d.extend_from_slice(&rate.to_be_bytes());
    d.extend_from_slice(&gain.to_be_bytes());
    d.push(family);
    if family != 0 {
        // stream count, coupled count, one mapping byte per channel
        let table = head.get(19..21 + usize::from(channels))?;
        d.extend_from_slice(table);
    }
    Some(d)
}

/// The 34-byte STREAMINFO of a FLAC stream header: GStreamer's first
/// header (`\x7FFLAC`, version, count, `fLaC`, block header, STREAMINFO),
/// or a bare `fLaC` marker followed by the block.
fn flac_streaminfo(header: &[u8]) -> Option<[u8; 34]> {
    let at = if header.starts_with(b"\x7FFLAC") {
        9
    } else {
        0
    };
    let rest = header.get(at..)?;
    if !rest.starts_with(b"fLaC") || rest.get(4)? & 0x7F != 0 {
        return None;
    }
    rest.get(8..42)?.try_into().ok()
}

/// An AV1 temporal unit without its temporal delimiter OBUs, which
/// ISOBMFF samples must not carry (AV1 ISOBMFF binding, 2.4). OBUs
/// without a size field end the unit.
pub fn strip_temporal_delimiters(tu: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(tu.len());
    let mut rest = tu;
    let mut changed = false;
    while !rest.is_empty() {
        let header = rest[0];
        let kind = (header >> 3) & 0x0F;
        let extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let header_len = 1 + usize::from(extension);
        let (len, size_len) = if has_size {
            let mut value = 0usize;
            let mut read = 0;
            loop {
                let b = *rest.get(header_len + read)?;
                value |= usize::from(b & 0x7F) << (7 * read);
                read += 1;
                if b & 0x80 == 0 || read == 8 {
                    break;
                }
            }
            (value, read)
        } else {
            (rest.len() - header_len, 0)
        };
        let total = header_len + size_len + len;
        let obu = rest.get(..total)?;
        if kind == 2 {
            changed = true;
        } else {
            out.extend_from_slice(obu);
        }
        rest = &rest[total..];
    }
    changed.then_some(out)
}

/// The video codec whose NAL units a sample holds, for
/// [`strip_parameter_sets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalCodec {
    /// H.264: the NAL unit type is the low 5 bits of the first byte; 7
    /// and 8 are the SPS and PPS (ITU-T H.264 Table 7-1).
    H264,
    /// HEVC: the NAL unit type is bits 1 to 6 of the first byte; 32 to 34
    /// are the VPS, SPS and PPS (ITU-T H.265 Table 7-1).
    Hevc,
}

impl NalCodec {
    /// Whether the NAL unit whose first byte is `head` is a parameter set.
    fn is_parameter_set(self, head: u8) -> bool {
        match self {
            NalCodec::H264 => matches!(head & 0x1F, 7 | 8),
            NalCodec::Hevc => (32..=34).contains(&((head >> 1) & 0x3F)),
        }
    }
}

/// An access unit of `length_size`-byte length-prefixed NAL units without
/// its parameter sets, or `None` when it has none or does not parse (it
/// is then kept as it is). The parameter sets live in the init segment's
/// `avcC`/`hvcC` (`avc1`/`hvc1`: ISO/IEC 14496-15 §5.3.2, §8.3.2); the
/// parser repeats them in-band after a seek or a flush but not in a pass
/// from the start, so left in, a segment's first sample had 37 more bytes
/// when its producer had seeked there.
pub fn strip_parameter_sets(unit: &[u8], length_size: usize, codec: NalCodec) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(unit.len());
    let mut rest = unit;
    let mut changed = false;
    while !rest.is_empty() {
        let len = rest
            .get(..length_size)?
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        let nal = rest.get(..length_size.checked_add(len)?)?;
        if codec.is_parameter_set(*nal.get(length_size)?) {
            changed = true;
        } else {
            out.extend_from_slice(nal);
        }
        rest = &rest[length_size + len..];
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adts_header_gives_the_audio_specific_config() {
        // AAC-LC (profile 1), 48 kHz (index 3), stereo, no CRC.
        let frame = [0xFF, 0xF1, 0x4C, 0x80, 0x2E, 0x7F, 0xFC, 0x21];
        let (asc, channels, rate) = asc_from_adts(&frame).expect("adts");
        assert_eq!((asc, channels, rate), (vec![0x11, 0x90], 2, 48_000));
        assert_eq!(adts_header_len(&frame), Some(7));
        assert_eq!(adts_header_len(&[0xFF, 0xF0, 0, 0, 0, 0, 0, 0, 0]), Some(9));
        assert_eq!(adts_header_len(b"not adts"), None);
    }

    #[test]
    fn an_opus_head_becomes_big_endian_dops() {
        let head = opus_head(2);
        let dops = dops_from_head(&head).expect("dops");
        assert_eq!(dops, [0, 2, 0x01, 0x38, 0, 0, 0xBB, 0x80, 0, 0, 0]);
        assert_eq!(dops_from_head(b"OpusTags"), None);
    }

    #[test]
    fn temporal_delimiters_are_dropped_from_av1_samples() {
        // TD (type 2, size 0), then a frame OBU (type 6) of 3 bytes.
        let tu = [0x12, 0x00, 0x32, 0x03, 1, 2, 3];
        assert_eq!(
            strip_temporal_delimiters(&tu),
            Some(vec![0x32, 0x03, 1, 2, 3])
        );
        assert_eq!(strip_temporal_delimiters(&[0x32, 0x03, 1, 2, 3]), None);
        assert_eq!(
            strip_temporal_delimiters(&[0x32, 0x09, 1]),
            None,
            "truncated"
        );
    }

    #[test]
    fn hevc_parameter_sets_are_dropped_from_hvc1_samples() {
        // VPS (type 32), SPS (33), PPS (34), then an IDR slice (19).
        let nal = |kind: u8, body: &[u8]| {
            let mut n = ((body.len() + 2) as u32).to_be_bytes().to_vec();
            n.extend_from_slice(&[kind << 1, 1]);
            n.extend_from_slice(body);
            n
        };
        let unit = [
            nal(32, &[1]),
            nal(33, &[2]),
            nal(34, &[3]),
            nal(19, &[4, 5]),
        ]
        .concat();
        let hevc = NalCodec::Hevc;
        assert_eq!(strip_parameter_sets(&unit, 4, hevc), Some(nal(19, &[4, 5])));
        assert_eq!(strip_parameter_sets(&nal(1, &[9]), 4, hevc), None);
        assert_eq!(strip_parameter_sets(&unit[..9], 4, hevc), None, "truncated");
        // H.264: SPS (7) and PPS (8) go, the IDR slice (5) stays.
        let avc = |kind: u8, body: &[u8]| {
            let mut n = ((body.len() + 1) as u32).to_be_bytes().to_vec();
            n.push(0x60 | kind);
            n.extend_from_slice(body);
            n
        };
        let unit = [avc(7, &[1, 2]), avc(8, &[3]), avc(5, &[4])].concat();
        assert_eq!(
            strip_parameter_sets(&unit, 4, NalCodec::H264),
            Some(avc(5, &[4]))
        );
        assert_eq!(strip_parameter_sets(&avc(1, &[9]), 4, NalCodec::H264), None);
    }

    #[test]
    fn flac_streaminfo_is_found_in_gstreamers_header() {
        let mut h = b"\x7FFLAC\x01\x00\x00\x02fLaC\x00\x00\x00\x22".to_vec();
        h.extend((0..34).map(|i| i as u8));
        let info = flac_streaminfo(&h).expect("streaminfo");
        assert_eq!(info[33], 33);
    }
}
