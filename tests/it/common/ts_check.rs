//! An MPEG-TS conformance checker for the segments of one rendition,
//! written from ISO/IEC 13818-1 and RFC 8216 (not from hlsd's packetizer):
//! it parses every packet of the segments, in order, as a player that
//! plays them one after the other sees them, and lists every rule broken.

use std::collections::HashMap;

const PACKET: usize = 188;
/// 100 ms in 90 kHz ticks: the most two PCRs may lie apart (2.7.2).
const MAX_PCR_GAP: u64 = 9_000;

/// What the packets of a rendition showed.
#[derive(Debug, Default)]
pub struct TsReport {
    /// Rules broken, one line each (empty: conformant).
    pub violations: Vec<String>,
    /// PES packets seen.
    pub pes: usize,
    /// PES packets that carried a DTS.
    pub with_dts: usize,
    /// PCRs seen, adaptation-only packets' included.
    pub pcrs: usize,
    /// The largest gap between two PCRs, in 90 kHz ticks.
    pub max_pcr_gap: u64,
}

fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

/// Checks the segments of one rendition, in playlist order: whole
/// packets; a PAT then a PMT first in every segment; continuity counters
/// continuous on every PID across the segments; PCRs monotonic and at most
/// 100 ms apart; every PES with a PTS, with DTS <= PTS, decode times
/// increasing per PID (so a DTS wherever decode and presentation order
/// differ), and no PCR after the decode time of the PES it precedes.
pub fn check_rendition(segments: &[Vec<u8>]) -> TsReport {
    let mut r = TsReport::default();
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut pmt_pid = None;
    let mut last_pcr: Option<u64> = None;
    let mut last_decode: HashMap<u16, u64> = HashMap::new();
    let v = |r: &mut TsReport, m: String| {
        if r.violations.len() < 50 {
            r.violations.push(m);
        }
    };
    for (n, seg) in segments.iter().enumerate() {
        if seg.is_empty() || seg.len() % PACKET != 0 {
            v(
                &mut r,
                format!("segment {n}: {} bytes, not whole packets", seg.len()),
            );
            continue;
        }
        for (i, p) in seg.chunks(PACKET).enumerate() {
            let at = format!("segment {n} packet {i}");
            if p[0] != 0x47 {
                v(&mut r, format!("{at}: no sync byte"));
                continue;
            }
            let pusi = p[1] & 0x40 != 0;
            let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
            let afc = (p[3] >> 4) & 3;
            let counter = p[3] & 0x0f;
            if i == 0 && pid != 0 {
                v(
                    &mut r,
                    format!("{at}: the segment does not start with a PAT"),
                );
            }
            if i == 1 && Some(pid) != pmt_pid {
                v(&mut r, format!("{at}: the PAT is not followed by the PMT"));
            }
            if pid == 0x1fff {
                continue;
            }
            // Continuity (2.4.3.3): +1 per packet with payload, the same
            // value on adaptation-only packets.
            let has_payload = afc & 1 != 0;
            if let Some(&prev) = cc.get(&pid) {
                let want = if has_payload { (prev + 1) & 0x0f } else { prev };
                if counter != want {
                    v(
                        &mut r,
                        format!("{at}: PID {pid:#x} continuity counter {counter} after {prev}"),
                    );
                }
            }
            cc.insert(pid, counter);
            let mut body = &p[4..];
            if afc & 2 != 0 {
                let len = usize::from(p[4]);
                let af = &p[5..5 + len.min(183)];
                body = &p[5 + len.min(183)..];
                if len >= 7 && af[0] & 0x10 != 0 {
                    let pcr = (u64::from(af[1]) << 25)
                        | (u64::from(af[2]) << 17)
                        | (u64::from(af[3]) << 9)
                        | (u64::from(af[4]) << 1)
                        | u64::from(af[5] >> 7);
                    if let Some(prev) = last_pcr {
                        if pcr <= prev {
                            v(
                                &mut r,
                                format!("{at}: PCR {pcr} not after the previous {prev}"),
                            );
                        } else {
                            let gap = pcr - prev;
                            r.max_pcr_gap = r.max_pcr_gap.max(gap);
                            if gap > MAX_PCR_GAP {
                                v(&mut r, format!("{at}: PCR gap {:.1} ms", gap as f64 / 90.0));
                            }
                        }
                    }
                    last_pcr = Some(pcr);
                    r.pcrs += 1;
                }
            }
            if !has_payload {
                continue;
            }
            if pid == 0 && pusi {
                // PAT: program 1's PMT PID, after the pointer field.
                let s = &body[1 + usize::from(body[0])..];
                pmt_pid = Some((u16::from(s[10] & 0x1f) << 8) | u16::from(s[11]));
                continue;
            }
            if Some(pid) == pmt_pid || !pusi {
                continue;
            }
            // A PES start.
            if body.len() < 14 || body[..3] != [0, 0, 1] {
                v(
                    &mut r,
                    format!("{at}: a payload unit start without a PES header"),
                );
                continue;
            }
            r.pes += 1;
            let flags = body[7] >> 6;
            if flags & 2 == 0 {
                v(&mut r, format!("{at}: a PES without a PTS"));
                continue;
            }
            let pts = timestamp(&body[9..14]);
            let dts = (flags == 3).then(|| timestamp(&body[14..19]));
            if dts.is_some() {
                r.with_dts += 1;
            }
            if let Some(d) = dts {
                if d > pts {
                    v(&mut r, format!("{at}: DTS {d} after PTS {pts}"));
                }
            }
            let decode = dts.unwrap_or(pts);
            if let Some(&prev) = last_decode.get(&pid) {
                if decode <= prev {
                    v(&mut r, format!("{at}: PID {pid:#x} decode time {decode} not after {prev} (a DTS missing or wrong)"));
                }
            }
            last_decode.insert(pid, decode);
            if let Some(pcr) = last_pcr {
                if pcr > decode {
                    v(
                        &mut r,
                        format!(
                            "{at}: PCR {pcr} after the decode time {decode} of the PES it precedes"
                        ),
                    );
                }
            }
        }
    }
    r
}

/// Whether the first video PES (stream id 0xE0) of a segment, its first
/// access unit, holds an IDR slice (H.264 NAL unit type 5): the segment
/// can be decoded on its own (RFC 8216, `EXT-X-INDEPENDENT-SEGMENTS`).
pub fn starts_with_idr(segment: &[u8]) -> bool {
    let mut pes: Option<Vec<u8>> = None;
    for p in segment.chunks(PACKET) {
        if p.len() < PACKET || p[3] & 0x10 == 0 {
            continue;
        }
        let body = if p[3] & 0x20 != 0 {
            &p[5 + usize::from(p[4]).min(183)..]
        } else {
            &p[4..]
        };
        let pusi = p[1] & 0x40 != 0;
        match &mut pes {
            None if pusi && body.len() > 9 && body[..4] == [0, 0, 1, 0xe0] => {
                let header = 9 + usize::from(body[8]);
                pes = Some(body[header.min(body.len())..].to_vec());
            }
            Some(_) if pusi && body.len() > 4 && body[..4] == [0, 0, 1, 0xe0] => break,
            Some(data) if !pusi => {
                let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
                if pid >= 0x20 {
                    data.extend_from_slice(body);
                }
            }
            _ => {}
        }
    }
    pes.is_some_and(|au| {
        au.windows(4)
            .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1f == 5)
    })
}
