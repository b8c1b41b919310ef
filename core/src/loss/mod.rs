//! Loss functionals of joint-embedding methods: pure functions of `[N, D]` embeddings (and of
//! `[N, T, D]` tokens for the masked-prediction ones).
//!
//! One file per loss, each with its paper, formula and shapes. Stop-gradients are the callers'
//! (the methods') job, except where a loss produces targets by definition ([`sinkhorn()`]).

mod barlow_twins;
mod data2vec;
mod dino;
mod info_nce;
mod mae;
mod negative_cosine;
mod nt_xent;
mod sinkhorn;
mod swav;
mod vicreg;

pub use barlow_twins::{barlow_twins, cross_correlation};
pub use data2vec::{data2vec_targets, masked_regression};
pub use dino::{DinoTemperature, dino_center, dino_loss, dino_teacher_entropy};
pub use info_nce::{info_nce, info_nce_in_batch, moco_logits};
pub use mae::{mae_targets, patchify};
pub use negative_cosine::negative_cosine;
pub use nt_xent::{nt_xent, nt_xent_logits};
pub use sinkhorn::sinkhorn;
pub use swav::swapped_prediction;
pub use vicreg::{VicregCoeffs, VicregTerms, covariance, vicreg};

use burn::tensor::Tensor;

/// L2-normalises each row: `z / max(‖z‖₂, 1e-12)` (PyTorch's `F.normalize`).
pub fn l2_normalize(z: Tensor<2>) -> Tensor<2> {
    let norm = z.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    z / norm
}

/// Each dimension standardised over the batch (BatchNorm without affine): mean 0, biased
/// variance 1 (plus `eps`).
pub(crate) fn standardize(z: Tensor<2>, eps: f64) -> Tensor<2> {
    let (var, mean) = z.clone().var_mean_bias(0);
    (z - mean) / var.add_scalar(eps).sqrt()
}

/// Cross-entropy of every target distribution with the predictions of every *other* view,
/// averaged over the pairs and the batch (SwAV's swapped prediction, DINO's loss):
/// `(1/|pairs|) Σ_{i, v≠i} −(1/B) Σ_b Σ_k targets_i[b,k] · log softmax(logits_v[b] / τ)_k`.
/// `targets[i]` and `logits[i]` come from the same view; targets carry no gradient.
pub(crate) fn cross_view_cross_entropy(targets: &[Tensor<2>], logits: &[Tensor<2>], temperature: f32) -> Tensor<1> {
    assert!(logits.len() >= 2 && !targets.is_empty() && targets.len() <= logits.len(), "at least two views, and a target for some of them");
    let log_probs: Vec<Tensor<2>> =
        logits.iter().map(|l| burn::tensor::activation::log_softmax(l.clone().div_scalar(temperature), 1)).collect();
    let mut total = None;
    let mut pairs = 0;
    for (i, target) in targets.iter().enumerate() {
        for log_prob in log_probs.iter().enumerate().filter(|(v, _)| *v != i).map(|(_, l)| l) {
            let term = (target.clone().detach() * log_prob.clone()).sum_dim(1).mean().neg();
            total = Some(match total {
                Some(sum) => sum + term,
                None => term,
            });
            pairs += 1;
        }
    }
    total.expect("at least one pair").div_scalar(pairs as f32)
}

/// Sum of the squares of a square matrix's off-diagonal entries.
pub(crate) fn off_diagonal_square_sum(m: Tensor<2>) -> Tensor<1> {
    let d = m.dims()[0];
    let eye = Tensor::<2>::eye(d, &m.device());
    (m.clone() - m * eye).powi_scalar(2).sum()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for loss tests: tensors from nested arrays, and finite-difference gradient checks.

    use burn::tensor::{Device, Tensor, TensorData};

    pub fn device() -> Device {
        Device::flex().autodiff()
    }

    pub fn matrix(rows: &[&[f32]]) -> Tensor<2> {
        let (n, d) = (rows.len(), rows[0].len());
        Tensor::from_data(TensorData::new(rows.concat(), [n, d]), &device())
    }

    pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    pub fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    /// Deterministic pseudo-random `[n, d]` values in `[-1, 1]`.
    pub fn random_rows(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = crate::rng::Rng::new(seed);
        (0..n).map(|_| (0..d).map(|_| rng.range(-1.0, 1.0)).collect()).collect()
    }

    pub fn tensor(rows: &[Vec<f32>]) -> Tensor<2> {
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        matrix(&refs)
    }

    /// Compares autodiff's gradient of `loss(a, b)` with respect to both inputs against central
    /// finite differences.
    pub fn check_gradients(a: &[Vec<f32>], b: &[Vec<f32>], loss: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<1>) {
        let ta = tensor(a).require_grad();
        let tb = tensor(b).require_grad();
        let grads = loss(ta.clone(), tb.clone()).backward();
        let analytic = [values(ta.grad(&grads).expect("grad a")), values(tb.grad(&grads).expect("grad b"))];
        let h = 1e-2f32;
        for (which, analytic) in analytic.iter().enumerate() {
            let base = if which == 0 { a } else { b };
            for i in 0..base.len() {
                for j in 0..base[0].len() {
                    let eval = |delta: f32| {
                        let mut m = base.to_vec();
                        m[i][j] += delta;
                        let (x, y) = if which == 0 { (tensor(&m), tensor(b)) } else { (tensor(a), tensor(&m)) };
                        scalar(loss(x, y))
                    };
                    let numeric = (eval(h) - eval(-h)) / (2.0 * h as f64);
                    let got = analytic[i * base[0].len() + j] as f64;
                    let tol = 2e-3 + 2e-2 * numeric.abs();
                    assert!((got - numeric).abs() <= tol, "input {which} [{i}][{j}]: autodiff {got}, finite differences {numeric}");
                }
            }
        }
    }
}
