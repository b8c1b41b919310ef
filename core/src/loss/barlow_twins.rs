//! Barlow Twins: redundancy reduction between the two views' embeddings.
//!
//! Zbontar, Jing, Misra, LeCun & Deny, "Barlow Twins: Self-Supervised Learning via Redundancy
//! Reduction", ICML 2021.
//!
//! Each dimension is standardised over the batch as BatchNorm without affine does (biased
//! variance, ε = 1e-5); the cross-correlation `C = z̃1ᵀ z̃2 / N` is pushed towards the identity:
//!
//! `L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²`.
//!
//! Shapes: `z1`, `z2`: `[N, D]` → `[1]`.

use burn::tensor::Tensor;

use super::{off_diagonal_square_sum, standardize};

pub fn barlow_twins(z1: Tensor<2>, z2: Tensor<2>, lambda: f32) -> Tensor<1> {
    let c = cross_correlation(z1, z2);
    let d = c.dims()[0];
    let eye = Tensor::<2>::eye(d, &c.device());
    let on_diagonal = (c.clone() * eye.clone()).sum_dim(1).reshape([d]).neg().add_scalar(1.0).powi_scalar(2).sum();
    on_diagonal + off_diagonal_square_sum(c).mul_scalar(lambda)
}

/// The cross-correlation `C = z̃1ᵀ z̃2 / N` of the standardised embeddings, `[D, D]`: the
/// matrix the loss pushes to the identity.
pub fn cross_correlation(z1: Tensor<2>, z2: Tensor<2>) -> Tensor<2> {
    let n = z1.dims()[0];
    standardize(z1, 1e-5).transpose().matmul(standardize(z2, 1e-5)).div_scalar(n as f32)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn reference(z1: &[Vec<f32>], z2: &[Vec<f32>], lambda: f64) -> f64 {
        let (n, d) = (z1.len(), z1[0].len());
        let standardise = |z: &[Vec<f32>]| -> Vec<Vec<f64>> {
            let mut out = vec![vec![0.0; d]; n];
            for j in 0..d {
                let mean = z.iter().map(|r| r[j] as f64).sum::<f64>() / n as f64;
                let var = z.iter().map(|r| (r[j] as f64 - mean).powi(2)).sum::<f64>() / n as f64;
                for i in 0..n {
                    out[i][j] = (z[i][j] as f64 - mean) / (var + 1e-5).sqrt();
                }
            }
            out
        };
        let (a, b) = (standardise(z1), standardise(z2));
        let mut loss = 0.0;
        for i in 0..d {
            for j in 0..d {
                let c: f64 = (0..n).map(|k| a[k][i] * b[k][j]).sum::<f64>() / n as f64;
                loss += if i == j { (1.0 - c).powi(2) } else { lambda * c * c };
            }
        }
        loss
    }

    #[test]
    fn identical_decorrelated_views_give_almost_zero() {
        // Two dimensions, ±1 patterns that are uncorrelated and have unit variance: C = I·(1/(1+ε)).
        let z = matrix(&[&[1.0, 1.0], &[1.0, -1.0], &[-1.0, 1.0], &[-1.0, -1.0]]);
        let loss = scalar(barlow_twins(z.clone(), z, 5e-3));
        let expected = 2.0 * (1.0 - 1.0 / (1.0f64 + 1e-5).sqrt()).powi(2);
        assert!((loss - expected).abs() < 1e-6, "{loss}");
    }

    #[test]
    fn matches_the_formula_on_random_embeddings() {
        let (a, b) = (random_rows(6, 4, 9), random_rows(6, 4, 10));
        let got = scalar(barlow_twins(tensor(&a), tensor(&b), 5e-3));
        let want = reference(&a, &b, 5e-3);
        assert!((got - want).abs() < 1e-4 * want.max(1.0), "{got} vs {want}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&random_rows(5, 3, 11), &random_rows(5, 3, 12), |a, b| barlow_twins(a, b, 0.1));
    }
}
