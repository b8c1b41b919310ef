//! VICReg: variance, invariance and covariance regularisation.
//!
//! Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
//! Self-Supervised Learning", ICLR 2022. Conventions of the official code:
//!
//! - invariance `s = (1/ND) Σ ‖z1_i − z2_i‖²` (MSE);
//! - variance `v = ½ mean_j relu(1 − √(Var(z1_j) + 1e-4)) + ½ (same for z2)`, unbiased variance;
//! - covariance `c = Σ_{i≠j} Cov(z1)_ij² / D + (same for z2)`, `Cov(z) = z̄ᵀz̄/(N−1)` of the
//!   centred `z̄`;
//! - `L = sim·s + std·v + cov·c` with defaults 25, 25, 1.
//!
//! Shapes: `z1`, `z2`: `[N, D]`, `N ≥ 2` → each term `[1]`.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::off_diagonal_square_sum;

/// Weights of VICReg's three terms.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VicregCoeffs {
    pub sim: f32,
    pub std: f32,
    pub cov: f32,
}

impl Default for VicregCoeffs {
    fn default() -> Self {
        Self { sim: 25.0, std: 25.0, cov: 1.0 }
    }
}

/// The weighted total and the three unweighted terms.
#[derive(Debug, Clone)]
pub struct VicregTerms {
    pub total: Tensor<1>,
    pub invariance: Tensor<1>,
    pub variance: Tensor<1>,
    pub covariance: Tensor<1>,
}

fn variance_term(z: Tensor<2>) -> Tensor<1> {
    let std = z.var(0).add_scalar(1e-4).sqrt();
    relu(std.neg().add_scalar(1.0)).mean()
}

fn covariance_term(z: Tensor<2>) -> Tensor<1> {
    let d = z.dims()[1];
    off_diagonal_square_sum(covariance(z)).div_scalar(d as f32)
}

/// `Cov(z) = z̄ᵀz̄/(N−1)` of the centred embeddings, `[D, D]`: the covariance term is the sum
/// of its squared off-diagonal entries over `D`.
pub fn covariance(z: Tensor<2>) -> Tensor<2> {
    let n = z.dims()[0];
    let centred = z.clone() - z.mean_dim(0);
    centred.clone().transpose().matmul(centred).div_scalar((n - 1) as f32)
}

pub fn vicreg(z1: Tensor<2>, z2: Tensor<2>, coeffs: VicregCoeffs) -> VicregTerms {
    let invariance = (z1.clone() - z2.clone()).powi_scalar(2).mean();
    let variance = (variance_term(z1.clone()) + variance_term(z2.clone())).div_scalar(2.0);
    let covariance = covariance_term(z1) + covariance_term(z2);
    let total =
        invariance.clone().mul_scalar(coeffs.sim) + variance.clone().mul_scalar(coeffs.std) + covariance.clone().mul_scalar(coeffs.cov);
    VicregTerms { total, invariance, variance, covariance }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn hand_computed_terms() {
        // z1 columns: [0, 2] and [0, 0]; z2 = z1 + 1 everywhere.
        // invariance: every difference is 1 → 1.
        // variance: column 1 has Var = 2 (unbiased) → relu(1 − √2.0001) = 0; column 2 has Var = 0 →
        //   relu(1 − 0.01) = 0.99; mean 0.495 per branch; ½(0.495 + 0.495) = 0.495.
        // covariance: Cov = [[2, 0], [0, 0]] → no off-diagonal → 0.
        let z1 = matrix(&[&[0.0, 0.0], &[2.0, 0.0]]);
        let z2 = matrix(&[&[1.0, 1.0], &[3.0, 1.0]]);
        let t = vicreg(z1, z2, VicregCoeffs::default());
        assert!((scalar(t.invariance) - 1.0).abs() < 1e-6);
        assert!((scalar(t.variance) - 0.495).abs() < 1e-6);
        assert!(scalar(t.covariance).abs() < 1e-7);
        assert!((scalar(t.total) - (25.0 + 25.0 * 0.495)).abs() < 1e-4);
    }

    #[test]
    fn covariance_of_correlated_dimensions() {
        // Columns equal: Cov = [[v, v], [v, v]] with v = Var = 1 (values −1, 0, 1; unbiased) →
        // off-diagonal squares 2·1 = 2, / D = 1, for each branch → 2.
        let z = matrix(&[&[-1.0, -1.0], &[0.0, 0.0], &[1.0, 1.0]]);
        let t = vicreg(z.clone(), z, VicregCoeffs::default());
        assert!((scalar(t.covariance) - 2.0).abs() < 1e-6);
        assert!(scalar(t.invariance).abs() < 1e-9);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let coeffs = VicregCoeffs { sim: 1.0, std: 1.0, cov: 1.0 };
        // Small spread so that the variance hinge is active.
        let small = |seed| random_rows(5, 3, seed).into_iter().map(|r| r.into_iter().map(|v| v * 0.3).collect()).collect::<Vec<_>>();
        check_gradients(&small(13), &small(14), |a, b| vicreg(a, b, coeffs).total);
    }
}
