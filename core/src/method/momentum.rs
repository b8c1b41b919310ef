//! Momentum encoders: a target network that is an exponential moving average (EMA) of the online
//! network and is never trained by gradients (MoCo, BYOL, DINO).
//!
//! He, Fan, Wu, Xie & Girshick, "Momentum Contrast for Unsupervised Visual Representation
//! Learning", CVPR 2020; Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020.
//!
//! After every optimiser step, each trainable parameter of the target becomes
//! `ξ ← m·ξ + (1 − m)·θ`. The momentum `m` is constant (MoCo v2) or rises from `base` to `end`
//! (1 unless set) on a cosine over training (BYOL, DINO, MoCo v3; Data2Vec to 0.9999):
//! `m_k = end − (end − base)·(cos(πk/K) + 1)/2`.
//!
//! The target's parameters have their own ids and do not require gradients, so the optimiser
//! never sees them; its BatchNorm layers keep their own running statistics (as in solo-learn,
//! only parameters are averaged).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::Progress;
use crate::config::ConfigError;

/// Momentum of the target network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumConfig {
    /// Momentum at the start of training.
    pub base: f64,
    /// Rise from `base` to `end` on a cosine over training (BYOL); `false` keeps `base` (MoCo v2).
    #[serde(default)]
    pub cosine: bool,
    /// Where the cosine ends.
    #[serde(default = "one")]
    pub end: f64,
}

fn one() -> f64 {
    1.0
}

impl MomentumConfig {
    pub fn constant(base: f64) -> Self {
        Self { base, cosine: false, end: 1.0 }
    }

    pub fn cosine(base: f64) -> Self {
        Self { base, cosine: true, end: 1.0 }
    }

    pub fn cosine_to(base: f64, end: f64) -> Self {
        Self { base, cosine: true, end }
    }

    /// The momentum after step `progress.step`.
    pub fn at(&self, progress: &Progress) -> f64 {
        if !self.cosine {
            return self.base;
        }
        let k = progress.fraction();
        self.end - (self.end - self.base) * ((std::f64::consts::PI * k).cos() + 1.0) / 2.0
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [("base", self.base), ("end", self.end)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Value(format!("method.momentum.{name} {value} must be in [0, 1]")));
            }
        }
        Ok(())
    }
}

/// A copy of `online` to serve as its target: same values, new parameter ids, no gradients.
pub fn target_copy<M: Module>(online: &M) -> M {
    struct Detach;
    impl ModuleMapper for Detach {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = param.consume();
            Param::from_mapped_value(ParamId::new(), value.detach(), mapper).set_require_grad(false)
        }
    }
    online.clone().map(&mut Detach)
}

/// `target ← m·target + (1 − m)·online` for every trainable parameter of `online`; the two
/// modules must have the same structure (`target` made by [`target_copy`]).
pub fn ema_update<M: Module>(target: M, online: &M, momentum: f64) -> M {
    /// The online module's float tensors in visiting order, flattened; `None` for those not
    /// trained (running statistics, frozen affine parameters).
    struct Collect(Vec<Option<Tensor<1>>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            self.0.push(value.is_require_grad().then(|| value.detach().flatten(0, D - 1)));
        }
    }
    struct Average {
        online: std::vec::IntoIter<Option<Tensor<1>>>,
        momentum: f64,
    }
    impl ModuleMapper for Average {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            match self.online.next().expect("target and online networks have the same structure") {
                Some(online) => {
                    let m = self.momentum;
                    param.map(|target| {
                        let online: Tensor<D> = online.reshape(target.shape());
                        (target.mul_scalar(m) + online.mul_scalar(1.0 - m)).detach()
                    })
                }
                None => param,
            }
        }
    }
    let mut collect = Collect(Vec::new());
    online.visit(&mut collect);
    let mut average = Average { online: collect.0.into_iter(), momentum };
    let target = target.map(&mut average);
    assert!(average.online.next().is_none(), "target and online networks have the same structure");
    target
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn ema_equals_the_formula_and_the_target_gets_no_gradient() {
        let device = Device::flex().autodiff();
        let online: Linear = LinearConfig::new(3, 2).init(&device);
        let mut target = target_copy(&online);
        assert_eq!(values(target.weight.val()), values(online.weight.val()));
        assert_ne!(target.weight.id, online.weight.id, "the optimiser must not confuse the two");
        // Move the online weights as an optimiser step would (a new leaf that requires a
        // gradient), then average: ξ' = 0.9·ξ + 0.1·θ.
        let xi = values(target.weight.val());
        let online = Linear { weight: online.weight.map(|w| w.add_scalar(1.0).detach().require_grad()), ..online };
        let theta = values(online.weight.val());
        target = ema_update(target, &online, 0.9);
        for ((got, xi), theta) in values(target.weight.val()).iter().zip(&xi).zip(&theta) {
            assert!((got - (0.9 * xi + 0.1 * theta)).abs() < 1e-6);
        }
        // The target is out of the autodiff graph: a loss through both networks gives the
        // online weights a gradient and the target's none.
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &device);
        let grads = (online.forward(x.clone()) + target.forward(x)).sum().backward();
        assert!(online.weight.val().grad(&grads).is_some());
        assert!(target.weight.val().grad(&grads).is_none() && target.bias.as_ref().unwrap().val().grad(&grads).is_none());
    }

    #[test]
    fn momentum_schedules() {
        let at = |step, total| Progress { step, total_steps: total, steps_per_epoch: 10 };
        assert_eq!(MomentumConfig::constant(0.99).at(&at(50, 100)), 0.99);
        let cosine = MomentumConfig::cosine(0.996);
        assert!((cosine.at(&at(0, 100)) - 0.996).abs() < 1e-12);
        // Half-way: 1 − 0.004·(cos(π/2) + 1)/2 = 0.998.
        assert!((cosine.at(&at(50, 100)) - 0.998).abs() < 1e-12);
        assert!((cosine.at(&at(100, 100)) - 1.0).abs() < 1e-12);
        // Data2Vec's 0.999 → 0.9999: half-way 0.9999 − 0.0009·½.
        assert!((MomentumConfig::cosine_to(0.999, 0.9999).at(&at(50, 100)) - 0.99945).abs() < 1e-12);
        assert!(MomentumConfig::constant(1.5).validate().is_err());
    }
}
