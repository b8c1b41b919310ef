//! Sinkhorn–Knopp equipartition of SwAV.
//!
//! Caron, Misra, Mairal, Goyal, Bojanowski & Joulin, "Unsupervised Learning of Visual Features by
//! Contrasting Cluster Assignments", NeurIPS 2020.
//!
//! Soft assignments of B samples to K prototypes such that every prototype gets the same share:
//! `Q = exp(scores/ε)ᵀ`, normalised to sum 1; then `iterations` rounds of row normalisation
//! (each prototype's row sums to 1/K) and column normalisation (each sample's column sums to
//! 1/B); the result `(B·Q)ᵀ` has rows summing to 1. Assignments are targets: no gradient flows
//! through them (the input is detached).
//!
//! Shapes: `scores`: `[B, K]` → `[B, K]`.

use burn::tensor::Tensor;

pub fn sinkhorn(scores: Tensor<2>, epsilon: f32, iterations: usize) -> Tensor<2> {
    let [b, k] = scores.dims();
    let scores = scores.detach();
    // Subtracting the maximum leaves Q unchanged after normalisation and keeps exp finite.
    let max = scores.clone().max();
    let mut q = (scores - max.reshape([1, 1])).div_scalar(epsilon).exp().transpose();
    q = q.clone() / q.sum().reshape([1, 1]);
    for _ in 0..iterations {
        q = q.clone() / q.sum_dim(1).mul_scalar(k as f32);
        q = q.clone() / q.sum_dim(0).mul_scalar(b as f32);
    }
    q.mul_scalar(b as f32).transpose()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn rows_sum_to_one_and_columns_to_b_over_k() {
        let scores = tensor(&random_rows(6, 3, 15));
        let q = values(sinkhorn(scores, 0.05, 3));
        for row in q.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
        }
        // After the final column step, columns of Q (rows here) are exact; the prototype totals
        // converge to B/K = 2 as iterations grow.
        let q = values(sinkhorn(tensor(&random_rows(6, 3, 15)), 0.5, 50));
        for c in 0..3 {
            let total: f32 = (0..6).map(|r| q[r * 3 + c]).sum();
            assert!((total - 2.0).abs() < 1e-3, "prototype {c} gets {total}");
        }
    }

    #[test]
    fn one_iteration_by_hand() {
        // B = 2, K = 2, ε = 1, scores = ln of [[1, 2], [3, 4]] → exp = [[1, 2], [3, 4]].
        // Q = expᵀ / 10 = [[1, 3], [2, 4]] / 10; rows ÷ (row sum · K): [[1/8, 3/8], [1/6, 1/3]];
        // columns ÷ (column sum · B): column sums 7/24 and 17/24 → [[3/14, 9/34], [2/7, 4/17]];
        // × B and transposed: [[6/14, 8/14], [18/34, 16/34]].
        let scores = matrix(&[&[0.0, 2f32.ln()], &[3f32.ln(), 4f32.ln()]]);
        let q = values(sinkhorn(scores, 1.0, 1));
        let expected = [6.0 / 14.0, 8.0 / 14.0, 18.0 / 34.0, 16.0 / 34.0];
        for (g, w) in q.iter().zip(expected) {
            assert!((g - w).abs() < 1e-5, "{q:?}");
        }
    }

    #[test]
    fn no_gradient_flows_through_assignments() {
        let scores = tensor(&random_rows(4, 3, 16)).require_grad();
        let q = sinkhorn(scores.clone(), 0.05, 3);
        let loss = (q * scores.clone()).sum();
        let grads = loss.backward();
        // d/dscores of (Q ⊙ scores) with Q constant is Q itself.
        let g = values(scores.grad(&grads).unwrap());
        let q = values(sinkhorn(scores, 0.05, 3));
        assert!(g.iter().zip(&q).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
