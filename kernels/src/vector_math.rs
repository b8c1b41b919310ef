//! `exp` and the normal distribution's CDF in branch-free `f32` arithmetic, so that the loops of
//! the GELU and softmax kernels that call them vectorise (libm's `expf` and `erff`, which burn's
//! CPU backend calls per element, are scalar function calls), sums in vector lanes, and
//! [`vectorized!`], which compiles such loops for the widest vectors the CPU has.

/// Defines `fn name(args) -> ret { body }` so that on x86-64 the body is compiled three times,
/// for AVX-512, for AVX2 and for the baseline (SSE2: four lanes), and each call runs the widest
/// the CPU has. The compiler vectorises the body's loops, but only to the instructions it may
/// assume, and Rust's x86-64 target assumes SSE2; the loops of [`exp`] and
/// [`normal_cdf_and_gaussian`] took four times the instructions there. In wasm32 the body is
/// compiled once, with SIMD128 (`.cargo/config.toml`).
macro_rules! vectorized {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the instructions the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use vectorized;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 in two parts (Cody–Waite): `n·LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding it rounds a float of magnitude below 2²² to an integer, which then sits in
/// the low bits of the sum's mantissa.
const ROUND: f32 = 12_582_912.0;
/// Below this, `eˣ` is under `f32`'s smallest normal number and is returned as 0.
const EXP_MIN: f32 = -87.33;
const EXP_MAX: f32 = 88.3;

/// `eˣ`, within 2 units in the last place on `[-87.33, 88.3]`; 0 below, `e^88.3` above.
/// `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, so `eˣ = 2ⁿ·eʳ`, `eʳ` by its Taylor series to `r⁷`
/// (the remainder is below 6·10⁻⁹ relative), `2ⁿ` written into the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let clamped = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    // The integer n, two's complement in the low bits: bits(ROUND + n) − bits(ROUND).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let two_to_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < EXP_MIN { 0.0 } else { p * two_to_n }
}

/// `1/√(2π)`, the standard normal density at 0.
pub const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `Φ(x)`, the standard normal CDF, and `e^(−x²/2)`: `Φ(x) = ½·erfc(−x/√2)`, with `erfc` of
/// Numerical Recipes' Chebyshev fit (`erfcc`, relative error below 1.2·10⁻⁷ for every argument,
/// so the small values of the lower tail keep their precision):
/// `erfc(z) = t·exp(−z² + P(t))`, `t = 1/(1 + z/2)` for `z ≥ 0`, and `erfc(−z) = 2 − erfc(z)`.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn normal_cdf_and_gaussian(x: f32) -> (f32, f32) {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77;
    for c in
        [-0.822_152_23, 1.488_515_87, -1.135_203_98, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_68, -1.265_512_23]
    {
        p = p * t + c;
    }
    let gaussian = exp(-0.5 * x * x);
    // ½·erfc(|x|/√2) = ½·t·e^(−z²)·e^P(t), with e^(−z²) = e^(−x²/2).
    let tail = 0.5 * t * gaussian * exp(p);
    (if x < 0.0 { tail } else { 1.0 - tail }, gaussian)
}

/// `Σ f(a[i], b[i])` in eight lanes, which the compiler keeps in vector registers (a plain `f32`
/// sum may not be reordered, so it would not vectorise).
#[inline(always)]
pub fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(&x, &y)| f(x, y)).sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for i in 0..8 {
            lanes[i] += f(ca[i], cb[i]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst: f64 = 0.0;
        for i in -87_000..=88_000 {
            let x = i as f32 * 1e-3 + 1.7e-4;
            let (ours, reference) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - reference) / reference).abs());
        }
        // Two units in the last place of f32 are 2.4·10⁻⁷ relative.
        assert!(worst < 2.4e-7, "worst relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!((exp(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 3.0);
    }

    /// Φ against the erfc of the `libm` crate (double precision), and the values every table
    /// gives: Φ(0) = ½, Φ(1) = 0.841 344 75, Φ(−3) = 0.001 349 898.
    #[test]
    fn normal_cdf_matches_erfc() {
        for i in -1200..=1200 {
            let x = i as f32 * 0.01 + 3e-4;
            let (cdf, gaussian) = normal_cdf_and_gaussian(x);
            let half_square = 0.5 * (x as f64).powi(2);
            // Relative, so that the lower tail (Φ(−12) ≈ 2·10⁻³³) is as exact as the middle; f32's
            // rounding of x²/2 alone moves e^(−x²/2) by up to 6·10⁻⁸·x²/2 relative.
            let tolerance = 3e-7 * (1.0 + half_square);
            let reference = 0.5 * libm::erfc(-(x as f64) / std::f64::consts::SQRT_2);
            assert!(((cdf as f64 - reference) / reference).abs() < tolerance, "Φ({x}) = {cdf}, not {reference}");
            let reference = (-half_square).exp();
            assert!(((gaussian as f64 - reference) / reference).abs() < tolerance, "e^(−x²/2) at {x}: {gaussian}, not {reference}");
        }
        assert!((normal_cdf_and_gaussian(0.0).0 - 0.5).abs() < 1e-7);
        assert!((f64::from(normal_cdf_and_gaussian(1.0).0) - 0.841_344_75).abs() < 1e-7);
        assert!((normal_cdf_and_gaussian(-3.0).0 - 0.001_349_898).abs() < 1e-9);
        assert_eq!(normal_cdf_and_gaussian(-30.0).0, 0.0);
        assert_eq!(normal_cdf_and_gaussian(30.0).0, 1.0);
    }
}
