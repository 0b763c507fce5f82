//! An MPEG-2 transport stream packetizer for one program of H.264 video
//! and ADTS AAC audio (ISO/IEC 13818-1), for every segment hlsd writes.
//!
//! It writes what an HLS segment needs and no more: a PAT and a PMT, PES
//! packets with PTS (and DTS when it differs), a PCR in the adaptation
//! field of each PES start of the PCR stream (video, else audio), and the
//! random access indicator on key frames (RFC 8216, section 3.2: "each
//! segment MUST contain a PAT and a PMT"; they are written at the start of
//! every segment and before every key frame). PIDs are ffmpeg's (PMT
//! 0x1000, video 0x100, audio 0x101). Continuity counters restart at every
//! segment, so a segment's bytes do not depend on which producer made the
//! segments before it.
//!
//! Timestamps in and out are 90 kHz ticks, wrapped to 33 bits.

/// Bytes in one transport stream packet.
pub const PACKET_LEN: usize = 188;
const PAYLOAD_LEN: usize = PACKET_LEN - 4;

const PAT_PID: u16 = 0;
/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 stream (also the PCR PID).
pub const VIDEO_PID: u16 = 0x100;
/// PID of the AAC stream.
pub const AUDIO_PID: u16 = 0x101;

/// ISO/IEC 13818-1 table 2-34 stream types.
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;

/// The PCR runs this far behind the video DTS: 125 ms, gst-plugins-bad's
/// `mpegtsmux` value (`TSMUX_PCR_OFFSET`), so a decoder has its buffer
/// time before each frame is due.
const PCR_OFFSET_90K: u64 = 90_000 / 8;

const MPEG2_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2);
const TS_MASK: u64 = (1 << 33) - 1;

/// Which elementary streams the program carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    /// An H.264 byte-stream on [`VIDEO_PID`].
    pub video: bool,
    /// An ADTS AAC stream on [`AUDIO_PID`].
    pub audio: bool,
}

/// Packetizes access units into 188-byte TS packets, appended to a
/// caller's buffer. Keeps the continuity counters across segments, as one
/// continuous stream cut into files.
#[derive(Debug)]
pub struct TsMuxer {
    streams: Streams,
    pat: [u8; PACKET_LEN],
    pmt: [u8; PACKET_LEN],
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
}

impl TsMuxer {
    /// A packetizer for `streams` (at least one of the two).
    pub fn new(streams: Streams) -> Self {
        TsMuxer {
            streams,
            pat: psi_packet(PAT_PID, &pat_section()),
            pmt: psi_packet(PMT_PID, &pmt_section(streams)),
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
        }
    }

    /// Restarts every continuity counter at 0: called at each segment start.
    pub fn reset_continuity(&mut self) {
        self.cc_pat = 0;
        self.cc_pmt = 0;
        self.cc_video = 0;
        self.cc_audio = 0;
    }

    /// Appends a PAT and a PMT packet.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        for (packet, cc) in [(&self.pat, &mut self.cc_pat), (&self.pmt, &mut self.cc_pmt)] {
            let start = out.len();
            out.extend_from_slice(packet);
            out[start + 3] = (out[start + 3] & 0xf0) | *cc;
            *cc = (*cc + 1) & 0x0f;
        }
    }

    /// Appends one H.264 access unit (Annex B byte-stream) as a PES packet.
    /// `dts` is written only when it differs from `pts`. A key frame gets
    /// the tables in front of it and the random access indicator.
    pub fn write_video(
        &mut self,
        out: &mut Vec<u8>,
        data: &[u8],
        pts: u64,
        dts: Option<u64>,
        key: bool,
    ) {
        debug_assert!(self.streams.video, "no video stream declared");
        if key {
            self.write_tables(out);
        }
        let dts = dts.filter(|&d| d != pts);
        let header = pes_header(0xe0, data.len(), pts, dts, true);
        let pcr = dts.unwrap_or(pts).wrapping_sub(PCR_OFFSET_90K) & TS_MASK;
        write_pes(
            out,
            VIDEO_PID,
            &mut self.cc_video,
            &header,
            data,
            Some(Adaptation {
                random_access: key,
                pcr: Some(pcr),
            }),
        );
    }

    /// Appends one ADTS AAC frame (or several) as a PES packet. Without
    /// video, audio carries the PCR, and every frame is a random access
    /// point.
    pub fn write_audio(&mut self, out: &mut Vec<u8>, data: &[u8], pts: u64) {
        debug_assert!(self.streams.audio, "no audio stream declared");
        let header = pes_header(0xc0, data.len(), pts, None, false);
        let adaptation = (!self.streams.video).then(|| Adaptation {
            random_access: true,
            pcr: Some(pts.wrapping_sub(PCR_OFFSET_90K) & TS_MASK),
        });
        write_pes(
            out,
            AUDIO_PID,
            &mut self.cc_audio,
            &header,
            data,
            adaptation,
        );
    }
}

