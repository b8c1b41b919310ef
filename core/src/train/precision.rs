//! Mixed precision (`train.precision`): the forward and backward passes in bf16 or f16, the
//! weights and the optimiser's state in f32.
//!
//! burn has no autocast, so each step casts the trainable parameters (a differentiable cast, so
//! the gradients arrive in f32 at the f32 weights they came from) into a half-precision copy of
//! the model, which computes the step. Frozen tensors (momentum targets, BatchNorm's running
//! statistics) stay in f32. Modules cast at their edges: a backbone or MLP head takes its input in
//! its parameters' type and returns f32, so every loss, softmax over a batch and Sinkhorn runs in
//! f32; BatchNorm, LayerNorm and attention's softmax compute in f32 inside the half-precision
//! network (`jem_kernels::norm::half`).
//!
//! f16 has a narrow range (gradients below 6e-8 vanish): with f16 the loss is multiplied by a
//! scale before backpropagation and the gradients divided by it after; a step whose gradients
//! overflow is skipped and halves the scale, and every [`LossScale::GROWTH_INTERVAL`] good
//! steps double it (PyTorch's `GradScaler`). bf16 has f32's range and needs none.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// The type the forward and backward passes compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// An error unless `device` computes in this type.
    pub fn check(self, device: &Device) -> Result<(), ConfigError> {
        if self == Precision::F32 || device.supports_dtype(self.dtype()) {
            Ok(())
        } else {
            Err(ConfigError::Value(format!(
                "train.precision = \"{}\": this device has no {} arithmetic; use \"f32\"{}",
                self.name(),
                self.name(),
                match self {
                    Precision::Bf16 => " or \"f16\"",
                    _ => " or \"bf16\"",
                }
            )))
        }
    }
}

/// `model` with its trainable parameters cast to `dtype` (differentiably: gradients flow back to
/// the f32 parameters); frozen ones stay as they are.
pub fn half_copy<M: Module>(model: &M, dtype: DType) -> M {
    struct Cast(DType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|value| if value.is_require_grad() { value.cast(dtype) } else { value })
        }
    }
    model.clone().map(&mut Cast(dtype))
}

/// The type of `module`'s first float parameter: what its input is cast to.
pub fn parameter_dtype<M: Module>(module: &M) -> DType {
    struct First(Option<DType>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.get_or_insert_with(|| param.val().dtype());
        }
    }
    let mut first = First(None);
    module.visit(&mut first);
    first.0.unwrap_or(DType::F32)
}

/// `forward(module, x)` with `x` in `module`'s parameter type and the result in f32: the edge of
/// a half-precision module (a no-op in f32).
pub fn at_edges<M: Module, const D: usize, const E: usize>(
    module: &M,
    x: Tensor<D>,
    forward: impl FnOnce(Tensor<D>) -> Tensor<E>,
) -> Tensor<E> {
    let dtype = parameter_dtype(module);
    if dtype == DType::F32 && x.dtype() == DType::F32 {
        return forward(x);
    }
    let x = if x.dtype() == dtype { x } else { x.cast(dtype) };
    let y = forward(x);
    if y.dtype() == DType::F32 { y } else { y.cast(DType::F32) }
}

/// The gradients of `model`'s parameters divided by `scale` (the loss scale).
pub fn unscale<M: Module>(model: &M, grads: GradientsParams, scale: f32) -> GradientsParams {
    struct Unscale(GradientsParams, f32);
    impl ModuleVisitor for Unscale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.0.remove::<D>(param.id) {
                self.0.register(param.id, grad / self.1);
            }
        }
    }
    let mut unscale = Unscale(grads, scale);
    model.visit(&mut unscale);
    unscale.0
}

/// f16's dynamic loss scale.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScale {
    pub scale: f32,
    /// Good steps since the scale last changed.
    pub good_steps: usize,
}

impl Default for LossScale {
    fn default() -> Self {
        Self { scale: 65536.0, good_steps: 0 }
    }
}

impl LossScale {
    pub const GROWTH_INTERVAL: usize = 2000;

