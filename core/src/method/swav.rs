//! SwAV (Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
//! Assignments", NeurIPS 2020): instead of comparing embeddings directly, each view is assigned
//! to K learned prototypes, and every view must predict the assignment ("code") of the other
//! global views. Codes come from Sinkhorn–Knopp, which spreads the batch evenly over the
//! prototypes — that equipartition is what rules out the collapsed solution.
//!
//! - `z = normalize(g(f(x)))` for every crop (2 global + N local: multi-crop);
//!   scores `s = z Cᵀ` with unit-norm prototypes `C` `[K, D]`.
//! - Codes of each global view: `q = Sinkhorn(sg(s), ε = 0.05, 3 iterations)`, computed on the
//!   batch plus, once it is full, a queue of past embeddings (for small batches).
//! - Loss: [`swapped_prediction`] with temperature 0.1.
//! - Prototypes get no gradient during the first epoch and are re-normalised after every step.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::queue::Queue;
use super::{Method, MethodSettings, Progress, StepOutput, encode_views, global_views, joint_views};
use crate::config::{ConfigError, at_least_one, positive, whole_batches};
use crate::data::batch::TensorBatch;
use crate::loss::{l2_normalize, sinkhorn, swapped_prediction};
use crate::model::{Backbone, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwavConfig {
    /// 2048 hidden, 128 out in the paper.
    pub projector: MlpConfig,
    /// Number of prototypes K: 3000 on ImageNet, 100–300 on CIFAR.
    pub prototypes: usize,
    pub temperature: f32,
    pub epsilon: f32,
    pub sinkhorn_iterations: usize,
    /// Epochs during which the prototypes are not trained.
    pub freeze_prototypes_epochs: f64,
    /// Past embeddings per global view added to Sinkhorn's input; 0 = no queue. A multiple of
    /// the batch size.
    pub queue_size: usize,
    /// Epoch from which embeddings are queued (the queue is used once it is full).
    pub queue_start_epoch: f64,
}

impl Default for SwavConfig {
    fn default() -> Self {
        Self {
            projector: MlpConfig::new(&[2048, 128]),
            prototypes: 3000,
            temperature: 0.1,
            epsilon: 0.05,
            sinkhorn_iterations: 3,
            freeze_prototypes_epochs: 1.0,
            queue_size: 0,
            queue_start_epoch: 0.0,
        }
    }
}

impl MethodSettings for SwavConfig {
    type Method = Swav;

    fn validate(&self, batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")?;
        at_least_one("method.prototypes", self.prototypes)?;
        positive("method.temperature", self.temperature)?;
        positive("method.epsilon", self.epsilon)?;
        match self.queue_size {
            0 => Ok(()),
            size => whole_batches("method.queue_size", size, batch_size),
        }
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Swav, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        let dim = self.projector.output_dim();
        let prototypes = l2_normalize(Tensor::random([self.prototypes, dim], Distribution::Normal(0.0, 1.0), device));
        let queues = if self.queue_size > 0 { (0..2).map(|_| Queue::new(self.queue_size, dim, device)).collect() } else { Vec::new() };
        Ok(Swav { backbone, projector, prototypes: Param::from_tensor(prototypes.detach()), queues, config: self.clone() })
    }
}

#[derive(Module, Debug)]
pub struct Swav {
    pub backbone: Backbone,
    pub projector: Mlp,
    /// `[K, D]`, unit rows.
    pub prototypes: Param<Tensor<2>>,
    /// One queue per global view (none without a queue).
    pub queues: Vec<Queue>,
    #[module(skip)]
    pub config: SwavConfig,
}

impl Method for Swav {
    fn step(&self, batch: &TensorBatch, progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let c = &self.config;
        let globals = global_views(views).min(2);
        let batch = views[0].dims()[0];
        let z = encode_views(views, |x| l2_normalize(self.projector.forward(self.backbone.forward(x))));
        // In f32 also in a half-precision step: the scores feed Sinkhorn's exponentials.
        let prototypes = match progress.epoch() < c.freeze_prototypes_epochs {
            true => self.prototypes.val().detach(),
            false => self.prototypes.val(),
        }
        .cast(burn::tensor::DType::F32);
        let scores: Vec<Tensor<2>> = z.iter().map(|z| z.clone().matmul(prototypes.clone().transpose())).collect();

        // The queue is filled one batch per step from `queue_start_epoch` on; use it once full.
        let start = (c.queue_start_epoch * progress.steps_per_epoch as f64).ceil() as usize;
        let queuing = !self.queues.is_empty() && progress.step >= start;
        let queue_full = queuing && (progress.step - start) * batch >= c.queue_size;
        let codes: Vec<Tensor<2>> = (0..globals)
            .map(|i| {
                let own = scores[i].clone().detach();
                if !queue_full {
                    return sinkhorn(own, c.epsilon, c.sinkhorn_iterations);
                }
                let past = self.queues[i].entries().matmul(prototypes.clone().detach().transpose());
                sinkhorn(Tensor::cat(vec![past, own], 0), c.epsilon, c.sinkhorn_iterations).narrow(0, c.queue_size, batch)
            })
            .collect();
        let loss = swapped_prediction(&codes, &scores, c.temperature);
        if queuing {
            for (queue, z) in self.queues.iter().zip(&z) {
                queue.push(z.clone());
            }
        }
        StepOutput { terms: vec![("swapped_prediction", loss.clone())], loss, embedding: z[0].clone() }
    }

    /// Projects the prototypes back onto the unit sphere.
    fn after_step(mut self, _progress: &Progress) -> Self {
        self.prototypes = self.prototypes.map(|c| l2_normalize(c).detach().require_grad());
        self
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
