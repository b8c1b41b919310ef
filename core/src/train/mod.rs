//! The training step shared by the native trainer and the browser: forward the method, back-
//! propagate, step the optimiser with the scheduled learning rate, and report what happened.

pub mod data_parallel;
pub mod optim;
pub mod precision;
pub mod schedule;
#[cfg(test)]
mod testing;

pub use optim::OptimizerConfig;
pub use precision::Precision;
pub use schedule::Schedule;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use crate::data::batch::TensorBatch;
use crate::eval::monitor::normalized_dimension_std;
use crate::method::{Model, Progress};

/// Numbers of one training step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    pub step: usize,
    pub lr: f64,
    pub loss: f32,
    /// The method's named loss terms.
    pub terms: Vec<(&'static str, f32)>,
    /// Mean per-dimension std of the L2-normalised embedding: about `1/√D` when healthy,
    /// 0 when collapsed (SimSiam's monitor).
    pub embedding_std: f32,
    /// The per-dimension stds that `embedding_std` averages (`D` values): which dimensions a
    /// collapse has killed.
    pub embedding_dimension_std: Vec<f32>,
    /// L2 norm of all trainable parameters' gradients together, before the optimiser step.
    /// NaN or infinite when backpropagation blew up, even if the loss itself is finite.
    pub grad_norm: f32,
    /// f16 only: the gradients overflowed at the loss scale, so the optimiser step was skipped and
    /// the scale halved (a NaN `grad_norm` then is no divergence, unless the scale is down to 1).
    pub skipped: bool,
}

/// A model and its optimiser.
pub struct Trainer {
    model: Option<Model>,
    optimizer: ModuleOptimizer,
    pub schedule: Schedule,
    /// Steps taken so far.
    pub step: usize,
    /// The devices each step's batch is split over (the model on the first); empty: no split.
    devices: Vec<Device>,
    /// The type the steps compute in; the model's weights stay f32.
    precision: Precision,
    /// f16's loss scale (see [`precision`]).
    pub loss_scale: precision::LossScale,
}

impl Trainer {
    pub fn new(model: Model, optimizer: &OptimizerConfig, schedule: Schedule) -> Self {
        Self {
            model: Some(model),
            optimizer: optimizer.init(),
            schedule,
            step: 0,
            devices: Vec::new(),
            precision: Precision::F32,
            loss_scale: Default::default(),
        }
    }

    pub fn model(&self) -> &Model {
        self.model.as_ref().expect("the model is only taken during a step")
    }

    pub fn into_model(self) -> Model {
        self.model.expect("the model is only taken during a step")
    }

    /// Splits every step's batch over `devices` (autodiff devices; the model must live on the
    /// first): see [`data_parallel`].
    pub fn data_parallel(mut self, devices: Vec<Device>) -> Self {
        self.devices = devices;
        self
    }

    /// Computes every step in `precision` (see [`precision`]); check it with
    /// [`Precision::check`] first.
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The optimiser (for checkpoints).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optimizer
    }

    /// Replaces model, optimiser state and step counter (resuming from a checkpoint).
    pub fn restore(&mut self, model: Model, optimizer: ModuleOptimizer, step: usize) {
        self.model = Some(model);
        self.optimizer = optimizer;
        self.step = step;
    }

    /// Where training stands before the next step.
    pub fn progress(&self) -> Progress {
        Progress { step: self.step, total_steps: self.schedule.total_steps, steps_per_epoch: self.schedule.steps_per_epoch }
    }

    /// One optimisation step on a batch of views (on an autodiff device).
    pub fn step(&mut self, batch: &TensorBatch) -> StepStats {
        self.step_deferred(batch).read()
    }

    /// One optimisation step whose logged numbers stay on the device until read: the browser
    /// reads them with [`PendingStats::read_async`], since WebGPU cannot read synchronously.
    pub fn step_deferred(&mut self, batch: &TensorBatch) -> PendingStats {
        let model = self.model.take().expect("the model is only taken during a step");
        let progress = self.progress();
        let half = (self.precision != Precision::F32).then(|| precision::half_copy(&model, self.precision.dtype()));
        let out = data_parallel::over(&self.devices, || half.as_ref().unwrap_or(&model).step(batch, &progress));
        // Every logged number in one tensor, so that reading them is one transfer.
        let mut logged = vec![out.loss.clone().detach().inner()];
        logged.extend(out.terms.iter().map(|(_, t)| t.clone().detach().inner()));
        let embedding_dims = out.embedding.dims()[1];
        logged.push(normalized_dimension_std(out.embedding.detach()).inner());
        let scale = if self.precision == Precision::F16 { self.loss_scale.scale } else { 1.0 };
        let mut grads = GradientsParams::from_grads((out.loss * scale).backward(), &model);
        if scale != 1.0 {
            grads = precision::unscale(&model, grads, scale);
        }
        let norm = gradient_norm(&model, &grads);
        logged.push(norm.clone());
        let lr = self.schedule.lr(self.step);
        // f16: a step whose gradients overflowed is skipped (this reads the norm at once).
        let apply = self.precision != Precision::F16 || self.loss_scale.update(norm.into_scalar::<f32>() * scale);
        self.model = Some(if apply { self.optimizer.step(lr, model, grads).after_step(&progress) } else { model });
        let skipped = !apply && scale > 1.0;
        let pending = PendingStats {
            step: self.step,
            lr,
            term_names: out.terms.iter().map(|(name, _)| *name).collect(),
            embedding_dims,
            values: Tensor::cat(logged, 0),
            skipped,
        };
        self.step += 1;
        pending
    }
}

