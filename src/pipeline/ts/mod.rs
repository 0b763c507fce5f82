//! An MPEG-2 transport stream packetizer for one elementary stream (H.264
//! video or ADTS AAC audio) of one program (ISO/IEC 13818-1), for every
//! segment hlsd writes.
//!
//! It writes what an HLS segment needs and no more, under the standard's
//! rules, segment by segment:
//! - a PAT and a PMT first in every segment (RFC 8216, 3.2; Apple's HLS
//!   authoring spec);
//! - PES packets with a PTS, and a DTS whenever it differs from the PTS
//!   (13818-1, 2.4.3.7);
//! - a PCR (on the one stream, which is the PCR PID) in the adaptation
//!   field of each PES start, [`PCR_OFFSET_90K`] before the DTS, so never
//!   after the DTS of the data it precedes; when two PES starts lie more
//!   than [`MAX_PCR_GAP_90K`] apart (a 1 fps slide show, 8 kHz audio),
//!   adaptation-only packets carry PCRs between them (2.7.2: at most
//!   100 ms apart);
//! - the random access indicator on key frames;
//! - continuity counters (2.4.3.3) that run on from one segment to the
//!   next, whichever producer made each: a segment's PAT and PMT carry its
//!   index modulo 16 (one of each per segment), and its last PES is spread
//!   over as many packets as bring its PID's counter to 15, so that the
//!   next segment starts at 0. Segment `n`'s bytes so depend on segment
//!   `n` alone.
//!
//! PIDs are ffmpeg's (PMT 0x1000, video 0x100, audio 0x101). Timestamps in
//! and out are 90 kHz ticks, wrapped to 33 bits.

mod packet;
mod pes;
mod tables;

pub use packet::{
    pcr_for, Streams, AUDIO_PID, MAX_PCR_GAP_90K, PACKET_LEN, PCR_OFFSET_90K, PMT_PID, VIDEO_PID,
};

use packet::{ticks_between, PAT_PID, PCR_FILL_STEP_90K, TS_MASK};
use pes::{pes_header, write_pcr_only, write_pes, Adaptation};
use tables::{
    pat_section, pmt_section, psi_packet, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_MPEG1_AUDIO,
    STREAM_TYPE_MPEG2_AUDIO,
};

/// How far apart the first frames of two audio PES packets may lie, in
/// 90 kHz ticks (75 ms): [`TsMuxer::push_audio`] packs the AAC frames
/// within it into one PES. One PES per frame cost 46 % over the AAC bit
/// rate in an audio rendition (a 128 kb/s track made 187 kb/s of TS: each
/// 350-byte frame took three packets, one for its PCR and PES header); four
/// frames per PES cost about 11 %, which the `BANDWIDTH` of a client held
/// to 300 kb/s cannot spare. With frames of up to 25 ms (AAC and MP3 at
/// 44.1 and 48 kHz), 75 ms plus one frame keeps the PES starts, which
/// carry the PCR of an audio rendition, within the 100 ms a PCR needs
/// (ISO/IEC 13818-1, 2.7.2); longer frames (AAC at 16 kHz: 64 ms) get PCR
/// packets of their own between PES starts ([`TsMuxer::fill_pcr_gap`]).
/// ffmpeg's muxer packs audio likewise, up to 2930 bytes.
pub const AUDIO_PES_SPAN_90K: u64 = 6_750;

/// The most bytes of audio one PES takes (ffmpeg's `pes_payload_size`).
pub const AUDIO_PES_BYTES: usize = 2_930;

/// Packetizes access units into 188-byte TS packets, appended to a
/// caller's buffer.
#[derive(Debug)]
pub struct TsMuxer {
    streams: Streams,
    pat: [u8; PACKET_LEN],
    pmt: [u8; PACKET_LEN],
    /// The next continuity counter of each elementary stream.
    cc_video: u8,
    cc_audio: u8,
    /// The last PCR written in this segment.
    last_pcr: Option<u64>,
    /// Audio frames waiting for their PES, and the first one's PTS.
    audio: Vec<u8>,
    audio_pts: u64,
}

/// The audio codec of an MPEG-TS program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsAudio {
    /// AAC in ADTS frames (stream type 0x0F), the default.
    Aac,
    /// MPEG audio (MP3), MPEG-1 (stream type 0x03) at 32 kHz and above,
    /// else MPEG-2's half rates (0x04): ISO/IEC 13818-1, table 2-34.
    Mpeg {
        /// The sample rate, in hertz.
        rate: u32,
    },
}

