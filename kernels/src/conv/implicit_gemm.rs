//! Stride-1 convolutions as implicit GEMMs over one padded, channels-last copy of each image.
//!
//! Store an image zero-padded and channels-last, `X[(py·Wp + px)·C + c]` (`Wp = W + 2·pad`).
//! Output position `(oy, ox)`, read as `q = oy·Wp + ox` on a "wide" grid of `Ho·Wp` positions,
//! finds its input under kernel tap `(ky, kx)` at padded position `q + ky·Wp + kx`. So the
//! `kw·C` inputs of kernel row `ky` are consecutive in memory, starting at `(q + ky·Wp)·C`: the
//! column matrix of kernel row `ky` *is* the padded image, read with a column stride of `C`.
//! With `r = kx·C + c`, the weight rearranged as `Wk[ky][r][o] = w[o, c, ky, kx]` and its
//! gradient as `dWk[o][ky][r]`:
//!
//! - forward:         `Yw[q, o]      = Σ_ky Σ_r Wk[ky][r, o] · X[(q + ky·Wp)·C + r]`
//! - weight gradient: `dWk[o][ky][r] = Σ_q  X[(q + ky·Wp)·C + r] · dYw[o, q]`
//!
//! where `dYw` is `dy` on the wide grid with zeros in the `Wp − Wo` columns that are not
//! outputs. Each is `kh` GEMMs per image of inner size `kw·C`, reading the image in place; im2col
//! instead writes and re-reads `kh·kw` copies of it, which made the thin early layers of a ResNet
//! (16–64 channels on 32×32 maps) memory-bound. The wide grid computes `Wp/Wo − 1` extra columns
//! (6 % at 32×32, 25 % at 8×8), so the path is for maps at least [`MIN_OUT_WIDTH`] wide. The input
//! gradient of a stride-1 convolution is itself a stride-1 convolution ([`super::input_grad`]),
//! so it takes this path too. Images are independent: one task per image, one thread per task.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::geometry::{ConvGeometry, interleave};
use super::matmul::matmul;
use crate::parallel::{for_each_piece, map_parts, sum_of_parts, threads};
use crate::scratch::{Buffers, output, with_buffers, written};

/// Narrower maps waste too much of the wide grid (50 % at 4×4, where im2col's GEMM is already
/// compute-bound).
const MIN_OUT_WIDTH: usize = 8;
/// Fewer input channels make each GEMM's inner size (`kw·C`) too short (the RGB stem: 9).
const MIN_CHANNELS: usize = 8;

/// Whether a convolution takes this path.
pub fn applies(g: &ConvGeometry) -> bool {
    g.stride == [1, 1] && g.c_in >= MIN_CHANNELS && g.out_width() >= MIN_OUT_WIDTH
}

/// The padded image's sizes: width `Wp`, the wide grid's positions `Ho·Wp`, and the positions
/// of the channels-last copy (`Hp·Wp` plus `kw − 1` that the last wide row's unused columns reach
/// past the bottom-right corner).
struct Padded {
    width: usize,
    wide_positions: usize,
    positions: usize,
}

fn padded_sizes(g: &ConvGeometry) -> Padded {
    let width = g.width + 2 * g.padding[1];
    let height = g.height + 2 * g.padding[0];
    Padded { width, wide_positions: g.out_height() * width, positions: height * width + g.kernel[1] - 1 }
}

