//! SwAV's swapped prediction.
//!
//! Caron, Misra, Mairal, Goyal, Bojanowski & Joulin, "Unsupervised Learning of Visual Features by
//! Contrasting Cluster Assignments", NeurIPS 2020.
//!
//! Each view's embedding `z` (L2-normalised) is scored against K prototypes `C` (unit rows):
//! `s = z Cᵀ`. The codes `q` of a global view come from Sinkhorn on its scores ([`super::sinkhorn()`]).
//! Every other view must predict them:
//!
//! `L = (1/|pairs|) Σ_{i global} Σ_{v≠i} −(1/B) Σ_b Σ_k q_i[b,k] · log softmax(s_v[b] / τ)_k`,
//! τ = 0.1 in the paper.
//!
//! Shapes: `codes`: one `[B, K]` per global view (no gradient); `scores`: one `[B, K]` per view,
//! global views first → `[1]`.

use burn::tensor::Tensor;

use super::cross_view_cross_entropy;

pub fn swapped_prediction(codes: &[Tensor<2>], scores: &[Tensor<2>], temperature: f32) -> Tensor<1> {
    cross_view_cross_entropy(codes, scores, temperature)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn hand_computed_two_views() {
        // B = 1, K = 2, τ = 1. Codes q1 = [1, 0], q2 = [0.5, 0.5]; scores s1 = [0, 0],
        // s2 = [ln 3, 0] → softmax(s1) = [½, ½], softmax(s2) = [¾, ¼].
        // Pairs (1 → 2): −ln ¾; (2 → 1): −(½ ln ½ + ½ ln ½) = ln 2. Mean of the two.
        let codes = [matrix(&[&[1.0, 0.0]]), matrix(&[&[0.5, 0.5]])];
        let scores = [matrix(&[&[0.0, 0.0]]), matrix(&[&[3f32.ln(), 0.0]])];
        let expected = (-(0.75f64).ln() + 2f64.ln()) / 2.0;
        assert!((scalar(swapped_prediction(&codes, &scores, 1.0)) - expected).abs() < 1e-6);
    }

    #[test]
    fn local_views_predict_but_are_not_predicted() {
        // One global view's codes, three views: pairs (0 → 1), (0 → 2) only.
        let codes = [matrix(&[&[0.0, 1.0]])];
        let scores = [matrix(&[&[9.0, -9.0]]), matrix(&[&[0.0, 0.0]]), matrix(&[&[0.0, 2f32.ln()]])];
        // softmax([0, ln 2]) = [⅓, ⅔] → −ln ⅔; softmax([0, 0]) → ln 2.
        let expected = (2f64.ln() - (2.0f64 / 3.0).ln()) / 2.0;
        assert!((scalar(swapped_prediction(&codes, &scores, 1.0)) - expected).abs() < 1e-6);
    }
}