impl TsMuxer {
    /// A packetizer for `streams` (at least one of the two).
    pub fn new(streams: Streams) -> Self {
        TsMuxer {
            streams,
            pat: psi_packet(PAT_PID, &pat_section()),
            pmt: psi_packet(PMT_PID, &pmt_section(streams, STREAM_TYPE_AAC_ADTS)),
            cc_video: 0,
            cc_audio: 0,
            last_pcr: None,
            audio: Vec::new(),
            audio_pts: 0,
        }
    }

    /// Declares the program's audio codec (AAC unless told otherwise), in
    /// the PMT of every segment begun after.
    pub fn set_audio(&mut self, audio: TsAudio) {
        let stream_type = match audio {
            TsAudio::Aac => STREAM_TYPE_AAC_ADTS,
            TsAudio::Mpeg { rate } if rate >= 32_000 => STREAM_TYPE_MPEG1_AUDIO,
            TsAudio::Mpeg { .. } => STREAM_TYPE_MPEG2_AUDIO,
        };
        self.pmt = psi_packet(PMT_PID, &pmt_section(self.streams, stream_type));
    }

    /// Starts segment `index`: its PAT and PMT (continuity counters
    /// `index` modulo 16), and every elementary stream's counter at 0.
    pub fn begin_segment(&mut self, out: &mut Vec<u8>, index: usize) {
        let cc = (index % 16) as u8;
        for packet in [&self.pat, &self.pmt] {
            let start = out.len();
            out.extend_from_slice(packet);
            out[start + 3] = (out[start + 3] & 0xf0) | cc;
        }
        self.cc_video = 0;
        self.cc_audio = 0;
        self.last_pcr = None;
        self.audio.clear();
    }

    /// The PID, and its counter, that carries the PCR.
    fn pcr_stream(&mut self) -> (u16, &mut u8) {
        if self.streams.video {
            (VIDEO_PID, &mut self.cc_video)
        } else {
            (AUDIO_PID, &mut self.cc_audio)
        }
    }

    /// Writes adaptation-only packets with PCRs between the last PCR
    /// written and `next` (the PCR of the next PES start, which may come
    /// in the next segment), so that no two lie more than
    /// [`MAX_PCR_GAP_90K`] apart. Nothing before the segment's first PCR.
    pub fn fill_pcr_gap(&mut self, out: &mut Vec<u8>, next: u64) {
        let Some(mut last) = self.last_pcr else {
            return;
        };
        // A PCR behind the last (a broken source) is not bridged.
        let gap = ticks_between(last, next);
        if gap > MAX_PCR_GAP_90K && gap < TS_MASK / 2 {
            let (pid, cc) = self.pcr_stream();
            // An adaptation-only packet repeats the last counter used.
            let cc = cc.wrapping_sub(1) & 0x0f;
            while ticks_between(last, next) > PCR_FILL_STEP_90K {
                last = (last + PCR_FILL_STEP_90K) & TS_MASK;
                write_pcr_only(out, pid, cc, last);
            }
            self.last_pcr = Some(last);
        }
    }

