//! [`Mapper`]: [`super::map_pixel`]'s arithmetic made fast enough for a
//! pipeline.
//!
//! A picture is mapped row by row, each row in four passes over arrays
//! of `f32`, so that the passes without lookups compile to vector
//! instructions:
//! 1. Y'CbCr to R'G'B', and each component to linear light through a
//!    table of the transfer indexed by the signal (4096 entries: 16 KiB,
//!    it stays in the L1 cache);
//! 2. for HLG, the OOTF (vectorised: [`super::fastmath`]'s `powf`);
//! 3. the BT.2020 to BT.709 matrix and the brightest component
//!    (vectorised), then the curve's gain on it through a table indexed
//!    by light;
//! 4. the gain, then the BT.1886 inverse EOTF through a table indexed by
//!    the square root of the light (4096 entries: the root flattens the
//!    gamma's steep start, so nearest entries stay within 0.1 of an
//!    8-bit step where a table by light needed 64 Ki entries, too many
//!    for the L1 cache), and Y'CbCr BT.709 (vectorised).
//!
//! Table indexes and 8-bit samples are rounded with a bit cast
//! ([`super::fastmath::round_small`]): Rust's saturating `as` kept each
//! of those loops scalar, which had cost more than the lookups.
//!
//! Measured on this machine (`cargo bench --bench tonemap`, a 1080p
//! picture, one core): 13–17.5 ms a picture by curve, 0.30–0.55× the
//! time of ffmpeg's float-RGB `zscale`/`tonemap` chain on one thread;
//! the per-pixel form with 64 Ki-entry tables that this replaces took
//! 78 ms. See `docs/benchmarks.md` ("HDR") for the transcode.

use super::fastmath::{powf, round_small};
use super::{hlg_to_scene, pq_to_nits, Curve, Transfer, BT2020_TO_BT709, REFERENCE_NITS};

/// Entries of the table of the transfer (by signal).
const LUT: usize = 4096;
/// Entries of the table of the curve's gain (by light).
const FINE: usize = 65536;

/// The tables and constants of one tone mapping: `bits`-deep input in
/// one transfer, mapped by one curve from one peak. It gives
/// [`super::map_pixel`]'s values within a fraction of an 8-bit step
/// (`tests`).
#[derive(Debug, Clone)]
pub struct Mapper {
    bits: u32,
    transfer: Transfer,
    to_linear: Box<[f32; LUT]>,
    gain: Box<[f32; FINE]>,
    gain_scale: f32,
    gamma: Box<[f32; LUT]>,
}

/// One row's working arrays, each as long as the row (in pixels), kept
/// across the rows of a picture.
#[derive(Debug, Default)]
struct Rows {
    /// The chroma's offsets of R', G' and B' from Y', per pixel.
    offsets: [Vec<f32>; 3],
    /// Linear R, G, B, then the same after the gamut matrix.
    light: [Vec<f32>; 3],
    /// Table indexes of R, G, B (pass 1), then of the gain (pass 3).
    index: [Vec<u32>; 3],
    /// The curve's gain per pixel.
    gain: Vec<f32>,
    /// The output Y', Cb, Cr per pixel (8-bit scale, not rounded).
    out: [Vec<f32>; 3],
}

impl Rows {
    fn new(width: usize) -> Rows {
        let row = || vec![0.0f32; width];
        Rows {
            offsets: [row(), row(), row()],
            light: [row(), row(), row()],
            index: [vec![0; width], vec![0; width], vec![0; width]],
            gain: row(),
            out: [row(), row(), row()],
        }
    }
}

/// Sets `offsets` from one chroma pair (`bits`-deep Cb, Cr): BT.2020
/// non-constant luminance (Kr 0.2627, Kb 0.0593), limited range.
#[inline(always)]
fn chroma_offsets(cb: u16, cr: u16, bits: u32) -> [f32; 3] {
    let scale = 1.0 / (1u32 << (bits - 8)) as f32;
    let cb = (f32::from(cb) * scale - 128.0) * (1.0 / 224.0);
    let cr = (f32::from(cr) * scale - 128.0) * (1.0 / 224.0);
    let dr = 1.4746 * cr;
    let db = 1.8814 * cb;
    [dr, -(0.2627 * dr + 0.0593 * db) * (1.0 / 0.6780), db]
}

