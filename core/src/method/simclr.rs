//! SimCLR (Chen et al., ICML 2020): both views through the same encoder and projector; each view
//! must pick out its partner among all other embeddings of the batch (NT-Xent).

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::{ConfigError, positive};
use crate::data::batch::TensorBatch;
use crate::loss::nt_xent;
use crate::model::{Backbone, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimClrConfig {
    pub temperature: f32,
    pub projector: MlpConfig,
}

impl Default for SimClrConfig {
    fn default() -> Self {
        Self { temperature: 0.2, projector: MlpConfig::new(&[512, 128]) }
    }
}

impl MethodSettings for SimClrConfig {
    type Method = SimClr;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")?;
        positive("method.temperature", self.temperature)
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<SimClr, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        Ok(SimClr { backbone, projector, temperature: self.temperature as f64 })
    }
}

#[derive(Module, Debug)]
pub struct SimClr {
    pub backbone: Backbone,
    pub projector: Mlp,
    pub temperature: f64,
}

impl Method for SimClr {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let z1 = self.projector.forward(self.backbone.forward(views[0].clone()));
        let z2 = self.projector.forward(self.backbone.forward(views[1].clone()));
        let loss = nt_xent(z1.clone(), z2, self.temperature as f32);
        StepOutput { terms: vec![("nt_xent", loss.clone())], loss, embedding: z1 }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
