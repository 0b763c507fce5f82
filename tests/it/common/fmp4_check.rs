//! A fragmented-MP4 (CMAF) conformance checker for the init segment and
//! segments of one HLS rendition, written from ISO/IEC 14496-12, ISO/IEC
//! 23000-19 (CMAF) and RFC 8216 §3.3 (not from hlsd's writer): it walks
//! every box and lists every rule broken.

/// What the init segment declares.
#[derive(Debug, Default)]
pub struct Init {
    /// `ftyp` major and compatible brands.
    pub brands: Vec<String>,
    /// The track's media timescale (`mdhd`).
    pub timescale: u32,
    /// Its sample entry's four-character code (`hvc1`, `mp4a`, ...).
    pub format: String,
    /// Its handler (`vide`, `soun`).
    pub handler: String,
    /// A video entry's `colr` of type `nclx`: H.273 primaries, transfer,
    /// matrix and the full-range flag.
    pub colour: Option<(u16, u16, u16, bool)>,
    /// A video entry's `mdcv` payload (24 bytes).
    pub mastering: Option<Vec<u8>>,
    /// A video entry's `clli`: MaxCLL and MaxFALL.
    pub light_level: Option<(u16, u16)>,
}

/// What one segment (fragment) holds.
#[derive(Debug, Default, Clone)]
pub struct Fragment {
    /// `mfhd` sequence number.
    pub sequence: u32,
    /// `tfdt` base media decode time, in timescale ticks.
    pub decode_time: u64,
    /// Each sample's duration, in ticks.
    pub durations: Vec<u32>,
    /// Whether the first sample is a sync sample.
    pub starts_with_sync: bool,
    /// The first sample's composition offset, in ticks: it is shown at
    /// `decode_time` plus this.
    pub first_composition_offset: i64,
}

/// What a rendition showed.
#[derive(Debug, Default)]
pub struct Fmp4Report {
    /// Rules broken, one line each (empty: conformant).
    pub violations: Vec<String>,
    /// The init segment's declarations.
    pub init: Init,
    /// Each segment's fragment.
    pub fragments: Vec<Fragment>,
}

fn boxes(data: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(format!("{} trailing bytes", rest.len()));
        }
        let size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&rest[4..8]).to_string();
        if size < 8 || size > rest.len() {
            return Err(format!("box {kind} of size {size} in {} bytes", rest.len()));
        }
        out.push((kind, &rest[8..size]));
        rest = &rest[size..];
    }
    Ok(out)
}

fn child<'a>(data: &'a [u8], path: &[&str]) -> Result<&'a [u8], String> {
    let (first, more) = path.split_first().expect("a path");
    let found = boxes(data)?
        .into_iter()
        .filter(|(k, _)| k == first)
        .collect::<Vec<_>>();
    match found.as_slice() {
        [(_, body)] if more.is_empty() => Ok(body),
        [(_, body)] => child(body, more),
        [] => Err(format!("no {first} box")),
        _ => Err(format!("{} {first} boxes", found.len())),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes(s.try_into().unwrap()))
}

/// Checks an init segment: `ftyp` first with the CMAF brand `cmfc` (or
/// `iso6`+), a `moov` with one `trak` and an `mvex`/`trex` for it, an
/// empty sample table (every sample lives in the fragments), one sample
/// entry.
fn check_init(bytes: &[u8], v: &mut Vec<String>) -> Init {
    let mut init = Init::default();
    let top = match boxes(bytes) {
        Ok(t) => t,
        Err(e) => {
            v.push(format!("init: {e}"));
            return init;
        }
    };
    let kinds: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
    if kinds != ["ftyp", "moov"] {
        v.push(format!("init: top-level boxes {kinds:?}, not ftyp, moov"));
    }
    if let Some((_, ftyp)) = top.iter().find(|(k, _)| k == "ftyp") {
        init.brands = std::iter::once(&ftyp[..4])
            .chain(ftyp.get(8..).unwrap_or_default().chunks(4))
            .map(|b| String::from_utf8_lossy(b).to_string())
            .collect();
        if !init.brands.iter().any(|b| b == "cmfc") {
            v.push(format!("init: no cmfc brand in {:?}", init.brands));
        }
    }
    let moov = match child(bytes, &["moov"]) {
        Ok(m) => m,
        Err(e) => {
            v.push(format!("init: {e}"));
            return init;
        }
    };
    match child(moov, &["trak", "mdia", "mdhd"]) {
        Ok(mdhd) => init.timescale = u32_at(mdhd, if mdhd[0] == 1 { 20 } else { 12 }),
        Err(e) => v.push(format!("init: {e}")),
    }
    if init.timescale == 0 {
        v.push("init: timescale 0".into());
    }
    match child(moov, &["trak", "mdia", "hdlr"]) {
        Ok(hdlr) => init.handler = String::from_utf8_lossy(&hdlr[8..12]).to_string(),
        Err(e) => v.push(format!("init: {e}")),
    }
    let track_id = child(moov, &["trak", "tkhd"])
        .map(|t| u32_at(t, if t[0] == 1 { 20 } else { 12 }))
        .unwrap_or(0);
    match child(moov, &["mvex", "trex"]) {
        Ok(trex) if u32_at(trex, 4) == track_id => {}
        Ok(trex) => v.push(format!(
            "init: trex for track {} but tkhd says {track_id}",
            u32_at(trex, 4)
        )),
        Err(e) => v.push(format!("init: {e} (fragmented files need mvex/trex)")),
    }
    let stbl = child(moov, &["trak", "mdia", "minf", "stbl"]);
    match stbl {
        Ok(stbl) => {
            for (table, count_at) in [("stts", 4), ("stsc", 4), ("stco", 4), ("stsz", 8)] {
                match child(stbl, &[table]) {
                    Ok(b) if u32_at(b, count_at) == 0 => {}
                    Ok(_) => v.push(format!("init: {table} lists samples")),
                    Err(e) => v.push(format!("init: {e}")),
                }
            }
            match child(stbl, &["stsd"]) {
                Ok(stsd) if u32_at(stsd, 4) == 1 && stsd.len() >= 16 => {
                    init.format = String::from_utf8_lossy(&stsd[12..16]).to_string();
                    if init.handler == "vide" {
                        video_entry_boxes(stsd, &mut init, v);
                    }
                }
                Ok(_) => v.push("init: stsd without exactly one entry".into()),
                Err(e) => v.push(format!("init: {e}")),
            }
        }
        Err(e) => v.push(format!("init: {e}")),
    }
    init
}