/// What goes in the adaptation field of a PES's first packet.
struct Adaptation {
    random_access: bool,
    /// PCR base in 90 kHz ticks (the 27 MHz extension is left at 0).
    pcr: Option<u64>,
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

/// A PES header (ISO/IEC 13818-1, 2.4.3.7) for `payload_len` bytes.
/// Video may leave the length at 0 (unbounded) when it does not fit.
fn pes_header(
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

/// Splits `header` + `payload` over packets on `pid`. The first packet
/// carries `adaptation` (if any); the last is padded with adaptation
/// field stuffing.
fn write_pes(
    out: &mut Vec<u8>,
    pid: u16,
    cc: &mut u8,
    header: &[u8],
    payload: &[u8],
    adaptation: Option<Adaptation>,
) {
    let total = header.len() + payload.len();
    out.reserve((total / PAYLOAD_LEN + 2) * PACKET_LEN);
    let mut written = 0;
    let mut first = adaptation;
    let mut start = true;
    while written < total {
        let remaining = total - written;
        // Adaptation field bytes wanted, its length byte included.
        let flags_len = match &first {
            Some(a) => 2 + if a.pcr.is_some() { 6 } else { 0 },
            None => 0,
        };
        let af_len = if remaining < PAYLOAD_LEN - flags_len {
            PAYLOAD_LEN - remaining
        } else {
            flags_len
        };
        let take = PAYLOAD_LEN - af_len;
        let afc = if af_len > 0 { 0x30 } else { 0x10 };
        out.extend_from_slice(&[
            0x47,
            (if start { 0x40 } else { 0 }) | (pid >> 8) as u8,
            pid as u8,
            afc | *cc,
        ]);
        *cc = (*cc + 1) & 0x0f;
        if af_len > 0 {
            let packet_af_start = out.len();
            out.push((af_len - 1) as u8);
            if af_len > 1 {
                let mut flags = 0u8;
                if let Some(a) = &first {
                    if a.random_access {
                        flags |= 0x40;
                    }
                    if a.pcr.is_some() {
                        flags |= 0x10;
                    }
                }
                out.push(flags);
                if let Some(pcr) = first.as_ref().and_then(|a| a.pcr) {
                    out.extend_from_slice(&[
                        (pcr >> 25) as u8,
                        (pcr >> 17) as u8,
                        (pcr >> 9) as u8,
                        (pcr >> 1) as u8,
                        ((pcr as u8 & 1) << 7) | 0x7e,
                        0,
                    ]);
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
        first = None;
        start = false;
    }
}

/// A PSI section (already holding its CRC) in one packet, padded with 0xff.
fn psi_packet(pid: u16, section: &[u8]) -> [u8; PACKET_LEN] {
    let mut p = [0xffu8; PACKET_LEN];
    p[0] = 0x47;
    p[1] = 0x40 | (pid >> 8) as u8;
    p[2] = pid as u8;
    p[3] = 0x10;
    p[4] = 0; // pointer_field
    p[5..5 + section.len()].copy_from_slice(section);
    p
}

/// Appends the CRC_32/MPEG-2 of the section so far.
fn with_crc(mut section: Vec<u8>) -> Vec<u8> {
    let crc = MPEG2_CRC.checksum(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

/// The program association table: program 1 at [`PMT_PID`].
fn pat_section() -> Vec<u8> {
    let mut s = vec![0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0x00, 0x00];
    s.extend_from_slice(&[0x00, 0x01]);
    s.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
    with_crc(s)
}

/// The program map table of program 1.
fn pmt_section(streams: Streams) -> Vec<u8> {
    let mut es = Vec::new();
    if streams.video {
        es.push(STREAM_TYPE_H264);
        es.extend_from_slice(&(0xe000 | VIDEO_PID).to_be_bytes());
        es.extend_from_slice(&[0xf0, 0x00]);
    }
    if streams.audio {
        es.push(STREAM_TYPE_AAC_ADTS);
        es.extend_from_slice(&(0xe000 | AUDIO_PID).to_be_bytes());
        es.extend_from_slice(&[0xf0, 0x00]);
    }
    let pcr_pid = if streams.video { VIDEO_PID } else { AUDIO_PID };
    let section_len = 9 + es.len() + 4;
    let mut s = vec![
        0x02,
        0xb0 | (section_len >> 8) as u8,
        section_len as u8,
        0x00,
        0x01,
        0xc1,
        0x00,
        0x00,
    ];
    s.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
    s.extend_from_slice(&[0xf0, 0x00]);
    s.extend_from_slice(&es);
    with_crc(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (pid, pusi, cc, adaptation field, payload) of one packet.
    type Packet = (u16, bool, u8, Vec<u8>, Vec<u8>);

    fn packets(ts: &[u8]) -> Vec<Packet> {
        assert_eq!(ts.len() % PACKET_LEN, 0, "whole packets");
        ts.chunks(PACKET_LEN)
            .map(|p| {
                assert_eq!(p[0], 0x47, "sync byte");
                let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
                let afc = (p[3] >> 4) & 3;
                let (af, body) = if afc & 2 != 0 {
                    let n = usize::from(p[4]);
                    (p[5..5 + n].to_vec(), &p[5 + n..])
                } else {
                    (Vec::new(), &p[4..])
                };
                let payload = if afc & 1 != 0 {
                    body.to_vec()
                } else {
                    Vec::new()
                };
                (pid, p[1] & 0x40 != 0, p[3] & 0x0f, af, payload)
            })
            .collect()
    }

    fn read_timestamp(b: &[u8]) -> u64 {
        (u64::from(b[0] >> 1 & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1)
    }

    /// The PCR base in an adaptation field (after its flags byte).
    fn read_pcr(af: &[u8]) -> u64 {
        (u64::from(af[1]) << 25)
            | (u64::from(af[2]) << 17)
            | (u64::from(af[3]) << 9)
            | (u64::from(af[4]) << 1)
            | u64::from(af[5] >> 7)
    }

    #[test]
    fn tables_carry_valid_crcs_and_name_the_streams() {
        let mut mux = TsMuxer::new(Streams {
            video: true,
            audio: true,
        });
        let mut out = Vec::new();
        mux.write_tables(&mut out);
        mux.write_tables(&mut out);
        let p = packets(&out);
        assert_eq!(p.len(), 4);
        assert_eq!((p[0].0, p[1].0), (PAT_PID, PMT_PID));
        assert_eq!((p[0].2, p[2].2), (0, 1), "PAT continuity counts on");
        for (_, pusi, _, _, payload) in &p[..2] {
            assert!(pusi);
            let len = (usize::from(payload[2] & 0x0f) << 8) | usize::from(payload[3]);
            let section = &payload[1..4 + len];
            assert_eq!(
                MPEG2_CRC.checksum(section),
                0,
                "CRC over a section with its CRC is 0"
            );
        }
        let pmt = &p[1].4;
        // After the 12-byte header: two ES entries of 5 bytes.
        assert_eq!(pmt[13], STREAM_TYPE_H264);
        assert_eq!(pmt[18], STREAM_TYPE_AAC_ADTS);
    }

    #[test]
    fn a_large_access_unit_round_trips_with_pts_dts_and_pcr() {
        let mut mux = TsMuxer::new(Streams {
            video: true,
            audio: false,
        });
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let pts = (1u64 << 33) + 900_000; // wraps to 900_000
        let mut out = Vec::new();
        mux.write_video(&mut out, &data, pts, Some(pts - 3000), true);
        let p = packets(&out);
        let video: Vec<_> = p.iter().filter(|x| x.0 == VIDEO_PID).collect();
        assert_eq!(p.len() - video.len(), 2, "tables before a key frame");
        assert!(video[0].1 && video.iter().skip(1).all(|x| !x.1));
        for (i, v) in video.iter().enumerate() {
            assert_eq!(usize::from(v.2), i % 16, "continuity counter");
        }
        let af = &video[0].3;
        assert_eq!(af[0] & 0x50, 0x50, "random access and PCR flags");
        assert_eq!(read_pcr(af), 900_000 - 3000 - PCR_OFFSET_90K);
        let pes: Vec<u8> = video.iter().flat_map(|v| v.4.clone()).collect();
        assert_eq!(&pes[..4], &[0, 0, 1, 0xe0]);
        assert_eq!(&pes[4..6], &[0, 0], "unbounded length for a long video PES");
        assert_eq!(pes[7] >> 6, 3, "PTS and DTS");
        assert_eq!(read_timestamp(&pes[9..14]), 900_000);
        assert_eq!(read_timestamp(&pes[14..19]), 900_000 - 3000);
        assert_eq!(
            &pes[19..],
            &data[..],
            "payload intact, stuffing only in adaptation fields"
        );
    }

    #[test]
    fn audio_alone_carries_the_pcr_and_counters_restart_per_segment() {
        let mut mux = TsMuxer::new(Streams {
            video: false,
            audio: true,
        });
        let mut out = Vec::new();
        mux.write_tables(&mut out);
        mux.write_audio(&mut out, &[0xab; 300], 90_000);
        let p = packets(&out);
        let pmt = &p[1].4;
        let pcr_pid = (u16::from(pmt[9] & 0x1f) << 8) | u16::from(pmt[10]);
        assert_eq!(pcr_pid, AUDIO_PID);
        let af = &p[2].3;
        assert_eq!(af[0] & 0x50, 0x50, "random access and PCR flags");
        assert_eq!(read_pcr(af), 90_000 - PCR_OFFSET_90K);
        let pes: Vec<u8> = p[2..].iter().flat_map(|x| x.4.clone()).collect();
        assert_eq!(&pes[14..], &[0xab; 300][..], "payload intact");
        mux.reset_continuity();
        let mut next = Vec::new();
        mux.write_tables(&mut next);
        assert!(packets(&next).iter().all(|x| x.2 == 0));
    }

    #[test]
    fn every_payload_length_fills_whole_packets() {
        let mut mux = TsMuxer::new(Streams {
            video: false,
            audio: true,
        });
        for len in [
            1usize, 169, 170, 171, 183, 184, 185, 350, 367, 368, 369, 5000,
        ] {
            let data = vec![0xabu8; len];
            let mut out = Vec::new();
            mux.write_audio(&mut out, &data, 1234);
            let pes: Vec<u8> = packets(&out).into_iter().flat_map(|x| x.4).collect();
            assert_eq!(out.len() % PACKET_LEN, 0);
            let declared = usize::from(u16::from_be_bytes([pes[4], pes[5]]));
            assert_eq!(declared, pes.len() - 6, "PES length for {len}");
            assert_eq!(read_timestamp(&pes[9..14]), 1234);
            assert_eq!(&pes[14..], &data[..], "payload of {len}");
        }
    }
}