thread_local! {
    /// One image's padded copy and its wide output (or output gradient).
    static SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Pixels to rows, the inverse of [`interleave`]: `rows[c·row_stride + x] = pixels[x·channels + c]`,
/// eight channels at a time.
fn deinterleave(pixels: &[f32], channels: usize, len: usize, rows: &mut [MaybeUninit<f32>], row_stride: usize) {
    let pixels = &pixels[..len * channels];
    let mut channel_rows = rows.chunks_mut(row_stride).map(|row| &mut row[..len]);
    let grouped = channels / 8 * 8;
    for c in (0..grouped).step_by(8) {
        let mut dst: [&mut [MaybeUninit<f32>]; 8] = std::array::from_fn(|_| channel_rows.next().expect("a row per channel"));
        for (x, pixel) in pixels.chunks_exact(channels).enumerate() {
            for (row, value) in dst.iter_mut().zip(&pixel[c..c + 8]) {
                row[x].write(*value);
            }
        }
    }
    for (c, row) in (grouped..channels).zip(channel_rows) {
        for (value, pixel) in row.iter_mut().zip(pixels.chunks_exact(channels)) {
            value.write(pixel[c]);
        }
    }
}

/// Writes one image `[C, H, W]` into `padded`, channels-last with zero borders.
fn pad_channels_last(g: &ConvGeometry, image: &[f32], padded: &mut [f32]) {
    let (c_in, width, plane) = (g.c_in, g.width, g.height * g.width);
    let padded_width = padded_sizes(g).width;
    let row_start = |y: usize| ((y + g.padding[0]) * padded_width + g.padding[1]) * c_in;
    padded[..row_start(0)].fill(0.0);
    for y in 0..g.height {
        let start = row_start(y);
        interleave(&image[y * width..], plane, c_in, width, &mut padded[start..], c_in);
        // This row's right border, the next row's left one (or the bottom rows after the last).
        let gap_end = if y + 1 < g.height { row_start(y + 1) } else { padded.len() };
        padded[start + width * c_in..gap_end].fill(0.0);
    }
}

/// `Wk[ky][kx·C + c][o] = w[o, c, ky, kx]`, one row of `O` values per tap and input channel.
fn kernel_rows(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let taps = g.kernel[0] * g.kernel[1];
    let mut rows = vec![0.0; w.len()];
    for_each_piece(&mut rows, g.c_out, |row, out| {
        let (tap, c) = (row / g.c_in, row % g.c_in);
        out.iter_mut().enumerate().for_each(|(o, value)| *value = w[(o * g.c_in + c) * taps + tap]);
    });
    rows
}

/// `y = conv2d(x, w)` for a stride-1 convolution, shape `[N, O, Ho, Wo]` flattened.
pub(super) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    debug_assert_eq!(g.stride, [1, 1]);
    let p = padded_sizes(g);
    let (c_in, c_out, [kh, kw]) = (g.c_in, g.c_out, g.kernel);
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let row_len = kw * c_in;
    let rows = kernel_rows(g, w);
    let mut y = output(g.output_len());
    for_each_piece(&mut y, c_out * out_height * out_width, |image, out| {
        with_buffers(&SCRATCH, [p.positions * c_in, p.wide_positions * c_out], |padded, wide| {
            pad_channels_last(g, &x[image * c_in * g.height * g.width..][..c_in * g.height * g.width], padded);
            // wide[q·O + o] (+)= Σ_r Wk[ky][r, o] · X[(q + ky·Wp)·C + r]
            for ky in 0..kh {
                let lhs = &rows[ky * row_len * c_out..][..row_len * c_out];
                let rhs = &padded[ky * p.width * c_in..];
                matmul(false, [c_out, p.wide_positions, row_len], wide, [1, c_out], ky > 0, lhs, [1, c_out], rhs, [1, c_in]);
            }
            // The wide grid, channels-last, into NCHW without the unused columns.
            for oy in 0..out_height {
                deinterleave(&wide[oy * p.width * c_out..], c_out, out_width, &mut out[oy * out_width..], out_height * out_width);
            }
        })
    });
    // SAFETY: each image's task writes every channel's rows of its output.
    unsafe { written(y) }
}

