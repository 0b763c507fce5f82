//! HDR to SDR: the arithmetic of tone mapping a PQ or HLG picture in
//! BT.2020 to SDR BT.709, per pixel, free of GStreamer; the element that
//! runs it in a transcode is `pipeline/tonemap.rs` (`hlsdtonemap`).
//!
//! The steps are those of ffmpeg's reference chain
//! `zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,`
//! `tonemap=tonemap=CURVE:desat=0,zscale=t=bt709:m=bt709:r=tv`:
//!
//! 1. Y'CbCr (BT.2020 non-constant luminance, limited range, 10 bits) to
//!    R'G'B' (ITU-R BT.2020 table 4);
//! 2. R'G'B' to linear light with the PQ EOTF (SMPTE ST 2084) or the HLG
//!    inverse OETF and OOTF (ITU-R BT.2100 table 5), in units of 100
//!    cd/m² (ffmpeg's `REFERENCE_WHITE`, zscale's `npl=100`);
//! 3. BT.2020 primaries to BT.709, in linear light (the 3 × 3 matrix of
//!    ITU-R BT.2087);
//! 4. the curve on the brightest component, `max(R, G, B)`, each
//!    component then scaled by the same factor, so hues do not shift
//!    (ffmpeg's `vf_tonemap.c`): Hable (the Uncharted 2 filmic curve),
//!    Möbius, Reinhard, or ITU-R BT.2390's EETF (Jellyfin's default);
//! 5. the BT.1886 inverse EOTF (the SDR display's gamma 2.4, as zimg's
//!    display-referred `bt709`), and Y'CbCr BT.709 limited range, 8 bits.
//!
//! `peak` is the source's brightest light in units of 100 cd/m²: the
//! mastering display's peak or MaxCLL when known, else 1000 cd/m²
//! (`10.0`).

mod fastmath;
mod mapper;

pub use mapper::Mapper;

/// A tone-mapping curve (`--tonemap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Curve {
    /// ITU-R BT.2390-10 §5.4's EETF: a Hermite spline in PQ space from a
    /// knee to the target's peak.
    Bt2390,
    /// John Hable's filmic curve (as ffmpeg's `hable`).
    Hable,
    /// Möbius, linear up to 0.3, then a Möbius transform (ffmpeg's
    /// `mobius`, parameter 0.3).
    Mobius,
    /// Reinhard's `x / (x + 1)`, scaled so the peak maps to 1 (ffmpeg's
    /// `reinhard`, parameter 0.5).
    Reinhard,
}

/// What a picture is coded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transfer {
    /// SMPTE ST 2084.
    Pq,
    /// ARIB STD-B67 / ITU-R BT.2100 hybrid log-gamma, on a 1000 cd/m²
    /// display (system gamma 1.2).
    Hlg,
}

/// SMPTE ST 2084 constants.
const M1: f64 = 2610.0 / 16384.0;
const M2: f64 = 2523.0 / 4096.0 * 128.0;
const C1: f64 = 3424.0 / 4096.0;
const C2: f64 = 2413.0 / 4096.0 * 32.0;
const C3: f64 = 2392.0 / 4096.0 * 32.0;

/// Light in units of 100 cd/m² (ffmpeg's `REFERENCE_WHITE`).
pub(crate) const REFERENCE_NITS: f64 = 100.0;

/// PQ EOTF: a signal in 0..=1 to cd/m² (0..=10,000).
pub fn pq_to_nits(e: f64) -> f64 {
    let p = e.clamp(0.0, 1.0).powf(1.0 / M2);
    ((p - C1).max(0.0) / (C2 - C3 * p)).powf(1.0 / M1) * 10_000.0
}

/// PQ inverse EOTF: cd/m² to a signal in 0..=1.
pub fn nits_to_pq(nits: f64) -> f64 {
    let y = (nits / 10_000.0).clamp(0.0, 1.0).powf(M1);
    ((C1 + C2 * y) / (1.0 + C3 * y)).powf(M2)
}

/// HLG inverse OETF (BT.2100 table 5): a signal in 0..=1 to scene light
/// in 0..=1.
pub(crate) fn hlg_to_scene(e: f64) -> f64 {
    const A: f64 = 0.178_832_77;
    const B: f64 = 0.284_668_92;
    const C: f64 = 0.559_910_73;
    let e = e.clamp(0.0, 1.0);
    if e <= 0.5 {
        e * e / 3.0
    } else {
        (((e - C) / A).exp() + B) / 12.0
    }
}

/// BT.1886's inverse EOTF with black at 0: display light in 0..=1 to
/// the signal an SDR display shows it from (`L^(1/2.4)`). zimg (ffmpeg's
/// `zscale`) means this by `t=bt709` in its default display-referred
/// mode: the 75 % white bar of the test came out at 151 with it, and at
/// 137 with BT.709's camera OETF.
pub(crate) fn bt1886_inverse(l: f64) -> f64 {
    l.clamp(0.0, 1.0).powf(1.0 / 2.4)
}