/// An 8-bit sample from a value on the 8-bit scale.
#[inline(always)]
fn to_u8(v: f32) -> u8 {
    round_small(v.clamp(0.0, 255.0)) as u8
}

impl Mapper {
    /// The tables for `bits`-deep input in `transfer`, mapped by `curve`
    /// from a source whose brightest light is `peak` (units of 100 cd/m²).
    pub fn new(bits: u32, transfer: Transfer, curve: Curve, peak: f64) -> Mapper {
        let peak = peak.max(1.0);
        let n = (LUT - 1) as f64;
        let to_linear = Box::new(std::array::from_fn(|i| {
            let e = i as f64 / n;
            (match transfer {
                Transfer::Pq => pq_to_nits(e) / REFERENCE_NITS,
                Transfer::Hlg => hlg_to_scene(e),
            }) as f32
        }));
        // The most light a component can have: PQ's 10,000 cd/m² (HLG's
        // OOTF: 1000), times 1.66, the gamut matrix's largest gain.
        let top = match transfer {
            Transfer::Pq => 100.0f64,
            Transfer::Hlg => 10.0,
        }
        .max(peak)
            * 1.7;
        let fine = (FINE - 1) as f64;
        let gain = Box::new(std::array::from_fn(|i| {
            let x = (i as f64 / fine * top).max(1e-6);
            (curve.map(x, peak) / x) as f32
        }));
        Mapper {
            bits,
            transfer,
            to_linear,
            gain,
            gain_scale: (fine / top) as f32,
            gamma: Box::new(std::array::from_fn(|i| {
                let s = i as f64 / (LUT - 1) as f64;
                super::bt1886_inverse(s * s) as f32
            })),
        }
    }

