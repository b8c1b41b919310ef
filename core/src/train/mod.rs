//! The training step shared by the native trainer and the browser: forward the method, back-
//! propagate, step the optimiser with the scheduled learning rate, and report what happened.

pub mod optim;
pub mod schedule;

pub use optim::OptimizerConfig;
pub use schedule::Schedule;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::eval::monitor::normalized_std;
use crate::method::Model;

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

    /// One optimisation step on a batch of views (on an autodiff device).
    pub fn step(&mut self, views: &[Tensor<4>]) -> StepStats {
        let model = self.model.take().expect("the model is only taken during a step");
        let out = model.step(views);
        // Read every logged number in one transfer.
        let mut logged = vec![out.loss.clone().detach()];
        logged.extend(out.terms.iter().map(|(_, t)| t.clone().detach()));
        logged.push(normalized_std(out.embedding.detach()));
        let values: Vec<f32> = Tensor::cat(logged, 0).into_data().try_to_vec().expect("f32 scalars");
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        let lr = self.schedule.lr(self.step);
        self.model = Some(self.optimizer.step(lr, model, grads));
        let stats = StepStats {
            step: self.step,
            lr,
            loss: values[0],
            terms: out.terms.iter().zip(&values[1..]).map(|((name, _), v)| (*name, *v)).collect(),
            embedding_std: *values.last().expect("std is logged"),
        };
        self.step += 1;
        stats
    }
}
