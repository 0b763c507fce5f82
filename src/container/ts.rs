//! MPEG-TS (ISO/IEC 13818-1) files whose program tables come after their
//! streams' first packets.
//!
//! `tsdemux` (GStreamer 1.22) drops every packet of a PID it does not know
//! yet: until the PAT and the PMT it names have come, elementary-stream
//! packets are thrown away. A file cut out of a broadcast (the reported
//! 0.62 s clip: its only IDR frame in the first six packets, the PAT and
//! PMT in packets 41 and 42) so loses its first frames, here all that
//! could be decoded, and the Discoverer refuses it ("No valid frames
//! found"), while ffmpeg finds the streams without the tables first.
//! [`psi_first_patch`] moves the first PAT and PMT to the front: the same
//! packets, in the same order but those two, so no byte offset past them
//! moves, each PID's continuity counters stay in order, and no timestamp
//! changes.

use super::input::Input;
use super::patch::SourcePatch;

/// A transport packet's sync byte (ISO/IEC 13818-1 §2.4.3.2).
pub const SYNC: u8 = 0x47;
/// A transport packet's length in bytes.
pub const PACKET: usize = 188;
/// How far into the file the tables are looked for: 1 MiB.
const SCAN_BYTES: usize = 1 << 20;

/// The PID, whether a payload starts here, and the payload of a packet.
pub(super) fn header(p: &[u8]) -> Option<(u16, bool, &[u8])> {
    if p.len() < PACKET || p[0] != SYNC {
        return None;
    }
    let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
    let start = p[1] & 0x40 != 0;
    let payload = match (p[3] >> 4) & 0x3 {
        1 => &p[4..],
        3 => p.get(5 + usize::from(p[4])..)?,
        _ => return Some((pid, start, &[])),
    };
    Some((pid, start, payload))
}

/// The section a payload-unit-start packet carries (after its pointer
/// field), if it has `table_id` and lies in this packet whole.
pub(super) fn section(payload: &[u8], table_id: u8) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    if *s.first()? != table_id {
        return None;
    }
    let length = (usize::from(s[1] & 0x0F) << 8) | usize::from(*s.get(2)?);
    s.get(..3 + length)
}

/// The PMT PID of the first program a PAT section lists.
pub(super) fn pmt_pid(pat: &[u8]) -> Option<u16> {
    // After the 8-byte header, 4-byte entries, then the CRC.
    let entries = pat.get(8..pat.len().checked_sub(4)?)?;
    entries.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        (program != 0).then(|| (u16::from(e[2] & 0x1F) << 8) | u16::from(e[3]))
    })
}

/// The elementary streams a PMT section lists: each one's
/// `stream_type` and PID (ISO/IEC 13818-1 §2.4.4.8).
pub(super) fn es_streams(pmt: &[u8]) -> Option<Vec<(u8, u16)>> {
    let info = (usize::from(*pmt.get(10)? & 0x0F) << 8) | usize::from(*pmt.get(11)?);
    let mut rest = pmt.get(12 + info..pmt.len().checked_sub(4)?)?;
    let mut streams = Vec::new();
    while rest.len() >= 5 {
        streams.push((
            rest[0],
            (u16::from(rest[1] & 0x1F) << 8) | u16::from(rest[2]),
        ));
        let es_info = (usize::from(rest[3] & 0x0F) << 8) | usize::from(rest[4]);
        rest = rest.get(5 + es_info..)?;
    }
    Some(streams)
}

/// The elementary-stream PIDs a PMT section lists.
fn es_pids(pmt: &[u8]) -> Option<Vec<u16>> {
    Some(es_streams(pmt)?.into_iter().map(|(_, pid)| pid).collect())
}