    /// Maps one row: `luma` (`bits`-deep Y') with `rows.offsets` set
    /// for each of its pixels, into `rows.out` (Y', Cb, Cr on the 8-bit
    /// scale, not rounded).
    fn row(&self, luma: &[u16], rows: &mut Rows) {
        let n = luma.len();
        let [dr, dg, db] = &rows.offsets;
        let (dr, dg, db) = (&dr[..n], &dg[..n], &db[..n]);
        let [lr, lg, lb] = &mut rows.light;
        let (lr, lg, lb) = (&mut lr[..n], &mut lg[..n], &mut lb[..n]);
        let gain = &mut rows.gain[..n];
        let [ir, ig, ib] = &mut rows.index;
        let (ir, ig, ib) = (&mut ir[..n], &mut ig[..n], &mut ib[..n]);
        let [oy, ocb, ocr] = &mut rows.out;
        let (oy, ocb, ocr) = (&mut oy[..n], &mut ocb[..n], &mut ocr[..n]);
        let y_mul = 1.0 / ((1u32 << (self.bits - 8)) as f32 * 219.0);
        let y_add = -16.0 / 219.0;

        // 1. R'G'B' to linear light: the table's indexes (vectorised),
        // then the lookups (the mask keeps them in the table unchecked).
        let to_index = |e: f32| round_small(e.clamp(0.0, 1.0) * (LUT - 1) as f32);
        for i in 0..n {
            let y = f32::from(luma[i]) * y_mul + y_add;
            ir[i] = to_index(y + dr[i]);
            ig[i] = to_index(y + dg[i]);
            ib[i] = to_index(y + db[i]);
        }
        let table = &*self.to_linear;
        for i in 0..n {
            lr[i] = table[ir[i] as usize & (LUT - 1)];
            lg[i] = table[ig[i] as usize & (LUT - 1)];
            lb[i] = table[ib[i] as usize & (LUT - 1)];
        }
        // 2. HLG's OOTF on a 1000 cd/m² display: Yd = 1000 Ys^1.2.
        if self.transfer == Transfer::Hlg {
            for i in 0..n {
                let ys = 0.2627 * lr[i] + 0.6780 * lg[i] + 0.0593 * lb[i];
                let g = 10.0 * powf(ys.max(1e-9), 0.2);
                lr[i] *= g;
                lg[i] *= g;
                lb[i] *= g;
            }
        }
        // 3. Gamut, then the curve's gain on the brightest component.
        let m = BT2020_TO_BT709.map(|row| row.map(|v| v as f32));
        for i in 0..n {
            let (r, g, b) = (lr[i], lg[i], lb[i]);
            lr[i] = m[0][0] * r + m[0][1] * g + m[0][2] * b;
            lg[i] = m[1][0] * r + m[1][1] * g + m[1][2] * b;
            lb[i] = m[2][0] * r + m[2][1] * g + m[2][2] * b;
            let top = lr[i].max(lg[i]).max(lb[i]).max(1e-6);
            ir[i] = round_small((top * self.gain_scale).min((FINE - 1) as f32));
        }
        let table = &*self.gain;
        for i in 0..n {
            gain[i] = table[ir[i] as usize & (FINE - 1)];
        }
        // 4. The gain, BT.1886's inverse EOTF and Y'CbCr BT.709 (Kr
        // 0.2126, Kb 0.0722), limited range.
        let to_index = |l: f32| round_small(l.clamp(0.0, 1.0).sqrt() * (LUT - 1) as f32);
        for i in 0..n {
            let k = gain[i];
            ir[i] = to_index(lr[i] * k);
            ig[i] = to_index(lg[i] * k);
            ib[i] = to_index(lb[i] * k);
        }
        let table = &*self.gamma;
        for i in 0..n {
            lr[i] = table[ir[i] as usize & (LUT - 1)];
            lg[i] = table[ig[i] as usize & (LUT - 1)];
            lb[i] = table[ib[i] as usize & (LUT - 1)];
        }
        for i in 0..n {
            let (r, g, b) = (lr[i], lg[i], lb[i]);
            let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
            oy[i] = 16.0 + 219.0 * y;
            ocb[i] = 128.0 + 224.0 / 1.8556 * (b - y);
            ocr[i] = 128.0 + 224.0 / 1.5748 * (r - y);
        }
    }

    /// One pixel, as [`super::map_pixel`]: Y', Cb, Cr on the 8-bit scale,
    /// not rounded.
    pub fn pixel(&self, ycbcr: [u16; 3]) -> [f32; 3] {
        let mut rows = Rows::new(1);
        let offsets = chroma_offsets(ycbcr[1], ycbcr[2], self.bits);
        for (row, v) in rows.offsets.iter_mut().zip(offsets) {
            row[0] = v;
        }
        self.row(&ycbcr[..1], &mut rows);
        rows.out.map(|o| o[0])
    }

