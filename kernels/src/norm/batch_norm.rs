//! BatchNorm in training mode on plain `f32` slices of shape `[N, C, L]` (`L` = H·W), with the
//! statistics of each channel taken over its `M = N·L` values:
//!
//! - forward:  `μ = Σx / M`, `σ² = Σ(x − μ)² / M` (biased, as burn's), `y = γ·(x − μ)/√(σ² + ε) + β`
//! - backward: with `x̂ = (x − μ)/√(σ² + ε)`: `dβ = Σdy`, `dγ = Σdy·x̂`,
//!   `dx = γ/√(σ² + ε) · (dy − dβ/M − x̂·dγ/M)`
//!
//! Two passes forward (both statistics, from shifted sums; then the output) and two backward
//! (both sums at once, then the input gradient). burn 0.22's default builds the same from about
//! ten tensor operations, two of them copies that move channels to the front, and each is a pass
//! over the activation.
//!
//! The output pass can also apply what follows BatchNorm in a ResNet or ConvNet ([`Epilogue`]):
//! ReLU, or the residual addition and then ReLU, `z = max(0, y + r)`. Done by burn, each is a
//! pass of its own over the activation, on one thread; here they cost nothing in the forward, and
//! their backward is one parallel pass ([`relu_gradient`]): `dy = dz·[z > 0]`, also `r`'s gradient.

use std::mem::MaybeUninit;

use crate::parallel::{for_each_piece, map_parts, threads};
use crate::scratch::{output, written};
use crate::vector_math::vectorized;

/// `[N, C, L]`: images, channels, values per channel and image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    /// `M`, the values each channel's statistics are taken over.
    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }
}

/// `[Σ f(a, b)₀, Σ f(a, b)₁]` over two planes, summed in eight `f32` lanes and returned as `f64`.
#[inline(always)]
fn plane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f32; 2]) -> [f64; 2] {
    let mut lanes = [[0.0f32; 8]; 2];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut tail = [0.0f64; 2];
    for (&x, &y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        let [p, q] = f(x, y);
        tail = [tail[0] + p as f64, tail[1] + q as f64];
    }
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for i in 0..8 {
            let [p, q] = f(ca[i], cb[i]);
            lanes[0][i] += p;
            lanes[1][i] += q;
        }
    }
    let total = |k: usize| lanes[k].iter().map(|&l| l as f64).sum::<f64>() + tail[k];
    [total(0), total(1)]
}

// The per-plane loops, each compiled for the widest vectors the CPU has (the arithmetic and its
// order are the same on every path, so the results are too).
vectorized! {
    /// `[Σ d, Σ d²]` with `d = x − shift`.
    fn shifted_sums(x: &[f32], shift: f32) -> [f64; 2] {
        plane_sums(x, x, |v, _| {
            let d = v - shift;
            [d, d * d]
        })
    }
}

vectorized! {
    /// `[Σ dy, Σ dy·(x − μ)]`.
    fn gradient_sums(dy: &[f32], x: &[f32], mean: f32) -> [f64; 2] {
        plane_sums(dy, x, |d, v| [d, d * (v - mean)])
    }
}

vectorized! {
    /// `out = (x − μ)·scale + β`.
    fn normalize_plane(x: &[f32], mean: f32, scale: f32, beta: f32, out: &mut [MaybeUninit<f32>]) {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write((v - mean) * scale + beta);
        }
    }
}

vectorized! {
    /// `out = max(0, (x − μ)·scale + β)`.
    fn normalize_relu_plane(x: &[f32], mean: f32, scale: f32, beta: f32, out: &mut [MaybeUninit<f32>]) {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(((v - mean) * scale + beta).max(0.0));
        }
    }
}

vectorized! {
    /// `out = max(0, (x − μ)·scale + β + r)`.
    fn normalize_add_relu_plane(x: &[f32], residual: &[f32], mean: f32, scale: f32, beta: f32, out: &mut [MaybeUninit<f32>]) {
        for ((o, &v), &r) in out.iter_mut().zip(x).zip(residual) {
            o.write(((v - mean) * scale + beta + r).max(0.0));
        }
    }
}

vectorized! {
    /// `out = dz` where `z > 0`, else 0.
    fn relu_gradient_piece(z: &[f32], dz: &[f32], out: &mut [MaybeUninit<f32>]) {
        for ((o, &v), &d) in out.iter_mut().zip(z).zip(dz) {
            o.write(if v > 0.0 { d } else { 0.0 });
        }
    }
}

vectorized! {
    /// `out = k·(dy − a − (x − μ)·b)`.
    fn input_gradient_plane(dy: &[f32], x: &[f32], constants: [f32; 4], out: &mut [MaybeUninit<f32>]) {
        let [k, a, b, mean] = constants;
        for ((o, &d), &v) in out.iter_mut().zip(dy).zip(x) {
            o.write(k * (d - a - (v - mean) * b));
        }
    }
}

