//! 2-D convolution on plain `f32` slices (NCHW), all three passes as im2col/col2im + one GEMM:
//! the path for shapes and CPUs that the direct and implicit-GEMM kernels do not take, and the
//! input gradient of strided layers.
//!
//! With `x` of shape `[N, C, H, W]`, `w` of shape `[O, C, kh, kw]` and `P = Ho·Wo` output
//! positions, the column matrix of a chunk of `n` images is `cols[C·kh·kw, n·P]` (row `(c, ky, kx)`,
//! column `(image, oy, ox)`; zero where the kernel overlaps the padding). Then
//!
//! - forward:         `y[O, n·P]        = w[O, C·kh·kw] · cols`
//! - weight gradient: `dw[O, C·kh·kw]  += dy[O, n·P] · colsᵀ`
//! - input gradient:  `dcols           = wᵀ · dy[O, n·P]`, then col2im adds `dcols` back into `dx`
//!
//! Every product is one large GEMM per chunk. burn-flex (0.22) computes the weight gradient as a
//! convolution with batch and channels swapped (a GEMM only `kh·kw` = 9 columns wide) and the input
//! gradient as a scalar transposed convolution, which made a ResNet's backward pass 3× its forward.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::geometry::{ConvGeometry, valid_range};
use super::matmul::matmul;
use crate::parallel::{for_each_piece, map_parts, threads};
use crate::scratch::{Buffers, output, with_buffers, written};
use crate::vector_math::vectorized;

/// Elements of the column matrix built at once: 16 MiB, so a chunk stays near the caches'
/// reach while its GEMM is still large (a 4×4 map of 512 channels takes 56 images).
#[cfg(not(test))]
const COLUMN_BUDGET: usize = 1 << 22;
/// Unit tests use small problems; this budget splits their batches into several chunks of one
/// or more images, so the chunked paths (accumulation across chunks included) are the ones tested.
#[cfg(test)]
const COLUMN_BUDGET: usize = 1500;

/// The images of each chunk: as many as fit the column budget, at least one.
fn chunks(g: &ConvGeometry) -> impl Iterator<Item = std::ops::Range<usize>> {
    let per_chunk = (COLUMN_BUDGET / (g.patch() * g.positions()).max(1)).clamp(1, g.batch.max(1));
    let batch = g.batch;
    (0..batch).step_by(per_chunk).map(move |start| start..(start + per_chunk).min(batch))
}

