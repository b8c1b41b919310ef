//! InfoNCE with a query/key pair per sample, as in MoCo (and NNCLR).
//!
//! van den Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive Coding",
//! 2018; He et al., "Momentum Contrast", CVPR 2020; Chen, Xie & He, "An Empirical Study of
//! Training Self-Supervised Vision Transformers" (MoCo v3), ICCV 2021.
//!
//! With `q`, `k` L2-normalised, each query's positive is its own key.
//!
//! - [`info_nce`] (MoCo v1/v2): negatives from a queue `Q` of `K` past keys; logits
//!   `[qᵢ·kᵢ, qᵢ·Q₁, …, qᵢ·Q_K] / τ` with the positive at index 0:
//!   `L = −(1/N) Σᵢ log softmax(logitsᵢ)₀`.
//! - [`info_nce_in_batch`] (MoCo v3, NNCLR): negatives are the other samples' keys;
//!   logits `qᵢ·kⱼ / τ`, positive on the diagonal.
//!
//! Shapes: `q`, `k`: `[N, D]`; `queue`: `[K, D]` (normalised) → `[1]`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::l2_normalize;

/// MoCo's logits, `[N, 1 + K]`: the positive in column 0, then one column per queue entry.
pub fn moco_logits(q: Tensor<2>, k: Tensor<2>, queue: Tensor<2>, temperature: f32) -> Tensor<2> {
    let (q, k) = (l2_normalize(q), l2_normalize(k));
    let positive = (q.clone() * k).sum_dim(1);
    let negatives = q.matmul(queue.transpose());
    Tensor::cat(vec![positive, negatives], 1).div_scalar(temperature)
}

pub fn info_nce(q: Tensor<2>, k: Tensor<2>, queue: Tensor<2>, temperature: f32) -> Tensor<1> {
    let log_prob = log_softmax(moco_logits(q, k, queue, temperature), 1);
    log_prob.narrow(1, 0, 1).mean().neg()
}

pub fn info_nce_in_batch(q: Tensor<2>, k: Tensor<2>, temperature: f32) -> Tensor<1> {
    let n = q.dims()[0];
    let logits = l2_normalize(q).matmul(l2_normalize(k).transpose()).div_scalar(temperature);
    let diagonal = Tensor::<1, Int>::arange(0..n as i64, &logits.device()).reshape([n, 1]);
    log_softmax(logits, 1).gather(1, diagonal).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn unit(rows: &[Vec<f32>]) -> Vec<Vec<f64>> {
        rows.iter()
            .map(|r| {
                let norm = r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                r.iter().map(|v| *v as f64 / norm).collect()
            })
            .collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn logits_have_the_positive_first_and_one_column_per_negative() {
        let (q, k, queue) = (random_rows(3, 4, 1), random_rows(3, 4, 2), random_rows(5, 4, 3));
        let (uq, uk) = (unit(&q), unit(&k));
        let logits = values(moco_logits(tensor(&q), tensor(&k), tensor(&queue), 0.5));
        assert_eq!(logits.len(), 3 * 6, "[N, 1 + K]");
        for i in 0..3 {
            assert!((logits[i * 6] as f64 - dot(&uq[i], &uk[i]) / 0.5).abs() < 1e-5);
            for j in 0..5 {
                let queue_row: Vec<f64> = queue[j].iter().map(|v| *v as f64).collect();
                assert!((logits[i * 6 + 1 + j] as f64 - dot(&uq[i], &queue_row) / 0.5).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn info_nce_matches_the_formula() {
        let (q, k) = (random_rows(3, 4, 4), random_rows(3, 4, 5));
        let queue = unit(&random_rows(5, 4, 6));
        let queue_f32: Vec<Vec<f32>> = queue.iter().map(|r| r.iter().map(|v| *v as f32).collect()).collect();
        let (uq, uk) = (unit(&q), unit(&k));
        let t = 0.2;
        let expected = (0..3)
            .map(|i| {
                let pos = dot(&uq[i], &uk[i]) / t;
                let all: f64 = pos.exp() + queue.iter().map(|n| (dot(&uq[i], n) / t).exp()).sum::<f64>();
                -(pos.exp() / all).ln()
            })
            .sum::<f64>()
            / 3.0;
        let got = scalar(info_nce(tensor(&q), tensor(&k), tensor(&queue_f32), t as f32));
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
        // A query equal to its key, far from all negatives, has a loss near 0.
        let easy = scalar(info_nce(matrix(&[&[1.0, 0.0]]), matrix(&[&[2.0, 0.0]]), matrix(&[&[-1.0, 0.0]]), 0.1));
        assert!(easy < 1e-6, "{easy}");
    }

    #[test]
    fn in_batch_matches_the_formula_and_its_gradients() {
        let (q, k) = (random_rows(4, 3, 7), random_rows(4, 3, 8));
        let (uq, uk) = (unit(&q), unit(&k));
        let t = 0.5;
        let expected = (0..4)
            .map(|i| {
                let all: f64 = (0..4).map(|j| (dot(&uq[i], &uk[j]) / t).exp()).sum();
                -((dot(&uq[i], &uk[i]) / t).exp() / all).ln()
            })
            .sum::<f64>()
            / 4.0;
        assert!((scalar(info_nce_in_batch(tensor(&q), tensor(&k), t as f32)) - expected).abs() < 1e-4);
        check_gradients(&q, &k, |a, b| info_nce_in_batch(a, b, 0.5));
    }
}
