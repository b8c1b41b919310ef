//! BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020): the online network (backbone,
//! projector, predictor) predicts the target network's projection of the other view. The
//! target is a momentum (EMA) copy of backbone + projector and gets no gradient. There are no
//! negatives; the predictor and the slowly moving target are what keep it from collapsing.
//!
//! `L = (2 − 2·cos(p₁, sg(z'₂))) + (2 − 2·cos(p₂, sg(z'₁)))`, with momentum rising from 0.99
//! (CIFAR; 0.996 on ImageNet) to 1 on a cosine. The paper's augmentations are asymmetric
//! (blur 1.0/0.1, solarize 0/0.2): the `byol` preset.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::momentum::{MomentumConfig, ema_update, target_copy};
use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::ConfigError;
use crate::data::batch::TensorBatch;
use crate::loss::negative_cosine;
use crate::model::{Backbone, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ByolConfig {
    /// 4096 hidden, 256 out in the paper.
    pub projector: MlpConfig,
    /// Same shape as the projector; its output must equal the projector's.
    pub predictor: MlpConfig,
    pub momentum: MomentumConfig,
}

impl Default for ByolConfig {
    fn default() -> Self {
        Self { projector: MlpConfig::new(&[4096, 256]), predictor: MlpConfig::new(&[4096, 256]), momentum: MomentumConfig::cosine(0.99) }
    }
}

impl MethodSettings for ByolConfig {
    type Method = Byol;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")?;
        self.predictor.validate("predictor")?;
        self.momentum.validate()
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Byol, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        let predictor = self.predictor.init(self.projector.output_dim(), device);
        Ok(Byol {
            target_backbone: target_copy(&backbone),
            target_projector: target_copy(&projector),
            backbone,
            projector,
            predictor,
            config: self.clone(),
        })
    }
}

#[derive(Module, Debug)]
pub struct Byol {
    pub backbone: Backbone,
    pub projector: Mlp,
    pub predictor: Mlp,
    pub target_backbone: Backbone,
    pub target_projector: Mlp,
    #[module(skip)]
    pub config: ByolConfig,
}

impl Method for Byol {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let z: Vec<Tensor<2>> = views[..2].iter().map(|x| self.projector.forward(self.backbone.forward(x.clone()))).collect();
        let p: Vec<Tensor<2>> = z.iter().map(|z| self.predictor.forward(z.clone())).collect();
        let target: Vec<Tensor<2>> =
            views[..2].iter().map(|x| self.target_projector.forward(self.target_backbone.forward(x.clone())).detach()).collect();
        // 2 − 2·cos = 2 + 2·(negative cosine), per direction.
        let direction = |p: &Tensor<2>, z: &Tensor<2>| negative_cosine(p.clone(), z.clone()).mul_scalar(2.0).add_scalar(2.0);
        let loss = direction(&p[0], &target[1]) + direction(&p[1], &target[0]);
        StepOutput { terms: vec![("byol", loss.clone())], loss, embedding: z[0].clone() }
    }

    fn after_step(mut self, progress: &Progress) -> Self {
        let m = self.config.momentum.at(progress);
        self.target_backbone = ema_update(self.target_backbone, &self.backbone, m);
        self.target_projector = ema_update(self.target_projector, &self.projector, m);
        self
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