/// The patch that moves the first PAT and PMT of an MPEG-TS file
/// (`input`, 188-byte packets) to its front, when a packet of a stream the
/// PMT lists comes before them; `None` when the tables come first, are
/// not found in the first [`SCAN_BYTES`], or do not fit in one packet.
pub fn psi_first_patch(input: &mut Input) -> Option<SourcePatch> {
    let n = usize::try_from(input.len().min(SCAN_BYTES as u64)).ok()? / PACKET;
    let bytes = input.read_vec(0, (n * PACKET) as u64)?;
    let packets: Vec<&[u8]> = bytes.chunks_exact(PACKET).collect();
    let (pat_at, pmt) = packets.iter().enumerate().find_map(|(i, p)| {
        let (pid, start, payload) = header(p)?;
        (pid == 0 && start)
            .then(|| section(payload, 0x00).and_then(pmt_pid))
            .flatten()
            .map(|pmt| (i, pmt))
    })?;
    let (pmt_at, streams) = packets.iter().enumerate().find_map(|(i, p)| {
        let (pid, start, payload) = header(p)?;
        (pid == pmt && start)
            .then(|| section(payload, 0x02).and_then(es_pids))
            .flatten()
            .map(|s| (i, s))
    })?;
    let last = pat_at.max(pmt_at);
    let early = packets[..last]
        .iter()
        .any(|p| header(p).is_some_and(|(pid, _, _)| streams.contains(&pid)));
    if !early {
        return None;
    }
    let mut out = Vec::with_capacity((last + 1) * PACKET);
    out.extend_from_slice(packets[pat_at]);
    out.extend_from_slice(packets[pmt_at]);
    for (i, p) in packets[..=last].iter().enumerate() {
        if i != pat_at && i != pmt_at {
            out.extend_from_slice(p);
        }
    }
    Some(SourcePatch {
        offset: 0,
        bytes: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of `pid` carrying `payload` (padded with 0xFF).
    fn packet(pid: u16, start: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            SYNC,
            (if start { 0x40 } else { 0 }) | (pid >> 8) as u8,
            pid as u8,
            0x10,
        ];
        p.extend_from_slice(payload);
        p.resize(PACKET, 0xFF);
        p
    }

    /// A PSI section in a packet: pointer 0, then `table_id`, a length
    /// covering `body` and a (dummy) CRC.
    fn psi(pid: u16, table_id: u8, body: &[u8]) -> Vec<u8> {
        let length = body.len() + 4;
        let mut s = vec![0, table_id, 0xB0 | (length >> 8) as u8, length as u8];
        s.extend_from_slice(body);
        s.extend_from_slice(&[0, 0, 0, 0]);
        packet(pid, true, &s)
    }

    fn pat() -> Vec<u8> {
        // ts id, version, section numbers; program 1 on PID 0x1000.
        psi(0, 0x00, &[0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0x00])
    }

    fn pmt() -> Vec<u8> {
        // program 1, version, sections, PCR PID 0x100, no program info;
        // H.264 on 0x100, AAC on 0x101.
        psi(
            0x1000,
            0x02,
            &[
                0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x00, 0x0F, 0xE1,
                0x01, 0xF0, 0x00,
            ],
        )
    }

    #[test]
    fn tables_after_the_first_video_packets_move_to_the_front() {
        let v0 = packet(0x100, true, b"idr");
        let v1 = packet(0x100, false, b"more");
        let file = [
            v0.clone(),
            v1.clone(),
            pat(),
            pmt(),
            packet(0x101, true, b"aac"),
        ]
        .concat();
        let patch = psi_first_patch(&mut Input::from_bytes(file.clone())).expect("a patch");
        assert_eq!(patch.offset, 0);
        assert_eq!(patch.bytes, [pat(), pmt(), v0, v1].concat());
        let mut fixed = file.clone();
        patch.apply_to(0, &mut fixed);
        assert_eq!(fixed.len(), file.len());
        assert_eq!(&fixed[4 * PACKET..], &file[4 * PACKET..]);
    }

    #[test]
    fn tables_first_or_missing_need_nothing() {
        let v0 = packet(0x100, true, b"idr");
        let first = [pat(), pmt(), v0.clone()].concat();
        assert_eq!(psi_first_patch(&mut Input::from_bytes(first)), None);
        assert_eq!(psi_first_patch(&mut Input::from_bytes(v0.clone())), None);
        // A stream the PMT does not list does not count.
        let other = [packet(0x200, true, b"x"), pat(), pmt()].concat();
        assert_eq!(psi_first_patch(&mut Input::from_bytes(other)), None);
    }
}
