//! The forward pass of a stride-1 convolution as a direct AVX-512 kernel (x86-64 CPUs that have
//! it), on a zero-padded planar copy of each image.
//!
//! The wide grid of [`super::implicit_gemm`], with channel planes instead of channels-last
//! pixels: the padded image is `X[c][py·Wp + px]`, output position `(oy, ox)` is `q = oy·Wp + ox`,
//! and
//!
//! `Yw[o][q] = Σ_c Σ_ky Σ_kx w[o, c, ky, kx] · X[c][q + ky·Wp + kx]`.
//!
//! Sixteen consecutive `q` are one vector load from a plane, so a tile of 8 output channels × 3
//! vectors of 16 positions stays in 24 of the 32 registers: for every `(c, ky, kx)` the kernel
//! loads 3 vectors of input, broadcasts 8 weights and does 24 multiply-adds. Nothing is packed,
//! and each output channel's row of the wide grid is already its NCHW row (only the `Wp − Wo`
//! columns that are not outputs are dropped). The GEMM path does the same multiply-adds after
//! packing its operands and moving between layouts, and with the output channels as its rows it
//! fills gemm's 64-row micro-kernel only from 64 channels up: this kernel measured 1.3–1.8×
//! faster on 16 and 32 channels, equal or faster from 64 on (docs/performance.md). In the
//! browser (SIMD128, 16 registers) a tile of 4 channels × 2 vectors measured no faster than the
//! GEMM path, so wasm keeps the GEMM.

use std::arch::x86_64::{__m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps};
use std::cell::RefCell;

use super::gemm_conv::{ConvGeometry, for_each_weight};
use super::parallel::for_each_piece;
use super::scratch::{Buffers, with_buffers};

/// `f32` lanes of an AVX-512 register.
const LANES: usize = 16;
/// Output channels of a tile (a layer's channels are padded with zero weights to a multiple).
const CHANNELS: usize = 8;
/// Vectors of positions of a full tile; the last tile of an image has 1 to 3.
const VECTORS: usize = 3;

/// Narrower maps waste too much of the wide grid and of the last vector (a 4×4 map fills 16 of
/// 32 positions), where im2col's GEMM is already compute-bound.
const MIN_OUT_WIDTH: usize = 8;

/// Whether this CPU runs the kernel.
fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Whether [`forward`] computes this convolution: stride 1, maps at least [`MIN_OUT_WIDTH`]
/// wide, any number of channels (the RGB stem too: unlike a GEMM's inner size, the kernel's loop
/// over channels and taps costs nothing per iteration beyond its multiply-adds), on a CPU that
/// has the instructions.
pub(super) fn applies(g: &ConvGeometry) -> bool {
    g.stride == [1, 1] && g.out_width() >= MIN_OUT_WIDTH && available()
}

/// Sizes of one image's padded planes and wide output.
struct Layout {
    /// `Wp`.
    width: usize,
    /// `Hp·Wp`, the distance between two channels' planes.
    plane: usize,
    /// The wide grid's `Ho·Wp` positions rounded up to whole vectors.
    wide: usize,
    /// The padded copy: every plane, plus what the last plane's last vector reads past its end.
    padded_len: usize,
}

fn layout(g: &ConvGeometry) -> Layout {
    let width = g.width + 2 * g.padding[1];
    let plane = (g.height + 2 * g.padding[0]) * width;
    let wide = (g.out_height() * width).next_multiple_of(LANES);
    let reach = (g.kernel[0] - 1) * width + g.kernel[1] - 1;
    Layout { width, plane, wide, padded_len: (g.c_in - 1) * plane + wide + reach }
}

/// The weight grouped by tile: `[O/CHANNELS][C][kh·kw][CHANNELS]`, zero for channels past `O`.
fn weight_tiles(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let taps = g.kernel[0] * g.kernel[1];
    let mut tiles = vec![0.0; g.c_out.div_ceil(CHANNELS) * g.c_in * taps * CHANNELS];
    for_each_weight(g, |[o, c, ky, kx], i| {
        tiles[(((o / CHANNELS) * g.c_in + c) * taps + ky * g.kernel[1] + kx) * CHANNELS + o % CHANNELS] = w[i];
    });
    tiles
}

/// Writes one image `[C, H, W]` into `padded` as zero-bordered planes `Hp × Wp` (and zeros after
/// the last one).
fn pad_planes(g: &ConvGeometry, l: &Layout, image: &[f32], padded: &mut [f32]) {
    let ([pad_h, pad_w], width) = (g.padding, g.width);
    let (planes, rest) = padded.split_at_mut(g.c_in * l.plane);
    for (plane, channel) in planes.chunks_exact_mut(l.plane).zip(image.chunks_exact(g.height * width)) {
        let (top, body) = plane.split_at_mut(pad_h * l.width);
        top.fill(0.0);
        let (rows, bottom) = body.split_at_mut(g.height * l.width);
        for (row, values) in rows.chunks_exact_mut(l.width).zip(channel.chunks_exact(width)) {
            row[..pad_w].fill(0.0);
            row[pad_w..pad_w + width].copy_from_slice(values);
            row[pad_w + width..].fill(0.0);
        }
        bottom.fill(0.0);
    }
    rest.fill(0.0);
}