    /// A 4:2:0 picture of `size` pixels: `input` Y, Cb, Cr samples,
    /// packed (Y `w × h`, Cb and Cr half that each way, rounded up), to
    /// `output` 8-bit planes of the same shape. Each chroma sample is the
    /// mean of its block's pixels' (each pixel taking its block's
    /// chroma).
    pub fn picture(&self, size: (usize, usize), input: [&[u16]; 3], output: [&mut [u8]; 3]) {
        let (w, h) = size;
        let cw = w.div_ceil(2);
        let [out_y, out_cb, out_cr] = output;
        // Rows of an even length: an odd row's last pixel stands twice
        // in its chroma pair, so each pair's mean is its pixels' mean.
        let mut rows = Rows::new(2 * cw);
        let mut offsets = [vec![0.0f32; cw], vec![0.0f32; cw], vec![0.0f32; cw]];
        let mut sums = [vec![0.0f32; cw], vec![0.0f32; cw]];
        for cy in 0..h.div_ceil(2) {
            let chroma = cy * cw..(cy + 1) * cw;
            let (cb, cr) = (&input[1][chroma.clone()], &input[2][chroma.clone()]);
            let [dr, dg, db] = &mut offsets;
            for c in 0..cw {
                [dr[c], dg[c], db[c]] = chroma_offsets(cb[c], cr[c], self.bits);
            }
            for (row, per_pair) in rows.offsets.iter_mut().zip(&offsets) {
                for (pair, v) in row.chunks_exact_mut(2).zip(per_pair) {
                    pair[0] = *v;
                    pair[1] = *v;
                }
            }
            sums.iter_mut().for_each(|s| s.fill(0.0));
            let lines = (2 * cy)..(2 * cy + 2).min(h);
            let count = lines.len();
            for y in lines {
                let line = y * w..(y + 1) * w;
                self.row(&input[0][line.clone()], &mut rows);
                for (o, v) in out_y[line].iter_mut().zip(&rows.out[0]) {
                    *o = to_u8(*v);
                }
                for (sum, out) in sums.iter_mut().zip(&mut rows.out[1..]) {
                    if w % 2 == 1 {
                        out[w] = out[w - 1];
                    }
                    for (s, pair) in sum.iter_mut().zip(out.chunks_exact(2)) {
                        *s += pair[0] + pair[1];
                    }
                }
            }
            let scale = 1.0 / (2 * count) as f32;
            for (plane, sum) in [&mut *out_cb, &mut *out_cr].into_iter().zip(&sums) {
                for (o, s) in plane[chroma.clone()].iter_mut().zip(sum) {
                    *o = to_u8(s * scale);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::map_picture;
    use super::super::map_pixel;
    use super::*;

    #[test]
    fn the_fast_form_gives_the_arithmetics_values() {
        for transfer in [Transfer::Pq, Transfer::Hlg] {
            for curve in [Curve::Bt2390, Curve::Hable, Curve::Mobius, Curve::Reinhard] {
                let fast = Mapper::new(10, transfer, curve, 10.0);
                let mut worst = 0f64;
                for y in (64..=940).step_by(13) {
                    for (cb, cr) in [(512, 512), (300, 700), (700, 400), (450, 560)] {
                        let want = map_pixel([y, cb, cr], 10, transfer, curve, 10.0);
                        let got = fast.pixel([y, cb, cr]);
                        for (a, b) in want.iter().zip(got) {
                            worst = worst.max((a - f64::from(b)).abs());
                        }
                    }
                }
                assert!(worst < 0.75, "{transfer:?} {curve:?}: {worst}");
            }
        }
    }

    #[test]
    fn a_picture_with_odd_sides_matches_the_arithmetic_sample_for_sample() {
        let (w, h) = (7usize, 5usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let y: Vec<u16> = (0..w * h).map(|i| 64 + (i as u16 * 37) % 876).collect();
        let cb: Vec<u16> = (0..cw * ch).map(|i| 300 + (i as u16 * 53) % 400).collect();
        let cr: Vec<u16> = (0..cw * ch).map(|i| 700 - (i as u16 * 41) % 400).collect();
        let want = map_picture([&y, &cb, &cr], (w, h), 10, Transfer::Pq, Curve::Hable, 10.0);
        let fast = Mapper::new(10, Transfer::Pq, Curve::Hable, 10.0);
        let mut got = [vec![0u8; w * h], vec![0u8; cw * ch], vec![0u8; cw * ch]];
        let [gy, gcb, gcr] = &mut got;
        fast.picture((w, h), [&y, &cb, &cr], [gy, gcb, gcr]);
        for (plane, (a, b)) in want.iter().zip(&got).enumerate() {
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                assert!(
                    a.abs_diff(*b) <= 1,
                    "plane {plane} sample {i}: {a} against {b}"
                );
            }
        }
    }
}
