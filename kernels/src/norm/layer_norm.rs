//! LayerNorm (Ba et al., "Layer Normalization", 2016) over the last axis, on plain `f32` slices:
//! `x` is `[R, D]` and each row is normalised on its own.
//!
//! - forward:  `μ = Σx/D`, `σ² = Σ(x − μ)²/D`, `r = 1/√(σ² + ε)`, `x̂ = (x − μ)·r`, `y = γ·x̂ + β`
//! - backward: with `g = γ·dy`: `dx = r·(g − mean(g) − x̂·mean(g·x̂))`, `dγ = Σ_rows dy·x̂`,
//!   `dβ = Σ_rows dy`
//!
//! A row (`D` = 192 in ViT-Tiny) stays in the first-level cache while it is read two or three
//! times, so each direction is one pass over memory. burn 0.22 builds LayerNorm in training from
//! nine tensor operations, each a pass over the whole activation, and its backward from more.

use crate::parallel::{map_pieces, threads};
use crate::vector_math::{lane_sum, vectorized};

/// Rows per task: enough work to amortise a task, and pieces for every thread.
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(8 * threads()).clamp(1, 256)
}

vectorized! {
    /// The rows of `out` from those of `x`, and each row's mean and `1/√(σ² + ε)`.
    fn forward_rows(x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64, out: &mut [f32]) -> Vec<(f32, f32)> {
        let d = gamma.len();
        let mut statistics = Vec::with_capacity(out.len() / d);
        for (row, out) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let mean = lane_sum(row, row, |v, _| v) / d as f32;
            let variance = lane_sum(row, row, |v, _| (v - mean) * (v - mean)) / d as f32;
            let inv_std = (1.0 / (variance as f64 + epsilon).sqrt()) as f32;
            for (((o, &v), &g), &b) in out.iter_mut().zip(row).zip(gamma).zip(beta) {
                *o = (v - mean) * inv_std * g + b;
            }
            statistics.push((mean, inv_std));
        }
        statistics
    }
}

/// The output `y`, and each row's mean and `1/√(σ² + ε)` (what the backward pass needs).
pub fn forward(d: usize, x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        d > 0 && x.len().is_multiple_of(d) && gamma.len() == d && beta.len() == d,
        "layer norm: {} values, γ {}, β {}, D {d}",
        x.len(),
        gamma.len(),
        beta.len()
    );
    let task = rows_per_task(x.len() / d) * d;
    let mut y = vec![0.0; x.len()];
    let statistics = map_pieces(&mut y, task, |piece, out| forward_rows(&x[piece * task..], gamma, beta, epsilon, out));
    let (mean, inv_std) = statistics.into_iter().flatten().unzip();
    (y, mean, inv_std)
}

vectorized! {
    /// The rows of `out` (`dx`) from those of `x` and `dy`, and the rows' sums of `dy·x̂` and `dy`.
    fn backward_rows(x: &[f32], dy: &[f32], gamma: &[f32], mean: &[f32], inv_std: &[f32], out: &mut [f32]) -> (Vec<f32>, Vec<f32>) {
        let d = gamma.len();
        let (mut d_gamma, mut d_beta, mut x_hat) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
        for (((row, dy_row), out), (&m, &r)) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(out.chunks_exact_mut(d)).zip(mean.iter().zip(inv_std)) {
            for (h, &v) in x_hat.iter_mut().zip(row) {
                *h = (v - m) * r;
            }
            // mean(g) and mean(g·x̂), with g = γ·dy written into `out` first.
            for ((o, &g), &e) in out.iter_mut().zip(gamma).zip(dy_row) {
                *o = g * e;
            }
            let mean_g = lane_sum(out, out, |g, _| g) / d as f32;
            let mean_g_x_hat = lane_sum(out, &x_hat, |g, h| g * h) / d as f32;
            for (o, &h) in out.iter_mut().zip(&x_hat) {
                *o = r * (*o - mean_g - h * mean_g_x_hat);
            }
            for (((dg, db), &e), &h) in d_gamma.iter_mut().zip(d_beta.iter_mut()).zip(dy_row).zip(&x_hat) {
                *dg += e * h;
                *db += e;
            }
        }
        (d_gamma, d_beta)
    }
}

