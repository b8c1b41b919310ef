//! Softmax over the last axis on plain `f32` slices: `x` is `[R, L]`, each row separately.
//!
//! - forward:  `y = e^(x − max x) / Σ e^(x − max x)`
//! - backward: `dx = y·(dy − Σ dy·y)`
//!
//! One pass over memory each way (a row of attention scores, `L` = 65 for ViT/4 at 32 px, stays
//! in the first-level cache), with [`crate::vector_math::exp`] vectorised; burn 0.22 composes softmax
//! in training from five tensor operations (max, subtract, exp, sum, divide) and differentiates
//! each of them.

use crate::parallel::{for_each_piece, threads};
use crate::vector_math::{exp, lane_sum, vectorized};

/// Values per task: whole rows, about 64 K of them.
fn task_len(len: usize, row: usize) -> usize {
    let rows = len / row;
    (65_536 / row).clamp(1, rows.div_ceil(threads()).max(1)) * row
}

vectorized! {
    /// The rows of `out` from those of `x`.
    fn forward_rows(row: usize, x: &[f32], out: &mut [f32]) {
        for (values, out) in x.chunks_exact(row).zip(out.chunks_exact_mut(row)) {
            let max = values.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            for (o, &v) in out.iter_mut().zip(values) {
                *o = exp(v - max);
            }
            let inv_sum = 1.0 / lane_sum(out, out, |e, _| e);
            for o in out.iter_mut() {
                *o *= inv_sum;
            }
        }
    }
}

vectorized! {
    /// The rows of `out` (`dx`) from those of `y` and `dy`.
    fn backward_rows(row: usize, y: &[f32], dy: &[f32], out: &mut [f32]) {
        for ((y, dy), out) in y.chunks_exact(row).zip(dy.chunks_exact(row)).zip(out.chunks_exact_mut(row)) {
            let weighted = lane_sum(dy, y, |g, p| g * p);
            for ((o, &p), &g) in out.iter_mut().zip(y).zip(dy) {
                *o = p * (g - weighted);
            }
        }
    }
}

/// `y`, softmax of each row of `row` values.
pub fn forward(row: usize, x: &[f32]) -> Vec<f32> {
    assert!(row > 0 && x.len().is_multiple_of(row), "softmax: {} values in rows of {row}", x.len());
    let mut y = vec![0.0; x.len()];
    let task = task_len(x.len(), row);
    for_each_piece(&mut y, task, |piece, out| forward_rows(row, &x[piece * task..], out));
    y
}

/// `dx` from `dy` and the forward pass's output `y`.
pub fn backward(row: usize, y: &[f32], dy: &[f32]) -> Vec<f32> {
    assert!(row > 0 && y.len().is_multiple_of(row) && dy.len() == y.len());
    let mut dx = vec![0.0; y.len()];
    let task = task_len(y.len(), row);
    for_each_piece(&mut dx, task, |piece, out| backward_rows(row, &y[piece * task..], &dy[piece * task..], out));
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: softmax(0, ln 2, ln 5) = (1, 2, 5)/8; softmax(1000, 1001, 1002) =
    /// (1, e, e²)/(1 + e + e²), where e^1000 alone would overflow.
    #[test]
    fn forward_by_hand() {
        let (ln2, ln5) = (2f32.ln(), 5f32.ln());
        let y = forward(3, &[0.0, ln2, ln5, 1000.0, 1001.0, 1002.0]);
        for (a, b) in y.iter().zip([0.125, 0.25, 0.625, 0.090_030_57, 0.244_728_47, 0.665_240_96]) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
    }

    /// Every entry of `dx` against central differences of `L = Σ w·y`, over rows shorter and
    /// longer than a lane group and enough of them for several tasks.
    #[test]
    fn gradient_matches_central_differences() {
        for (row, rows) in [(3, 2), (21, 30)] {
            let x: Vec<f32> = (0..row * rows).map(|i| ((i * 29 % 17) as f32 - 8.0) * 0.4).collect();
            let w: Vec<f32> = (0..row * rows).map(|i| ((i * 11 % 5) as f32 - 2.0) * 0.5).collect();
            let loss = |x: &[f32]| -> f64 { forward(row, x).iter().zip(&w).map(|(&a, &b)| a as f64 * b as f64).sum() };
            let dx = backward(row, &forward(row, &x), &w);
            for i in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += 1e-2;
                down[i] -= 1e-2;
                let expected = (loss(&up) - loss(&down)) / 2e-2;
                assert!((dx[i] as f64 - expected).abs() < 1e-3 * (1.0 + expected.abs()), "row {row}: dx[{i}] {} vs {expected}", dx[i]);
            }
        }
    }
}