thread_local! {
    /// One image's padded planes and one tile of channels' wide output.
    static SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `y = conv2d(x, w)` for a stride-1 convolution, shape `[N, O, Ho, Wo]` flattened (correct for
/// any map width; [`applies`] says where it pays).
pub(super) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(g.stride == [1, 1] && available(), "{g:?}");
    let l = layout(g);
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let offsets: Vec<usize> = (0..kh).flat_map(|ky| (0..kw).map(move |kx| ky * l.width + kx)).collect();
    let weights = weight_tiles(g, w);
    let tile_weights = g.c_in * offsets.len() * CHANNELS;
    let (in_plane, out_height, out_width) = (g.height * g.width, g.out_height(), g.out_width());
    let mut y = vec![0.0; g.output_len()];
    for_each_piece(&mut y, g.c_out * out_height * out_width, |image, out| {
        with_buffers(&SCRATCH, [l.padded_len, CHANNELS * l.wide], |padded, wide| {
            pad_planes(g, &l, &x[image * g.c_in * in_plane..][..g.c_in * in_plane], padded);
            for (group, out_channels) in out.chunks_mut(CHANNELS * out_height * out_width).enumerate() {
                let weights = &weights[group * tile_weights..][..tile_weights];
                let mut start = 0;
                while start < l.wide {
                    // SAFETY: the CPU was checked above; `tile` checks its bounds.
                    start += unsafe {
                        match (l.wide - start) / LANES {
                            1 => tile::<1>(padded, l.plane, g.c_in, &offsets, weights, start, wide, l.wide),
                            2 => tile::<2>(padded, l.plane, g.c_in, &offsets, weights, start, wide, l.wide),
                            _ => tile::<VECTORS>(padded, l.plane, g.c_in, &offsets, weights, start, wide, l.wide),
                        }
                    };
                }
                for (channel, wide_channel) in out_channels.chunks_exact_mut(out_height * out_width).zip(wide.chunks_exact(l.wide)) {
                    for (row, wide_row) in channel.chunks_exact_mut(out_width).zip(wide_channel.chunks(l.width)) {
                        row.copy_from_slice(&wide_row[..out_width]);
                    }
                }
            }
        })
    });
    y
}

/// `wide[j·wide_len + q] = Σ_c Σ_tap weights[(c·taps + tap)·CHANNELS + j] · padded[c·plane + q + offsets[tap]]`
/// for the tile's `V·16` positions `q` from `start` on and its channels `j`. Returns `V·16`.
///
/// # Safety
/// The CPU has AVX-512 ([`available`]).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const V: usize>(padded: &[f32], plane: usize, c_in: usize, offsets: &[usize], weights: &[f32], start: usize, wide: &mut [f32], wide_len: usize) -> usize {
    let reach = offsets.iter().max().copied().unwrap_or(0);
    assert!(c_in > 0 && (c_in - 1) * plane + start + V * LANES + reach <= padded.len());
    assert!(weights.len() >= c_in * offsets.len() * CHANNELS && (CHANNELS - 1) * wide_len + start + V * LANES <= wide.len());
    let mut sums = [[_mm512_setzero_ps(); V]; CHANNELS];
    let mut weight = weights.as_ptr();
    for c in 0..c_in {
        // SAFETY (all pointer reads and writes below): inside the slices, by the assertions above.
        let channel = unsafe { padded.as_ptr().add(c * plane + start) };
        for &offset in offsets {
            let mut inputs: [__m512; V] = [_mm512_setzero_ps(); V];
            for (v, input) in inputs.iter_mut().enumerate() {
                *input = unsafe { _mm512_loadu_ps(channel.add(offset + v * LANES)) };
            }
            for (j, channel_sums) in sums.iter_mut().enumerate() {
                let w = _mm512_set1_ps(unsafe { *weight.add(j) });
                for (sum, input) in channel_sums.iter_mut().zip(inputs) {
                    *sum = _mm512_fmadd_ps(input, w, *sum);
                }
            }
            weight = unsafe { weight.add(CHANNELS) };
        }
    }
    for (j, channel_sums) in sums.iter().enumerate() {
        for (v, sum) in channel_sums.iter().enumerate() {
            unsafe { _mm512_storeu_ps(wide.as_mut_ptr().add(j * wide_len + start + v * LANES), *sum) };
        }
    }
    V * LANES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::assert_slices_close as assert_close;
    use crate::kernel::gemm_conv::tests::{reference, stride_one_geometries, test_values};
    use crate::kernel::scratch::poison;

    #[test]
    fn forward_matches_the_definition() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        for g in stride_one_geometries() {
            poison(&SCRATCH);
            let (x, w) = (test_values(g.input_len(), 1), test_values(g.weight_len(), 2));
            assert_close(&forward(&g, &x, &w), &reference(&g, &x, &w), &format!("{g:?}"));
        }
    }
}
