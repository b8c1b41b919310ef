//! MoCo v3 (Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision
//! Transformers", ICCV 2021): no queue; the keys of the other samples in the batch are the
//! negatives. A predictor sits on the query branch (as in BYOL), the key encoder is a momentum
//! copy of backbone + projector, and the loss is symmetrised and scaled by 2τ.
//!
//! `L = 2τ · [InfoNCE_batch(q₁, k₂) + InfoNCE_batch(q₂, k₁)]`, `q = h(g(f(x)))`,
//! `k = sg(g_ξ(f_ξ(x)))`.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::momentum::{MomentumConfig, ema_update, target_copy};
use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::{ConfigError, positive};
use crate::data::batch::TensorBatch;
use crate::loss::info_nce_in_batch;
use crate::model::{Backbone, LastNorm, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MocoV3Config {
    /// Three layers ending in a non-affine BatchNorm in the paper (4096 hidden, 256 out).
    pub projector: MlpConfig,
    /// Two layers (4096 hidden); its output must equal the projector's.
    pub predictor: MlpConfig,
    pub temperature: f32,
    /// 0.99 rising to 1 on a cosine.
    pub momentum: MomentumConfig,
}

impl Default for MocoV3Config {
    fn default() -> Self {
        Self {
            projector: MlpConfig::new(&[4096, 4096, 256]).with_last_norm(LastNorm::NonAffine),
            predictor: MlpConfig::new(&[4096, 256]),
            temperature: 0.2,
            momentum: MomentumConfig::cosine(0.99),
        }
    }
}

impl MethodSettings for MocoV3Config {
    type Method = MocoV3;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")?;
        self.predictor.validate("predictor")?;
        positive("method.temperature", self.temperature)?;
        self.momentum.validate()
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<MocoV3, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        let predictor = self.predictor.init(self.projector.output_dim(), device);
        Ok(MocoV3 {
            key_backbone: target_copy(&backbone),
            key_projector: target_copy(&projector),
            backbone,
            projector,
            predictor,
            config: self.clone(),
        })
    }
}

#[derive(Module, Debug)]
pub struct MocoV3 {
    pub backbone: Backbone,
    pub projector: Mlp,
    pub predictor: Mlp,
    pub key_backbone: Backbone,
    pub key_projector: Mlp,
    #[module(skip)]
    pub config: MocoV3Config,
}

impl Method for MocoV3 {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let z: Vec<Tensor<2>> = views[..2].iter().map(|x| self.projector.forward(self.backbone.forward(x.clone()))).collect();
        let q: Vec<Tensor<2>> = z.iter().map(|z| self.predictor.forward(z.clone())).collect();
        let k: Vec<Tensor<2>> =
            views[..2].iter().map(|x| self.key_projector.forward(self.key_backbone.forward(x.clone())).detach()).collect();
        let t = self.config.temperature;
        let loss =
            (info_nce_in_batch(q[0].clone(), k[1].clone(), t) + info_nce_in_batch(q[1].clone(), k[0].clone(), t)).mul_scalar(2.0 * t);
        StepOutput { terms: vec![("info_nce", loss.clone())], loss, embedding: z[0].clone() }
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