/// The gradient of the loss with respect to `w` of a stride-1 convolution, given `dy`.
///
/// The GEMM's rows are the `kw·C` inputs of a kernel row and its columns the output channels,
/// the transpose of the forward's: with the output channels as rows, 16- and 32-channel layers
/// filled a fraction of the AVX-512 micro-kernel's rows, and this order measured 1.2–1.6× faster
/// on them (equal from 64 channels up; docs/performance.md).
pub(super) fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    debug_assert_eq!(g.stride, [1, 1]);
    let p = padded_sizes(g);
    let (c_in, c_out, [kh, kw]) = (g.c_in, g.c_out, g.kernel);
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let (row_len, out_plane, in_plane) = (kw * c_in, out_height * out_width, g.height * g.width);
    // One partial sum per thread over its share of the images, added up at the end.
    let parts = threads().clamp(1, g.batch.max(1));
    let partial_sums = map_parts(parts, |part| {
        let mut rows = vec![0.0; c_out * kh * row_len];
        with_buffers(&SCRATCH, [p.positions * c_in, c_out * p.wide_positions], |padded, wide| {
            for (done, image) in (g.batch * part / parts..g.batch * (part + 1) / parts).enumerate() {
                pad_channels_last(g, &x[image * c_in * in_plane..][..c_in * in_plane], padded);
                // dYw[o·Ho·Wp + q]: dy on the wide grid, zero in the columns that are not outputs.
                let dy_image = &dy[image * c_out * out_plane..][..c_out * out_plane];
                for (channel, wide_channel) in dy_image.chunks_exact(out_plane).zip(wide.chunks_exact_mut(p.wide_positions)) {
                    for (row, wide_row) in channel.chunks_exact(out_width).zip(wide_channel.chunks_exact_mut(p.width)) {
                        wide_row[..out_width].copy_from_slice(row);
                        wide_row[out_width..].fill(0.0);
                    }
                }
                // dWk[o][ky][r] (+)= Σ_q X[(q + ky·Wp)·C + r] · dYw[o·Ho·Wp + q]
                for ky in 0..kh {
                    let dst = &mut rows[ky * row_len..];
                    let lhs = &padded[ky * p.width * c_in..];
                    matmul(
                        false,
                        [row_len, c_out, p.wide_positions],
                        dst,
                        [1, kh * row_len],
                        done > 0,
                        lhs,
                        [1, c_in],
                        wide,
                        [1, p.wide_positions],
                    );
                }
            }
        });
        rows
    });
    let rows = sum_of_parts(partial_sums);
    // dw[o, c, ky, kx] = dWk[o][ky][kx·C + c], one piece of kh·kw taps per (o, c).
    let taps = kh * kw;
    let mut dw = vec![0.0; rows.len()];
    for_each_piece(&mut dw, taps, |row, out| {
        let (o, c) = (row / c_in, row % c_in);
        out.iter_mut().enumerate().for_each(|(tap, value)| *value = rows[(o * taps + tap) * c_in + c]);
    });
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::testing::{assert_weight_gradient, reference, stride_one_geometries, test_values};
    use crate::scratch::poison;
    use crate::testing::assert_slices_close as assert_close;

    #[test]
    fn forward_matches_the_definition() {
        for g in stride_one_geometries() {
            poison(&SCRATCH);
            let (x, w) = (test_values(g.input_len(), 1), test_values(g.weight_len(), 2));
            assert_close(&forward(&g, &x, &w), &reference(&g, &x, &w), &format!("{g:?}"));
        }
    }

    /// The weight gradient is the adjoint of the forward map in `w`: entry `i` is ⟨dy, conv(x, eᵢ)⟩.
    /// dy is nonzero everywhere, so values leaking in from the wide grid's unused columns would show.
    #[test]
    fn weight_gradient_is_the_partial_derivative() {
        for g in stride_one_geometries() {
            poison(&SCRATCH);
            let (x, dy) = (test_values(g.input_len(), 3), test_values(g.output_len(), 4));
            assert_weight_gradient(&g, &x, &dy, &weight_grad(&g, &x, &dy));
        }
    }

    /// ResNet's stride-1 layers from 8 input channels and 8-pixel maps up take this path; the RGB
    /// stem, strided layers and 4×4 maps do not.
    #[test]
    fn applies_to_wide_maps_with_enough_channels() {
        let g = |c_in, size, stride| ConvGeometry {
            batch: 1,
            c_in,
            height: size,
            width: size,
            c_out: 8,
            kernel: [3, 3],
            stride: [stride, stride],
            padding: [1, 1],
        };
        assert!(applies(&g(16, 32, 1)) && applies(&g(8, 8, 1)));
        assert!(!applies(&g(3, 32, 1)) && !applies(&g(16, 32, 2)) && !applies(&g(64, 4, 1)));
    }
}