/// BT.2020 to BT.709 primaries, linear light (ITU-R BT.2087 §2).
pub(crate) const BT2020_TO_BT709: [[f64; 3]; 3] = [
    [1.6605, -0.5876, -0.0728],
    [-0.1246, 1.1329, -0.0083],
    [-0.0182, -0.1006, 1.1187],
];

/// Hable's filmic curve (ffmpeg's `hable`).
fn hable(x: f64) -> f64 {
    let (a, b, c, d, e, f) = (0.15, 0.50, 0.10, 0.20, 0.02, 0.30);
    (x * (x * a + c * b) + d * e) / (x * (x * a + b) + d * f) - e / f
}

/// Möbius with `j` the end of the linear part (ffmpeg's `mobius`).
fn mobius(x: f64, j: f64, peak: f64) -> f64 {
    if x <= j {
        return x;
    }
    let a = -j * j * (peak - 1.0) / (j * j - 2.0 * j + peak);
    let b = (j * j - 2.0 * j * peak + peak) / (peak - 1.0).max(1e-6);
    (b * b + 2.0 * b * j + j * j) / (b - a) * (x + a) / (x + b)
}

/// BT.2390's EETF on light `x` (units of 100 cd/m²) from a source whose
/// peak is `peak` to a 100 cd/m² display, in PQ space (BT.2390-10 §5.4,
/// black at 0).
fn bt2390(x: f64, peak: f64) -> f64 {
    let source_peak = nits_to_pq(peak * REFERENCE_NITS);
    let e1 = nits_to_pq(x * REFERENCE_NITS) / source_peak;
    let max_lum = nits_to_pq(REFERENCE_NITS) / source_peak;
    let ks = 1.5 * max_lum - 0.5;
    let e2 = if e1 < ks {
        e1
    } else {
        let t = (e1 - ks) / (1.0 - ks);
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * ks
            + (t3 - 2.0 * t2 + t) * (1.0 - ks)
            + (-2.0 * t3 + 3.0 * t2) * max_lum
    };
    pq_to_nits(e2.min(1.0) * source_peak) / REFERENCE_NITS
}

impl Curve {
    /// The curve's name in `--tonemap`.
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::Bt2390 => "bt2390",
            Curve::Hable => "hable",
            Curve::Mobius => "mobius",
            Curve::Reinhard => "reinhard",
        }
    }

    /// Light `x` from a source whose brightest light is `peak` (both in
    /// units of 100 cd/m²) mapped into 0..=1, SDR's range.
    pub fn map(self, x: f64, peak: f64) -> f64 {
        let peak = peak.max(1.0);
        match self {
            Curve::Bt2390 => bt2390(x, peak),
            Curve::Hable => hable(x) / hable(peak),
            Curve::Mobius => mobius(x, 0.3, peak),
            // ffmpeg's parameter 0.5 becomes the offset (1 - 0.5) / 0.5.
            Curve::Reinhard => x / (x + 1.0) * (peak + 1.0) / peak,
        }
    }
}

/// Maps one pixel: Y'CbCr of an HDR picture (BT.2020 non-constant
/// luminance, limited range, `bits` deep) to Y'CbCr BT.709 limited
/// range, 8 bits, as `f64` (not yet rounded), through `curve` with the
/// source's `peak` (units of 100 cd/m²).
pub fn map_pixel(
    ycbcr: [u16; 3],
    bits: u32,
    transfer: Transfer,
    curve: Curve,
    peak: f64,
) -> [f64; 3] {
    let scale = f64::from(1u32 << (bits - 8));
    let y = (f64::from(ycbcr[0]) / scale - 16.0) / 219.0;
    let cb = (f64::from(ycbcr[1]) / scale - 128.0) / 224.0;
    let cr = (f64::from(ycbcr[2]) / scale - 128.0) / 224.0;
    // BT.2020 non-constant luminance (Kr 0.2627, Kb 0.0593).
    let r = y + 1.4746 * cr;
    let b = y + 1.8814 * cb;
    let g = (y - 0.2627 * r - 0.0593 * b) / 0.6780;
    let linear = |e: f64| match transfer {
        Transfer::Pq => pq_to_nits(e) / REFERENCE_NITS,
        Transfer::Hlg => hlg_to_scene(e),
    };
    let mut rgb = [linear(r), linear(g), linear(b)];
    if transfer == Transfer::Hlg {
        // The OOTF on a 1000 cd/m² display: Yd = 1000 Ys^1.2.
        let ys = 0.2627 * rgb[0] + 0.6780 * rgb[1] + 0.0593 * rgb[2];
        let gain = 10.0 * ys.max(1e-9).powf(0.2);
        rgb = rgb.map(|c| c * gain);
    }
    let m = BT2020_TO_BT709;
    let mut out = [0.0; 3];
    for (o, row) in out.iter_mut().zip(m) {
        *o = row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2];
    }
    let sig = out[0].max(out[1]).max(out[2]).max(1e-6);
    let k = curve.map(sig, peak) / sig;
    let [r, g, b] = out.map(|c| bt1886_inverse(c * k));
    // BT.709 (Kr 0.2126, Kb 0.0722), limited range.
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    [
        16.0 + 219.0 * y,
        128.0 + 224.0 * (b - y) / 1.8556,
        128.0 + 224.0 * (r - y) / 1.5748,
    ]
}

