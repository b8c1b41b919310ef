//! The direct kernels' tiles for AVX-512 (32 registers of 16 lanes).

use std::arch::x86_64::{__m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps};

use super::{Group, Layout, Planes, Vectors, forward_tiles, gradient_tiles};

/// AVX-512: 32 registers of 16 lanes. A forward tile of 8 channels × 3 vectors keeps 24 sums in
/// registers; with image lanes 12 channels × 2 vectors (one position of 32 images; 8 × 2 measured
/// the same overall, 3–4 % slower on the 8×8 layers); a gradient tile 4 vectors of output
/// channels × 6 input channels.
pub(super) struct Avx512;

impl Vectors for Avx512 {
    type V = __m512;
    const LANES: usize = 16;
    const CHANNELS: usize = 8;
    const VECTORS: usize = 3;
    const LANE_CHANNELS: usize = 12;
    const LANE_VECTORS: usize = 2;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: the caller has checked that the CPU has AVX-512F (the trait's contract); no memory is touched.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> __m512 {
        // SAFETY: the caller has checked the CPU (AVX-512F, the trait's contract) and that `from` starts 16 readable floats.
        unsafe { _mm512_loadu_ps(from) }
    }
    #[inline(always)]
    unsafe fn store(to: *mut f32, v: __m512) {
        // SAFETY: the caller has checked the CPU (AVX-512F, the trait's contract) and that `to` starts 16 writable floats.
        unsafe { _mm512_storeu_ps(to, v) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        // SAFETY: the caller has checked that the CPU has AVX-512F (the trait's contract); no memory is touched.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the caller has checked that the CPU has AVX-512F (the trait's contract); no memory is touched.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller has checked that the CPU has AVX-512F (the trait's contract); no memory is touched.
        unsafe { _mm512_add_ps(a, b) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn forward_tiles(l: &Layout, padded: &[f32], c_in: usize, weights: &[f32], wide: &mut [f32], accumulate: bool) {
        // SAFETY: compiled for the instructions the caller has checked; the tiles check their bounds.
        unsafe {
            if l.planes == Planes::ImageLanes {
                forward_tiles::<Self, 12, 2>(l, padded, c_in, weights, wide, accumulate)
            } else {
                forward_tiles::<Self, 8, 3>(l, padded, c_in, weights, wide, accumulate)
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn gradient_tiles(l: &Layout, padded: &[f32], dy_wide: &[f32], padded_out: usize, group: Group, sums: &mut [f32]) {
        let vectors = padded_out / Self::LANES;
        for first in (0..vectors).step_by(4) {
            // SAFETY: compiled for the instructions the caller has checked; the tiles check their bounds.
            unsafe {
                match vectors - first {
                    1 => gradient_tiles::<Self, 1, 8>(l, padded, dy_wide, padded_out, first, group, sums),
                    2 => gradient_tiles::<Self, 2, 8>(l, padded, dy_wide, padded_out, first, group, sums),
                    3 => gradient_tiles::<Self, 3, 8>(l, padded, dy_wide, padded_out, first, group, sums),
                    _ => gradient_tiles::<Self, 4, 6>(l, padded, dy_wide, padded_out, first, group, sums),
                }
            }
        }
    }
}