/// The boxes of a visual sample entry (after its 78 bytes of fields,
/// ISO/IEC 14496-12 §12.1.3): `colr` (`nclx`, 11 bytes), `mdcv` (24
/// bytes), `clli` (4 bytes), each checked for its size.
fn video_entry_boxes(stsd: &[u8], init: &mut Init, v: &mut Vec<String>) {
    let Some(rest) = stsd.get(8 + 8 + 78..) else {
        v.push("init: a video sample entry shorter than its fields".into());
        return;
    };
    let Ok(kids) = boxes(rest) else {
        v.push("init: malformed boxes in the video sample entry".into());
        return;
    };
    let u16_at = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    for (kind, b) in kids {
        match kind.as_str() {
            "colr" if b.starts_with(b"nclx") && b.len() == 11 => {
                init.colour = Some((u16_at(b, 4), u16_at(b, 6), u16_at(b, 8), b[10] & 0x80 != 0));
            }
            "colr" if b.starts_with(b"nclx") => {
                v.push(format!("init: nclx colr of {} bytes", b.len()))
            }
            "mdcv" if b.len() == 24 => init.mastering = Some(b.to_vec()),
            "clli" if b.len() == 4 => init.light_level = Some((u16_at(b, 0), u16_at(b, 2))),
            "mdcv" | "clli" => v.push(format!("init: {kind} of {} bytes", b.len())),
            _ => {}
        }
    }
}

