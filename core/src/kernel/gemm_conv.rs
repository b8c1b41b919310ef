//! 2-D convolution on plain `f32` slices (NCHW), all three passes as im2col/col2im + one GEMM.
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
//! gradient as a scalar transposed convolution, which made a ResNet's backward pass 3× its forward
//! (docs/performance.md).

use std::cell::RefCell;
use std::mem::MaybeUninit;

#[cfg(target_arch = "x86_64")]
use super::direct_conv;
use super::implicit_gemm;
use super::math::vectorized;
use super::parallel::{for_each_piece, map_parts, threads};
use super::scratch::{Buffers, output, with_buffers, written};

/// Elements of the column matrix built at once: 16 MiB, so a chunk stays near the caches'
/// reach while its GEMM is still large (a 4×4 map of 512 channels takes 56 images).
#[cfg(not(test))]
const COLUMN_BUDGET: usize = 1 << 22;
/// Unit tests use small problems; this budget splits their batches into several chunks of one
/// or more images, so the chunked paths (accumulation across chunks included) are the ones tested.
#[cfg(test)]
const COLUMN_BUDGET: usize = 1500;

/// Shapes and hyper-parameters of one convolution (groups 1, dilation 1, symmetric padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub height: usize,
    pub width: usize,
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl ConvGeometry {
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    /// Output positions per image (`P`).
    fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Rows of the column matrix: one per input channel and kernel tap.
    fn patch(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    pub(super) fn input_len(&self) -> usize {
        self.batch * self.c_in * self.height * self.width
    }

    pub(super) fn output_len(&self) -> usize {
        self.batch * self.c_out * self.positions()
    }

    pub(super) fn weight_len(&self) -> usize {
        self.c_out * self.patch()
    }

    /// The images of each chunk: as many as fit the column budget, at least one.
    fn chunks(&self) -> impl Iterator<Item = std::ops::Range<usize>> {
        let per_chunk = (COLUMN_BUDGET / (self.patch() * self.positions()).max(1)).clamp(1, self.batch.max(1));
        let batch = self.batch;
        (0..batch).step_by(per_chunk).map(move |start| start..(start + per_chunk).min(batch))
    }
}

/// The output positions `lo..hi` (along one axis) whose input coordinate
/// `out·stride + tap − pad` falls inside `0..size`; the others read zero padding.
pub(super) fn valid_range(tap: usize, pad: usize, stride: usize, size: usize, out_size: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    let hi = (size + pad).saturating_sub(tap).div_ceil(stride);
    (lo.min(out_size), hi.clamp(lo.min(out_size), out_size))
}

thread_local! {
    /// The column matrix and a transposed output chunk.
    static SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Calls `f(images, n, cols, rows)` once per chunk of images (see [`ConvGeometry::chunks`]), where
/// `n` = images × output positions, with scratch for the `[patch, n]` column matrix (`cols`) and
/// for `[c_out, n]` rows of output channels (`rows`), contents unspecified.
fn for_each_chunk(g: &ConvGeometry, mut f: impl FnMut(std::ops::Range<usize>, usize, &mut [f32], &mut [f32])) {
    for images in g.chunks() {
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

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`, each operand given by its
/// row and column strides; on all threads when `parallel`.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    parallel: bool,
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    dst_strides: [usize; 2],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: [usize; 2],
    rhs: &[f32],
    rhs_strides: [usize; 2],
) {
    let reach = |[rs, cs]: [usize; 2], rows: usize, cols: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst.len() >= reach(dst_strides, m, n)
            && lhs.len() >= reach(lhs_strides, m, k.max(1))
            && rhs.len() >= reach(rhs_strides, k.max(1), n)
    );
    #[cfg(not(target_arch = "wasm32"))]
    let parallelism = if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    #[cfg(target_arch = "wasm32")]
    let parallelism = {
        let _ = parallel; // one thread in the browser
        gemm::Parallelism::None
    };
    // SAFETY: the assertion above keeps every index the strides reach inside its slice, and
    // `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_strides[1] as isize,
            dst_strides[0] as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides[1] as isize,
            lhs_strides[0] as isize,
            rhs.as_ptr(),
            rhs_strides[1] as isize,
            rhs_strides[0] as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
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
    assert_eq!((x.len(), w.len()), (g.input_len(), g.weight_len()), "{g:?}");
    #[cfg(target_arch = "x86_64")]
    if direct_conv::applies() {
        return direct_conv::forward(g, x, w);
    }
    if implicit_gemm::applies(g) {
        return implicit_gemm::forward(g, x, w);
    }
    forward_by_im2col(g, x, w)
}

/// [`forward`] as im2col + GEMM, for shapes (and CPUs) the other kernels do not take.
fn forward_by_im2col(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
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
    assert_eq!((x.len(), dy.len()), (g.input_len(), g.output_len()), "{g:?}");
    #[cfg(target_arch = "x86_64")]
    if direct_conv::applies() {
        return direct_conv::weight_grad(g, x, dy);
    }
    if implicit_gemm::applies(g) {
        return implicit_gemm::weight_grad(g, x, dy);
    }
    weight_grad_by_im2col(g, x, dy)
}

/// [`weight_grad`] as im2col + GEMM, for shapes (and CPUs) the other kernels do not take.
fn weight_grad_by_im2col(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
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

/// The gradient of the loss with respect to `x`, given `dy`.
pub fn input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!((w.len(), dy.len()), (g.weight_len(), g.output_len()), "{g:?}");
    if g.stride == [1, 1] && g.padding[0] < g.kernel[0] && g.padding[1] < g.kernel[1] {
        return input_grad_as_convolution(g, w, dy);
    }
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

/// With stride 1, the input gradient is itself a convolution: `dy` padded by `k − 1 − pad`,
/// convolved with the weight flipped in space and with its channel axes swapped. The forward
/// path's im2col then replaces col2im, whose scattered adds took 5× as long as the GEMM at
/// ResNet's 32×32 maps.
fn input_grad_as_convolution(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    // flipped[c, o] = w[o, c] with its taps in reverse order, which flips both spatial axes.
    let taps = kh * kw;
    let mut flipped = vec![0.0; w.len()];
    for_each_piece(&mut flipped, taps, |row, out| {
        let (c, o) = (row / g.c_out, row % g.c_out);
        out.iter_mut().zip(w[(o * g.c_in + c) * taps..][..taps].iter().rev()).for_each(|(d, s)| *d = *s);
    });
    let transposed = ConvGeometry {
        batch: g.batch,
        c_in: g.c_out,
        height: g.out_height(),
        width: g.out_width(),
        c_out: g.c_in,
        kernel: g.kernel,
        stride: [1, 1],
        padding: [kh - 1 - g.padding[0], kw - 1 - g.padding[1]],
    };
    debug_assert_eq!((transposed.out_height(), transposed.out_width()), (g.height, g.width));
    forward(&transposed, dy, &flipped)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::kernel::assert_slices_close as assert_close;

    /// Stride-1 shapes for the kernels that only take stride 1: rectangular kernels, no padding
    /// and wide padding, odd sizes, channel counts that are no multiple of a SIMD width or a
    /// tile, more output channels than input ones, wide grids of one to many vectors, and five
    /// images over two threads' partial sums.
    pub(in crate::kernel) fn stride_one_geometries() -> Vec<ConvGeometry> {
        let g = |batch, c_in, height, width, c_out, kernel, padding| ConvGeometry {
            batch,
            c_in,
            height,
            width,
            c_out,
            kernel,
            stride: [1, 1],
            padding,
        };
        vec![
            g(3, 3, 7, 6, 4, [3, 3], [1, 1]),
            g(2, 5, 9, 8, 3, [3, 2], [1, 0]),
            g(1, 2, 6, 7, 2, [3, 3], [0, 0]),
            g(2, 3, 5, 5, 4, [5, 5], [2, 2]),
            g(2, 4, 4, 9, 6, [1, 1], [0, 0]),
            g(1, 9, 8, 8, 7, [3, 3], [2, 1]),
            g(5, 3, 5, 5, 4, [3, 3], [1, 1]),
            g(2, 8, 8, 9, 33, [3, 3], [1, 1]),
            g(2, 16, 12, 12, 17, [3, 3], [1, 1]),
            g(1, 8, 20, 11, 24, [3, 3], [1, 1]),
        ]
    }

    /// The definition, one multiply-add at a time.
    pub(in crate::kernel) fn reference(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (ho, wo) = (g.out_height(), g.out_width());
        let [kh, kw] = g.kernel;
        let mut y = vec![0.0; g.output_len()];
        for n in 0..g.batch {
            for o in 0..g.c_out {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut sum = 0.0;
                        for c in 0..g.c_in {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                    let ix = (ox * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                    if (0..g.height as isize).contains(&iy) && (0..g.width as isize).contains(&ix) {
                                        let xi = ((n * g.c_in + c) * g.height + iy as usize) * g.width + ix as usize;
                                        sum += x[xi] * w[((o * g.c_in + c) * kh + ky) * kw + kx];
                                    }
                                }
                            }
                        }
                        y[((n * g.c_out + o) * ho + oy) * wo + ox] = sum;
                    }
                }
            }
        }
        y
    }

    /// Asserts that `dw` is the weight gradient of `g` at `x` and `dy`: entry `i` is
    /// ⟨dy, conv(x, eᵢ)⟩, the adjoint of the forward map in `w`.
    pub(in crate::kernel) fn assert_weight_gradient(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &[f32]) {
        for i in 0..g.weight_len() {
            let mut unit = vec![0.0; g.weight_len()];
            unit[i] = 1.0;
            let expected: f32 = dy.iter().zip(reference(g, x, &unit)).map(|(a, b)| a * b).sum();
            assert!((dw[i] - expected).abs() < 1e-4 * (1.0 + expected.abs()), "{g:?} dw[{i}]: {} vs {expected}", dw[i]);
        }
    }

    /// Deterministic values in [−1, 1).
    pub(in crate::kernel) fn test_values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed * 97)) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    fn geometries() -> Vec<ConvGeometry> {
        let g = |batch, c_in, height, width, c_out, kernel, stride, padding| ConvGeometry {
            batch,
            c_in,
            height,
            width,
            c_out,
            kernel,
            stride,
            padding,
        };
        vec![
            g(2, 3, 7, 6, 4, [3, 3], [1, 1], [1, 1]),
            g(3, 2, 9, 8, 5, [3, 3], [2, 2], [1, 1]),
            g(2, 4, 8, 8, 3, [1, 1], [2, 2], [0, 0]),
            g(1, 2, 11, 10, 2, [7, 7], [2, 2], [3, 3]),
            g(2, 3, 5, 7, 2, [3, 2], [1, 2], [0, 1]),
            g(5, 2, 6, 6, 3, [3, 3], [1, 1], [1, 1]),
            // Forward, weight gradient and (as a convolution of dy) input gradient through
            // `implicit_gemm`.
            g(2, 8, 8, 9, 8, [3, 3], [1, 1], [1, 1]),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for g in geometries() {
            let (x, w) = (test_values(g.input_len(), 1), test_values(g.weight_len(), 2));
            let expected = reference(&g, &x, &w);
            // The dispatching function and, since that may take another kernel, the GEMM path.
            assert_close(&forward(&g, &x, &w), &expected, &format!("{g:?}"));
            assert_close(&forward_by_im2col(&g, &x, &w), &expected, &format!("{g:?} by im2col"));
        }
    }

    /// Both gradients are the adjoints of the forward map: for any `dy`,
    /// ⟨dy, conv(x, w)⟩ = ⟨input_grad(w, dy), x⟩ = ⟨weight_grad(x, dy), w⟩, and the gradients
    /// must be exactly the partial derivatives (checked entry by entry against the reference
    /// convolution of unit vectors).
    #[test]
    fn gradients_are_the_partial_derivatives() {
        for g in geometries() {
            let (x, w, dy) = (test_values(g.input_len(), 3), test_values(g.weight_len(), 4), test_values(g.output_len(), 5));
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
            let dx = input_grad(&g, &w, &dy);
            for i in 0..x.len() {
                let mut unit = vec![0.0; x.len()];
                unit[i] = 1.0;
                let expected = dot(&dy, &reference(&g, &unit, &w));
                assert!((dx[i] - expected).abs() < 1e-4 * (1.0 + expected.abs()), "{g:?} dx[{i}]: {} vs {expected}", dx[i]);
            }
            // The dispatching function and, since that may take another kernel, the GEMM path.
            assert_weight_gradient(&g, &x, &dy, &weight_grad(&g, &x, &dy));
            assert_weight_gradient(&g, &x, &dy, &weight_grad_by_im2col(&g, &x, &dy));
        }
    }

    #[test]
    fn chunks_cover_the_batch_once() {
        let chunks: Vec<_> = geometries()[5].chunks().collect();
        assert_eq!(chunks, [0..2, 2..4, 4..5], "648 column elements per image, budget {COLUMN_BUDGET}");
    }
}
