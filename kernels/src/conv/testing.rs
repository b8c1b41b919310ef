//! Test helpers shared by the convolution paths: the definition one multiply-add at a time, the
//! gradients checked entry by entry against it, and geometries that exercise every path.

use super::geometry::ConvGeometry;

/// A geometry from its numbers in `ConvGeometry`'s field order.
#[allow(clippy::too_many_arguments)]
pub fn geometry(
    batch: usize,
    c_in: usize,
    height: usize,
    width: usize,
    c_out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> ConvGeometry {
    ConvGeometry { batch, c_in, height, width, c_out, kernel, stride, padding }
}

/// Stride-1 shapes for the kernels that only take stride 1: rectangular kernels, no padding
/// and wide padding, odd sizes, channel counts that are no multiple of a SIMD width or a
/// tile, more output channels than input ones, wide grids of one to many vectors, and five
/// images over two threads' partial sums.
pub fn stride_one_geometries() -> Vec<ConvGeometry> {
    let g = |batch, c_in, height, width, c_out, kernel, padding| geometry(batch, c_in, height, width, c_out, kernel, [1, 1], padding);
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
pub fn reference(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
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
pub fn assert_weight_gradient(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &[f32]) {
    assert_adjoint(g, "dw", dy, dw, |unit| reference(g, x, unit));
}

/// Asserts that `dx` is the input gradient of `g` at `w` and `dy`: entry `i` is
/// ⟨dy, conv(eᵢ, w)⟩, the adjoint of the forward map in `x`.
pub fn assert_input_gradient(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &[f32]) {
    assert_adjoint(g, "dx", dy, dx, |unit| reference(g, unit, w));
}

/// Entry `i` of `gradient` is ⟨dy, forward(eᵢ)⟩ for the linear map `forward`.
fn assert_adjoint(g: &ConvGeometry, what: &str, dy: &[f32], gradient: &[f32], forward: impl Fn(&[f32]) -> Vec<f32>) {
    for i in 0..gradient.len() {
        let mut unit = vec![0.0; gradient.len()];
        unit[i] = 1.0;
        let expected: f32 = dy.iter().zip(forward(&unit)).map(|(a, b)| a * b).sum();
        assert!((gradient[i] - expected).abs() < 1e-4 * (1.0 + expected.abs()), "{g:?} {what}[{i}]: {} vs {expected}", gradient[i]);
    }
}

/// Deterministic values in [−1, 1).
pub fn test_values(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed * 97)) % 1000) as f32 / 500.0 - 1.0).collect()
}

/// Shapes of every kind: stride 1 and 2, 1×1, 7×7 and rectangular kernels, a chunked batch,
/// and one that the implicit GEMM takes.
pub fn geometries() -> Vec<ConvGeometry> {
    let g = geometry;
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
