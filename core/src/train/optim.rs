//! Optimisers: SGD with momentum and AdamW (burn's), and LARS.
//!
//! LARS (You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", 2017), as the
//! SimCLR/BYOL/Barlow Twins code uses it: for each weight tensor `w` with gradient `g`,
//!
//! `u = g + wd·w`,  `trust = η‖w‖ / (‖g‖ + wd‖w‖ + 1e-8)` (1 if either norm is 0),
//! `v ← m·v + trust·u`,  `w ← w − lr·v`.
//!
//! Biases and normalisation parameters — the one-dimensional tensors — are excluded from both the
//! trust ratio and weight decay (`u = g`, `trust = 1`).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::{Momentum, MomentumConfig, MomentumState};
use burn::optim::{AdamWConfig, LearningRate, ModuleOptimizer, Optimizer, SgdConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// SGD with (undampened) momentum and coupled weight decay on every parameter.
    Sgd {
        momentum: f64,
        weight_decay: f32,
    },
    /// LARS with trust coefficient `eta` (0.001 in the papers).
    Lars {
        momentum: f64,
        weight_decay: f64,
        eta: f64,
    },
    AdamW {
        weight_decay: f32,
        beta1: f32,
        beta2: f32,
    },
}

impl OptimizerConfig {
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Lars { .. } => "lars",
            OptimizerConfig::AdamW { .. } => "adamw",
        }
    }

    pub fn init(&self) -> ModuleOptimizer {
        match *self {
            OptimizerConfig::Sgd { momentum, weight_decay } => SgdConfig::new()
                .with_momentum(Some(MomentumConfig { momentum, dampening: 0.0, nesterov: false }))
                .with_weight_decay((weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay)))
                .init(),
            OptimizerConfig::Lars { momentum, weight_decay, eta } => ModuleOptimizer::from(Lars::new(momentum, weight_decay, eta)),
            OptimizerConfig::AdamW { weight_decay, beta1, beta2 } => {
                AdamWConfig::new().with_weight_decay(weight_decay).with_beta_1(beta1).with_beta_2(beta2).init()
            }
        }
    }
}

/// LARS; see the module documentation.
#[derive(Clone)]
pub struct Lars {
    weight_decay: f64,
    eta: f64,
    /// `v ← m·v + u`: burn's momentum without dampening.
    momentum: Momentum,
}

impl Lars {
    pub fn new(momentum: f64, weight_decay: f64, eta: f64) -> Self {
        let momentum = Momentum::new(&MomentumConfig { momentum, dampening: 0.0, nesterov: false });
        Self { weight_decay, eta, momentum }
    }

    /// The update direction `trust·(g + wd·w)` (or `g` for biases and norms).
    pub fn update<const D: usize>(&self, weight: &Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
        if D == 1 {
            return grad;
        }
        let w_norm = weight.clone().powi_scalar(2).sum().sqrt();
        let g_norm = grad.clone().powi_scalar(2).sum().sqrt();
        let ratio = w_norm.clone().mul_scalar(self.eta) / (g_norm.clone() + w_norm.clone().mul_scalar(self.weight_decay)).add_scalar(1e-8);
        let degenerate = w_norm.equal_elem(0.0).bool_or(g_norm.equal_elem(0.0));
        let trust = ratio.mask_fill(degenerate, 1.0).reshape([1; D]);
        (grad + weight.clone().mul_scalar(self.weight_decay)) * trust
    }
}

impl Optimizer for Lars {
    type State<const D: usize> = MomentumState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        weight: Tensor<D>,
        grad: Tensor<D>,
        state: Option<MomentumState<D>>,
    ) -> (Tensor<D>, Option<MomentumState<D>>) {
        let update = self.update(&weight, grad);
        let (velocity, state) = self.momentum.transform(update, state);
        (weight - velocity.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: MomentumState<D>, device: &Device) -> MomentumState<D> {
        state.to_device(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn t2(v: &[f32]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &Device::flex())
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn lars_trust_ratio_follows_the_formula() {
        // w = (3, 4): ‖w‖ = 5; g = (0, 1): ‖g‖ = 1; wd = 0.1, η = 0.001:
        // trust = 0.001·5 / (1 + 0.5 + 1e-8); u = g + 0.1·w = (0.3, 1.4).
        let lars = Lars::new(0.9, 0.1, 0.001);
        let got = vals(lars.update(&t2(&[3.0, 4.0]), t2(&[0.0, 1.0])));
        let trust = 0.005 / (1.5 + 1e-8);
        assert!((got[0] - 0.3 * trust).abs() < 1e-9 && (got[1] - 1.4 * trust).abs() < 1e-9, "{got:?}");
    }

    #[test]
    fn lars_leaves_biases_and_norms_alone() {
        let lars = Lars::new(0.9, 0.1, 0.001);
        let b = Tensor::<1>::from_floats([3.0, 4.0], &Device::flex());
        let g = Tensor::<1>::from_floats([0.5, -1.0], &Device::flex());
        assert_eq!(vals(lars.update(&b, g)), vec![0.5, -1.0]);
    }

    #[test]
    fn lars_momentum_accumulates() {
        let lars = Lars::new(0.5, 0.0, 1.0);
        // trust = ‖w‖/‖g‖ = 1 for w = g = (1, 0): update (1, 0); lr 0.1.
        let (w, s) = lars.step(0.1, t2(&[1.0, 0.0]), t2(&[1.0, 0.0]), None);
        assert!((vals(w.clone())[0] - 0.9).abs() < 1e-6);
        // Second step: trust = 0.9/1 → update 0.9; v = 0.5·1 + 0.9 = 1.4; w = 0.9 − 0.14.
        let (w, _) = lars.step(0.1, w, t2(&[1.0, 0.0]), s);
        assert!((vals(w)[0] - 0.76).abs() < 1e-6);
    }
}
