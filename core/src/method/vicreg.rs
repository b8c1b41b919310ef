//! VICReg (Bardes, Ponce & LeCun, ICLR 2022): an expander maps both views to a wide embedding;
//! the loss pulls the pairs together (invariance) while keeping every dimension's spread above
//! a threshold (variance) and the dimensions decorrelated (covariance). No stop-gradient.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::ConfigError;
use crate::data::batch::TensorBatch;
use crate::loss::{VicregCoeffs, vicreg};
use crate::model::{Backbone, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VicregConfig {
    pub expander: MlpConfig,
    pub coeffs: VicregCoeffs,
}

impl Default for VicregConfig {
    fn default() -> Self {
        Self { expander: MlpConfig::new(&[8192, 8192, 8192]), coeffs: VicregCoeffs::default() }
    }
}

impl MethodSettings for VicregConfig {
    type Method = Vicreg;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        self.expander.validate("expander")
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Vicreg, ConfigError> {
        let expander = self.expander.init(backbone.feature_dim(), device);
        let c = self.coeffs;
        Ok(Vicreg { backbone, expander, sim: c.sim as f64, std: c.std as f64, cov: c.cov as f64 })
    }
}

#[derive(Module, Debug)]
pub struct Vicreg {
    pub backbone: Backbone,
    pub expander: Mlp,
    pub sim: f64,
    pub std: f64,
    pub cov: f64,
}

impl Method for Vicreg {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let z1 = self.expander.forward(self.backbone.forward(views[0].clone()));
        let z2 = self.expander.forward(self.backbone.forward(views[1].clone()));
        let coeffs = VicregCoeffs { sim: self.sim as f32, std: self.std as f32, cov: self.cov as f32 };
        let t = vicreg(z1.clone(), z2, coeffs);
        StepOutput {
            loss: t.total,
            terms: vec![("invariance", t.invariance), ("variance", t.variance), ("covariance", t.covariance)],
            embedding: z1,
        }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
