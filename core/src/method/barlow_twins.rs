//! Barlow Twins (Zbontar et al., ICML 2021): the cross-correlation matrix of the two views'
//! standardised embeddings is pushed to the identity — invariant and non-redundant dimensions.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::ConfigError;
use crate::data::batch::TensorBatch;
use crate::loss::barlow_twins;
use crate::model::{Backbone, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BarlowTwinsConfig {
    pub projector: MlpConfig,
    /// Weight of the off-diagonal (redundancy) term.
    pub lambda: f32,
}

impl Default for BarlowTwinsConfig {
    fn default() -> Self {
        Self { projector: MlpConfig::new(&[8192, 8192, 8192]), lambda: 5e-3 }
    }
}

impl MethodSettings for BarlowTwinsConfig {
    type Method = BarlowTwins;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<BarlowTwins, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        Ok(BarlowTwins { backbone, projector, lambda: self.lambda as f64 })
    }
}

#[derive(Module, Debug)]
pub struct BarlowTwins {
    pub backbone: Backbone,
    pub projector: Mlp,
    pub lambda: f64,
}

impl Method for BarlowTwins {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let z1 = self.projector.forward(self.backbone.forward(views[0].clone()));
        let z2 = self.projector.forward(self.backbone.forward(views[1].clone()));
        let loss = barlow_twins(z1.clone(), z2, self.lambda as f32);
        StepOutput { terms: vec![("barlow_twins", loss.clone())], loss, embedding: z1 }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
