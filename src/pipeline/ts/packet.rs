//! The transport stream's fixed layout: packet size, hlsd's PIDs (ffmpeg's),
//! the PCR schedule and the 33-bit clock, and which streams a program
//! carries.

/// Bytes in one transport stream packet.
pub const PACKET_LEN: usize = 188;
pub(super) const PAYLOAD_LEN: usize = PACKET_LEN - 4;

pub(super) const PAT_PID: u16 = 0;
/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 stream (also the PCR PID).
pub const VIDEO_PID: u16 = 0x100;
/// PID of the AAC stream.
pub const AUDIO_PID: u16 = 0x101;

/// The PCR runs this far behind the DTS: 125 ms, gst-plugins-bad's
/// `mpegtsmux` value (`TSMUX_PCR_OFFSET`), so a decoder has its buffer
/// time before each frame is due.
pub const PCR_OFFSET_90K: u64 = 90_000 / 8;

/// The most two PCRs may lie apart: 100 ms (ISO/IEC 13818-1, 2.7.2).
pub const MAX_PCR_GAP_90K: u64 = 9_000;

/// The step between PCRs written to fill a longer gap, and the most the
/// last of them lies before the next PES's: 90 ms, under
/// [`MAX_PCR_GAP_90K`] with room for rounding.
pub(super) const PCR_FILL_STEP_90K: u64 = 8_100;

/// Timestamps and PCR bases are 33-bit counters.
pub(super) const TS_MASK: u64 = (1 << 33) - 1;

/// `b - a` on the 33-bit timestamp circle (`a` not after `b`).
pub(super) fn ticks_between(a: u64, b: u64) -> u64 {
    b.wrapping_sub(a) & TS_MASK
}

/// Which elementary streams the program carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    /// An H.264 byte-stream on [`VIDEO_PID`].
    pub video: bool,
    /// An ADTS AAC stream on [`AUDIO_PID`].
    pub audio: bool,
}

/// The PCR written with a PES whose decode time is `dts` (its PTS when
/// it has no DTS), in 90 kHz ticks.
pub fn pcr_for(dts: u64) -> u64 {
    dts.wrapping_sub(PCR_OFFSET_90K) & TS_MASK
}