/// Per channel, the two sums of `term(channel, a_plane, b_plane)` over all images. The images are
/// split into one part per thread; the parts' sums are added in order.
fn channel_sums(s: NormShape, a: &[f32], b: &[f32], term: impl Fn(usize, &[f32], &[f32]) -> [f64; 2] + Sync + Send) -> Vec<[f64; 2]> {
    let parts = threads().clamp(1, s.batch.max(1));
    let image_len = s.channels * s.plane;
    let partial = map_parts(parts, |part| {
        let mut sums = vec![[0.0f64; 2]; s.channels];
        for image in s.batch * part / parts..s.batch * (part + 1) / parts {
            for (c, sum) in sums.iter_mut().enumerate() {
                let at = image * image_len + c * s.plane;
                let [p, q] = term(c, &a[at..at + s.plane], &b[at..at + s.plane]);
                *sum = [sum[0] + p, sum[1] + q];
            }
        }
        sums
    });
    let mut total = vec![[0.0f64; 2]; s.channels];
    for sums in partial {
        for (t, p) in total.iter_mut().zip(sums) {
            *t = [t[0] + p[0], t[1] + p[1]];
        }
    }
    total
}

/// `f(channel, x_plane, other_plane, out_plane)` over every plane, in parallel where threads exist.
fn map_planes(
    s: NormShape,
    x: &[f32],
    other: &[f32],
    f: impl Fn(usize, &[f32], &[f32], &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut out = output(s.len());
    for_each_piece(&mut out, s.plane.max(1), |index, plane| {
        let at = index * s.plane;
        f(index % s.channels, &x[at..at + s.plane], &other[at..at + s.plane], plane);
    });
    // SAFETY: the pieces are the planes, and `f` writes its whole plane (both callers' loops run
    // over `out` zipped with planes of the same length).
    unsafe { written(out) }
}

/// What the output pass applies to the normalised `y`.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// `y` itself.
    Identity,
    /// `max(0, y)`.
    Relu,
    /// `max(0, y + r)`, `r` of the input's shape (a residual block's shortcut).
    AddRelu(&'a [f32]),
}

/// The output (`y`, or the [`Epilogue`] of `y`), the batch mean and the biased batch variance of
/// each channel.
pub fn forward(s: NormShape, x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64, epilogue: Epilogue) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!((x.len(), gamma.len(), beta.len()), (s.len(), s.channels, s.channels), "{s:?}");
    if let Epilogue::AddRelu(residual) = epilogue {
        assert_eq!(residual.len(), s.len(), "{s:?}: the residual's length");
    }
    // Both statistics in one pass, from the sums of d = x − K and d², where the shift K is the
    // channel's first value: σ² = E[d²] − E[d]² then does not cancel when the mean is large
    // against the spread (E[d] is of the order of σ, not of μ).
    let shift: Vec<f32> = (0..s.channels).map(|c| x.get(c * s.plane).copied().unwrap_or(0.0)).collect();
    let sums = channel_sums(s, x, x, |c, p, _| shifted_sums(p, shift[c]));
    let (mean, variance): (Vec<f32>, Vec<f32>) = sums
        .iter()
        .zip(&shift)
        .map(|(t, &k)| {
            let (mean_d, mean_d2) = (t[0] / s.count(), t[1] / s.count());
            ((k as f64 + mean_d) as f32, (mean_d2 - mean_d * mean_d).max(0.0) as f32)
        })
        .unzip();
    let scale: Vec<f32> = (0..s.channels).map(|c| (gamma[c] as f64 / (variance[c] as f64 + epsilon).sqrt()) as f32).collect();
    let y = match epilogue {
        Epilogue::Identity => map_planes(s, x, x, |c, plane, _, out| normalize_plane(plane, mean[c], scale[c], beta[c], out)),
        Epilogue::Relu => map_planes(s, x, x, |c, plane, _, out| normalize_relu_plane(plane, mean[c], scale[c], beta[c], out)),
        Epilogue::AddRelu(residual) => {
            map_planes(s, x, residual, |c, plane, r, out| normalize_add_relu_plane(plane, r, mean[c], scale[c], beta[c], out))
        }
    };
    (y, mean, variance)
}

/// Values per task of [`relu_gradient`].
const RELU_TASK: usize = 1 << 14;

