//! Negative cosine similarity, the loss of SimSiam (and, as `2 − 2cos`, of BYOL).
//!
//! Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021.
//!
//! `D(p, z) = −(1/N) Σ_i p_iᵀz_i / (‖p_i‖ ‖z_i‖)`. SimSiam's stop-gradient on `z` is the
//! caller's job (`z.detach()`).
//!
//! Shapes: `p`, `z`: `[N, D]` → `[1]`.

use burn::tensor::Tensor;

use super::l2_normalize;

pub fn negative_cosine(p: Tensor<2>, z: Tensor<2>) -> Tensor<1> {
    (l2_normalize(p) * l2_normalize(z)).sum_dim(1).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn hand_computed_values() {
        // Same direction → −1, opposite → +1, orthogonal → 0; mean of the three = 0.
        let p = matrix(&[&[1.0, 0.0], &[0.0, 2.0], &[3.0, 0.0]]);
        let z = matrix(&[&[5.0, 0.0], &[0.0, -1.0], &[0.0, 1.0]]);
        assert!(scalar(negative_cosine(p, z)).abs() < 1e-7);
        // cos 60° = 0.5 → −0.5
        let p = matrix(&[&[1.0, 0.0]]);
        let z = matrix(&[&[0.5, 0.75f32.sqrt()]]);
        assert!((scalar(negative_cosine(p, z)) + 0.5).abs() < 1e-6);
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&random_rows(3, 4, 5), &random_rows(3, 4, 6), negative_cosine);
    }

    #[test]
    fn detached_target_gets_no_gradient() {
        let p = tensor(&random_rows(3, 4, 7)).require_grad();
        let z = tensor(&random_rows(3, 4, 8)).require_grad();
        let grads = negative_cosine(p.clone(), z.clone().detach()).backward();
        assert!(p.grad(&grads).is_some());
        assert!(z.grad(&grads).is_none());
    }
}