    /// Appends one H.264 access unit (Annex B byte-stream) as a PES packet.
    /// `dts` is written only when it differs from `pts`. A key frame gets
    /// the random access indicator. `last`: the segment's last access
    /// unit, spread to end the counter at 15.
    pub fn write_video(
        &mut self,
        out: &mut Vec<u8>,
        data: &[u8],
        pts: u64,
        dts: Option<u64>,
        key: bool,
        last: bool,
    ) {
        debug_assert!(self.streams.video, "no video stream declared");
        let dts = dts.filter(|&d| d & TS_MASK != pts & TS_MASK);
        let pcr = pcr_for(dts.unwrap_or(pts));
        self.fill_pcr_gap(out, pcr);
        self.last_pcr = Some(pcr);
        let header = pes_header(0xe0, data.len(), pts, dts, true);
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
            last,
        );
    }

    /// Takes one audio frame (ADTS AAC, or MPEG audio) at `pts`: frames are packed into one PES
    /// while they start within [`AUDIO_PES_SPAN_90K`] of its first and
    /// fit [`AUDIO_PES_BYTES`]. `last`: the segment's last frame, which
    /// writes out what is held ([`Self::flush_audio`]).
    pub fn push_audio(&mut self, out: &mut Vec<u8>, data: &[u8], pts: u64, last: bool) {
        let full = self.audio.len() + data.len() > AUDIO_PES_BYTES
            || ticks_between(self.audio_pts, pts) >= AUDIO_PES_SPAN_90K;
        if !self.audio.is_empty() && full {
            self.flush_audio(out, false);
        }
        if self.audio.is_empty() {
            self.audio_pts = pts;
        }
        self.audio.extend_from_slice(data);
        if last {
            self.flush_audio(out, true);
        }
    }

    /// Writes the audio frames held by [`Self::push_audio`] as one PES
    /// (`last` as for [`Self::write_video`]); nothing when none are held.
    pub fn flush_audio(&mut self, out: &mut Vec<u8>, last: bool) {
        if self.audio.is_empty() {
            return;
        }
        let data = std::mem::take(&mut self.audio);
        self.write_audio(out, &data, self.audio_pts, last);
        self.audio = data;
        self.audio.clear();
    }

    /// Appends one ADTS AAC frame (or several) as a PES packet. Without
    /// video, audio carries the PCR, and every frame is a random access
    /// point. `last` as for [`Self::write_video`].
    pub fn write_audio(&mut self, out: &mut Vec<u8>, data: &[u8], pts: u64, last: bool) {
        debug_assert!(self.streams.audio, "no audio stream declared");
        let header = pes_header(0xc0, data.len(), pts, None, false);
        let adaptation = if self.streams.video {
            None
        } else {
            let pcr = pcr_for(pts);
            self.fill_pcr_gap(out, pcr);
            self.last_pcr = Some(pcr);
            Some(Adaptation {
                random_access: true,
                pcr: Some(pcr),
            })
        };
        write_pes(
            out,
            AUDIO_PID,
            &mut self.cc_audio,
            &header,
            data,
            adaptation,
            last,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::tables::{MPEG2_CRC, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264};
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
        mux.begin_segment(&mut out, 0);
        mux.begin_segment(&mut out, 17);
        let p = packets(&out);
        assert_eq!(p.len(), 4);
        assert_eq!((p[0].0, p[1].0), (PAT_PID, PMT_PID));
        assert_eq!((p[0].2, p[2].2), (0, 1), "segment 17's PAT counts on");
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
        mux.write_video(&mut out, &data, pts, Some(pts - 3000), true, false);
        let video = packets(&out);
        assert!(video.iter().all(|x| x.0 == VIDEO_PID));
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
    fn audio_frames_are_packed_into_pes_packets_of_75_ms() {
        let mut mux = TsMuxer::new(Streams {
            video: false,
            audio: true,
        });
        let mut out = Vec::new();
        mux.begin_segment(&mut out, 0);
        // 48 kHz AAC: 1024 samples, 1920 ticks a frame; 128 kb/s.
        let frames = 47;
        for f in 0..frames {
            let pts = 90_000 + f as u64 * 1920;
            mux.push_audio(&mut out, &[0xab; 340], pts, f + 1 == frames);
        }
        let p = packets(&out);
        let starts: Vec<&Packet> = p.iter().filter(|x| x.0 == AUDIO_PID && x.1).collect();
        // Four frames a PES (0, 1920, 3840, 5760 < 6750), twelve PES.
        assert_eq!(starts.len(), 12);
        assert!(starts.iter().all(|x| !x.3.is_empty()), "each carries a PCR");
        let bytes: usize = p.iter().filter(|x| x.0 == AUDIO_PID).count() * PACKET_LEN;
        let overhead = bytes as f64 / (frames * 340) as f64;
        assert!(overhead < 1.15, "{overhead}");
        // Every frame's bytes are there, in order.
        let payload: Vec<u8> = p
            .iter()
            .filter(|x| x.0 == AUDIO_PID)
            .flat_map(|x| x.4.clone())
            .collect();
        assert_eq!(payload.iter().filter(|b| **b == 0xab).count(), frames * 340);
    }

    #[test]
    fn audio_alone_carries_the_pcr() {
        let mut mux = TsMuxer::new(Streams {
            video: false,
            audio: true,
        });
        let mut out = Vec::new();
        mux.begin_segment(&mut out, 0);
        mux.write_audio(&mut out, &[0xab; 300], 90_000, false);
        let p = packets(&out);
        let pmt = &p[1].4;
        let pcr_pid = (u16::from(pmt[9] & 0x1f) << 8) | u16::from(pmt[10]);
        assert_eq!(pcr_pid, AUDIO_PID);
        let af = &p[2].3;
        assert_eq!(af[0] & 0x50, 0x50, "random access and PCR flags");
        assert_eq!(read_pcr(af), 90_000 - PCR_OFFSET_90K);
        let pes: Vec<u8> = p[2..].iter().flat_map(|x| x.4.clone()).collect();
        assert_eq!(&pes[14..], &[0xab; 300][..], "payload intact");
    }

    /// A segment's last PES ends its PID's counter at 15, so the next
    /// segment (which starts at 0) continues it, whatever the lengths.
    #[test]
    fn a_segments_last_pes_ends_the_counter_at_15() {
        for (frames, len) in [
            (1usize, 7usize),
            (3, 300),
            (5, 2000),
            (16, 184),
            (2, 60_000),
        ] {
            let mut mux = TsMuxer::new(Streams {
                video: false,
                audio: true,
            });
            let mut out = Vec::new();
            mux.begin_segment(&mut out, 4);
            let data = vec![0x5au8; len];
            for f in 0..frames {
                mux.write_audio(&mut out, &data, 1000 + f as u64 * 1920, f + 1 == frames);
            }
            let p = packets(&out);
            let audio: Vec<_> = p.iter().filter(|x| x.0 == AUDIO_PID).collect();
            for (i, a) in audio.iter().enumerate() {
                assert_eq!(usize::from(a.2), i % 16, "{frames} x {len}: continuity");
            }
            assert_eq!(audio.last().unwrap().2, 15, "{frames} x {len}");
            // Every PES still carries exactly its bytes.
            let payload: Vec<u8> = audio.iter().flat_map(|x| x.4.clone()).collect();
            assert_eq!(payload.len(), frames * (14 + len), "{frames} x {len}");
        }
    }

    /// PCRs of one segment, in order, from its packets.
    fn pcrs(ts: &[u8]) -> Vec<u64> {
        packets(ts)
            .into_iter()
            .filter(|p| p.3.len() >= 7 && p.3[0] & 0x10 != 0)
            .map(|p| read_pcr(&p.3))
            .collect()
    }

    #[test]
    fn a_one_fps_stream_gets_a_pcr_at_least_every_100_ms() {
        let mut mux = TsMuxer::new(Streams {
            video: true,
            audio: false,
        });
        let mut out = Vec::new();
        mux.begin_segment(&mut out, 0);
        for f in 0..4u64 {
            let pts = 900_000 + f * 90_000;
            mux.write_video(&mut out, &[0x11; 500], pts, None, f == 0, false);
        }
        // The next segment's first frame comes a second later.
        mux.fill_pcr_gap(&mut out, pcr_for(900_000 + 4 * 90_000));
        let pcrs = pcrs(&out);
        assert_eq!(pcrs[0], 900_000 - PCR_OFFSET_90K);
        for w in pcrs.windows(2) {
            assert!(w[1] > w[0], "monotonic: {w:?}");
            assert!(w[1] - w[0] <= MAX_PCR_GAP_90K, "gap {w:?}");
        }
        assert!(pcr_for(900_000 + 4 * 90_000) - pcrs.last().unwrap() <= MAX_PCR_GAP_90K);
        // PCR-only packets repeat the counter of the last payload packet.
        let p = packets(&out);
        let mut last_cc = None;
        for x in p.iter().filter(|x| x.0 == VIDEO_PID) {
            if x.4.is_empty() {
                assert_eq!(Some(x.2), last_cc, "adaptation-only counter");
            } else {
                last_cc = Some(x.2);
            }
        }
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
            for last in [false, true] {
                let data = vec![0xabu8; len];
                let mut out = Vec::new();
                mux.write_audio(&mut out, &data, 1234, last);
                let pes: Vec<u8> = packets(&out).into_iter().flat_map(|x| x.4).collect();
                assert_eq!(out.len() % PACKET_LEN, 0);
                let declared = usize::from(u16::from_be_bytes([pes[4], pes[5]]));
                assert_eq!(declared, pes.len() - 6, "PES length for {len}");
                assert_eq!(read_timestamp(&pes[9..14]), 1234);
                assert_eq!(&pes[14..], &data[..], "payload of {len}");
            }
        }
    }
}