/// Checks one media segment: `moof` then `mdat` (an `styp` may lead),
/// `mfhd`, one `traf` for track 1 with `tfhd` default-base-is-moof and no
/// base data offset (CMAF 7.5.16), a `tfdt`, one `trun` whose data offset
/// lands at the start of the `mdat` payload and whose sample sizes fill it
/// exactly.
fn check_fragment(n: usize, bytes: &[u8], v: &mut Vec<String>) -> Fragment {
    let mut f = Fragment::default();
    let top = match boxes(bytes) {
        Ok(t) => t,
        Err(e) => {
            v.push(format!("segment {n}: {e}"));
            return f;
        }
    };
    let kinds: Vec<&str> = top
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "styp")
        .collect();
    if kinds != ["moof", "mdat"] {
        v.push(format!("segment {n}: boxes {kinds:?}, not moof, mdat"));
        return f;
    }
    let moof_at = top
        .iter()
        .take_while(|(k, _)| k != "moof")
        .map(|(_, b)| b.len() + 8)
        .sum::<usize>();
    let moof = top.iter().find(|(k, _)| k == "moof").unwrap().1;
    let mdat = top.iter().find(|(k, _)| k == "mdat").unwrap().1;
    let moof_size = moof.len() + 8;
    match child(moof, &["mfhd"]) {
        Ok(m) => f.sequence = u32_at(m, 4),
        Err(e) => v.push(format!("segment {n}: {e}")),
    }
    let traf = match child(moof, &["traf"]) {
        Ok(t) => t,
        Err(e) => {
            v.push(format!("segment {n}: {e}"));
            return f;
        }
    };
    match child(traf, &["tfhd"]) {
        Ok(tfhd) => {
            let flags = u32_at(tfhd, 0) & 0x00FF_FFFF;
            if flags & 0x02_0000 == 0 || flags & 0x01 != 0 {
                v.push(format!(
                    "segment {n}: tfhd flags {flags:#x}: not default-base-is-moof"
                ));
            }
            if u32_at(tfhd, 4) != 1 {
                v.push(format!("segment {n}: tfhd track {}", u32_at(tfhd, 4)));
            }
        }
        Err(e) => v.push(format!("segment {n}: {e}")),
    }
    match child(traf, &["tfdt"]) {
        Ok(tfdt) if tfdt[0] == 1 => {
            f.decode_time = u64::from_be_bytes(tfdt[4..12].try_into().unwrap())
        }
        Ok(tfdt) => f.decode_time = u64::from(u32_at(tfdt, 4)),
        Err(e) => v.push(format!("segment {n}: {e}")),
    }
    let trun = match child(traf, &["trun"]) {
        Ok(t) => t,
        Err(e) => {
            v.push(format!("segment {n}: {e}"));
            return f;
        }
    };
    let flags = u32_at(trun, 0) & 0x00FF_FFFF;
    let count = u32_at(trun, 4) as usize;
    let mut at = 8;
    let data_offset = if flags & 0x1 != 0 {
        at += 4;
        u32_at(trun, 8) as usize
    } else {
        v.push(format!("segment {n}: trun without a data offset"));
        0
    };
    let first_flags = if flags & 0x4 != 0 {
        at += 4;
        Some(u32_at(trun, at - 4))
    } else {
        None
    };
    let mut sizes = 0usize;
    for i in 0..count {
        let mut duration = 0;
        let mut sample_flags = first_flags.filter(|_| i == 0);
        if flags & 0x100 != 0 {
            duration = u32_at(trun, at);
            at += 4;
        }
        if flags & 0x200 != 0 {
            sizes += u32_at(trun, at) as usize;
            at += 4;
        }
        if flags & 0x400 != 0 {
            sample_flags = Some(u32_at(trun, at));
            at += 4;
        }
        let offset = if flags & 0x800 != 0 {
            at += 4;
            let raw = u32_at(trun, at - 4);
            if trun[0] == 1 {
                i64::from(raw as i32)
            } else {
                i64::from(raw)
            }
        } else {
            0
        };
        if i == 0 {
            f.first_composition_offset = offset;
        }
        if duration == 0 {
            v.push(format!("segment {n}: sample {i} lasts 0 ticks"));
        }
        f.durations.push(duration);
        if i == 0 {
            // sample_is_non_sync_sample is bit 16.
            f.starts_with_sync = sample_flags.is_some_and(|s| s & 0x0001_0000 == 0);
        }
    }
    if at > trun.len() {
        v.push(format!(
            "segment {n}: trun shorter than its {count} samples"
        ));
    }
    if moof_at + data_offset != moof_at + moof_size + 8 {
        v.push(format!(
            "segment {n}: data offset {data_offset} does not point at the mdat payload ({})",
            moof_size + 8
        ));
    }
    if sizes != mdat.len() {
        v.push(format!(
            "segment {n}: samples of {sizes} bytes in an mdat of {}",
            mdat.len()
        ));
    }
    f
}

/// `hvc1` samples hold no VPS, SPS or PPS: that sample entry's `hvcC` has
/// them all (ISO/IEC 14496-15, 8.4.1: `array_completeness` is 1). The
/// `mdat` is walked as one run of 4-byte length-prefixed NAL units.
fn hvc1_samples(n: usize, bytes: &[u8], v: &mut Vec<String>) {
    let Ok(mdat) = child(bytes, &["mdat"]) else {
        return;
    };
    let mut rest = mdat;
    while rest.len() >= 5 {
        let len = u32_at(rest, 0) as usize;
        let kind = (rest[4] >> 1) & 0x3F;
        if (32..=34).contains(&kind) {
            v.push(format!(
                "segment {n}: NAL unit type {kind} (a parameter set) in an hvc1 sample"
            ));
            return;
        }
        rest = rest.get(4 + len..).unwrap_or_default();
    }
}

/// Checks a rendition: its init segment and segments, in playlist order,
/// and across them: sequence numbers increasing, each segment's decode
/// time where the one before ended (no gap, no overlap), and for video
/// every segment opening on a sync sample (`EXT-X-INDEPENDENT-SEGMENTS`);
/// `hvc1` samples without parameter sets.
pub fn check_rendition(init: &[u8], segments: &[Vec<u8>], video: bool) -> Fmp4Report {
    let mut v = Vec::new();
    let info = check_init(init, &mut v);
    let mut fragments: Vec<Fragment> = Vec::new();
    for (n, bytes) in segments.iter().enumerate() {
        let f = check_fragment(n, bytes, &mut v);
        if let Some(prev) = fragments.last() {
            if f.sequence <= prev.sequence {
                v.push(format!(
                    "segment {n}: sequence {} after {}",
                    f.sequence, prev.sequence
                ));
            }
            let end = prev.decode_time + prev.durations.iter().map(|d| u64::from(*d)).sum::<u64>();
            if f.decode_time != end {
                v.push(format!(
                    "segment {n}: decode time {} where the one before ended at {end}",
                    f.decode_time
                ));
            }
        }
        if video && !f.starts_with_sync {
            v.push(format!("segment {n}: does not open on a sync sample"));
        }
        if info.format == "hvc1" {
            hvc1_samples(n, bytes, &mut v);
        }
        fragments.push(f);
    }
    Fmp4Report {
        violations: v,
        init: info,
        fragments,
    }
}
