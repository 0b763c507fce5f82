//! `log2`, `exp2` and `powf` on `f32` written so that a loop over a row
//! of pixels compiles to vector instructions: no calls into libm, no
//! table lookups and no branches, only arithmetic, comparisons that
//! become selects, and bit casts. The standard library's `f32::powf`
//! calls libm once per value, which keeps the loop scalar.
//!
//! The methods are the textbook ones:
//! - `log2`: the exponent from the bits; the mantissa `m`, brought into
//!   `[√½, √2)`, through `ln m = 2 atanh t` with `t = (m − 1)/(m + 1)`,
//!   `|t| ≤ 0.172`, whose odd series to `t⁹` leaves an error below 10⁻⁷;
//! - `exp2`: `y` split into the nearest integer `n` and `f` in
//!   `[−½, ½]`; `2^f = e^(f ln 2)` by its Taylor series to the 6th power
//!   (relative error about 1.2 · 10⁻⁷ at `|f ln 2| = 0.347`), scaled by
//!   `2^n` built in the exponent bits.
//!
//! Both hold to a few units in the last place of an `f32` over the range
//! a tone mapper uses (unit tests against `f64`).

/// 1.5 · 2²³: adding it rounds an `f32` below 2²² to an integer, which
/// then sits in the low bits of the sum.
const ROUNDER: f32 = 12_582_912.0;

/// `v` rounded to the nearest integer (ties to even), for `v` in
/// `0.0..4_194_304.0` (2²²): `(v + 0.5) as u32` but for exact halves,
/// written with a bit cast so that a loop of it stays vectorised (Rust's
/// saturating `as` makes LLVM check each lane apart).
#[inline(always)]
pub fn round_small(v: f32) -> u32 {
    (v + ROUNDER).to_bits() & 0x003f_ffff
}

/// The base-2 logarithm of `x`; `x` must be a positive normal number
/// (callers keep it at or above `f32::MIN_POSITIVE`).
#[inline(always)]
pub fn log2(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let high = m > std::f32::consts::SQRT_2;
    let m = if high { m * 0.5 } else { m };
    let exponent = exponent + i32::from(high);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = 2.0 + t2 * (2.0 / 3.0 + t2 * (2.0 / 5.0 + t2 * (2.0 / 7.0 + t2 * (2.0 / 9.0))));
    exponent as f32 + t * series * std::f32::consts::LOG2_E
}

/// 2 to the power `y`, for `y` in −126..=126 (clamped there: results
/// below 2⁻¹²⁶ come out as about 2⁻¹²⁶, which callers treat as 0).
#[inline(always)]
pub fn exp2(y: f32) -> f32 {
    let y = y.clamp(-126.0, 126.0);
    let shifted = y + ROUNDER;
    let n = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    let x = (y - (shifted - ROUNDER)) * std::f32::consts::LN_2;
    let poly = 1.0
        + x * (1.0
            + x * (1.0 / 2.0
                + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0))))));
    poly * f32::from_bits(((n + 127) as u32) << 23)
}

/// `x` to the power `p`, for `x ≥ 0` (0 and denormals are taken as
/// `f32::MIN_POSITIVE`, giving about 0 for `p > 0`).
#[inline(always)]
pub fn powf(x: f32, p: f32) -> f32 {
    exp2(p * log2(x.max(f32::MIN_POSITIVE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_small_rounds_to_the_nearest_integer() {
        for (v, want) in [
            (0.0, 0),
            (0.49, 0),
            (0.51, 1),
            (254.6, 255),
            (4095.2, 4095),
            (65535.0, 65535),
        ] {
            assert_eq!(round_small(v), want, "{v}");
        }
    }

    #[test]
    fn log2_and_exp2_hold_to_a_few_ulps() {
        let mut worst_log: f64 = 0.0;
        let mut worst_exp: f64 = 0.0;
        for i in 1..200_000 {
            let x = (i as f32) * 1e-4;
            worst_log = worst_log.max((f64::from(log2(x)) - f64::from(x).log2()).abs());
            let y = (i as f32) * 1e-3 - 100.0;
            let want = f64::from(y).exp2();
            worst_exp = worst_exp.max(((f64::from(exp2(y)) - want) / want).abs());
        }
        assert!(worst_log < 1e-6, "log2 off by {worst_log}");
        assert!(worst_exp < 1e-6, "exp2 off by {worst_exp} (relative)");
    }

    #[test]
    fn powf_matches_the_standard_library_where_tone_mapping_uses_it() {
        for p in [0.2, 1.0 / 2.4, 1.0 / 78.843_75, 6.277_394] {
            for i in 1..=10_000 {
                let x = i as f32 / 10_000.0;
                let want = f64::from(x).powf(f64::from(p));
                let got = f64::from(powf(x, p));
                assert!(
                    (got - want).abs() <= want * 2e-6 + 1e-15,
                    "{x}^{p}: {got} against {want}"
                );
            }
        }
        assert!(powf(0.0, 0.5) < 1e-18, "0 stays about 0");
    }
}