/// ReLU's backward from its output `z`: `dz` where `z > 0`, else 0 (as burn's, which masks where
/// its input is at most 0: the same positions). For [`Epilogue::AddRelu`] this is also the
/// residual's gradient.
pub fn relu_gradient(z: &[f32], dz: &[f32]) -> Vec<f32> {
    assert_eq!(z.len(), dz.len());
    let mut out = output(z.len());
    for_each_piece(&mut out, RELU_TASK, |piece, out| {
        let at = piece * RELU_TASK;
        relu_gradient_piece(&z[at..at + out.len()], &dz[at..at + out.len()], out);
    });
    // SAFETY: the pieces cover `out`, and the loop writes each piece in full.
    unsafe { written(out) }
}

/// The gradients `(dx, dγ, dβ)` from `dy`, given the input and the statistics of the forward pass.
pub fn backward(
    s: NormShape,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(
        (x.len(), dy.len(), gamma.len(), mean.len(), variance.len()),
        (s.len(), s.len(), s.channels, s.channels, s.channels),
        "{s:?}"
    );
    let inv_std: Vec<f64> = variance.iter().map(|&v| 1.0 / (v as f64 + epsilon).sqrt()).collect();
    // Σdy and Σdy·(x − μ) in one pass.
    let sums = channel_sums(s, dy, x, |c, g, p| gradient_sums(g, p, mean[c]));
    let d_beta: Vec<f64> = sums.iter().map(|t| t[0]).collect();
    let d_gamma: Vec<f64> = sums.iter().zip(&inv_std).map(|(t, i)| t[1] * i).collect();
    // dx = k·(dy − a − (x − μ)·b) with k = γ/σ, a = dβ/M, b = dγ/(σ·M).
    let k: Vec<f32> = (0..s.channels).map(|c| (gamma[c] as f64 * inv_std[c]) as f32).collect();
    let a: Vec<f32> = d_beta.iter().map(|d| (d / s.count()) as f32).collect();
    let b: Vec<f32> = (0..s.channels).map(|c| (d_gamma[c] * inv_std[c] / s.count()) as f32).collect();
    let dx = map_planes(s, dy, x, |c, d, v, out| input_gradient_plane(d, v, [k[c], a[c], b[c], mean[c]], out));
    (dx, d_gamma.iter().map(|&g| g as f32).collect(), d_beta.iter().map(|&g| g as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_slices_close as assert_close;

    /// One channel of 1, 2, 3, 4 (two images of two values): μ = 2.5, σ² = 1.25.
    #[test]
    fn forward_by_hand() {
        let s = NormShape { batch: 2, channels: 1, plane: 2 };
        let (y, mean, variance) = forward(s, &[1.0, 2.0, 3.0, 4.0], &[2.0], &[0.5], 0.0, Epilogue::Identity);
        assert_close(&mean, &[2.5], "mean");
        assert_close(&variance, &[1.25], "variance");
        let sd = 1.25f32.sqrt();
        assert_close(&y, &[-1.5, -0.5, 0.5, 1.5].map(|d| 2.0 * d / sd + 0.5), "y");
    }

    /// The epilogues on the same channel: ReLU clips the two values below zero; with a residual
    /// of (1, −1, 0, 2) ReLU clips the sums instead. ReLU's gradient passes `dz` where `z > 0`.
    #[test]
    fn epilogues_by_hand() {
        let s = NormShape { batch: 2, channels: 1, plane: 2 };
        let x = [1.0, 2.0, 3.0, 4.0];
        let y = [-1.5f32, -0.5, 0.5, 1.5].map(|d| 2.0 * d / 1.25f32.sqrt() + 0.5); // −2.18, −0.39, 1.39, 3.18
        let (z, mean, variance) = forward(s, &x, &[2.0], &[0.5], 0.0, Epilogue::Relu);
        assert_close(&mean, &[2.5], "mean");
        assert_close(&variance, &[1.25], "variance");
        assert_close(&z, &[0.0, 0.0, y[2], y[3]], "ReLU");
        let residual = [1.0, -1.0, 0.0, 2.0];
        let (z, _, _) = forward(s, &x, &[2.0], &[0.5], 0.0, Epilogue::AddRelu(&residual));
        assert_close(&z, &[0.0, 0.0, y[2], y[3] + 2.0], "residual + ReLU");
        let (z, _, _) = forward(s, &x, &[2.0], &[0.5], 0.0, Epilogue::AddRelu(&[3.0, 1.0, -2.0, 0.0]));
        assert_close(&z, &[y[0] + 3.0, y[1] + 1.0, 0.0, y[3]], "residual + ReLU, other signs");
        assert_close(&relu_gradient(&[0.0, 2.0, -1.0, 0.5], &[7.0, -3.0, 5.0, 4.0]), &[0.0, -3.0, 0.0, 4.0], "ReLU's gradient");
    }

    /// ReLU's gradient over several tasks and a last piece shorter than a task.
    #[test]
    fn relu_gradient_covers_every_piece() {
        let n = 2 * RELU_TASK + 37;
        let z: Vec<f32> = (0..n).map(|i| if i % 3 == 0 { -1.0 } else { i as f32 }).collect();
        let dz: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
        let expected: Vec<f32> = (0..n).map(|i| if i % 3 == 0 { 0.0 } else { i as f32 + 0.5 }).collect();
        assert_close(&relu_gradient(&z, &dz), &expected, "dz");
    }

    /// A batch mean far from zero (1000 + small spread) keeps the output's precision: the
    /// output subtracts the mean before scaling.
    #[test]
    fn a_large_mean_does_not_cancel_the_output() {
        let s = NormShape { batch: 1, channels: 1, plane: 4 };
        let (y, _, variance) = forward(s, &[1000.0, 1001.0, 1002.0, 1003.0], &[1.0], &[0.0], 0.0, Epilogue::Identity);
        assert_close(&variance, &[1.25], "variance");
        assert_close(&y, &[-1.5, -0.5, 0.5, 1.5].map(|d| d / 1.25f32.sqrt()), "y");
    }

    /// The one-pass statistics against two passes in f64, for a mean 10⁴ times the spread over
    /// several images: E[x²] − E[x]² without the shift would lose every digit of σ² in f32.
    #[test]
    fn one_pass_statistics_match_two_passes() {
        let s = NormShape { batch: 3, channels: 2, plane: 100 };
        let x: Vec<f32> = (0..s.len()).map(|i| 1000.0 + ((i * 37 % 101) as f32 / 100.0 - 0.5) * 0.2).collect();
        let (_, mean, variance) = forward(s, &x, &[1.0, 1.0], &[0.0, 0.0], 0.0, Epilogue::Identity);
        for c in 0..s.channels {
            let values: Vec<f64> =
                (0..s.batch).flat_map(|n| x[(n * s.channels + c) * s.plane..][..s.plane].iter().map(|&v| v as f64)).collect();
            let m = values.iter().sum::<f64>() / values.len() as f64;
            let v = values.iter().map(|x| (x - m).powi(2)).sum::<f64>() / values.len() as f64;
            assert!((mean[c] as f64 - m).abs() < 1e-6 * m, "channel {c} mean: {} vs {m}", mean[c]);
            assert!((variance[c] as f64 - v).abs() < 1e-3 * v, "channel {c} variance: {} vs {v}", variance[c]);
        }
    }

    /// Every gradient entry equals the central difference of `L = Σ y·r` (a fixed random `r`),
    /// with odd sizes, more images than threads, and planes not a multiple of the eight lanes.
    #[test]
    fn gradients_are_the_partial_derivatives() {
        let s = NormShape { batch: 5, channels: 3, plane: 11 };
        let value = |i: usize, seed: usize| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0) * (1.0 + seed as f32);
        let x: Vec<f32> = (0..s.len()).map(|i| value(i, 1)).collect();
        let r: Vec<f32> = (0..s.len()).map(|i| value(i, 2)).collect();
        let (gamma, beta) = ([0.5, -1.5, 2.0], [0.1, 0.2, -0.3]);
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            let (y, _, _) = forward(s, x, gamma, beta, 1e-5, Epilogue::Identity);
            y.iter().zip(&r).map(|(&y, &r)| y as f64 * r as f64).sum()
        };
        let (_, mean, variance) = forward(s, &x, &gamma, &beta, 1e-5, Epilogue::Identity);
        let (dx, d_gamma, d_beta) = backward(s, &x, &r, &gamma, &mean, &variance, 1e-5);
        let h = 1e-2;
        let numeric = |values: &[f32], i: usize, f: &dyn Fn(&[f32]) -> f64| {
            let (mut up, mut down) = (values.to_vec(), values.to_vec());
            up[i] += h;
            down[i] -= h;
            ((f(&up) - f(&down)) / (2.0 * h as f64)) as f32
        };
        let dx_numeric: Vec<f32> = (0..x.len()).map(|i| numeric(&x, i, &|v| loss(v, &gamma, &beta))).collect();
        let d_gamma_numeric: Vec<f32> = (0..3).map(|i| numeric(&gamma, i, &|v| loss(&x, v, &beta))).collect();
        let d_beta_numeric: Vec<f32> = (0..3).map(|i| numeric(&beta, i, &|v| loss(&x, &gamma, v))).collect();
        let close = |a: &[f32], b: &[f32], what: &str| {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!((x - y).abs() <= 2e-2 * (1.0 + y.abs()), "{what}[{i}]: {x} vs numeric {y}");
            }
        };
        close(&dx, &dx_numeric, "dx");
        close(&d_gamma, &d_gamma_numeric, "dγ");
        close(&d_beta, &d_beta_numeric, "dβ");
    }
}