/// Maps a picture: `planes` Y, Cb, Cr of a 4:2:0 HDR picture `size`
/// pixels, `bits` deep (one sample per `u16`, planes packed), to 8-bit
/// 4:2:0 BT.709 planes; each chroma sample is the mean of its four
/// pixels' (each pixel taking its 2 × 2 block's chroma).
pub fn map_picture(
    planes: [&[u16]; 3],
    size: (usize, usize),
    bits: u32,
    transfer: Transfer,
    curve: Curve,
    peak: f64,
) -> [Vec<u8>; 3] {
    let (w, h) = size;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = [vec![0u8; w * h], vec![0u8; cw * ch], vec![0u8; cw * ch]];
    let to_u8 = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    for cy in 0..ch {
        for cx in 0..cw {
            let c = cy * cw + cx;
            let (cb, cr) = (planes[1][c], planes[2][c]);
            let (mut sum_cb, mut sum_cr, mut n) = (0.0, 0.0, 0.0);
            for y in (2 * cy)..(2 * cy + 2).min(h) {
                for x in (2 * cx)..(2 * cx + 2).min(w) {
                    let p = map_pixel([planes[0][y * w + x], cb, cr], bits, transfer, curve, peak);
                    out[0][y * w + x] = to_u8(p[0]);
                    sum_cb += p[1];
                    sum_cr += p[2];
                    n += 1.0;
                }
            }
            out[1][c] = to_u8(sum_cb / n);
            out[2][c] = to_u8(sum_cr / n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn pq_round_trips_and_meets_its_reference_points() {
        // ST 2084: 100 cd/m² is 0.5081, 1000 cd/m² 0.7518, 10,000 is 1.
        assert!(close(nits_to_pq(100.0), 0.508_078, 1e-5));
        assert!(close(nits_to_pq(1000.0), 0.751_827, 1e-5));
        assert!(close(nits_to_pq(10_000.0), 1.0, 1e-9));
        for nits in [0.01, 1.0, 203.0, 4000.0] {
            assert!(close(
                pq_to_nits(nits_to_pq(nits)),
                nits,
                nits * 1e-9 + 1e-9
            ));
        }
    }

    #[test]
    fn hlg_meets_its_reference_points() {
        // BT.2100: the signal 0.5 is scene light 1/12; 1 is 1.
        assert!(close(hlg_to_scene(0.5), 1.0 / 12.0, 1e-9));
        assert!(close(hlg_to_scene(1.0), 1.0, 1e-6));
    }

    #[test]
    fn every_curve_keeps_black_maps_the_peak_to_white_and_rises() {
        for curve in [Curve::Bt2390, Curve::Hable, Curve::Mobius, Curve::Reinhard] {
            let peak = 10.0;
            assert!(curve.map(0.0, peak).abs() < 1e-3, "{curve:?}");
            assert!(
                close(curve.map(peak, peak), 1.0, 1e-3),
                "{curve:?}: {}",
                curve.map(peak, peak)
            );
            let mut last = -1.0;
            for i in 0..=100 {
                let v = curve.map(peak * f64::from(i) / 100.0, peak);
                assert!(v >= last - 1e-12, "{curve:?} falls at {i}");
                last = v;
            }
        }
    }

    #[test]
    fn the_curves_give_ffmpegs_values() {
        // ffmpeg's vf_tonemap.c formulas, evaluated by hand for peak 10
        // (1000 cd/m²): Hable at 1 is hable(1)/hable(10); Möbius is the
        // identity up to 0.3; Reinhard at 1 is 1/2 · 11/10.
        // hable(1) = 0.204 / 0.71 - 0.02 / 0.3; hable(10) = 15.504 / 20.06 - 0.02 / 0.3.
        let want = (0.204 / 0.71 - 0.02 / 0.3) / (15.504 / 20.06 - 0.02 / 0.3);
        assert!(close(Curve::Hable.map(1.0, 10.0), want, 1e-9));
        assert!(close(Curve::Mobius.map(0.25, 10.0), 0.25, 1e-12));
        assert!(close(Curve::Reinhard.map(1.0, 10.0), 0.55, 1e-12));
        // BT.2390 leaves what lies under its knee alone: here up to
        // about 30 cd/m² for a 1000 cd/m² source.
        assert!(close(Curve::Bt2390.map(0.2, 10.0), 0.2, 1e-9));
    }

    #[test]
    fn grey_stays_grey_and_the_matrix_keeps_white() {
        // Mid grey and a bright white in 10-bit PQ BT.2020: chroma 512.
        for y in [300u16, 700] {
            for curve in [Curve::Bt2390, Curve::Hable] {
                let p = map_pixel([y, 512, 512], 10, Transfer::Pq, curve, 10.0);
                assert!(
                    close(p[1], 128.0, 0.5) && close(p[2], 128.0, 0.5),
                    "{y}: {p:?}"
                );
            }
        }
        // The matrix's rows sum to 1: white stays white.
        for row in BT2020_TO_BT709 {
            assert!(close(row.iter().sum::<f64>(), 1.0, 1e-3));
        }
    }
}
