//! MoCo v2 (He et al., CVPR 2020; Chen, Fan, Girshick & He, "Improved Baselines with Momentum
//! Contrastive Learning", 2020): a query encoder is trained to pick its key — the other view
//! through a momentum (EMA) copy of the encoder — out of a queue of keys from past batches.
//! The queue gives many negatives with a small batch; the slowly moving key encoder keeps the
//! queued keys consistent with each other.
//!
//! `L = InfoNCE(q, k, queue)` with `q = g(f(x₁))`, `k = sg(g_ξ(f_ξ(x₂)))`; the keys then enter
//! the queue. `symmetric` adds the loss with the views swapped (as solo-learn's MoCo v2+).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::momentum::{MomentumConfig, ema_update, target_copy};
use super::queue::Queue;
use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::{ConfigError, at_least_one, positive, whole_batches};
use crate::data::batch::TensorBatch;
use crate::loss::{info_nce, l2_normalize};
use crate::model::{Backbone, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MocoV2Config {
    /// The MLP head v2 added (2048 hidden, 128 out).
    pub projector: MlpConfig,
    pub temperature: f32,
    /// Key-encoder momentum: 0.999 on ImageNet, 0.99 on CIFAR.
    pub momentum: MomentumConfig,
    /// Number of queued keys (65,536 on ImageNet); a multiple of the batch size.
    pub queue_size: usize,
    pub symmetric: bool,
}

impl Default for MocoV2Config {
    fn default() -> Self {
        Self {
            projector: MlpConfig::new(&[2048, 128]),
            temperature: 0.2,
            momentum: MomentumConfig::constant(0.99),
            queue_size: 4096,
            symmetric: false,
        }
    }
}

impl MethodSettings for MocoV2Config {
    type Method = MocoV2;

    fn validate(&self, batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")?;
        positive("method.temperature", self.temperature)?;
        self.momentum.validate()?;
        at_least_one("method.queue_size", self.queue_size)?;
        whole_batches("method.queue_size", self.queue_size, batch_size)
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<MocoV2, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        Ok(MocoV2 {
            key_backbone: target_copy(&backbone),
            key_projector: target_copy(&projector),
            queue: Queue::new(self.queue_size, self.projector.output_dim(), device),
            backbone,
            projector,
            config: self.clone(),
        })
    }
}

#[derive(Module, Debug)]
pub struct MocoV2 {
    pub backbone: Backbone,
    pub projector: Mlp,
    pub key_backbone: Backbone,
    pub key_projector: Mlp,
    pub queue: Queue,
    #[module(skip)]
    pub config: MocoV2Config,
}

impl Method for MocoV2 {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let query = |x: &Tensor<4>| self.projector.forward(self.backbone.forward(x.clone()));
        let key = |x: &Tensor<4>| l2_normalize(self.key_projector.forward(self.key_backbone.forward(x.clone()))).detach();
        let negatives = self.queue.entries();
        let t = self.config.temperature;
        let (q1, k2) = (query(&views[0]), key(&views[1]));
        let (loss, keys) = if self.config.symmetric {
            let (q2, k1) = (query(&views[1]), key(&views[0]));
            let loss = (info_nce(q1.clone(), k2.clone(), negatives.clone(), t) + info_nce(q2, k1.clone(), negatives, t)).div_scalar(2.0);
            (loss, Tensor::cat(vec![k1, k2], 0))
        } else {
            (info_nce(q1.clone(), k2.clone(), negatives, t), k2)
        };
        // With a queue smaller than the keys of one step, keep the newest that fit.
        let keys = keys.clone().narrow(0, 0, keys.dims()[0].min(self.queue.size()));
        self.queue.push(keys);
        StepOutput { terms: vec![("info_nce", loss.clone())], loss, embedding: q1 }
    }

    fn after_step(mut self, progress: &Progress) -> Self {
        let m = self.config.momentum.at(progress);
        self.key_backbone = ema_update(self.key_backbone, &self.backbone, m);
        self.key_projector = ema_update(self.key_projector, &self.projector, m);
        self
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
