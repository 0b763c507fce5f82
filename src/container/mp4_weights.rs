//! What the stretch between two key frames of an MP4 weighs when its
//! tracks are not interleaved (all its audio after all its video, as some
//! writers leave it): the file's offsets then say nothing of the audio a
//! segment carries, so each track's sample sizes (`stsz`) are summed by
//! decode time (`stts`) instead (ISO/IEC 14496-12 §8.6.1.2, §8.7.3).
//! Pure, and every table is untrusted: a table shorter than it says gives
//! nothing.

use super::index::scale;
use super::input::bytes::be32;
use super::isobmff::{children, find, path};

/// Samples of one track a table may list before it is refused (as the
/// key-frame reader's bound).
const MAX_SAMPLES: u64 = 80_000_000;

/// One track's bytes by decode time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    /// Each sample's decode time (ns) and the bytes of every sample up to
    /// and including it, in decode order.
    through: Vec<(u64, u64)>,
}

impl Timed {
    /// The samples of the `trak` box payload `trak`, from its media
    /// timescale (`mdhd`), decode-time deltas (`stts`) and sizes (`stsz`);
    /// `None` when one is missing, short, or the two disagree on the count.
    pub fn of_trak(trak: &[u8]) -> Option<Timed> {
        let mdhd = path(trak, &[b"mdia", b"mdhd"])?;
        let timescale = if *mdhd.first()? == 1 {
            u64::from(be32(mdhd, 20)?)
        } else {
            u64::from(be32(mdhd, 12)?)
        };
        if timescale == 0 {
            return None;
        }
        let stbl = children(path(trak, &[b"mdia", b"minf", b"stbl"])?)?;
        let stts = find(&stbl, b"stts")?.get(4..)?;
        let stsz = find(&stbl, b"stsz")?;
        let (constant, count) = (be32(stsz, 4)?, u64::from(be32(stsz, 8)?));
        if count > MAX_SAMPLES || (constant == 0 && 12 + count * 4 > stsz.len() as u64) {
            return None;
        }
        let mut through = Vec::with_capacity(count as usize);
        let (mut dts, mut bytes) = (0u64, 0u64);
        for run in 0..be32(stts, 0)? as usize {
            let at = 4 + run.checked_mul(8)?;
            let (samples, delta) = (be32(stts, at)?, u64::from(be32(stts, at + 4)?));
            for _ in 0..samples {
                let n = through.len();
                if n as u64 >= count {
                    return None;
                }
                let size = match constant {
                    0 => be32(stsz, 12 + n * 4)?,
                    c => c,
                };
                bytes = bytes.checked_add(u64::from(size))?;
                through.push((scale(dts, 1_000_000_000, timescale)?, bytes));
                dts = dts.checked_add(delta)?;
            }
        }
        (through.len() as u64 == count).then_some(Timed { through })
    }

    /// Bytes of the samples decoded before `t_ns`.
    pub fn before(&self, t_ns: u64) -> u64 {
        let n = self.through.partition_point(|s| s.0 < t_ns);
        n.checked_sub(1).map_or(0, |i| self.through[i].1)
    }

    /// Bytes of every sample.
    pub fn total(&self) -> u64 {
        self.through.last().map_or(0, |s| s.1)
    }
}

/// Stand-ins for the key frames' offsets, and the data's end: at key
/// frame `k` (running time, video bytes before it, from `video`), the
/// bytes of every track decoded before it; the end, every track's bytes.
/// A segment then weighs the bytes of its own time, as an interleaved
/// file's offsets say. `None` unless the stand-ins grow from one key
/// frame to the next.
pub fn weights(
    video: &[(u64, u64)],
    video_total: u64,
    others: &[Timed],
) -> Option<(Vec<u64>, u64)> {
    let offsets: Vec<u64> = video
        .iter()
        .map(|(t, before)| before + others.iter().map(|o| o.before(*t)).sum::<u64>())
        .collect();
    let end = video_total + others.iter().map(Timed::total).sum::<u64>();
    let grows = offsets.windows(2).all(|w| w[0] < w[1]) && offsets.last().is_some_and(|o| *o < end);
    grows.then_some((offsets, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box: size, type, payload.
    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    /// A `trak` payload of a track at `timescale` with `stts` runs and
    /// `stsz` sizes.
    fn trak(timescale: u32, runs: &[(u32, u32)], sizes: &[u32]) -> Vec<u8> {
        let mut mdhd = vec![0u8; 12];
        mdhd.extend_from_slice(&timescale.to_be_bytes());
        mdhd.extend_from_slice(&[0; 8]);
        let mut stts = vec![0u8; 4];
        stts.extend_from_slice(&(runs.len() as u32).to_be_bytes());
        for (n, d) in runs {
            stts.extend_from_slice(&n.to_be_bytes());
            stts.extend_from_slice(&d.to_be_bytes());
        }
        let mut stsz = vec![0u8; 8];
        stsz.extend_from_slice(&(sizes.len() as u32).to_be_bytes());
        for s in sizes {
            stsz.extend_from_slice(&s.to_be_bytes());
        }
        let stbl = [boxed(b"stts", &stts), boxed(b"stsz", &stsz)].concat();
        let minf = boxed(b"stbl", &stbl);
        let mdia = [boxed(b"mdhd", &mdhd), boxed(b"minf", &minf)].concat();
        boxed(b"mdia", &mdia)
    }

    #[test]
    fn a_track_is_summed_by_decode_time() {
        // 1000 ticks a second, samples every 0.5 s of 10, 20, 30, 40 bytes.
        let t = Timed::of_trak(&trak(1000, &[(4, 500)], &[10, 20, 30, 40])).unwrap();
        assert_eq!(t.before(0), 0);
        assert_eq!(t.before(1), 10);
        assert_eq!(t.before(1_000_000_000), 30);
        assert_eq!(t.before(1_000_000_001), 60);
        assert_eq!(t.total(), 100);
    }

    #[test]
    fn tables_that_disagree_or_run_short_give_nothing() {
        assert_eq!(
            Timed::of_trak(&trak(1000, &[(5, 500)], &[1, 2, 3, 4])),
            None
        );
        assert_eq!(
            Timed::of_trak(&trak(1000, &[(3, 500)], &[1, 2, 3, 4])),
            None
        );
        assert_eq!(Timed::of_trak(&trak(0, &[(1, 500)], &[1])), None);
        let mut cut = trak(1000, &[(4, 500)], &[10, 20, 30, 40]);
        cut.truncate(cut.len() - 6);
        assert_eq!(Timed::of_trak(&cut), None);
    }

    #[test]
    fn each_key_frame_weighs_every_track_before_it() {
        // Audio: 100 bytes every 1 s from 0.
        let audio = Timed::of_trak(&trak(1, &[(10, 1)], &[100; 10])).unwrap();
        // Video key frames at 0, 4 and 6 s with 0, 4000 and 9000 bytes
        // before them; 12000 in all.
        let keys = [(0, 0), (4_000_000_000, 4000), (6_000_000_000, 9000)];
        let (offsets, end) = weights(&keys, 12_000, &[audio]).unwrap();
        assert_eq!(offsets, [0, 4400, 9600]);
        assert_eq!(end, 13_000);
        // Key frames that do not grow say nothing.
        assert_eq!(weights(&[(0, 0), (1, 0)], 10, &[]), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Timed::of_trak(&bytes);
        }
    }
}
