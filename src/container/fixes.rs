//! Which bytes to put in place of a file's own as it is read, where a
//! container's header or layout makes GStreamer 1.22's demuxer refuse or
//! cut short a file ffmpeg plays ([`source_patches`]). The file itself is
//! never written: a probe on the source element's pad
//! (`crate::library::passes::source_fix`) rewrites the buffers that hold
//! the patched bytes, so the Discoverer, the passes and the producers all
//! read the corrected file.

use super::input::Input;
use super::patch::SourcePatch;
use super::{asf, mp4_header, ts};
use std::path::Path;

/// The patches the file at `path` needs, by its kind: an MP4 whose movie
/// header claims far more than its tracks ([`mp4_header`]), an MPEG-TS
/// whose first PAT and PMT come after its streams' first packets
/// ([`ts`]), an ASF whose header lies ([`asf`]). Empty for a file that
/// needs none or that cannot be read.
pub fn source_patches(path: &Path) -> Vec<SourcePatch> {
    let Some(mut input) = Input::open(path) else {
        return Vec::new();
    };
    let mut head = [0u8; 16];
    let Some(got) = input.read_upto(0, &mut head) else {
        return Vec::new();
    };
    let head = &head[..got];
    if head.len() >= 8
        && matches!(
            &head[4..8],
            b"ftyp" | b"moov" | b"free" | b"wide" | b"skip" | b"mdat"
        )
    {
        return mp4_header::header_patch(&mut input).into_iter().collect();
    }
    if head.first() == Some(&ts::SYNC) {
        return ts::psi_first_patch(&mut input).into_iter().collect();
    }
    if head.starts_with(&asf::HEADER_GUID) {
        return asf::header_patches(&mut input);
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_writes_only_the_bytes_a_buffer_holds() {
        let p = SourcePatch {
            offset: 10,
            bytes: vec![1, 2, 3, 4],
        };
        let mut buf = [0u8; 4];
        p.apply_to(8, &mut buf);
        assert_eq!(buf, [0, 0, 1, 2]);
        let mut buf = [0u8; 4];
        p.apply_to(12, &mut buf);
        assert_eq!(buf, [3, 4, 0, 0]);
        let mut buf = [9u8; 4];
        p.apply_to(14, &mut buf);
        assert_eq!(buf, [9; 4]);
        let mut buf = [0u8; 8];
        p.apply_to(9, &mut buf);
        assert_eq!(buf, [0, 1, 2, 3, 4, 0, 0, 0]);
    }
}