thread_local! {
    /// The column matrix and a transposed output chunk.
    static SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Calls `f(images, n, cols, rows)` once per chunk of images (see [`chunks`]), where
/// `n` = images × output positions, with scratch for the `[patch, n]` column matrix (`cols`) and
/// for `[c_out, n]` rows of output channels (`rows`), contents unspecified.
fn for_each_chunk(g: &ConvGeometry, mut f: impl FnMut(std::ops::Range<usize>, usize, &mut [f32], &mut [f32])) {
    for images in chunks(g) {
        let n = images.len() * g.positions();
        with_buffers(&SCRATCH, [g.patch() * n, g.c_out * n], |cols, rows| f(images, n, cols, rows));
    }
}

/// Weights with fewer elements than this get their gradient's sum split across threads.
const SPLIT_SUM_BELOW: usize = 1 << 16;

/// Fills `cols[patch, n·P]` from the images `images` of `x`.
fn im2col(g: &ConvGeometry, x: &[f32], images: std::ops::Range<usize>, cols: &mut [f32]) {
    let (ho, wo, positions) = (g.out_height(), g.out_width(), g.positions());
    let [kh, kw] = g.kernel;
    let plane = g.height * g.width;
    let row_len = images.len() * positions;
    for_each_piece(cols, row_len, |row, out| {
        let (c, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
        let (y_lo, y_hi) = valid_range(ky, g.padding[0], g.stride[0], g.height, ho);
        let (x_lo, x_hi) = valid_range(kx, g.padding[1], g.stride[1], g.width, wo);
        for (image, out) in images.clone().zip(out.chunks_mut(positions)) {
            let src = &x[(image * g.c_in + c) * plane..][..plane];
            out[..y_lo * wo].fill(0.0);
            out[y_hi * wo..].fill(0.0);
            for oy in y_lo..y_hi {
                let src_row = &src[(oy * g.stride[0] + ky - g.padding[0]) * g.width..][..g.width];
                let dst = &mut out[oy * wo..][..wo];
                dst[..x_lo].fill(0.0);
                dst[x_hi..].fill(0.0);
                let first = x_lo * g.stride[1] + kx - g.padding[1];
                if g.stride[1] == 1 {
                    dst[x_lo..x_hi].copy_from_slice(&src_row[first..first + (x_hi - x_lo)]);
                } else {
                    for (d, s) in dst[x_lo..x_hi].iter_mut().zip(src_row[first..].iter().step_by(g.stride[1])) {
                        *d = *s;
                    }
                }
            }
        }
    });
}

/// Adds `cols[patch, n·P]` back into the images `images` of `dx` (the adjoint of [`im2col`]).
fn col2im(g: &ConvGeometry, cols: &[f32], images: std::ops::Range<usize>, dx: &mut [f32]) {
    let plane = g.height * g.width;
    let first_image = images.start;
    let chunk = &mut dx[first_image * g.c_in * plane..images.end * g.c_in * plane];
    // One task per input plane: every write to a plane comes from its own kh·kw rows.
    for_each_piece(chunk, plane, |index, dst| col2im_plane(g, cols, images.len(), index / g.c_in, index % g.c_in, dst));
}

vectorized! {
    /// [`col2im`] for input channel `c` of image `image` of a chunk of `images`.
    fn col2im_plane(g: &ConvGeometry, cols: &[f32], images: usize, image: usize, c: usize, dst: &mut [f32]) {
        let (ho, wo, positions) = (g.out_height(), g.out_width(), g.positions());
        let [kh, kw] = g.kernel;
        let row_len = images * positions;
        for ky in 0..kh {
            let (y_lo, y_hi) = valid_range(ky, g.padding[0], g.stride[0], g.height, ho);
            for kx in 0..kw {
                let (x_lo, x_hi) = valid_range(kx, g.padding[1], g.stride[1], g.width, wo);
                let row = (c * kh + ky) * kw + kx;
                let src = &cols[row * row_len + image * positions..][..positions];
                for oy in y_lo..y_hi {
                    let dst_row = &mut dst[(oy * g.stride[0] + ky - g.padding[0]) * g.width..][..g.width];
                    let first = x_lo * g.stride[1] + kx - g.padding[1];
                    let src_row = &src[oy * wo + x_lo..oy * wo + x_hi];
                    if g.stride[1] == 1 {
                        // Contiguous: a loop the compiler vectorises.
                        for (d, s) in dst_row[first..first + src_row.len()].iter_mut().zip(src_row) {
                            *d += *s;
                        }
                    } else {
                        for (d, s) in dst_row[first..].iter_mut().step_by(g.stride[1]).zip(src_row) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}

/// Copies the images `images` of an NCHW-like `[N, O, P]` tensor into `[O, n·P]`.
fn gather_channels(g: &ConvGeometry, y: &[f32], images: std::ops::Range<usize>, out: &mut [f32]) {
    let positions = g.positions();
    let row_len = images.len() * positions;
    for_each_piece(out, row_len, |o, row| {
        for (image, dst) in images.clone().zip(row.chunks_mut(positions)) {
            dst.copy_from_slice(&y[(image * g.c_out + o) * positions..][..positions]);
        }
    });
}

/// The inverse of [`gather_channels`]: `[O, n·P]` into the images `images` of `[N, O, P]`.
fn scatter_channels(g: &ConvGeometry, rows: &[f32], images: std::ops::Range<usize>, y: &mut [MaybeUninit<f32>]) {
    let positions = g.positions();
    let row_len = images.len() * positions;
    let first_image = images.start;
    let chunk = &mut y[first_image * g.c_out * positions..images.end * g.c_out * positions];
    for_each_piece(chunk, positions, |index, dst| {
        let (image, o) = (index / g.c_out, index % g.c_out);
        dst.write_copy_of_slice(&rows[o * row_len + image * positions..][..positions]);
    });
}

/// `y = conv2d(x, w)`, shape `[N, O, Ho, Wo]` flattened.
pub fn forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let patch = g.patch();
    let mut y = output(g.output_len());
    for_each_chunk(g, |images, n, cols, rows| {
        im2col(g, x, images.clone(), cols);
        matmul(true, [g.c_out, n, patch], rows, [n, 1], false, w, [patch, 1], cols, [n, 1]);
        scatter_channels(g, rows, images, &mut y);
    });
    // SAFETY: the chunks cover the batch, and `scatter_channels` writes each chunk's images whole.
    unsafe { written(y) }
}

/// The gradient of the loss with respect to `w`, given `dy` (the gradient with respect to `y`).
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let patch = g.patch();
    let mut dw = vec![0.0; g.weight_len()];
    // The GEMM parallelises over its output only, so a small weight (16 × 144 in ResNet-18 at
    // width 16) would leave one thread doing the whole long sum over positions; split that sum.
    let parts = if g.weight_len() < SPLIT_SUM_BELOW { threads() } else { 1 };
    for_each_chunk(g, |images, n, cols, rows| {
        im2col(g, x, images.clone(), cols);
        gather_channels(g, dy, images, rows);
        // colsᵀ as the right operand: element (k, j) = cols[j, k].
        if parts == 1 {
            matmul(true, [g.c_out, patch, n], &mut dw, [patch, 1], true, rows, [n, 1], cols, [1, n]);
            return;
        }
        let partial_sums = map_parts(parts, |part| {
            let (start, end) = (n * part / parts, n * (part + 1) / parts);
            let mut partial = vec![0.0; g.weight_len()];
            matmul(false, [g.c_out, patch, end - start], &mut partial, [patch, 1], false, &rows[start..], [n, 1], &cols[start..], [1, n]);
            partial
        });
        for partial in partial_sums {
            dw.iter_mut().zip(partial).for_each(|(d, p)| *d += p);
        }
    });
    dw
}

/// The gradient of the loss with respect to `x`, given `dy`: GEMM, then col2im.
pub fn input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let patch = g.patch();
    let mut dx = vec![0.0; g.input_len()];
    for_each_chunk(g, |images, n, cols, rows| {
        gather_channels(g, dy, images.clone(), rows);
        // wᵀ as the left operand: element (p, o) = w[o, p].
        matmul(true, [patch, n, g.c_out], cols, [n, 1], false, w, [1, patch], rows, [n, 1]);
        col2im(g, cols, images, &mut dx);
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::testing::{assert_weight_gradient, geometries, reference, test_values};
    use crate::testing::assert_slices_close as assert_close;

    #[test]
    fn forward_matches_the_definition() {
        for g in geometries() {
            let (x, w) = (test_values(g.input_len(), 1), test_values(g.weight_len(), 2));
            assert_close(&forward(&g, &x, &w), &reference(&g, &x, &w), &format!("{g:?}"));
        }
    }

    /// The weight gradient is the adjoint of the forward map in `w` (entry by entry), and the
    /// input gradient (GEMM + col2im for every geometry here, strided ones included) is the
    /// adjoint in `x`.
    #[test]
    fn gradients_are_the_partial_derivatives() {
        for g in geometries() {
            let (x, w, dy) = (test_values(g.input_len(), 3), test_values(g.weight_len(), 4), test_values(g.output_len(), 5));
            assert_weight_gradient(&g, &x, &dy, &weight_grad(&g, &x, &dy));
            crate::conv::testing::assert_input_gradient(&g, &w, &dy, &input_grad(&g, &w, &dy));
        }
    }

    #[test]
    fn chunks_cover_the_batch_once() {
        let chunks: Vec<_> = chunks(&geometries()[5]).collect();
        assert_eq!(chunks, [0..2, 2..4, 4..5], "648 column elements per image, budget {COLUMN_BUDGET}");
    }
}
