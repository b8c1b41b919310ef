//! The direct kernels' tiles for AVX2 with FMA (16 registers of 8 lanes).

use std::arch::x86_64::{__m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps};

use super::{Group, Layout, Vectors, forward_tiles, gradient_tiles};

/// AVX2 with FMA: 16 registers of 8 lanes. A forward tile of 6 channels × 2 vectors keeps 12
/// sums, 2 inputs and a broadcast weight in 15 registers; a gradient tile 2 vectors × 6 input channels.
pub(super) struct Avx2;

impl Vectors for Avx2 {
    type V = __m256;
    const LANES: usize = 8;
    const CHANNELS: usize = 6;
    const VECTORS: usize = 2;
    const LANE_CHANNELS: usize = 6;
    const LANE_VECTORS: usize = 2;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        // SAFETY: the caller has checked that the CPU has AVX2 and FMA (the trait's contract); no memory is touched.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> __m256 {
        // SAFETY: the caller has checked the CPU (AVX2 and FMA, the trait's contract) and that `from` starts 8 readable floats.
        unsafe { _mm256_loadu_ps(from) }
    }
    #[inline(always)]
    unsafe fn store(to: *mut f32, v: __m256) {
        // SAFETY: the caller has checked the CPU (AVX2 and FMA, the trait's contract) and that `to` starts 8 writable floats.
        unsafe { _mm256_storeu_ps(to, v) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        // SAFETY: the caller has checked that the CPU has AVX2 and FMA (the trait's contract); no memory is touched.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: the caller has checked that the CPU has AVX2 and FMA (the trait's contract); no memory is touched.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller has checked that the CPU has AVX2 and FMA (the trait's contract); no memory is touched.
        unsafe { _mm256_add_ps(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_tiles(l: &Layout, padded: &[f32], c_in: usize, weights: &[f32], wide: &mut [f32], accumulate: bool) {
        // SAFETY: compiled for the instructions the caller has checked; the tiles check their bounds.
        unsafe { forward_tiles::<Self, 6, 2>(l, padded, c_in, weights, wide, accumulate) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn gradient_tiles(l: &Layout, padded: &[f32], dy_wide: &[f32], padded_out: usize, group: Group, sums: &mut [f32]) {
        let vectors = padded_out / Self::LANES;
        for first in (0..vectors).step_by(2) {
            // SAFETY: compiled for the instructions the caller has checked; the tiles check their bounds.
            unsafe {
                match vectors - first {
                    1 => gradient_tiles::<Self, 1, 8>(l, padded, dy_wide, padded_out, first, group, sums),
                    _ => gradient_tiles::<Self, 2, 6>(l, padded, dy_wide, padded_out, first, group, sums),
                }
            }
        }
    }
}
