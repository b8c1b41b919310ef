//! The training step shared by the native trainer and the browser: forward the method, back-
//! propagate, step the optimiser with the scheduled learning rate, and report what happened.

pub mod optim;
pub mod schedule;

pub use optim::OptimizerConfig;
pub use schedule::Schedule;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::eval::monitor::normalized_std;
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
}

/// A model and its optimiser.
pub struct Trainer {
    model: Option<Model>,
    optimizer: ModuleOptimizer,
    pub schedule: Schedule,
    /// Steps taken so far.
    pub step: usize,
}

impl Trainer {
    pub fn new(model: Model, optimizer: &OptimizerConfig, schedule: Schedule) -> Self {
        Self { model: Some(model), optimizer: optimizer.init(), schedule, step: 0 }
    }

    pub fn model(&self) -> &Model {
        self.model.as_ref().expect("the model is only taken during a step")
    }

    pub fn into_model(self) -> Model {
        self.model.expect("the model is only taken during a step")
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
    pub fn step(&mut self, views: &[Tensor<4>]) -> StepStats {
        self.step_deferred(views).read()
    }

    /// One optimisation step whose logged numbers stay on the device until read: the browser
    /// reads them with [`PendingStats::read_async`], since WebGPU cannot read synchronously.
    pub fn step_deferred(&mut self, views: &[Tensor<4>]) -> PendingStats {
        let model = self.model.take().expect("the model is only taken during a step");
        let progress = self.progress();
        let out = model.step(views, &progress);
        // Every logged number in one tensor, so that reading them is one transfer.
        let mut logged = vec![out.loss.clone().detach()];
        logged.extend(out.terms.iter().map(|(_, t)| t.clone().detach()));
        logged.push(normalized_std(out.embedding.detach()));
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        let lr = self.schedule.lr(self.step);
        self.model = Some(self.optimizer.step(lr, model, grads).after_step(&progress));
        let pending = PendingStats { step: self.step, lr, term_names: out.terms.iter().map(|(name, _)| *name).collect(), values: Tensor::cat(logged, 0) };
        self.step += 1;
        pending
    }
}

/// The numbers of a step still on the device: loss, the terms, the embedding std.
pub struct PendingStats {
    step: usize,
    lr: f64,
    term_names: Vec<&'static str>,
    values: Tensor<1>,
}

impl PendingStats {
    /// Reads the numbers (blocks until the step has run).
    pub fn read(self) -> StepStats {
        let values = self.values.clone().into_data().try_to_vec().expect("f32 scalars");
        self.finish(values)
    }

    /// Reads the numbers without blocking (needed on WebGPU).
    pub async fn read_async(self) -> Result<StepStats, String> {
        let data = self.values.clone().into_data_async().await.map_err(|e| format!("reading the step's loss from the device failed: {e:?}"))?;
        Ok(self.finish(data.try_to_vec().expect("f32 scalars")))
    }

    fn finish(self, values: Vec<f32>) -> StepStats {
        StepStats {
            step: self.step,
            lr: self.lr,
            loss: values[0],
            terms: self.term_names.iter().zip(&values[1..]).map(|(name, v)| (*name, *v)).collect(),
            embedding_std: *values.last().expect("std is logged"),
        }
    }
}