    /// After a step whose gradient norm (of the scaled loss) is `scaled_norm`: whether to apply
    /// the step, and the scale for the next one.
    pub fn update(&mut self, scaled_norm: f32) -> bool {
        if !scaled_norm.is_finite() {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps == Self::GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;
    use crate::data::batch::TensorBatch;
    use crate::method::{MethodConfig, Progress};
    use crate::model::BackboneConfig;
    use crate::rng::Rng;
    use crate::train::testing::{relative_error, values};
    use crate::train::{OptimizerConfig, Schedule, Trainer};

    /// What a step in `precision` gives: the loss, the gradients (with their types) and the
    /// weights (with theirs) after one optimiser step.
    struct Step {
        loss: f32,
        gradients: (Vec<f32>, Vec<DType>),
        weights: (Vec<f32>, Vec<DType>),
    }

    /// A small ResNet-18 with `method` (TOML), its parameters drawn.
    fn model(method: &str, device: &Device) -> crate::method::Model {
        let method: MethodConfig = toml::from_str(method).unwrap();
        let resnet = BackboneConfig { arch: "resnet18".into(), width: 8, stem: crate::model::Stem::Cifar, ..Default::default() };
        let model = method.init(&resnet, device).unwrap();
        values(&model, None);
        model
    }

    /// One step of `model` on `device` in `precision`. (A clone of one model for each precision,
    /// rather than two from one seed: tests running beside this one draw from the same generator.
    /// The clones share BatchNorm's running statistics, which a training step does not read.)
    fn one_step(model: crate::method::Model, precision: Precision, device: &Device) -> Step {
        let mut rng = Rng::new(3);
        let mut view = || {
            let pixels: Vec<f32> = (0..16 * 3 * 32 * 32).map(|_| rng.range(-1.0, 1.0)).collect();
            Tensor::<4>::from_data(TensorData::new(pixels, [16, 3, 32, 32]), device)
        };
        let batch = TensorBatch::from_views(vec![view(), view()]);
        let progress = Progress { step: 0, total_steps: 10, steps_per_epoch: 5 };
        let half = half_copy(&model, precision.dtype());
        let out = half.step(&batch, &progress);
        let loss = out.loss.clone().into_scalar::<f32>();
        let gradients = values(&model, Some(&GradientsParams::from_grads(out.loss.backward(), &model)));
        let optimizer = OptimizerConfig::AdamW { weight_decay: 1e-4, beta1: 0.9, beta2: 0.999 };
        let schedule = Schedule { peak: 1e-3, min: 0.0, warmup_steps: 0, total_steps: 10, steps_per_epoch: 5 };
        let mut trainer = Trainer::new(model, &optimizer, schedule).precision(precision);
        trainer.step(&batch);
        Step { loss, gradients, weights: values(trainer.model(), None) }
    }

    /// A bf16 step is the f32 step to bf16's precision, and the weights it updates, and their
    /// gradients, stay f32. bf16 keeps 8 significant bits (a relative rounding of 2⁻⁹ ≈ 2e-3 per
    /// operation): the loss agrees to that (measured 1.5e-3 to 2.2e-3; the model is drawn anew on
    /// each run), the gradients of a ResNet much less (measured 0.36 to 0.37 relative L2; burn's
    /// CPU backend also sums a convolution's weight gradient over the batch and the image in
    /// bf16), and the weights after one AdamW step, which normalises each gradient, to 5.4e-3 to
    /// 6.5e-3 of their norm.
    #[test]
    fn a_bf16_step_on_the_cpu_is_the_f32_step_to_bf16_precision() {
        let device = Device::flex().autodiff();
        for method in ["name = 'simclr'\nprojector = { dims = [32, 16] }", "name = 'vicreg'\nexpander = { dims = [32, 32] }"] {
            let model = model(method, &device);
            let (exact, half) = (one_step(model.clone(), Precision::F32, &device), one_step(model, Precision::Bf16, &device));
            let what = method.lines().next().unwrap();
            let loss_error = ((half.loss - exact.loss) / exact.loss).abs();
            let gradient_error = relative_error(&half.gradients.0, &exact.gradients.0);
            let weight_error = relative_error(&half.weights.0, &exact.weights.0);
            eprintln!("{what}: loss {} f32, {} bf16; gradients {gradient_error:.1e}, weights {weight_error:.1e}", exact.loss, half.loss);
            assert!(loss_error < BF16_LOSS_TOLERANCE, "{what}: loss {} in bf16, {} in f32", half.loss, exact.loss);
            assert!(gradient_error < BF16_GRADIENT_TOLERANCE, "{what}: gradients differ by {gradient_error:.1e}");
            assert!(weight_error < BF16_WEIGHT_TOLERANCE, "{what}: weights differ by {weight_error:.1e}");
            assert!(
                half.gradients.1.iter().chain(&half.weights.1).all(|d| *d == DType::F32),
                "{what}: master weights and gradients in f32"
            );
        }
    }

    const BF16_LOSS_TOLERANCE: f32 = 1e-2;
    const BF16_GRADIENT_TOLERANCE: f64 = 0.5;
    const BF16_WEIGHT_TOLERANCE: f64 = 2e-2;

    #[test]
    fn the_loss_scale_halves_on_overflow_and_doubles_after_good_steps() {
        let mut scale = LossScale::default();
        assert!(!scale.update(f32::INFINITY));
        assert_eq!(scale.scale, 32768.0);
        assert!(!scale.update(f32::NAN));
        assert_eq!(scale.scale, 16384.0);
        for _ in 0..LossScale::GROWTH_INTERVAL - 1 {
            assert!(scale.update(1.0));
        }
        assert_eq!(scale.scale, 16384.0);
        assert!(scale.update(1.0));
        assert_eq!(scale.scale, 32768.0);
        assert_eq!(scale.good_steps, 0);
    }

    #[test]
    fn unscaling_divides_every_gradient() {
        let device = Device::flex().autodiff();
        let layer = burn::nn::LinearConfig::new(2, 1).init(&device);
        let x = Tensor::<2>::from_floats([[1.0, 2.0]], &device);
        let grads = GradientsParams::from_grads((layer.forward(x.clone()).sum() * 8.0).backward(), &layer);
        let grads = unscale(&layer, grads, 8.0);
        let (values, _) = values(&layer, Some(&grads));
        assert_eq!(values, vec![1.0, 2.0, 1.0], "∂/∂w = x, ∂/∂b = 1");
    }
}
