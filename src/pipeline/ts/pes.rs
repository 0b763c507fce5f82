//! PES packets (ISO/IEC 13818-1, 2.4.3.6) split over transport stream
//! packets, with their adaptation fields: PCR, random access, stuffing.

use super::packet::{PACKET_LEN, PAYLOAD_LEN, TS_MASK};

/// What goes in the adaptation field of a PES's first packet.
pub(super) struct Adaptation {
    pub(super) random_access: bool,
    /// PCR base in 90 kHz ticks (the 27 MHz extension is left at 0).
    pub(super) pcr: Option<u64>,
}

impl Adaptation {
    /// Bytes of the field's length byte, flags and PCR.
    fn len(&self) -> usize {
        2 + if self.pcr.is_some() { 6 } else { 0 }
    }
}

fn put_timestamp(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    let ts = ts & TS_MASK;
    out.extend_from_slice(&[
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8 & 0x7f) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8 & 0x7f) << 1) | 1,
    ]);
}

fn put_pcr(out: &mut Vec<u8>, pcr: u64) {
    out.extend_from_slice(&[
        (pcr >> 25) as u8,
        (pcr >> 17) as u8,
        (pcr >> 9) as u8,
        (pcr >> 1) as u8,
        ((pcr as u8 & 1) << 7) | 0x7e,
        0,
    ]);
}

/// A PES header (ISO/IEC 13818-1, 2.4.3.7) for `payload_len` bytes.
/// Video may leave the length at 0 (unbounded) when it does not fit.
pub(super) fn pes_header(
    stream_id: u8,
    payload_len: usize,
    pts: u64,
    dts: Option<u64>,
    video: bool,
) -> Vec<u8> {
    let header_data_len: usize = if dts.is_some() { 10 } else { 5 };
    let len = 3 + header_data_len + payload_len;
    let len = if len > 0xffff {
        debug_assert!(video, "an audio PES too long for its length field");
        0
    } else {
        len as u16
    };
    let mut h = Vec::with_capacity(9 + header_data_len);
    h.extend_from_slice(&[0, 0, 1, stream_id]);
    h.extend_from_slice(&len.to_be_bytes());
    // '10', not scrambled, data_alignment_indicator on video access units.
    h.push(if video { 0x84 } else { 0x80 });
    h.push(if dts.is_some() { 0xc0 } else { 0x80 });
    h.push(header_data_len as u8);
    match dts {
        Some(dts) => {
            put_timestamp(&mut h, 0x3, pts);
            put_timestamp(&mut h, 0x1, dts);
        }
        None => put_timestamp(&mut h, 0x2, pts),
    }
    h
}

/// Packets needed for `total` bytes when the first packet's adaptation
/// field takes `first_af` bytes.
fn packets_needed(total: usize, first_af: usize) -> usize {
    let first = PAYLOAD_LEN - first_af;
    if total <= first {
        1
    } else {
        1 + (total - first).div_ceil(PAYLOAD_LEN)
    }
}

/// Splits `header` + `payload` over packets on `pid`. The first packet
/// carries `adaptation` (if any); short packets are padded with
/// adaptation field stuffing. With `end_at_15`, the PES is spread over
/// more packets (each carrying at least a byte) so that the last one's
/// continuity counter is 15, where the bytes allow.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_pes(
    out: &mut Vec<u8>,
    pid: u16,
    cc: &mut u8,
    header: &[u8],
    payload: &[u8],
    adaptation: Option<Adaptation>,
    end_at_15: bool,
) {
    let total = header.len() + payload.len();
    let first_af = adaptation.as_ref().map_or(0, Adaptation::len);
    let natural = packets_needed(total, first_af);
    let mut count = natural;
    if end_at_15 {
        let spread = natural + (16 - (usize::from(*cc) + natural) % 16) % 16;
        if spread <= total {
            count = spread;
        }
    }
    out.reserve(count * PACKET_LEN);
    let mut written = 0;
    for i in 0..count {
        let first = (i == 0).then_some(adaptation.as_ref()).flatten();
        let cap = PAYLOAD_LEN - if i == 0 { first_af } else { 0 };
        // Leave at least one byte for each packet still to come.
        let take = cap.min(total - written - (count - i - 1));
        let af_len = PAYLOAD_LEN - take;
        let afc = if af_len > 0 { 0x30 } else { 0x10 };
        out.extend_from_slice(&[
            0x47,
            (if i == 0 { 0x40 } else { 0 }) | (pid >> 8) as u8,
            pid as u8,
            afc | *cc,
        ]);
        *cc = (*cc + 1) & 0x0f;
        if af_len > 0 {
            let packet_af_start = out.len();
            out.push((af_len - 1) as u8);
            if af_len > 1 {
                let mut flags = 0u8;
                if let Some(a) = first {
                    if a.random_access {
                        flags |= 0x40;
                    }
                    if a.pcr.is_some() {
                        flags |= 0x10;
                    }
                }
                out.push(flags);
                if let Some(pcr) = first.and_then(|a| a.pcr) {
                    put_pcr(out, pcr);
                }
            }
            out.resize(packet_af_start + af_len, 0xff);
        }
        // Copy `take` bytes of header + payload from `written` on.
        let mut left = take;
        let mut at = written;
        if at < header.len() {
            let n = left.min(header.len() - at);
            out.extend_from_slice(&header[at..at + n]);
            left -= n;
            at += n;
        }
        if left > 0 {
            let p = at - header.len();
            out.extend_from_slice(&payload[p..p + left]);
        }
        written += take;
    }
}

/// An adaptation-only packet on `pid` (continuity counter `cc`, not
/// incremented: it has no payload) carrying `pcr`.
pub(super) fn write_pcr_only(out: &mut Vec<u8>, pid: u16, cc: u8, pcr: u64) {
    let start = out.len();
    out.extend_from_slice(&[0x47, (pid >> 8) as u8 & 0x1f, pid as u8, 0x20 | cc]);
    out.push(183);
    out.push(0x10);
    put_pcr(out, pcr);
    out.resize(start + PACKET_LEN, 0xff);
}
