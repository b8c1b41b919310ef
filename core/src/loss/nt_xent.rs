//! NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.
//!
//! Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual
//! Representations", ICML 2020.
//!
//! With `u = z/‖z‖` for all 2N embeddings of both views and `s_ij = u_iᵀu_j / τ`, each anchor's
//! positive is the other view of its image and its negatives are the other 2N − 2 embeddings,
//! from both views:
//!
//! `ℓ_i = −log( exp(s_{i,p(i)}) / Σ_{k≠i} exp(s_ik) )`,  `L = (1/2N) Σ_i ℓ_i`.
//!
//! Shapes: `z1`, `z2`: `[N, D]` → `[1]`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::l2_normalize;

pub fn nt_xent(z1: Tensor<2>, z2: Tensor<2>, temperature: f32) -> Tensor<1> {
    let n = z1.dims()[0];
    let device = z1.device();
    let logits = nt_xent_logits(z1, z2, temperature);
    let positives = Tensor::<1, Int>::arange(0..2 * n as i64, &device).add_scalar(n as i64).remainder_scalar(2 * n as i64);
    let log_prob = log_softmax(logits, 1).gather(1, positives.reshape([2 * n, 1]));
    log_prob.mean().neg()
}

/// The logits `s_ij` of all 2N embeddings (`z1`'s rows, then `z2`'s), with the diagonal (no
/// candidate) at −1e9: `[2N, 2N]`. Row `i`'s softmax is anchor `i`'s distribution over its
/// candidates, whose target is `p(i) = (i + N) mod 2N`.
pub fn nt_xent_logits(z1: Tensor<2>, z2: Tensor<2>, temperature: f32) -> Tensor<2> {
    let n = z1.dims()[0];
    let device = z1.device();
    let z = l2_normalize(Tensor::cat(vec![z1, z2], 0));
    let logits = z.clone().matmul(z.transpose()).div_scalar(temperature);
    // Self-similarity is no candidate: push the diagonal to -∞ (a large negative, finite value
    // keeps the softmax's gradient free of NaN).
    logits - Tensor::<2>::eye(2 * n, &device).mul_scalar(1e9)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    /// The formula above in plain f64 loops.
    fn reference(z1: &[Vec<f32>], z2: &[Vec<f32>], t: f64) -> f64 {
        let all: Vec<Vec<f64>> = z1
            .iter()
            .chain(z2)
            .map(|r| {
                let norm = r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                r.iter().map(|v| *v as f64 / norm).collect()
            })
            .collect();
        let n = z1.len();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / t;
        let mut total = 0.0;
        for i in 0..2 * n {
            let p = (i + n) % (2 * n);
            let denom: f64 = (0..2 * n).filter(|&k| k != i).map(|k| dot(&all[i], &all[k]).exp()).sum();
            total -= dot(&all[i], &all[p]) - denom.ln();
        }
        total / (2 * n) as f64
    }

    #[test]
    fn hand_computed_two_pairs() {
        // Two images, aligned views: u = e1, e1, e2, e2 (after normalisation), τ = 1.
        // For anchor 0: positive sim 1, negatives sims 0, 0 → ℓ = −ln(e/(e + 2)).
        let z1 = matrix(&[&[2.0, 0.0], &[0.0, 3.0]]);
        let z2 = matrix(&[&[1.0, 0.0], &[0.0, 0.5]]);
        let expected = -(std::f64::consts::E / (std::f64::consts::E + 2.0)).ln();
        assert!((scalar(nt_xent(z1, z2, 1.0)) - expected).abs() < 1e-6);
    }

    #[test]
    fn matches_the_formula_on_random_embeddings() {
        let (a, b) = (random_rows(5, 4, 1), random_rows(5, 4, 2));
        for t in [0.1, 0.5] {
            let got = scalar(nt_xent(tensor(&a), tensor(&b), t));
            assert!((got - reference(&a, &b, t as f64)).abs() < 1e-4, "τ={t}: {got}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&random_rows(4, 3, 3), &random_rows(4, 3, 4), |a, b| nt_xent(a, b, 0.5));
    }
}