/// The numbers of a step still on the device: loss, the terms, the embedding's per-dimension
/// std, the gradient norm.
pub struct PendingStats {
    step: usize,
    lr: f64,
    term_names: Vec<&'static str>,
    embedding_dims: usize,
    values: Tensor<1>,
    skipped: bool,
}

impl PendingStats {
    /// Reads the numbers (blocks until the step has run).
    pub fn read(self) -> StepStats {
        let values = self.values.clone().into_data().try_to_vec().expect("f32 scalars");
        self.finish(values)
    }

    /// Reads the numbers without blocking (needed on WebGPU).
    pub async fn read_async(self) -> Result<StepStats, String> {
        let data =
            self.values.clone().into_data_async().await.map_err(|e| format!("reading the step's loss from the device failed: {e:?}"))?;
        Ok(self.finish(data.try_to_vec().expect("f32 scalars")))
    }

    fn finish(self, values: Vec<f32>) -> StepStats {
        let terms = self.term_names.len();
        let dimension_std = values[1 + terms..1 + terms + self.embedding_dims].to_vec();
        StepStats {
            step: self.step,
            lr: self.lr,
            loss: values[0],
            terms: self.term_names.iter().zip(&values[1..]).map(|(name, v)| (*name, *v)).collect(),
            embedding_std: dimension_std.iter().sum::<f32>() / self.embedding_dims as f32,
            embedding_dimension_std: dimension_std,
            grad_norm: values[values.len() - 1],
            skipped: self.skipped,
        }
    }
}

/// `‖g‖₂` over the gradients of every parameter of `module` that has one, `[1]`, on the
/// gradients' (non-autodiff) device.
pub fn gradient_norm<M: Module>(module: &M, grads: &GradientsParams) -> Tensor<1> {
    struct SquaredSum<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredSum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let squares = grad.square().sum();
                self.total = Some(match self.total.take() {
                    Some(total) => total + squares,
                    None => squares,
                });
            }
        }
    }
    let mut visitor = SquaredSum { grads, total: None };
    module.visit(&mut visitor);
    visitor.total.expect("the model has trainable parameters").sqrt()
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;

    #[derive(burn::module::Module, Debug)]
    struct Pair {
        a: Param<Tensor<1>>,
        b: Param<Tensor<2>>,
    }

    fn pair(device: &Device) -> Pair {
        Pair {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(vec![1.0f32, -2.0], [2]), device)),
            b: Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.5f32, 3.0], [1, 2]), device)),
        }
    }

    #[test]
    fn gradient_norm_is_the_l2_norm_of_all_gradients() {
        let device = Device::flex().autodiff();
        let m = pair(&device);
        // loss = 3·Σa + Σb² → ∂a = [3, 3], ∂b = 2b = [1, 6]; ‖g‖ = √(9 + 9 + 1 + 36) = √55.
        let loss = m.a.val().sum() * 3.0 + m.b.val().square().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let norm: f32 = gradient_norm(&m, &grads).into_scalar();
        assert!((norm - 55f32.sqrt()).abs() < 1e-5, "{norm}");
    }

    #[test]
    fn a_finite_loss_can_have_a_non_finite_gradient() {
        let device = Device::flex().autodiff();
        let m = pair(&device);
        // √(0·a) is 0, but its derivative at 0 is infinite: 0 · ∞ = NaN.
        let loss = (m.a.val() * 0.0).sqrt().sum() + m.b.val().sum();
        assert!(loss.clone().into_scalar::<f32>().is_finite());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        assert!(!gradient_norm(&m, &grads).into_scalar::<f32>().is_finite());
    }
}
