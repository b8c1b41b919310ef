//! GELU (Hendrycks and Gimpel, "Gaussian Error Linear Units", 2016), exact form, element-wise:
//!
//! - forward:  `y = x·Φ(x)`, `Φ` the standard normal CDF
//! - backward: `dx = dy·(Φ(x) + x·φ(x))`, `φ(x) = e^(−x²/2)/√(2π)`
//!
//! burn's CPU backend calls libm's scalar `erff` for every element, forward and backward; here
//! `Φ` is [`crate::vector_math::normal_cdf_and_gaussian`], whose loop vectorises.

use crate::parallel::for_each_piece;
use crate::vector_math::{INV_SQRT_2PI, normal_cdf_and_gaussian, vectorized};

/// Values per task.
const TASK: usize = 1 << 15;

vectorized! {
    fn forward_piece(x: &[f32], out: &mut [f32]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v * normal_cdf_and_gaussian(v).0;
        }
    }
}

vectorized! {
    fn backward_piece(x: &[f32], dy: &[f32], out: &mut [f32]) {
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(dy) {
            let (cdf, gaussian) = normal_cdf_and_gaussian(v);
            *o = g * (cdf + v * gaussian * INV_SQRT_2PI);
        }
    }
}

pub fn forward(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for_each_piece(&mut y, TASK, |piece, out| forward_piece(&x[piece * TASK..], out));
    y
}

/// `dx` from `dy` and the forward pass's input `x`.
pub fn backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len());
    let mut dx = vec![0.0; x.len()];
    for_each_piece(&mut dx, TASK, |piece, out| backward_piece(&x[piece * TASK..], &dy[piece * TASK..], out));
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GELU(1) = Φ(1) = 0.841 344 75, GELU(−1) = −Φ(−1) = −0.158 655 25, GELU(0) = 0; the
    /// derivative at 0 is Φ(0) = ½ and at 1 is Φ(1) + φ(1) = 0.841 344 75 + 0.241 970 72.
    #[test]
    fn values_and_derivatives_by_hand() {
        let y = forward(&[1.0, -1.0, 0.0]);
        for (&a, b) in y.iter().zip([0.841_344_75, -0.158_655_25, 0.0]) {
            assert!((f64::from(a) - b).abs() < 2e-7, "{y:?}");
        }
        let dx = backward(&[0.0, 1.0, 1.0], &[1.0, 1.0, -2.0]);
        for (a, b) in dx.iter().zip([0.5, 1.083_315_5, -2.166_631]) {
            assert!((a - b).abs() < 5e-7, "{dx:?}");
        }
    }

    /// The derivative against central differences of the forward, over both tails and across
    /// several tasks.
    #[test]
    fn derivative_matches_central_differences() {
        let x: Vec<f32> = (0..2 * TASK + 5).map(|i| (i as f32 - TASK as f32) * 8.0 / TASK as f32).collect();
        let dx = backward(&x, &vec![1.0; x.len()]);
        let h = 1e-2f32;
        let up = forward(&x.iter().map(|v| v + h).collect::<Vec<_>>());
        let down = forward(&x.iter().map(|v| v - h).collect::<Vec<_>>());
        for i in (0..x.len()).step_by(97) {
            let expected = (up[i] as f64 - down[i] as f64) / (2.0 * h as f64);
            assert!((dx[i] as f64 - expected).abs() < 1e-3, "GELU'({}) = {} vs {expected}", x[i], dx[i]);
        }
    }
}