/// The gradients `(dx, dγ, dβ)` from `dy`, given the input and the forward pass's statistics.
pub fn backward(d: usize, x: &[f32], dy: &[f32], gamma: &[f32], mean: &[f32], inv_std: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = x.len() / d;
    assert!(d > 0 && x.len() == rows * d && dy.len() == x.len() && gamma.len() == d && mean.len() == rows && inv_std.len() == rows);
    let task = rows_per_task(rows);
    let mut dx = vec![0.0; x.len()];
    let partial_sums = map_pieces(&mut dx, task * d, |piece, out| {
        let (first, rows) = (piece * task, out.len() / d);
        backward_rows(&x[first * d..], &dy[first * d..], gamma, &mean[first..first + rows], &inv_std[first..first + rows], out)
    });
    // The tasks' partial sums, added in order in f64.
    let (mut d_gamma, mut d_beta) = (vec![0.0f64; d], vec![0.0f64; d]);
    for (dg, db) in partial_sums {
        d_gamma.iter_mut().zip(dg).for_each(|(t, p)| *t += p as f64);
        d_beta.iter_mut().zip(db).for_each(|(t, p)| *t += p as f64);
    }
    (dx, d_gamma.into_iter().map(|v| v as f32).collect(), d_beta.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: the row (1, 2, 3, 6) has μ = 3, σ² = (4 + 1 + 0 + 9)/4 = 3.5.
    #[test]
    fn forward_by_hand() {
        let (y, mean, inv_std) = forward(4, &[1.0, 2.0, 3.0, 6.0], &[1.0, 2.0, 1.0, 1.0], &[0.0, 0.0, 0.5, 0.0], 0.0);
        let r = 1.0 / 3.5f32.sqrt();
        assert_eq!(mean, [3.0]);
        assert!((inv_std[0] - r).abs() < 1e-7);
        for (a, b) in y.iter().zip([-2.0 * r, -2.0 * r, 0.5, 3.0 * r]) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
    }

    /// Every gradient entry against central differences of `L = Σ w·y` in f64, on rows longer
    /// and shorter than a lane group, over enough rows for several tasks.
    #[test]
    fn gradients_match_central_differences() {
        for (d, rows) in [(5, 3), (19, 40)] {
            let x: Vec<f32> = (0..d * rows).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.3 + (i / d) as f32).collect();
            let gamma: Vec<f32> = (0..d).map(|j| 0.5 + 0.1 * j as f32).collect();
            let beta: Vec<f32> = (0..d).map(|j| 0.2 - 0.03 * j as f32).collect();
            let w: Vec<f32> = (0..d * rows).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.25).collect();
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
                let (y, _, _) = forward(d, x, gamma, beta, 1e-5);
                y.iter().zip(&w).map(|(&a, &b)| a as f64 * b as f64).sum()
            };
            let (_, mean, inv_std) = forward(d, &x, &gamma, &beta, 1e-5);
            let (dx, d_gamma, d_beta) = backward(d, &x, &w, &gamma, &mean, &inv_std);
            let h = 1e-2f32;
            let numeric = |values: &[f32], i: usize, at: &dyn Fn(&[f32]) -> f64| {
                let (mut up, mut down) = (values.to_vec(), values.to_vec());
                up[i] += h;
                down[i] -= h;
                (at(&up) - at(&down)) / (2.0 * h as f64)
            };
            for (i, &analytic) in dx.iter().enumerate() {
                let expected = numeric(&x, i, &|v| loss(v, &gamma, &beta));
                assert!((analytic as f64 - expected).abs() < 2e-3 * (1.0 + expected.abs()), "D {d}: dx[{i}] {analytic} vs {expected}");
            }
            for j in 0..d {
                let expected = numeric(&gamma, j, &|v| loss(&x, v, &beta));
                assert!((d_gamma[j] as f64 - expected).abs() < 2e-3 * (1.0 + expected.abs()), "D {d}: dγ[{j}]");
                let expected = numeric(&beta, j, &|v| loss(&x, &gamma, v));
                assert!((d_beta[j] as f64 - expected).abs() < 2e-3 * (1.0 + expected.abs()), "D {d}: dβ[{j}]");
            }
        }
    }
}
