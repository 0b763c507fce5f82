//! The program-specific information hlsd's segments carry: a PAT naming
//! program 1 and its PMT (ISO/IEC 13818-1, 2.4.4), each in one packet.

use super::packet::{Streams, AUDIO_PID, PACKET_LEN, PMT_PID, VIDEO_PID};

/// ISO/IEC 13818-1 table 2-34 stream types.
pub(super) const STREAM_TYPE_H264: u8 = 0x1b;
pub(super) const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;
/// MPEG-1 audio (ISO/IEC 11172-3: MP3 at 32, 44.1 and 48 kHz).
pub(super) const STREAM_TYPE_MPEG1_AUDIO: u8 = 0x03;
/// MPEG-2 audio (ISO/IEC 13818-3: MP3 at the half rates, 16 to 24 kHz).
pub(super) const STREAM_TYPE_MPEG2_AUDIO: u8 = 0x04;

pub(super) const MPEG2_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2);

/// A PSI section (already holding its CRC) in one packet, padded with 0xff.
pub(super) fn psi_packet(pid: u16, section: &[u8]) -> [u8; PACKET_LEN] {
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
pub(super) fn pat_section() -> Vec<u8> {
    let mut s = vec![0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0x00, 0x00];
    s.extend_from_slice(&[0x00, 0x01]);
    s.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
    with_crc(s)
}

/// The program map table of program 1, its audio (if any) of
/// `audio_type` (one of the `STREAM_TYPE_*` audio types).
pub(super) fn pmt_section(streams: Streams, audio_type: u8) -> Vec<u8> {
    let mut es = Vec::new();
    if streams.video {
        es.push(STREAM_TYPE_H264);
        es.extend_from_slice(&(0xe000 | VIDEO_PID).to_be_bytes());
        es.extend_from_slice(&[0xf0, 0x00]);
    }
    if streams.audio {
        es.push(audio_type);
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
